import type { VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError } from '../errors.js';
import type { ValidationCheck } from './schemas.js';

/** The part of the systemd driver a recovery uses (src/system/systemd.ts implements it). */
export interface ServiceDriver {
  stop(unit: string, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<unknown>;
  start(unit: string, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<unknown>;
  isActive(unit: string, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<boolean>;
  show(unit: string): Promise<{ activeState: string; subState: string; result: string }>;
  journal(unit: string, lines: number): Promise<string[]>;
}

export type ServiceDriverFactory = (services: {
  systemctl: string[];
  scope: 'system' | 'user';
}) => ServiceDriver;

export function servicesOf(volume: VolumeConfig): {
  units: string[];
  scope: 'system' | 'user';
  systemctl: string[];
  settleTime: number;
} {
  return {
    units: volume.services?.units ?? [],
    scope: volume.services?.scope ?? 'system',
    systemctl: volume.services?.systemctl ?? ['systemctl'],
    settleTime: volume.services?.settleTime ?? 2,
  };
}

export async function stopUnits(
  driver: ServiceDriver,
  volume: VolumeConfig,
  signal?: AbortSignal,
): Promise<void> {
  // Stopped in reverse order of the list, started in order: the list reads as a dependency order.
  for (const unit of [...servicesOf(volume).units].reverse()) {
    try {
      await driver.stop(unit, { timeoutMs: 300_000, ...(signal ? { signal } : {}) });
    } catch (error) {
      const base = error instanceof SnapguardError ? error : undefined;
      throw new SnapguardError(
        base?.code ?? 'COMMAND_FAILED',
        `Could not stop ${unit} of volume "${volume.id}" before the recovery: ${base?.message ?? String(error)}`,
        'Nothing was swapped. Check the unit (systemctl status) and retry.',
        { cause: error },
      );
    }
  }
}

/** Starts the units; a unit that does not start is reported as a failed check, not thrown. */
export async function startUnits(
  driver: ServiceDriver,
  volume: VolumeConfig,
  signal?: AbortSignal,
): Promise<ValidationCheck[]> {
  const checks: ValidationCheck[] = [];
  for (const unit of servicesOf(volume).units) {
    try {
      await driver.start(unit, { timeoutMs: 300_000, ...(signal ? { signal } : {}) });
    } catch (error) {
      checks.push({
        volume: volume.id,
        check: `start ${unit}`,
        ok: false,
        detail: error instanceof Error ? error.message.split('\n')[0] : String(error),
      });
    }
  }
  return checks;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });

/** After the settle time: every unit active, then each configured validate command. */
export async function validateVolume(
  deps: Deps,
  driver: ServiceDriver | undefined,
  volume: VolumeConfig,
  signal?: AbortSignal,
): Promise<ValidationCheck[]> {
  const checks: ValidationCheck[] = [];
  const services = servicesOf(volume);
  if (driver && services.units.length > 0) {
    await sleep(services.settleTime * 1000, signal);
    for (const unit of services.units) {
      let active = false;
      let detail: string | undefined;
      try {
        active = await driver.isActive(unit);
        if (!active) {
          const status = await driver.show(unit);
          const journal = await driver.journal(unit, 5).catch(() => []);
          detail = `${unit} is ${status.activeState}/${status.subState} (result ${status.result})${journal.length ? `; last log: ${journal.join(' | ')}` : ''}`;
        }
      } catch (error) {
        detail = `${unit}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
      }
      checks.push({
        volume: volume.id,
        check: `unit ${unit} active`,
        ok: active,
        ...(detail ? { detail } : {}),
      });
    }
  }
  for (const validation of volume.validate ?? []) {
    const [file, ...args] = validation.command;
    const label = `command ${validation.command.join(' ')}`;
    try {
      await deps.exec(file as string, args, {
        timeoutMs: validation.timeout * 1000,
        signal,
        cwd: volume.path,
      });
      checks.push({ volume: volume.id, check: label, ok: true });
    } catch (error) {
      checks.push({
        volume: volume.id,
        check: label,
        ok: false,
        detail: error instanceof Error ? error.message.split('\n')[0] : String(error),
      });
    }
  }
  return checks;
}
