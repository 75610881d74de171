import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic-file.js';
import { sizeString, TIERS, type Tier } from '../config.js';
import type { Deps } from '../deps.js';
import type { History } from '../history/schema.js';
import { SnapguardError } from '../errors.js';
import { formatBytes, formatDuration, tryParseDuration } from '../units.js';
import { parseInput } from '../validate.js';
import { lowestTrafficWindow, readActivitySamples } from './activity.js';
import { classifyVolume } from './classify.js';
import { generateRunbooks } from './runbooks.js';
import {
  chooseMethods,
  DEFAULT_CHANGE_RATES,
  estimateSnapshotBytes,
  FIT_FACTORS,
  scalePreserve,
  tierPolicy,
  type HostType,
} from './strategy.js';
import { layoutJobs, overlappingJobs, renderUnits } from './units.js';

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const seconds = tryParseDuration(value);
  if (seconds === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration; write it like 15m, 1h, 24h, 7d` });
    return z.NEVER;
  }
  return seconds;
});

const TargetSchema = z.object({ rpo: duration.optional(), rto: duration.optional() });

export const PlanStrategyInput = z.object({
  hostType: z
    .enum(['laptop', 'server', 'vps'])
    .describe('laptop | server | vps: changes schedules, retention and methods'),
  host: z
    .string()
    .max(253)
    .optional()
    .describe('host name used in the runbooks (default: the configured host)'),
  volumes: z
    .array(
      z.object({
        id: z
          .string()
          .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'volume ids are lowercase letters, digits, ".", "_" and "-"')
          .optional()
          .describe('volume id for snapguard.yaml (default: from the path)'),
        path: z.string().min(1).describe('mount path of the subvolume, e.g. /var/lib/postgresql'),
        size: sizeString.describe('data size, e.g. 20G'),
        tier: z.enum(TIERS).optional().describe('overrides the classification by path'),
        backend: z.enum(['btrfs', 'zfs', 'dir']).default('btrfs'),
        changeRate: z.number().min(0).max(1).optional().describe('share of the volume rewritten per day'),
      }),
    )
    .min(1, 'name at least one volume')
    .max(200),
  disk: z.object({ size: sizeString, free: sizeString }).describe('size and free space of the pool'),
  targets: z
    .partialRecord(z.enum(TIERS), TargetSchema)
    .default({})
    .describe('RPO/RTO per tier (durations); defaults: critical 1h/1h, important 24h/8h, standard 7d/24h'),
  remote: z
    .boolean()
    .default(false)
    .describe('whether remote storage (a backup disk, host or repository) exists'),
  remoteTarget: z.string().optional().describe('btrfs folder or restic repository of the remote copies'),
  snapshotBudget: sizeString
    .optional()
    .describe('space the local snapshots may take (default: maxSnapshotShare of the disk)'),
  activitySamples: z
    .string()
    .optional()
    .describe(
      'file with activity samples (CSV timestamp,value or Prometheus range-query JSON) to find the quiet window',
    ),
  poolMount: z
    .string()
    .optional()
    .describe('mount point of the pool (default: the parent of the first volume)'),
  configFile: z.string().default('/etc/snapguard/snapguard.yaml').describe('where snapguard.yaml will live'),
  command: z
    .array(z.string().min(1))
    .min(1)
    .default(['/usr/local/bin/snapguard'])
    .describe('argv that runs snapguard in the units (ExecStart)'),
  verifyUnits: z.boolean().default(true).describe('check the units with systemd-analyze verify'),
});
export type PlanStrategyRequest = z.input<typeof PlanStrategyInput>;

const PolicySchema = z.object({ preserveMin: z.string(), preserve: z.string() });

export const PlanStrategyResultSchema = z.object({
  hostType: z.enum(['laptop', 'server', 'vps']),
  volumes: z.array(
    z.object({
      id: z.string(),
      path: z.string(),
      sizeBytes: z.number(),
      tier: z.enum(TIERS),
      classification: z.string(),
      database: z.string().optional(),
      rpoSeconds: z.number(),
      rtoSeconds: z.number(),
      frequency: z.enum(['hourly', 'daily', 'none']),
      retention: z.object({ local: PolicySchema.optional(), remote: PolicySchema.optional() }),
      methods: z.object({
        local: z.string(),
        remote: z.string(),
        database: z.object({ tool: z.string(), why: z.string() }).optional(),
      }),
      changeRate: z.number(),
      estimatedBytes: z.number(),
    }),
  ),
  space: z.object({
    estimatedBytes: z.number(),
    budgetBytes: z.number(),
    fits: z.boolean(),
    model: z.string(),
    fitFactor: z
      .number()
      .describe('1 when the tier policies fit; the scale applied to fit the budget otherwise'),
    unscaledEstimateBytes: z.number(),
  }),
  schedule: z.array(
    z.object({
      job: z.string(),
      onCalendar: z.string(),
      command: z.array(z.string()),
      acPowerOnly: z.boolean(),
    }),
  ),
  lowTrafficWindow: z
    .object({
      startHour: z.number(),
      hours: z.number(),
      meanInWindow: z.number(),
      meanOverall: z.number(),
      samples: z.number(),
    })
    .optional(),
  config: z.string().describe('snapguard.yaml fragment (volumes with tier, retention and external targets)'),
  units: z.array(z.object({ name: z.string(), content: z.string() })),
  unitsVerified: z
    .object({ ok: z.boolean(), output: z.string() })
    .optional()
    .describe('result of systemd-analyze verify on the units'),
  runbooks: z.array(z.object({ id: z.string(), title: z.string(), markdown: z.string() })),
  warnings: z.array(z.string()),
  written: z.array(z.string()).describe('files written (CLI --write only)'),
});
export type PlanStrategyResult = z.infer<typeof PlanStrategyResultSchema>;

const DEFAULT_TARGETS: Record<Tier, { rpo: number; rto: number }> = {
  critical: { rpo: 3600, rto: 3600 },
  important: { rpo: 86_400, rto: 8 * 3600 },
  standard: { rpo: 7 * 86_400, rto: 86_400 },
  temporary: { rpo: 0, rto: 0 },
};

/** CLI verbs of this build (the runbooks and units name only these); a caller may pass its own list. */
export const KNOWN_VERBS = [
  'snapshot',
  'complete',
  'history',
  'prune',
  'pin',
  'unpin',
  'plan',
  'restore-test',
  'health',
  'units',
  'recover',
  'wrap',
  'doctor',
  'orchestrate',
  'report',
];

function idFromPath(path: string): string {
  const base = basename(path.replace(/\/+$/, '')) || 'root';
  return (
    base
      .toLowerCase()
      .replace(/^[^a-z0-9]+/, '')
      .replace(/[^a-z0-9._-]+/g, '-')
      .slice(0, 64) || 'root'
  );
}

export interface PlanOptions {
  verbs?: readonly string[];
  /** Who reads the warnings: tool names over MCP (the default), verbs on the CLI. */
  surface?: 'mcp' | 'cli';
  signal?: AbortSignal | undefined;
}

export async function planStrategy(
  deps: Deps,
  input: unknown,
  options: PlanOptions = {},
): Promise<PlanStrategyResult> {
  const request = parseInput(PlanStrategyInput, input, 'plan_strategy');
  const host = request.hostType as HostType;
  const warnings: string[] = [];
  const { history } = await deps.history.read();

  let window: PlanStrategyResult['lowTrafficWindow'];
  if (request.activitySamples) {
    window = lowestTrafficWindow(await readActivitySamples(resolve(request.activitySamples)), 2);
  }
  const windowStart = window?.startHour ?? 2;

  const volumes = planVolumes(request, host, warnings, options.surface);
  if (host === 'vps' && !request.remote)
    warnings.push(
      'VPS without remote storage: losing the instance loses every snapshot with it; add a restic repository.',
    );
  const space = fitBudget(deps, request, volumes, warnings);
  const { jobs, verbs } = planJobs(request, host, volumes, windowStart, options, warnings);
  const units = renderUnits(jobs, host, request.configFile);
  let unitsVerified: PlanStrategyResult['unitsVerified'];
  if (request.verifyUnits && units.length > 0) unitsVerified = await verifyUnits(deps, units, options.signal);

  const remoteTarget =
    request.remoteTarget ??
    (host === 'vps'
      ? 'sftp:backup-host:/srv/restic/' + (request.host ?? deps.config.host)
      : '/mnt/backup/.snapshots');
  const config = configFragment(deps, request, host, volumes, remoteTarget, windowStart, space);
  const runbooks = planRunbooks(deps, request, host, verbs, volumes, remoteTarget, lastDrills(history));

  return {
    hostType: host,
    volumes,
    space: {
      estimatedBytes: space.estimated,
      budgetBytes: space.budget,
      fits: space.fits,
      model:
        'per volume: size x daily change rate x days reached by the oldest kept snapshot, at most one full copy per kept snapshot (an upper bound: rewrites of the same blocks count once per day)',
      fitFactor: space.factor,
      unscaledEstimateBytes: space.unscaled,
    },
    schedule: jobs.map((job) => ({
      job: job.job,
      onCalendar: job.onCalendar,
      command: job.command,
      acPowerOnly: host === 'laptop' && job.heavy,
    })),
    ...(window ? { lowTrafficWindow: window } : {}),
    config,
    units,
    ...(unitsVerified ? { unitsVerified } : {}),
    runbooks,
    warnings,
    written: [],
  };
}

type PlanRequest = z.output<typeof PlanStrategyInput>;
type PlannedVolumes = PlanStrategyResult['volumes'];

/** Each volume's tier, targets, frequency, retention, methods and snapshot space; warnings for what a tier alone cannot cover. */
function planVolumes(
  request: PlanRequest,
  host: HostType,
  warnings: string[],
  surface: PlanOptions['surface'],
): PlannedVolumes {
  const taken = new Set<string>();
  return request.volumes.map((volume) => {
    let id = volume.id ?? idFromPath(volume.path);
    for (let n = 2; taken.has(id); n++) id = `${volume.id ?? idFromPath(volume.path)}-${n}`;
    taken.add(id);
    const classification = classifyVolume(volume.path, volume.tier);
    const tier = classification.tier;
    const target = { ...DEFAULT_TARGETS[tier], ...definedOnly(request.targets[tier] ?? {}) };
    const policy = tierPolicy(host, tier, target.rpo, request.remote);
    const methods = chooseMethods(host, tier, volume.backend, request.remote, classification.database);
    const changeRate = volume.changeRate ?? DEFAULT_CHANGE_RATES[tier];
    if (tier !== 'temporary' && target.rpo < 3600)
      warnings.push(
        `${id}: RPO ${formatDuration(target.rpo)} is below the hourly timer; snapshot before each change (${surface === 'cli' ? '`snapguard wrap -- COMMAND` or `snapguard snapshot create`' : 'create_snapshot before it, complete_operation after'})${classification.database ? ' and rely on WAL/binlog archiving of the database' : ''}.`,
      );
    if (tier === 'critical' && !request.remote)
      warnings.push(
        `${id}: critical data without remote storage: a disk failure or total loss loses it (DR-001, DR-004).`,
      );
    if (classification.database)
      warnings.push(
        `${id}: ${classification.reason}: back it up with ${methods.database?.tool}; snapshots alone are only crash-consistent.`,
      );
    return {
      id,
      path: volume.path,
      sizeBytes: volume.size,
      tier,
      classification: classification.reason,
      ...(classification.database ? { database: classification.database } : {}),
      rpoSeconds: target.rpo,
      rtoSeconds: target.rto,
      frequency: policy.frequency,
      retention: {
        ...(policy.local ? { local: policy.local } : {}),
        ...(policy.remote ? { remote: policy.remote } : {}),
      },
      methods,
      changeRate,
      estimatedBytes: estimateSnapshotBytes(volume.size, changeRate, policy.local?.preserve),
    };
  });
}

/** The local snapshots against the space budget: the local retention is scaled down until it fits. */
function fitBudget(
  deps: Deps,
  request: PlanRequest,
  volumes: PlannedVolumes,
  warnings: string[],
): { budget: number; factor: number; estimated: number; fits: boolean; unscaled: number } {
  const budget =
    request.snapshotBudget ??
    Math.min(request.disk.size * deps.config.health.maxSnapshotShare, request.disk.free * 0.8);
  const unscaled = volumes.reduce((sum, v) => sum + v.estimatedBytes, 0);
  let factor = 1;
  for (const candidate of FIT_FACTORS) {
    factor = candidate;
    const total = volumes.reduce(
      (sum, v) =>
        sum +
        estimateSnapshotBytes(
          v.sizeBytes,
          v.changeRate,
          v.retention.local ? scalePreserve(v.retention.local.preserve, candidate) : undefined,
        ),
      0,
    );
    if (total <= budget) break;
  }
  if (factor !== 1) {
    for (const v of volumes) {
      if (!v.retention.local) continue;
      v.retention.local = {
        ...v.retention.local,
        preserve: scalePreserve(v.retention.local.preserve, factor),
      };
      v.estimatedBytes = estimateSnapshotBytes(v.sizeBytes, v.changeRate, v.retention.local.preserve);
    }
  }
  const estimated = volumes.reduce((sum, v) => sum + v.estimatedBytes, 0);
  const fits = estimated <= budget;
  if (unscaled > budget) {
    warnings.push(
      `The tier policies need about ${formatBytes(unscaled)} of snapshots, over the budget of ${formatBytes(budget)}; ` +
        (fits
          ? `the local retention was scaled to ${Math.round(factor * 100)}% to fit: ${volumes
              .filter((v) => v.retention.local)
              .map((v) => `${v.id} "${v.retention.local?.preserve}"`)
              .join(', ')}.`
          : `even at ${Math.round(factor * 100)}% it needs ${formatBytes(estimated)}: add disk space, lower the change rate or move history to the remote target.`),
    );
  }

  return { budget, factor, estimated, fits, unscaled };
}

/** The timer jobs (snapshots, prune, backup, restore test) laid out around the low-traffic window. */
function planJobs(
  request: PlanRequest,
  host: HostType,
  volumes: PlannedVolumes,
  windowStart: number,
  options: PlanOptions,
  warnings: string[],
): { jobs: ReturnType<typeof layoutJobs>; verbs: Set<string> } {
  const active = volumes.filter((v) => v.frequency !== 'none');
  const jobs = layoutJobs(
    {
      hourlyVolumes: active.filter((v) => v.frequency === 'hourly').map((v) => v.id),
      dailyVolumes: active.filter((v) => v.frequency === 'daily').map((v) => v.id),
      prune: active.length > 0,
      backup: request.remote && (options.verbs ?? KNOWN_VERBS).includes('orchestrate'),
      restoreTest:
        host !== 'vps' || request.remote ? (options.verbs ?? KNOWN_VERBS).includes('restore-test') : false,
    },
    windowStart,
    request.command,
  );
  const verbs = new Set(options.verbs ?? KNOWN_VERBS);
  if (request.remote && !verbs.has('orchestrate'))
    warnings.push(
      `Remote copies are planned but the units made here leave out ${options.surface === 'cli' ? '`snapguard orchestrate`' : 'orchestrate'}: schedule the send/receive or restic job yourself.`,
    );
  const overlaps = overlappingJobs(jobs);
  if (overlaps.length > 0)
    throw new SnapguardError(
      'INTERNAL',
      `The planned jobs overlap: ${overlaps.map((pair) => pair.join(' / ')).join(', ')}.`,
      'This is a bug in the planner; report it.',
    );
  return { jobs, verbs };
}

/** The snapguard.yaml fragment for the planned volumes, with the space estimate as a comment. */
function configFragment(
  deps: Deps,
  request: PlanRequest,
  host: HostType,
  volumes: PlannedVolumes,
  remoteTarget: string,
  windowStart: number,
  space: { estimated: number; budget: number },
): string {
  const configVolumes: Record<string, unknown> = {};
  for (const v of volumes) {
    if (v.tier === 'temporary') continue;
    const backend = request.volumes.find((r) => r.path === v.path)?.backend ?? 'btrfs';
    const external =
      v.methods.remote === 'btrfs-send-receive' || v.methods.remote === 'zfs-send-receive'
        ? [{ kind: backend === 'zfs' ? 'zfs' : 'btrfs', path: `${remoteTarget.replace(/\/+$/, '')}/${v.id}` }]
        : v.methods.remote === 'restic'
          ? [{ kind: 'restic', repository: remoteTarget, passwordFile: '/etc/snapguard/restic.password' }]
          : [];
    configVolumes[v.id] = {
      backend,
      path: v.path,
      tier: v.tier,
      ...(v.retention.local
        ? {
            retention: {
              preserveMin: v.retention.local.preserveMin,
              preserve: v.retention.local.preserve,
              ...(v.retention.remote && external.some((e) => e.kind !== 'restic')
                ? { external: v.retention.remote }
                : {}),
            },
          }
        : {}),
      ...(external.length ? { external } : {}),
    };
  }
  return [
    `# snapguard.yaml fragment for ${request.host ?? deps.config.host} (${host}), made by snapguard plan.`,
    `# Snapshot space estimate ${formatBytes(space.estimated)} of a ${formatBytes(space.budget)} budget (daily change rates: ${volumes.map((v) => `${v.id} ${(v.changeRate * 100).toFixed(1)}%`).join(', ')}).`,
    toYaml({
      retention: { preserveHourOfDay: windowStart, preserveDayOfWeek: 'sunday' },
      volumes: configVolumes,
    }),
  ].join('\n');
}

