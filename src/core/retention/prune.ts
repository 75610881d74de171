import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { RawSnapshot, SnapshotBackend } from '../../backends/types.js';
import { writeFileAtomic } from '../atomic-file.js';
import { requireVolume, type VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError, toSnapguardError } from '../errors.js';
import type { PruneEntry } from '../history/schema.js';
import { listAt, localLocation, snapshotCopyLocations, volumeAt } from '../locations.js';
import { parseSnapshotName } from '../naming.js';
import { VolumeIdSchema } from '../schemas.js';
import { isOwned, lockVolumes, type CallContext } from '../snapshots.js';
import { formatDuration } from '../units.js';
import { parseInput } from '../validate.js';
import { readPins, type Pin } from './pins.js';
import { buildPolicy, formatPolicy, type PolicyInput, type RetentionPolicy } from './policy.js';
import { snapshotsInUnfinishedRecoveries } from './recovery-refs.js';
import { schedule } from './schedule.js';

const PROTECTIONS = [
  'foreign',
  'newest',
  'pinned',
  'recovery-safety',
  'unfinished-recovery',
  'common-parent',
] as const;
export type Protection = (typeof PROTECTIONS)[number];

export const PruneSnapshotsInput = z.object({
  volume: VolumeIdSchema.optional().describe('only this volume; default every configured volume'),
  location: z
    .enum(['local', 'external', 'all'])
    .default('all')
    .describe('local snapshots, external copies (btrfs/dir targets), or both'),
  dryRun: z.boolean().default(false).describe('only return the plan; never deletes'),
  confirmationToken: z
    .string()
    .max(512)
    .optional()
    .describe('the token returned by the previous call, to confirm the deletions it listed'),
});
export type PruneSnapshotsRequest = z.input<typeof PruneSnapshotsInput>;

export const PruneVerdictSchema = z.object({
  volume: z.string(),
  location: z.enum(['local', 'external']),
  locationPath: z.string(),
  name: z.string(),
  createdAt: z.string(),
  owned: z.boolean(),
  action: z.enum(['keep', 'delete']),
  reason: z.string().describe('why: "preserve daily: first of 2026-11-20, 1 day ago", "pinned", "newest"'),
  protectedBy: z.array(z.enum(PROTECTIONS)).describe('never-delete rules that hold this snapshot'),
  policyReason: z.string().optional().describe('what the retention policy alone said'),
  result: z
    .enum(['kept', 'planned', 'deleted', 'failed'])
    .describe('planned: would be deleted; deleted/failed: after a real prune'),
  error: z.string().optional(),
});
export type PruneVerdict = z.infer<typeof PruneVerdictSchema>;

export const PruneTargetSchema = z.object({
  volume: z.string(),
  location: z.enum(['local', 'external']),
  locationPath: z.string(),
  policy: z.string(),
  kept: z.number().int(),
  toDelete: z.number().int(),
  deleted: z.number().int(),
  failed: z.number().int(),
});

export const PruneSnapshotsResultSchema = z.object({
  status: z
    .enum(['planned', 'confirmation_required', 'declined', 'cancelled', 'pruned', 'partial', 'nothing_to_do'])
    .describe('partial: some deletions failed and are listed in failures; the others went through'),
  dryRun: z.boolean(),
  keep: z.array(PruneVerdictSchema),
  delete: z.array(PruneVerdictSchema),
  targets: z.array(PruneTargetSchema),
  failures: z.array(z.object({ volume: z.string(), snapshot: z.string(), error: z.string() })),
  warnings: z.array(z.string()).describe('e.g. an external copy that is not mounted and was skipped'),
  fingerprint: z.string().describe('hash of the planned deletions and the newest snapshots'),
  confirmationToken: z.string().optional(),
  expiresAt: z.string().optional(),
  durationSeconds: z.number(),
});
export type PruneSnapshotsResult = z.infer<typeof PruneSnapshotsResultSchema>;

interface Target {
  volume: VolumeConfig;
  /** The volume as seen by the backend: snapshotDir is the folder pruned here. */
  view: VolumeConfig;
  backend: SnapshotBackend;
  location: 'local' | 'external';
  policy: RetentionPolicy;
  raws: RawSnapshot[];
  /** Set for an external copy that cannot be listed now (backup disk not mounted). */
  unavailable?: string;
}

