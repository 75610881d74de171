import { dirname, isAbsolute, resolve } from 'node:path';
import type { Config, VolumeConfig } from '../config.js';
import { requireVolume } from '../config.js';
import { SnapguardError } from '../errors.js';
import type { Deps } from '../deps.js';
import { snapshotCopyLocations } from '../locations.js';
import type { CommandJobConfig, JobConfig, StageConfig, SystemdJobConfig, VerifySpec } from './schema.js';
import type { SystemdFactory, SystemdPort } from './systemd-port.js';
import { redactUrls } from '../../shared/redact.js';

/** One job after discovery: a unit, a command, or a volume to snapshot or replicate. */
export type PlannedJob = {
  id: string;
  stage: string;
  timeoutSeconds: number;
  /** What is checked after the run, in words (shown by dryRun). */
  verification: string;
} & (
  | {
      kind: 'systemd';
      unit: string;
      systemd: SystemdPort;
      verify: VerifySpec | undefined;
      /** A plainly named unit that systemd does not know: a pre-flight failure. */
      missing: boolean;
    }
  | { kind: 'command'; command: CommandJobConfig; verify: VerifySpec | undefined }
  | { kind: 'snapshot'; volume: VolumeConfig; operation: string }
  | { kind: 'replicate'; volume: VolumeConfig; target: string }
);

export interface PlannedStage {
  name: string;
  critical: boolean;
  timeoutSeconds: number;
  jobs: PlannedJob[];
  notes: string[];
}

