import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config, VolumeConfig } from '../config.js';
import { privateDirProblems } from '../private-dirs.js';
import type { Deps } from '../deps.js';
import { toSnapguardError } from '../errors.js';
import type { Exec, ExecResult } from '../../system/exec.js';
import { STORAGE_TOOLS } from '../../backends/index.js';
import type { VolumeCheck } from '../../backends/types.js';

export type CheckStatus = 'ok' | 'warning' | 'critical';

/** One line of `snapguard doctor`: what was checked, what was found, and what to do about it. */
export interface DoctorCheck {
  id: string;
  status: CheckStatus;
  message: string;
  fix?: string;
}

interface Tool {
  command: string;
  /** Asks the tool for its version (exit codes 1 and 2 count as an answer). */
  version: (exec: Exec) => Promise<ExecResult>;
  /** Why this config needs it, or undefined when it does not. */
  neededFor: string | undefined;
}

function orchestrateKinds(config: Config): { systemd: boolean; restic: boolean; pgbackrest: boolean } {
  const found = { systemd: false, restic: false, pgbackrest: false };
  for (const stage of config.orchestrate?.stages ?? []) {
    for (const job of stage.jobs) {
      if (job.kind === 'systemd') found.systemd = true;
      const verify = 'verify' in job ? job.verify : undefined;
      if (verify?.kind === 'restic') found.restic = true;
      if (verify?.kind === 'pgbackrest') found.pgbackrest = true;
    }
  }
  return found;
}

function toolsFor(config: Config): Tool[] {
  const volumes = Object.values(config.volumes);
  const backends = new Set(volumes.map((v) => v.backend));
  const externals = new Set(volumes.flatMap((v) => v.external.map((e) => e.kind)));
  const orchestrate = orchestrateKinds(config);
  const first = (pairs: [boolean, string][]) => pairs.find(([needed]) => needed)?.[1];
  const versionOf = (command: string, args: string[]) => (exec: Exec) =>
    exec(command, args, { timeoutMs: 15_000, okExitCodes: [0, 1, 2] });
  return [
    // The storage tools, as the backends name them.
    ...STORAGE_TOOLS.map((tool) => ({
      command: tool.command,
      version: (exec: Exec) => tool.version(exec),
      neededFor: first([
        [backends.has(tool.kind), `${tool.kind} volumes`],
        [externals.has(tool.kind), `${tool.kind} external copies`],
      ]),
    })),
    {
      command: 'systemctl',
      version: versionOf('systemctl', ['--version']),
      neededFor: first([
        [volumes.some((v) => (v.services?.units.length ?? 0) > 0), 'stopping services around a rollback'],
        [orchestrate.systemd, 'systemd jobs of orchestrate'],
      ]),
    },
    {
      command: 'restic',
      version: versionOf('restic', ['version']),
      neededFor: first([
        [externals.has('restic'), 'restic external copies'],
        [orchestrate.restic, 'restic verification in orchestrate'],
      ]),
    },
    {
      command: 'pgbackrest',
      version: versionOf('pgbackrest', ['version']),
      neededFor: first([[orchestrate.pgbackrest, 'pgBackRest verification in orchestrate']]),
    },
  ];
}

async function checkTool(exec: Exec, tool: Tool): Promise<DoctorCheck> {
  const id = `tool:${tool.command}`;
  try {
    const result = await tool.version(exec);
    // zfs-fuse has no version command: it is installed, but its version is not known.
    const firstLine = `${result.stdout}\n${result.stderr}`.split('\n').find((l) => l.trim());
    const version =
      result.exitCode === 0 ? (firstLine?.trim() ?? 'installed') : 'installed (no version output)';
    return {
      id,
      status: 'ok',
      message: `${tool.command}: ${version}${tool.neededFor ? ` (needed for ${tool.neededFor})` : ' (not needed by this configuration)'}`,
    };
  } catch (error) {
    const failure = toSnapguardError(error);
    if (!tool.neededFor) {
      return {
        id,
        status: 'ok',
        message: `${tool.command}: not installed (not needed by this configuration)`,
      };
    }
    return {
      id,
      status: 'critical',
      message: `${tool.command}: ${failure.code === 'COMMAND_NOT_FOUND' ? 'not installed' : failure.message}; needed for ${tool.neededFor}`,
      fix: failure.hintFor('cli'),
    };
  }
}

/** Root, or the capability that snapshot and mount operations need (CAP_SYS_ADMIN, bit 21). */
async function checkPermissions(deps: Deps): Promise<DoctorCheck> {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return { id: 'permissions', status: 'ok', message: 'running as root' };
  let capSysAdmin = false;
  try {
    const status = await readFile('/proc/self/status', 'utf8');
    const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (capEff) capSysAdmin = (BigInt(`0x${capEff}`) & (1n << 21n)) !== 0n;
  } catch {
    // not Linux /proc: treat as no capabilities
  }
  // The kinds of storage whose snapshots and rollbacks need the privilege, as their backends say.
  const privileged = [
    ...new Set(
      Object.values(deps.config.volumes)
        .map((volume) => deps.backendFor(volume))
        .filter((backend) => backend.needsRoot)
        .map((backend) => backend.kind),
    ),
  ];
  const needsPrivilege = privileged.length > 0;
  if (capSysAdmin) return { id: 'permissions', status: 'ok', message: `uid ${uid} with CAP_SYS_ADMIN` };
  return {
    id: 'permissions',
    status: needsPrivilege ? 'critical' : 'ok',
    message: `running as uid ${uid} without CAP_SYS_ADMIN${needsPrivilege ? `: ${privileged.join('/')} snapshots and rollbacks will fail` : ' (enough for dir volumes)'}`,
    ...(needsPrivilege
      ? {
          fix: 'Run snapguard as root (sudo, or a root systemd service), or grant CAP_SYS_ADMIN to its service.',
        }
      : {}),
  };
}