export interface PrunePlan {
  targets: { target: Target; verdicts: PruneVerdict[] }[];
  fingerprint: string;
  warnings: string[];
  /** Newest common snapshot per volume and external path, as seen now (remembered after a prune). */
  commonParents: Record<string, string>;
}

/** Where the last known incremental parents are remembered, for when a backup disk is away. */
function parentsFile(deps: Deps): string {
  return join(deps.config.stateDir, 'retention-parents.json');
}

async function readRememberedParents(deps: Deps): Promise<Record<string, string>> {
  try {
    const parsed = JSON.parse(await readFile(parentsFile(deps), 'utf8')) as unknown;
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, string>) : {};
  } catch {
    return {};
  }
}

async function rememberParents(deps: Deps, parents: Record<string, string>): Promise<void> {
  const current = await readRememberedParents(deps);
  const merged = { ...current, ...parents };
  if (JSON.stringify(merged) === JSON.stringify(current)) return;
  const file = parentsFile(deps);
  await mkdir(deps.config.stateDir, { recursive: true });
  await writeFileAtomic(file, `${JSON.stringify(merged, null, 2)}\n`);
}

const parentKey = (volume: string, externalPath: string) => `${volume}\u0000${externalPath}`;

/**
 * The policy of one volume and location, key by key (docs/retention.md): the volume's rules for
 * the location, then (hour of day and day of week only) the volume's local rules, then the
 * top-level rules for the location, then (anchors only) the top-level local rules, then defaults.
 */
export function policyFor(deps: Deps, volume: VolumeConfig, location: 'local' | 'external'): RetentionPolicy {
  const top = deps.config.retention;
  const own = volume.retention;
  const volumeLocal: PolicyInput | undefined = typeof own === 'string' ? { preserve: own } : own;
  const volumeRules = location === 'local' ? volumeLocal : typeof own === 'object' ? own.external : undefined;
  const topRules: PolicyInput | undefined = location === 'local' ? top : top.external;
  const pick = <K extends keyof PolicyInput>(key: K, anchor: boolean): PolicyInput[K] =>
    volumeRules?.[key] ??
    (anchor ? volumeLocal?.[key] : undefined) ??
    topRules?.[key] ??
    (anchor ? top[key] : undefined);
  return buildPolicy({
    preserveMin: pick('preserveMin', false),
    preserve: pick('preserve', false),
    preserveHourOfDay: pick('preserveHourOfDay', true),
    preserveDayOfWeek: pick('preserveDayOfWeek', true),
  });
}

async function collectTargets(
  deps: Deps,
  volumes: VolumeConfig[],
  location: 'local' | 'external' | 'all',
  signal?: AbortSignal,
): Promise<Target[]> {
  const targets: Target[] = [];
  for (const volume of volumes) {
    const backend = deps.backendFor(volume);
    if (location !== 'external') {
      targets.push({
        volume,
        view: volume,
        backend,
        location: 'local',
        policy: policyFor(deps, volume, 'local'),
        raws: await listAt(deps, volume, localLocation(volume), signal),
      });
    }
    if (location !== 'local') {
      // Prune deletes through the backend of the location's kind, in folders of copies only: a
      // backend whose volumes live in a pool (zfs) deletes in the volume's own dataset, never in a folder.
      for (const place of snapshotCopyLocations(volume)) {
        if (!place.dir) continue;
        const view = volumeAt(volume, place);
        const externalBackend = deps.backendFor(view);
        if (externalBackend.volumeInPool) continue;
        let raws: RawSnapshot[] = [];
        let unavailable: string | undefined;
        try {
          if (!existsSync(place.dir)) unavailable = `${place.dir} does not exist (not mounted?)`;
          else raws = await listAt(deps, volume, place, signal);
        } catch (error) {
          const failure = toSnapguardError(error);
          if (failure.code === 'CANCELLED') throw failure;
          unavailable = failure.message;
        }
        targets.push({
          volume,
          view,
          backend: externalBackend,
          location: 'external',
          policy: policyFor(deps, volume, 'external'),
          raws,
          ...(unavailable ? { unavailable } : {}),
        });
      }
    }
  }
  return targets;
}