/** DR-001..DR-004 for the planned volumes: paths, remote copies and the last measured drill of each. */
function planRunbooks(
  deps: Deps,
  request: PlanRequest,
  host: HostType,
  verbs: Set<string>,
  volumes: PlannedVolumes,
  remoteTarget: string,
  drills: Map<string, { timestamp: string; durationSeconds: number }>,
): ReturnType<typeof generateRunbooks> {
  return generateRunbooks({
    host: request.host ?? deps.config.host,
    hostType: host,
    verbs,
    poolMount: request.poolMount ?? dirname(request.volumes[0]?.path ?? '/mnt/pool'),
    configFile: request.configFile,
    volumes: volumes.map((v) => ({
      id: v.id,
      path: v.path,
      snapshotDir: join(dirname(v.path), '.snapshots', v.id),
      tier: v.tier,
      database: v.database as never,
      methods: v.methods as never,
      remotePath: v.methods.remote.endsWith('send-receive')
        ? `${remoteTarget.replace(/\/+$/, '')}/${v.id}`
        : undefined,
      rtoTargetSeconds: v.rtoSeconds,
      drill: drills.get(v.id),
    })),
  });
}

/** The newest passing restore test of each volume: the runbooks quote its duration. */
function lastDrills(history: History): Map<string, { timestamp: string; durationSeconds: number }> {
  const drills = new Map<string, { timestamp: string; durationSeconds: number }>();
  for (const test of history.restore_tests) {
    if (test.outcome !== 'pass') continue;
    const previous = drills.get(test.subvolume);
    if (!previous || previous.timestamp < test.timestamp)
      drills.set(test.subvolume, { timestamp: test.timestamp, durationSeconds: test.duration_seconds });
  }
  return drills;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Runs `systemd-analyze verify` on the units in a temporary folder. */
async function verifyUnits(
  deps: Deps,
  units: PlanStrategyResult['units'],
  signal?: AbortSignal,
): Promise<{ ok: boolean; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'snapguard-units-'));
  try {
    for (const unit of units) await writeFileAtomic(join(dir, unit.name), unit.content, { fsync: false });
    const result = await deps.exec(
      'systemd-analyze',
      ['verify', '--man=no', ...units.map((u) => join(dir, u.name))],
      { signal, okExitCodes: [1], timeoutMs: 60_000 },
    );
    const output = `${result.stdout}${result.stderr}`.trim();
    return { ok: result.exitCode === 0 && !/error|not executable/i.test(output), output };
  } catch (error) {
    if (error instanceof SnapguardError && error.code === 'COMMAND_NOT_FOUND')
      return { ok: false, output: 'systemd-analyze is not installed: the units were not verified' };
    throw error;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes the plan's files: snapguard.fragment.yaml, systemd/*.service|timer, runbooks/DR-00x.md. */
export async function writePlan(plan: PlanStrategyResult, dir: string): Promise<string[]> {
  const written: string[] = [];
  const put = async (path: string, content: string) => {
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, content.endsWith('\n') ? content : `${content}\n`, { fsync: false });
    written.push(path);
  };
  await put(join(dir, 'snapguard.fragment.yaml'), plan.config);
  for (const unit of plan.units) await put(join(dir, 'systemd', unit.name), unit.content);
  for (const runbook of plan.runbooks) await put(join(dir, 'runbooks', `${runbook.id}.md`), runbook.markdown);
  return written;
}