/** A folder snapguard writes to: writable if it exists, else its nearest existing parent must be. */
async function checkWritable(
  id: string,
  label: string,
  path: string,
  severity: CheckStatus,
  mustExist = false,
): Promise<DoctorCheck> {
  let probe = path;
  for (;;) {
    try {
      const info = await stat(probe);
      if (!info.isDirectory()) {
        return {
          id,
          status: severity,
          message: `${label} ${path}: ${probe} is not a folder`,
          fix: `Point ${label} at a folder.`,
        };
      }
      await access(probe, constants.W_OK);
      return {
        id,
        status: 'ok',
        message:
          probe === path ? `${label} ${path} is writable` : `${label} ${path} will be created in ${probe}`,
      };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !mustExist && dirname(probe) !== probe) {
        probe = dirname(probe);
        continue;
      }
      return {
        id,
        status: severity,
        message: `${label} ${path} is not writable (${code ?? String(error)} at ${probe})`,
        fix: `Create ${path} and make it writable for the user running snapguard, or change ${label} in the configuration.`,
      };
    }
  }
}

async function checkVolume(deps: Deps, volume: VolumeConfig): Promise<DoctorCheck> {
  const id = `volume:${volume.id}`;
  const bad = (message: string, fix: string): DoctorCheck => ({ id, status: 'critical', message, fix });
  // The storage's own check first: for a dataset it is the whole verdict, otherwise a problem it
  // found or the line to print once the folders check out.
  let storage: VolumeCheck | undefined;
  try {
    storage = await deps.backendFor(volume).checkVolume?.(volume);
  } catch (error) {
    const failure = toSnapguardError(error);
    return bad(`${volume.id}: ${volume.path}: ${failure.message}`, failure.hintFor('cli'));
  }
  if (storage && (storage.final || storage.status !== 'ok')) return volumeCheck(id, storage);
  let info;
  try {
    info = await stat(volume.path);
  } catch (error) {
    return bad(
      `${volume.id}: ${volume.path} does not exist (${(error as NodeJS.ErrnoException).code})`,
      `Check volumes.${volume.id}.path; if the volume was lost, recover it from a snapshot (snapguard snapshot list ${volume.id}).`,
    );
  }
  if (!info.isDirectory()) {
    return bad(
      `${volume.id}: ${volume.path} is not a folder`,
      `Point volumes.${volume.id}.path at a folder.`,
    );
  }
  const snapshots = await checkWritable(`${id}:snapshotDir`, 'snapshotDir', volume.snapshotDir, 'critical');
  if (snapshots.status !== 'ok') {
    return { ...snapshots, id, message: `${volume.id}: ${snapshots.message}` };
  }
  return {
    id,
    status: 'ok',
    message: storage?.message ?? `${volume.id}: ${volume.backend} folder ${volume.path}`,
  };
}

function volumeCheck(id: string, found: VolumeCheck): DoctorCheck {
  return {
    id,
    status: found.status,
    message: found.message,
    ...(found.fix !== undefined ? { fix: found.fix } : {}),
  };
}

/** Everything doctor checks about the host and the configuration (the recoveries are checked apart). */
export async function runEnvironmentChecks(deps: Deps): Promise<DoctorCheck[]> {
  const { config } = deps;
  const checks: DoctorCheck[] = [
    {
      id: 'config',
      status: 'ok',
      message: `configuration ${config.sourceFile ?? '(in memory)'} is valid: ${Object.keys(config.volumes).length} volume(s)${Object.keys(config.hosts).length > 0 ? `, ${Object.keys(config.hosts).length} other host(s)` : ''}`,
    },
  ];
  if (Object.keys(config.volumes).length === 0 && Object.keys(config.hosts).length === 0) {
    checks[0] = {
      id: 'config',
      status: 'warning',
      message: `configuration ${config.sourceFile ?? '(in memory)'} is valid but has no volumes`,
      fix: 'Add volumes to the configuration (docs/configuration.md).',
    };
  }
  checks.push(...(await Promise.all(toolsFor(config).map((tool) => checkTool(deps.exec, tool)))));
  checks.push(await checkPermissions(deps));
  const unsafe = await privateDirProblems(config);
  checks.push(
    unsafe.length === 0
      ? { id: 'dir:private', status: 'ok', message: 'stateDir and contextDir are writable only by this user' }
      : {
          id: 'dir:private',
          status: 'critical',
          message: unsafe.map((p) => `${p.key} ${p.dir}: ${p.problem}`).join('; '),
          fix: `chown root: ${unsafe[0]?.dir} && chmod 700 ${unsafe[0]?.dir} (inspect its contents first), or point ${unsafe[0]?.key} at a private folder.`,
        },
  );
  checks.push(await checkWritable('dir:stateDir', 'stateDir', config.stateDir, 'critical'));
  checks.push(await checkWritable('dir:contextDir', 'contextDir', config.contextDir, 'critical'));
  if (config.metrics.textfile) {
    checks.push(
      await checkWritable('dir:metrics', 'metrics folder', dirname(config.metrics.textfile), 'warning', true),
    );
  }
  for (const volume of Object.values(config.volumes)) checks.push(await checkVolume(deps, volume));
  return checks;
}

export function worstStatus(checks: DoctorCheck[]): CheckStatus {
  if (checks.some((c) => c.status === 'critical')) return 'critical';
  if (checks.some((c) => c.status === 'warning')) return 'warning';
  return 'ok';
}