function protectionReason(protection: Protection, detail: string | undefined): string {
  switch (protection) {
    case 'foreign':
      return 'foreign: not made by snapguard, never touched';
    case 'newest':
      return 'newest snapshot of the volume here';
    case 'pinned':
      return `pinned${detail ? `: ${detail}` : ''}`;
    case 'recovery-safety':
      return `recovery safety snapshot, ${detail ?? ''}`.trim();
    case 'unfinished-recovery':
      return 'referenced by an unfinished recovery';
    case 'common-parent':
      return 'newest snapshot common to local and external (the incremental parent)';
  }
}

export interface TargetDecisionInput {
  volumeId: string;
  location: 'local' | 'external';
  locationPath: string;
  /** Every snapshot in the folder, owned or not. */
  snapshots: {
    name: string;
    createdAt: Date;
    /** Not a snapshot snapguard owns, whatever its name (e.g. writable). */ notOwned?: boolean;
  }[];
  policy: RetentionPolicy;
  now: Date;
  pins: Pin[];
  unfinishedRecovery: readonly string[];
  commonParents: readonly string[];
  keepRecoverySafetySeconds: number;
}

/** The never-delete rules that hold for one owned snapshot, with the reason of each. */
function protectionsOf(
  name: string,
  parsed: NonNullable<ReturnType<typeof parseSnapshotName>>,
  rules: {
    newest: string | undefined;
    pin: Pin | undefined;
    unfinished: ReadonlySet<string>;
    commonParents: ReadonlySet<string>;
    keepSafety: number;
    now: Date;
  },
): { protectedBy: Protection[]; details: string[] } {
  const protectedBy: Protection[] = [];
  const details: string[] = [];
  const add = (protection: Protection, detail?: string) => {
    protectedBy.push(protection);
    details.push(protectionReason(protection, detail));
  };
  if (rules.newest === name) add('newest');
  if (rules.pin) add('pinned', rules.pin.reason ?? undefined);
  const ageSeconds = (rules.now.getTime() - parsed.createdAt.getTime()) / 1000;
  if (parsed.type === 'pre-recover' && ageSeconds < rules.keepSafety)
    add('recovery-safety', `${formatDuration(ageSeconds)} old, kept for ${formatDuration(rules.keepSafety)}`);
  if (rules.unfinished.has(name)) add('unfinished-recovery');
  if (rules.commonParents.has(name)) add('common-parent');
  return { protectedBy, details };
}

/**
 * The verdicts for one folder of snapshots, pure: the policy decides first, then the never-delete
 * rules overrule any delete. Only owned snapshots can ever get `delete`.
 */
