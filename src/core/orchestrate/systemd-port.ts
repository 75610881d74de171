import type { Exec } from '../../system/exec.js';
import { SnapguardError } from '../errors.js';

/** The part of the systemd driver the orchestrator uses. */
export interface UnitStatus {
  unit: string;
  loadState: string;
  activeState: string;
  subState: string;
  result: string;
  execMainStatus: number | undefined;
  type: string;
}

export interface UnitCallOptions {
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
}

export interface SystemdPort {
  show(unit: string, options?: UnitCallOptions): Promise<UnitStatus>;
  start(unit: string, options?: UnitCallOptions): Promise<void>;
  stop(unit: string, options?: UnitCallOptions): Promise<void>;
  listUnits(patterns: string[], options?: UnitCallOptions): Promise<string[]>;
  listUnitFiles(patterns: string[], options?: UnitCallOptions): Promise<string[]>;
  waitUntilInactive(unit: string, options: UnitCallOptions): Promise<UnitStatus>;
  journal(unit: string, lines: number, options?: UnitCallOptions): Promise<string[]>;
}

export type SystemdFactory = (systemctl: string[], scope: 'system' | 'user') => SystemdPort;

function firstColumn(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name.length > 0 && name !== '●');
}

/**
 * A small systemctl client for the orchestrator: `systemctl start` of a oneshot unit blocks until
 * the unit finished, which is how completion is awaited without polling; only a unit that is
 * already running (started by its timer) is watched through its ActiveState.
 */
export function createSystemdPort(exec: Exec, systemctl: string[], scope: 'system' | 'user'): SystemdPort {
  const [file, ...prefix] = systemctl;
  if (!file)
    throw new SnapguardError(
      'CONFIG_INVALID',
      'The systemctl argv prefix is empty.',
      'Set it to [systemctl].',
    );
  const base = scope === 'user' ? [...prefix, '--user'] : prefix;
  const run = (args: string[], options: UnitCallOptions = {}) =>
    exec(file, [...base, ...args], { timeoutMs: options.timeoutMs ?? 30_000, signal: options.signal });

  const show = async (unit: string, options: UnitCallOptions = {}): Promise<UnitStatus> => {
    const { stdout } = await run(
      ['show', '-p', 'Id,LoadState,ActiveState,SubState,Result,ExecMainStatus,Type', '--', unit],
      options,
    );
    const props = new Map<string, string>();
    for (const line of stdout.split('\n')) {
      const at = line.indexOf('=');
      if (at > 0) props.set(line.slice(0, at), line.slice(at + 1));
    }
    const status = props.get('ExecMainStatus');
    return {
      unit,
      loadState: props.get('LoadState') ?? 'not-found',
      activeState: props.get('ActiveState') ?? 'inactive',
      subState: props.get('SubState') ?? '',
      result: props.get('Result') ?? '',
      execMainStatus: status === undefined || status === '' ? undefined : Number(status),
      type: props.get('Type') ?? '',
    };
  };

  return {
    show,
    async start(unit, options = {}) {
      await run(['start', '--', unit], options);
    },
    async stop(unit, options = {}) {
      await run(['stop', '--', unit], options);
    },
    async listUnits(patterns, options = {}) {
      const { stdout } = await run(
        ['list-units', '--all', '--plain', '--no-legend', '--', ...patterns],
        options,
      );
      return firstColumn(stdout);
    },
    async listUnitFiles(patterns, options = {}) {
      const { stdout } = await run(['list-unit-files', '--plain', '--no-legend', '--', ...patterns], options);
      return firstColumn(stdout);
    },
    async waitUntilInactive(unit, options) {
      const deadline = Date.now() + (options.timeoutMs ?? 30_000);
      for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
        const status = await show(unit, { signal: options.signal });
        if (!['active', 'activating', 'deactivating', 'reloading'].includes(status.activeState))
          return status;
        if (status.activeState === 'active' && ['exited', 'mounted', 'plugged'].includes(status.subState))
          return status;
        if (Date.now() >= deadline)
          throw new SnapguardError(
            'TIMEOUT',
            `${unit} was still ${status.activeState} after ${Math.round((options.timeoutMs ?? 0) / 1000)} s.`,
            'Check the unit with journalctl -u.',
          );
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, delay);
          options.signal?.addEventListener(
            'abort',
            () => {
              clearTimeout(timer);
              reject(
                new SnapguardError('CANCELLED', `Stopped waiting for ${unit}.`, 'Run it again when ready.'),
              );
            },
            { once: true },
          );
        });
      }
    },
    async journal(unit, lines, options = {}) {
      // journalctl sits next to systemctl in the prefix (nsenter ... systemctl -> nsenter ... journalctl).
      const journalctl = [
        ...systemctl.slice(0, -1),
        systemctl[systemctl.length - 1]!.replace(/systemctl$/, 'journalctl'),
      ];
      const [jfile, ...jprefix] = journalctl;
      const { stdout } = await exec(
        jfile!,
        [
          ...jprefix,
          ...(scope === 'user' ? ['--user'] : []),
          '-u',
          unit,
          '-n',
          String(lines),
          '--no-pager',
          '-o',
          'cat',
        ],
        { timeoutMs: options.timeoutMs ?? 15_000, signal: options.signal },
      );
      return stdout.split('\n').filter((line) => line.length > 0);
    },
  };
}
