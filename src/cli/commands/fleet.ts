import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { loadConfig, LOCAL_HOST, type Config } from '../../core/config.js';
import { createDeps } from '../../core/deps.js';
import { SnapguardError, toSnapguardError } from '../../core/errors.js';
import { authorizedKeyLine, worstStatus } from '../../core/fleet.js';
import { healthCheck, healthExitCode } from '../../core/health/index.js';
import type { HealthCheckResult, HealthStatus } from '../../core/health/schemas.js';
import { createLogger } from '../../core/logger.js';
import { assertPrivateDirs } from '../../core/private-dirs.js';
import { formatDuration } from '../../core/units.js';
import { action, configFileInUse, runningCommand, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine, renderTable } from '../output.js';
import { callRemote, withSessions } from '../remote.js';

export interface FleetHost {
  host: string;
  reachable: boolean;
  overall: HealthStatus | null;
  error?: string;
  hint?: string;
  volumes: {
    volume: string;
    status: HealthStatus;
    newestSnapshotAgeSeconds: number | null;
    rpoSeconds: number | null;
    lastRestoreTest: { outcome: string; ageSeconds: number } | null;
  }[];
}

function fromHealth(host: string, result: HealthCheckResult): FleetHost {
  return {
    host,
    reachable: true,
    overall: result.overall,
    volumes: result.volumes.map((v) => ({
      volume: v.volume,
      status: v.status,
      newestSnapshotAgeSeconds: v.newestSnapshotAgeSeconds,
      rpoSeconds: v.rpoSeconds,
      lastRestoreTest: v.lastRestoreTest
        ? { outcome: v.lastRestoreTest.outcome, ageSeconds: v.lastRestoreTest.ageSeconds }
        : null,
    })),
  };
}

async function localHealth(config: Config, verbose: boolean | undefined): Promise<HealthCheckResult> {
  await assertPrivateDirs(config);
  const deps = createDeps(config, {
    logger: createLogger({ file: config.logFile, level: verbose ? 'debug' : 'warn' }),
  });
  return healthCheck(deps, {}, { recordSample: false });
}

/** Every host's health in parallel: this one (when it has volumes) and each of hosts:. */
export async function fleetStatus(config: Config, verbose?: boolean): Promise<FleetHost[]> {
  return withSessions(config, async (sessions) => {
    const names = [...(Object.keys(config.volumes).length > 0 ? [LOCAL_HOST] : []), ...sessions.names()];
    return Promise.all(
      names.map(async (host): Promise<FleetHost> => {
        try {
          const result =
            host === LOCAL_HOST
              ? await localHealth(config, verbose)
              : ((await callRemote(sessions, host, 'health_check', {}))
                  .structured as unknown as HealthCheckResult);
          return fromHealth(host, result);
        } catch (error) {
          const failure = toSnapguardError(error);
          return {
            host,
            reachable: failure.code !== 'HOST_UNREACHABLE',
            overall: null,
            error: failure.message,
            hint: failure.hintFor('cli'),
            volumes: [],
          };
        }
      }),
    );
  });
}

/** 0 when every host is GOOD; 1 for WARNING or a host without an answer; 2 for CRITICAL. */
function fleetExitCode(hosts: readonly FleetHost[]): number {
  const statuses = hosts.map((h) => h.overall ?? 'WARNING');
  return healthExitCode(worstStatus(statuses));
}

export function fleetCommand(): Command {
  return withCommon(
    new Command('fleet').description(
      'every host at a glance: reachable, overall health, newest snapshot age and RPO per volume, last restore test; exit 0 GOOD, 1 WARNING or a host not answering, 2 CRITICAL',
    ),
  ).action(
    action(async (options: CommonOptions) => {
      const config = await loadConfig({ explicit: options.config });
      if (Object.keys(config.volumes).length === 0 && Object.keys(config.hosts).length === 0) {
        throw new SnapguardError(
          'CONFIG_INVALID',
          `${config.sourceFile ?? 'The configuration'} has no volumes and no hosts.`,
          'Add volumes, or other hosts under hosts: (docs/fleet.md).',
        );
      }
      const hosts = await fleetStatus(config, options.verbose);
      if (options.json) {
        printJson({ hosts });
      } else {
        const rows: (string | undefined)[][] = [];
        for (const h of hosts) {
          if (h.volumes.length === 0) {
            rows.push([
              h.host,
              h.reachable ? 'yes' : 'no',
              h.overall ?? '-',
              '-',
              '-',
              '-',
              h.error ? h.error : '-',
            ]);
            continue;
          }
          for (const v of h.volumes)
            rows.push([
              h.host,
              'yes',
              h.overall ?? '-',
              v.volume,
              v.newestSnapshotAgeSeconds === null ? 'none' : formatDuration(v.newestSnapshotAgeSeconds),
              v.rpoSeconds === null ? '-' : formatDuration(v.rpoSeconds),
              v.lastRestoreTest
                ? `${v.lastRestoreTest.outcome} ${formatDuration(v.lastRestoreTest.ageSeconds)} ago`
                : 'never',
            ]);
        }
        printLine(
          renderTable(['HOST', 'REACHABLE', 'HEALTH', 'VOLUME', 'NEWEST', 'RPO', 'LAST RESTORE TEST'], rows),
        );
        for (const h of hosts.filter((x) => x.error))
          process.stderr.write(`${h.host}: ${h.error}\n  what to do: ${h.hint}\n`);
      }
      return fleetExitCode(hosts);
    }),
  );
}