export function decideTarget(input: TargetDecisionInput): PruneVerdict[] {
  const { volumeId, now } = input;
  const owned = input.snapshots.flatMap((snapshot) => {
    const parsed = snapshot.notOwned ? undefined : parseSnapshotName(volumeId, snapshot.name);
    return parsed ? [{ snapshot, parsed }] : [];
  });
  const newest = [...owned].sort(
    (a, b) =>
      b.parsed.createdAt.getTime() - a.parsed.createdAt.getTime() ||
      b.parsed.sequence - a.parsed.sequence ||
      // Two types in the same second: any fixed choice will do, as long as it does not depend on listing order.
      (a.snapshot.name < b.snapshot.name ? 1 : a.snapshot.name > b.snapshot.name ? -1 : 0),
  )[0];
  const unfinished = new Set(input.unfinishedRecovery);
  const commonParents = new Set(input.commonParents);
  const pinByName = new Map(input.pins.filter((p) => p.volume === volumeId).map((p) => [p.snapshot, p]));
  const policyVerdicts = new Map(
    schedule(
      owned.map(({ snapshot, parsed }) => ({
        key: snapshot.name,
        createdAt: parsed.createdAt,
        sequence: parsed.sequence,
      })),
      input.policy,
      now,
    ).map((verdict) => [verdict.key, verdict]),
  );
  const verdicts: PruneVerdict[] = [];
  for (const snapshot of input.snapshots) {
    const parsed = snapshot.notOwned ? undefined : parseSnapshotName(volumeId, snapshot.name);
    const base = {
      volume: volumeId,
      location: input.location,
      locationPath: input.locationPath,
      name: snapshot.name,
      createdAt: (parsed?.createdAt ?? snapshot.createdAt).toISOString(),
      owned: parsed !== undefined,
    };
    if (!parsed) {
      verdicts.push({
        ...base,
        action: 'keep',
        reason: protectionReason('foreign', undefined),
        protectedBy: ['foreign'],
        result: 'kept',
      });
      continue;
    }
    const { protectedBy, details } = protectionsOf(snapshot.name, parsed, {
      newest: newest?.snapshot.name,
      pin: pinByName.get(snapshot.name),
      unfinished,
      commonParents,
      keepSafety: input.keepRecoverySafetySeconds,
      now,
    });
    const policy = policyVerdicts.get(snapshot.name);
    const policyKeeps = policy?.keep ?? true;
    const keep = policyKeeps || protectedBy.length > 0;
    verdicts.push({
      ...base,
      action: keep ? 'keep' : 'delete',
      reason: protectedBy.length > 0 ? details.join('; ') : (policy?.reason ?? 'kept'),
      protectedBy,
      ...(policy ? { policyReason: policy.reason } : {}),
      result: keep ? 'kept' : 'planned',
    });
  }
  verdicts.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name));
  return verdicts;
}

/** Gives every snapshot of every target a verdict: the policy's, overruled by the never-delete rules. */
export async function planPrune(
  deps: Deps,
  volumes: VolumeConfig[],
  location: 'local' | 'external' | 'all',
  signal?: AbortSignal,
): Promise<PrunePlan> {
  const now = deps.clock();
  const pins = await readPins(deps);
  const remembered = await readRememberedParents(deps);
  const keepSafety = deps.config.retention.keepRecoverySafety;
  const warnings: string[] = [];
  // Targets for both locations are listed even when one is pruned: the common parent needs both.
  const all = await collectTargets(deps, volumes, 'all', signal);
  const { parents, seen } = incrementalParents(all, remembered, warnings);
  const planned: PrunePlan['targets'] = [];
  for (const target of all) {
    if (location !== 'all' && target.location !== location) continue;
    if (target.unavailable) continue;
    const { volume } = target;
    const commonParents = Object.entries(parents)
      .filter(([key]) =>
        target.location === 'local'
          ? key.startsWith(`${volume.id}\u0000`)
          : key === parentKey(volume.id, target.view.snapshotDir),
      )
      .map(([, name]) => name);
    const unfinished = await snapshotsInUnfinishedRecoveries(deps, volume);
    const verdicts = decideTarget({
      volumeId: volume.id,
      location: target.location,
      locationPath: target.view.snapshotDir,
      snapshots: target.raws.map((raw) => ({
        name: raw.name,
        createdAt: raw.createdAt,
        // A local writable subvolume with an owned name is not a snapshot: never deleted. (The
        // safety snapshot of an interrupted rollback is writable until the recovery finishes; it
        // is kept as referenced by that recovery.)
        ...(target.location === 'local' &&
        !isOwned(volume, raw, deps.backendFor(volume)) &&
        !unfinished.includes(raw.name)
          ? { notOwned: true }
          : {}),
      })),
      policy: target.policy,
      now,
      pins: pins.filter((p) => p.volume === volume.id),
      unfinishedRecovery: unfinished,
      commonParents,
      keepRecoverySafetySeconds: keepSafety,
    });
    planned.push({ target, verdicts });
  }
  return { targets: planned, fingerprint: planFingerprint(planned), warnings, commonParents: seen };
}

/**
 * The incremental parent of each external copy: the newest owned name present on both sides.
 * When the copy cannot be listed now, the one remembered from the last prune stands in.
 */