const isGlob = (pattern: string) => /[*?[]/.test(pattern);

export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const char of glob) {
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else source += char.replace(/[.+^${}()|\\[\]]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** The stages of the design, used when snapguard.yaml has no `orchestrate.stages`. */
export function defaultStages(options: { sanoidExists: boolean; volumeIds: string[] }): StageConfig[] {
  const first: JobConfig[] = options.sanoidExists
    ? [{ kind: 'systemd', units: ['sanoid.service'], exclude: [] }]
    : options.volumeIds.length > 0
      ? [{ kind: 'snapshot', volumes: options.volumeIds, operation: 'orchestrate' }]
      : [];
  return [
    { name: 'snapshots', timeout: 300, critical: true, jobs: first },
    {
      name: 'replication',
      timeout: 1800,
      critical: false,
      jobs: [
        {
          kind: 'systemd',
          units: ['syncoid-*.service'],
          exclude: ['*replication-info*', '*target-reachability*'],
        },
      ],
    },
    {
      name: 'backups',
      timeout: 3600,
      critical: false,
      jobs: [
        { kind: 'systemd', units: ['restic-backup-*.service'], exclude: [] },
        { kind: 'systemd', units: ['pgbackrest-*.service'], exclude: [], match: '(full|incr|diff)-backup' },
      ],
    },
  ];
}

function describeVerify(verify: VerifySpec | undefined): string {
  if (!verify) return 'exit status only (no verify configured): succeeded-unverified at best';
  if (verify.kind === 'restic')
    return `restic snapshots --json of ${redactUrls(verify.repository)}: a snapshot newer than the job's start`;
  return `pgbackrest info --output=json of stanza ${verify.stanza}: a backup newer than the job's start, without error`;
}

export interface PlanContext {
  config: Config;
  /** The storage backend of a volume: replication asks it whether it can send copies. */
  backendFor: Deps['backendFor'];
  systemdFor: SystemdFactory;
  signal?: AbortSignal | undefined;
  /**
   * Dry run: a systemd lookup that fails (no systemd as PID 1, a broken bus, an unreachable host)
   * does not end the plan; it is reported here, and the stage shows what could not be listed.
   */
  onUnavailable?: (what: string, error: unknown) => string;
}

const rethrowable = (error: unknown) => {
  const code = (error as { code?: unknown }).code;
  return code === 'CANCELLED' || (error as { exitCode?: unknown }).exitCode === 3;
};

function resolvePaths(config: Config, verify: VerifySpec | undefined): VerifySpec | undefined {
  if (!verify) return verify;
  const base = config.sourceFile ? dirname(config.sourceFile) : process.cwd();
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  if (verify.kind === 'restic')
    return {
      ...verify,
      repository: verify.repository.includes(':') ? verify.repository : abs(verify.repository),
      ...(verify.passwordFile ? { passwordFile: abs(verify.passwordFile) } : {}),
    };
  return { ...verify, ...(verify.config ? { config: abs(verify.config) } : {}) };
}

async function discoverUnits(
  job: SystemdJobConfig,
  systemd: SystemdPort,
  signal: AbortSignal | undefined,
): Promise<{ unit: string; missing: boolean }[]> {
  const found = new Map<string, boolean>();
  const globs = job.units.filter(isGlob);
  if (globs.length > 0) {
    // Loaded units plus installed unit files that are not loaded (never started since boot).
    for (const listed of await systemd.listUnits(globs, { signal })) {
      // Masked units cannot start; not-found ones are only referenced, with no unit file.
      if (listed.loadState === 'masked' || listed.loadState === 'not-found') continue;
      if (/@\./.test(listed.unit)) continue;
      if (globs.some((glob) => globToRegExp(glob).test(listed.unit))) found.set(listed.unit, false);
    }
  }
  for (const name of job.units.filter((unit) => !isGlob(unit))) {
    const status = await systemd.show(name, { signal });
    found.set(name, status.loadState === 'not-found');
  }
  const excluded = job.exclude.map(globToRegExp);
  const match = job.match ? new RegExp(job.match) : undefined;
  return [...found.entries()]
    .filter(([unit]) => !excluded.some((re) => re.test(unit)))
    .filter(([unit]) => !match || match.test(unit))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([unit, missing]) => ({ unit, missing }));
}

/** Selects stages by name or 1-based number (the design's `--stage 3`). */
export function selectStages(stages: StageConfig[], wanted: string[] | undefined): StageConfig[] {
  if (!wanted || wanted.length === 0) return stages;
  const chosen = new Set<number>();
  for (const want of wanted) {
    const byNumber = /^\d+$/.test(want) ? Number(want) - 1 : -1;
    const index =
      byNumber >= 0 && byNumber < stages.length ? byNumber : stages.findIndex((s) => s.name === want);
    if (index < 0)
      throw new SnapguardError(
        'BAD_INPUT',
        `There is no stage "${want}".`,
        `Name a stage or its number: ${stages.map((s, i) => `${i + 1} ${s.name}`).join(', ')}.`,
      );
    chosen.add(index);
  }
  return stages.filter((_, i) => chosen.has(i));
}

/** The configured stages, or the default ones (sanoid's unit when it exists, else snapguard's snapshot job). */
async function configuredStages(
  context: PlanContext,
  defaults: { systemctl: string[]; scope: Parameters<SystemdFactory>[1] },
): Promise<{ stages: StageConfig[]; defaultNote: string | undefined }> {
  const { config } = context;
  let defaultNote: string | undefined;
  const configured = config.orchestrate?.stages;
  if (configured) return { stages: configured, defaultNote };
  const systemd = context.systemdFor(defaults.systemctl, defaults.scope);
  let sanoidExists = false;
  try {
    sanoidExists =
      (await systemd.show('sanoid.service', { signal: context.signal })).loadState !== 'not-found';
  } catch (error) {
    if (!context.onUnavailable || rethrowable(error)) throw error;
    defaultNote = `sanoid.service could not be looked up (${context.onUnavailable('sanoid.service', error)}); snapguard's own snapshot job stands in.`;
  }
  return { stages: defaultStages({ sanoidExists, volumeIds: Object.keys(config.volumes) }), defaultNote };
}

/**
 * The folder a volume's snapshots are replicated into: its first external folder of copies of the
 * volume's own kind, when its backend can send snapshots there. Undefined when it cannot replicate.
 */
function replicationTarget(context: PlanContext, volume: VolumeConfig): string | undefined {
  const backend = context.backendFor(volume);
  if (!backend.replicateTo) return undefined;
  return snapshotCopyLocations(volume).find((place) => place.kind === backend.kind && place.dir)?.dir;
}

/** Whether an external entry is a folder that the backend of its kind can replicate snapshots into. */
function sendsTo(
  context: PlanContext,
  volume: VolumeConfig,
  external: VolumeConfig['external'][number],
): boolean {
  if (!external.path || external.kind === 'restic') return false;
  return context.backendFor({ ...volume, backend: external.kind }).replicateTo !== undefined;
}

/** A replicate job: one per volume with an external folder to replicate into (all such volumes unless named). */
function replicateJobs(
  context: PlanContext,
  stage: StageConfig,
  job: Extract<JobConfig, { kind: 'replicate' }>,
  base: { stage: string; timeoutSeconds: number },
): PlannedJob[] {
  const { config } = context;
  const out: PlannedJob[] = [];
  const volumes = job.volumes
    ? job.volumes.map((id) => requireVolume(config, id))
    : Object.values(config.volumes).filter((v) => v.external.some((e) => sendsTo(context, v, e)));
  for (const volume of volumes) {
    const target = replicationTarget(context, volume);
    if (!target)
      throw new SnapguardError(
        'CONFIG_INVALID',
        `Stage ${stage.name}: volume "${volume.id}" cannot be replicated: it needs backend btrfs and an external entry of kind btrfs with a path.`,
        `Add external: [{ kind: btrfs, path: /mnt/backup/.snapshots/${volume.id} }] to volumes.${volume.id}, or drop it from the replicate job.`,
      );
    out.push({
      ...base,
      id: `replicate:${volume.id}`,
      kind: 'replicate',
      volume,
      target,
      verification: `the received snapshot exists in ${target} with a received UUID`,
    });
  }
  return out;
}

/** The concrete jobs of one configured job: its units discovered, its volumes resolved. */
async function jobsOf(
  context: PlanContext,
  stage: StageConfig,
  job: JobConfig,
  notes: string[],
  defaults: { systemctl: string[]; scope: Parameters<SystemdFactory>[1] },
): Promise<PlannedJob[]> {
  const { config } = context;
  const defaultSystemctl = defaults.systemctl;
  const defaultScope = defaults.scope;
  const out: PlannedJob[] = [];
  const timeoutSeconds = job.timeout ?? stage.timeout;
  const base = { stage: stage.name, timeoutSeconds };
  if (job.kind === 'systemd') {
    const systemd = context.systemdFor(job.systemctl ?? defaultSystemctl, job.scope ?? defaultScope);
    let units: { unit: string; missing: boolean }[];
    try {
      units = await discoverUnits(job, systemd, context.signal);
    } catch (error) {
      if (!context.onUnavailable || rethrowable(error)) throw error;
      const why = context.onUnavailable(job.units.join(' '), error);
      notes.push(`Discovery unavailable: the units ${job.units.join(' ')} could not be listed (${why}).`);
      return out;
    }
    if (units.length === 0) notes.push(`No unit matches ${job.units.join(' ')}; nothing to run for it.`);
    const verify = resolvePaths(config, job.verify);
    for (const { unit, missing } of units)
      out.push({
        ...base,
        id: unit,
        kind: 'systemd',
        unit,
        systemd,
        verify,
        missing,
        verification: `systemd Result and ExecMainStatus; ${describeVerify(verify)}`,
      });
  } else if (job.kind === 'command') {
    const verify = resolvePaths(config, job.verify);
    out.push({
      ...base,
      id: job.name,
      kind: 'command',
      command: job,
      verify,
      verification: `exit code 0; ${describeVerify(verify)}`,
    });
  } else if (job.kind === 'snapshot') {
    const ids = job.volumes ?? Object.keys(config.volumes);
    for (const id of ids) {
      const volume = requireVolume(config, id);
      out.push({
        ...base,
        id: `snapshot:${volume.id}`,
        kind: 'snapshot',
        volume,
        operation: job.operation,
        verification: `a pre-deploy snapshot of ${volume.id} exists in ${volume.snapshotDir}`,
      });
    }
  } else {
    out.push(...replicateJobs(context, stage, job, base));
  }
  return out;
}

/** Turns the configured (or default) stages into concrete jobs: units discovered, volumes resolved. */
export async function planStages(
  context: PlanContext,
  wanted: string[] | undefined,
): Promise<PlannedStage[]> {
  const { config } = context;
  const settings = config.orchestrate;
  const defaults = { systemctl: settings?.systemctl ?? ['systemctl'], scope: settings?.scope ?? 'system' };
  const { stages, defaultNote } = await configuredStages(context, defaults);
  const planned: PlannedStage[] = [];
  for (const stage of selectStages(stages, wanted)) {
    const jobs: PlannedJob[] = [];
    const notes: string[] = [];
    const seen = new Set<string>();
    const add = (job: PlannedJob) => {
      if (seen.has(job.id)) {
        notes.push(`${job.id} is named twice in this stage; it runs once.`);
        return;
      }
      seen.add(job.id);
      jobs.push(job);
    };
    for (const job of stage.jobs)
      for (const found of await jobsOf(context, stage, job, notes, defaults)) add(found);
    if (stage.jobs.length === 0) notes.push('No job configured for this stage.');
    if (defaultNote && stage.name === 'snapshots') notes.push(defaultNote);
    planned.push({
      name: stage.name,
      critical: stage.critical,
      timeoutSeconds: stage.timeout,
      jobs,
      notes,
    });
  }
  return planned;
}