export interface HostDoctor {
  host: string;
  connection: 'ok' | 'failed';
  connectSeconds: number | null;
  tools: number | null;
  readOnly: boolean | null;
  health: HealthStatus | null;
  error?: string;
  hint?: string;
}

/** doctor --host NAME|*: the connection (start, handshake, tools offered), then the host's health check. */
export async function doctorHosts(options: CommonOptions & { host: string }): Promise<number> {
  const config = await loadConfig({ explicit: options.config });
  const names = options.host === '*' ? Object.keys(config.hosts) : [options.host];
  const results = await withSessions(config, async (sessions) => {
    for (const name of names) sessions.entry(name);
    return Promise.all(
      names.map(async (host): Promise<HostDoctor> => {
        const started = performance.now();
        try {
          const tools = await sessions.listTools(host);
          const connectSeconds = Math.round(performance.now() - started) / 1000;
          const health = (await callRemote(sessions, host, 'health_check', {})).structured
            .overall as HealthStatus;
          return {
            host,
            connection: 'ok',
            connectSeconds,
            tools: tools.length,
            readOnly: !tools.includes('recover'),
            health,
          };
        } catch (error) {
          const failure = toSnapguardError(error);
          const connected = failure.code !== 'HOST_UNREACHABLE';
          return {
            host,
            connection: connected ? 'ok' : 'failed',
            connectSeconds: null,
            tools: null,
            readOnly: null,
            health: null,
            error: failure.message,
            hint: failure.hintFor('cli'),
          };
        }
      }),
    );
  });
  if (options.json) printJson({ hosts: results });
  else {
    printLine(
      renderTable(
        ['HOST', 'CONNECTION', 'TIME', 'TOOLS', 'HEALTH'],
        results.map((r) => [
          r.host,
          r.connection,
          r.connectSeconds === null ? '-' : `${r.connectSeconds.toFixed(2)}s`,
          r.tools === null ? '-' : `${r.tools}${r.readOnly ? ' (read-only)' : ''}`,
          r.health ?? '-',
        ]),
      ),
    );
    for (const r of results.filter((x) => x.error))
      process.stderr.write(`${r.host}: ${r.error}\n  what to do: ${r.hint}\n`);
  }
  if (results.some((r) => r.connection === 'failed')) return 2;
  return healthExitCode(worstStatus(results.map((r) => r.health ?? 'WARNING')));
}

export function authorizeKeyCommand(): Command {
  return new Command('authorize-key')
    .description(
      "print the authorized_keys line that lets the controller's key run only `snapguard mcp` on this host (forced command, restrict)",
    )
    .requiredOption('--key <file>', "the controller's public key (.pub)")
    .option(
      '-c, --config <file>',
      'the configuration the forced command serves (default: the one this run finds, else /etc/snapguard/snapguard.yaml)',
    )
    .option('--command <argv...>', 'how sshd starts snapguard on this host (default: this node and this CLI)')
    .action(
      action(async (options: { key: string; config?: string; command?: string[] }) => {
        let publicKey: string;
        try {
          publicKey = await readFile(options.key, 'utf8');
        } catch (error) {
          throw new SnapguardError(
            'BAD_INPUT',
            `Cannot read the key ${options.key}: ${(error as Error).message}`,
            'Pass the public key file of the controller, e.g. --key /root/.ssh/snapguard.pub.',
          );
        }
        const config = options.config
          ? resolve(options.config)
          : (configFileInUse(undefined) ?? '/etc/snapguard/snapguard.yaml');
        const snapguard = options.command?.length ? options.command : runningCommand();
        printLine(authorizedKeyLine(snapguard, config, publicKey));
        return 0;
      }),
    );
}