function incrementalParents(
  all: Target[],
  remembered: Record<string, string>,
  warnings: string[],
): { parents: Record<string, string>; seen: Record<string, string> } {
  const ownedNames = (t: Target) =>
    new Set(t.raws.filter((raw) => parseSnapshotName(t.volume.id, raw.name)).map((raw) => raw.name));
  const newestOf = (names: Set<string>, volumeId: string): string | undefined =>
    [...names]
      .map((name) => ({ name, parsed: parseSnapshotName(volumeId, name) }))
      .sort(
        (a, b) =>
          (b.parsed?.createdAt.getTime() ?? 0) - (a.parsed?.createdAt.getTime() ?? 0) ||
          (b.parsed?.sequence ?? 0) - (a.parsed?.sequence ?? 0),
      )[0]?.name;
  const parents: Record<string, string> = {};
  const seen: Record<string, string> = {};
  for (const external of all.filter((t) => t.location === 'external')) {
    const key = parentKey(external.volume.id, external.view.snapshotDir);
    const local = all.find((t) => t.volume.id === external.volume.id && t.location === 'local');
    if (external.unavailable) {
      warnings.push(
        `External copy ${external.view.snapshotDir} of ${external.volume.id} is not available (${external.unavailable}); it is not pruned${remembered[key] ? `, and its last known incremental parent ${remembered[key]} is kept` : ''}.`,
      );
      if (remembered[key]) parents[key] = remembered[key];
      continue;
    }
    if (!local) continue;
    const theirs = ownedNames(external);
    const common = newestOf(
      new Set([...ownedNames(local)].filter((name) => theirs.has(name))),
      external.volume.id,
    );
    if (common) {
      parents[key] = common;
      seen[key] = common;
    }
  }
  return { parents, seen };
}

/** Changes when any verdict of any target changes: the confirmed plan must be the one carried out. */
function planFingerprint(planned: PrunePlan['targets']): string {
  const hash = createHash('sha256');
  for (const { target, verdicts } of planned) {
    hash.update(`${target.volume.id}\0${target.location}\0${target.view.snapshotDir}\0`);
    for (const verdict of verdicts) hash.update(`${verdict.name}\0${verdict.action}\0`);
  }
  return hash.digest('hex');
}

function summarizeTargets(plan: PrunePlan): PruneSnapshotsResult['targets'] {
  return plan.targets.map(({ target, verdicts }) => ({
    volume: target.volume.id,
    location: target.location,
    locationPath: target.view.snapshotDir,
    policy: formatPolicy(target.policy),
    kept: verdicts.filter((v) => v.action === 'keep').length,
    toDelete: verdicts.filter((v) => v.action === 'delete').length,
    deleted: verdicts.filter((v) => v.result === 'deleted').length,
    failed: verdicts.filter((v) => v.result === 'failed').length,
  }));
}

export function planResult(
  plan: PrunePlan,
  status: PruneSnapshotsResult['status'],
  dryRun: boolean,
  started: number,
  extra: Partial<PruneSnapshotsResult> = {},
): PruneSnapshotsResult {
  const verdicts = plan.targets.flatMap(({ verdicts }) => verdicts);
  return {
    status,
    dryRun,
    keep: verdicts.filter((v) => v.action === 'keep'),
    delete: verdicts.filter((v) => v.action === 'delete'),
    targets: summarizeTargets(plan),
    failures: verdicts
      .filter((v) => v.result === 'failed')
      .map((v) => ({ volume: v.volume, snapshot: v.name, error: v.error ?? 'unknown error' })),
    warnings: plan.warnings,
    fingerprint: plan.fingerprint,
    durationSeconds: (performance.now() - started) / 1000,
    ...extra,
  };
}

/**
 * Test aid, like the recovery's fault points (docs/recovery.md): SNAPGUARD_TEST_FAULT=after:prune-delete
 * kills this process with SIGKILL right after a deletion, before the history records it.
 */
function pruneFault(): void {
  if (process.env.SNAPGUARD_TEST_FAULT === 'after:prune-delete') process.kill(process.pid, 'SIGKILL');
}

export interface PruneGate {
  /**
   * Called with the plan before anything is deleted (and before the volume locks are taken; the
   * plan is made again under the locks and must be the same). Returns true to go ahead, or a result
   * to return instead (e.g. confirmation_required with a token).
   */
  (plan: PrunePlan, request: z.output<typeof PruneSnapshotsInput>): Promise<true | PruneSnapshotsResult>;
}

/**
 * Plans and, when allowed by `gate`, deletes the snapshots the plan marks. A deletion that fails
 * is recorded on its verdict and the rest continue; every deletion goes to the history.
 */
export async function pruneSnapshots(
  deps: Deps,
  input: unknown,
  call: CallContext & {
    gate: PruneGate;
    /** After each deletion (or batch of deletions): how many of the confirmed plan's are done. */
    onProgress?: (progress: { progress: number; total: number; message: string }) => void;
  },
): Promise<PruneSnapshotsResult> {
  const started = performance.now();
  const request = parseInput(PruneSnapshotsInput, input, 'prune_snapshots');
  const volumes = request.volume
    ? [requireVolume(deps.config, request.volume)]
    : Object.values(deps.config.volumes);
  const shown = await planPrune(deps, volumes, request.location, call.signal);
  if (request.dryRun) return planResult(shown, 'planned', true, started);
  await rememberParents(deps, shown.commonParents);
  if (!shown.targets.some(({ verdicts }) => verdicts.some((v) => v.action === 'delete')))
    return planResult(shown, 'nothing_to_do', false, started);
  // Ask before taking the locks: a user may take minutes to answer.
  const decision = await call.gate(shown, request);
  if (decision !== true) return decision;
  const release = await lockVolumes(
    deps,
    volumes.map((v) => v.id),
    'prune_snapshots',
    call.signal,
  );
  try {
    const plan = await planPrune(deps, volumes, request.location, call.signal);
    if (plan.fingerprint !== shown.fingerprint) {
      throw new SnapguardError(
        'CONFIRMATION_INVALID',
        'The snapshots changed between the confirmed plan and the prune (a snapshot was created, deleted or pinned, or an hour passed); nothing was deleted.',
        'Run prune again, review the new plan and confirm it.',
      );
    }
    const toDelete = plan.targets.flatMap(({ verdicts }) => verdicts.filter((v) => v.action === 'delete'));
    const entries: PruneEntry[] = [];
    let handled = 0;
    const progressed = (count: number, where: string) => {
      handled += count;
      call.onProgress?.({ progress: handled, total: toDelete.length, message: where });
    };
    for (const { target, verdicts } of plan.targets) {
      const entry = await deleteTarget(deps, target, verdicts, call.signal, progressed);
      if (entry) entries.push(entry);
    }
    if (entries.length > 0) await recordPrunes(deps, entries);
    const anyFailed = toDelete.some((v) => v.result === 'failed');
    return planResult(plan, anyFailed ? 'partial' : 'pruned', false, started);
  } finally {
    await release();
  }
}

/**
 * Deletes what the plan marks in one target; a deletion that fails is recorded on its verdict and
 * the rest continue. Returns the history entry of the target, or nothing when nothing was tried.
 */
async function deleteTarget(
  deps: Deps,
  target: Target,
  verdicts: PruneVerdict[],
  signal: AbortSignal | undefined,
  progressed: (count: number, where: string) => void,
): Promise<PruneEntry | undefined> {
  const targetStarted = performance.now();
  const doomed = verdicts.filter((v) => v.action === 'delete');
  refuseProtected(doomed);
  const run: TargetDeletion = { target, doomed, signal, progressed, fail: failureRecorder(deps) };
  if (target.backend.deleteMany && doomed.length > 0) await deleteInBatches(run, target.backend.deleteMany);
  else await deleteOneByOne(run);
  return pruneEntry(deps, target, verdicts, targetStarted);
}

/** Belt and braces: the plan only marks owned, unprotected snapshots, checked again here. */
function refuseProtected(doomed: readonly PruneVerdict[]): void {
  for (const verdict of doomed) {
    if (!verdict.owned || verdict.protectedBy.length > 0) {
      throw new SnapguardError(
        'INTERNAL',
        `Refusing to delete ${verdict.name}: it is ${verdict.owned ? 'protected' : 'foreign'}.`,
        'This is a bug in the prune plan; report it.',
      );
    }
  }
}

/** The deletions of one target: what to delete, and where failures and progress go. */
interface TargetDeletion {
  target: Target;
  doomed: PruneVerdict[];
  signal: AbortSignal | undefined;
  progressed: (count: number, where: string) => void;
  /** Marks a verdict failed and logs it; a cancellation is thrown instead. */
  fail: (verdict: PruneVerdict, error: unknown) => void;
}

function failureRecorder(deps: Deps): TargetDeletion['fail'] {
  return (verdict, error) => {
    const failure = toSnapguardError(error);
    if (failure.code === 'CANCELLED') throw failure;
    verdict.result = 'failed';
    verdict.error = failure.message;
    deps.logger.warn(
      { volume: verdict.volume, snapshot: verdict.name, error: failure.message },
      'could not delete a snapshot; continuing with the others',
    );
  };
}

/** In batches of the backend's own size, so that a prune of thousands reports its progress. */
async function deleteInBatches(
  { target, doomed, signal, progressed, fail }: TargetDeletion,
  deleteMany: NonNullable<SnapshotBackend['deleteMany']>,
): Promise<void> {
  const size = Math.max(1, target.backend.deleteBatch ?? doomed.length);
  for (let start = 0; start < doomed.length; start += size) {
    const batch = doomed.slice(start, start + size);
    signal?.throwIfAborted();
    let outcomes: { name: string; error?: unknown }[] = [];
    try {
      outcomes = await deleteMany.call(
        target.backend,
        target.view,
        batch.map((v) => v.name),
        { signal },
      );
    } catch (error) {
      for (const verdict of batch) fail(verdict, error);
    }
    pruneFault();
    const byName = new Map(outcomes.map((outcome) => [outcome.name, outcome]));
    for (const verdict of batch) {
      const outcome = byName.get(verdict.name);
      if (!outcome) continue;
      if (outcome.error === undefined) verdict.result = 'deleted';
      else fail(verdict, outcome.error);
    }
    progressed(batch.length, `${target.volume.id} ${target.location}`);
  }
}

async function deleteOneByOne({ target, doomed, signal, progressed, fail }: TargetDeletion): Promise<void> {
  for (const verdict of doomed) {
    signal?.throwIfAborted();
    try {
      await target.backend.delete(target.view, verdict.name, { signal });
      verdict.result = 'deleted';
      pruneFault();
    } catch (error) {
      fail(verdict, error);
    }
    progressed(1, `${target.volume.id} ${target.location}: ${verdict.name}`);
  }
}

/** The history entry of one target's prune, or nothing when no deletion was tried. */
function pruneEntry(
  deps: Deps,
  target: Target,
  verdicts: readonly PruneVerdict[],
  targetStarted: number,
): PruneEntry | undefined {
  const deleted = verdicts.filter((v) => v.result === 'deleted');
  const failed = verdicts.filter((v) => v.result === 'failed');
  if (deleted.length + failed.length === 0) return undefined;
  return {
    id: `prune-${randomBytes(6).toString('hex')}`,
    timestamp: deps.clock().toISOString(),
    host: deps.config.host,
    subvolume: target.volume.id,
    location: target.location,
    location_path: target.view.snapshotDir,
    policy: formatPolicy(target.policy),
    deleted: deleted.map((v) => ({ snapshot_name: v.name, reason: v.reason })),
    failed: failed.map((v) => ({ snapshot_name: v.name, error: v.error ?? '' })),
    kept: verdicts.filter((v) => v.action === 'keep').length,
    duration_seconds: (performance.now() - targetStarted) / 1000,
  };
}

/** Records the prunes in the history and marks the deleted local snapshots' entries. */
async function recordPrunes(deps: Deps, entries: PruneEntry[]): Promise<void> {
  const deletedAt = deps.clock().toISOString();
  await deps.history.update((history) => {
    (history.prunes ??= []).push(...entries);
    const gone = new Set(
      entries
        .filter((entry) => entry.location === 'local')
        .flatMap((entry) => entry.deleted.map((d) => `${entry.subvolume}/${d.snapshot_name}`)),
    );
    for (const snapshot of history.snapshots)
      if (gone.has(`${snapshot.subvolume}/${snapshot.snapshot_name}`)) snapshot.deleted_at = deletedAt;
  });
}
