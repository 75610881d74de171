import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { RawSnapshot, SnapshotBackend } from '../backends/types.js';
import { requireVolume, type VolumeConfig } from './config.js';
import type { Deps } from './deps.js';
import { SnapguardError, type InterfaceHint } from './errors.js';
import type { History, SnapshotEntry, SnapshotReuse } from './history/schema.js';
import { resolveJournaledRecoveries } from './recovery/when-journaled.js';
import {
  formatSnapshotName,
  formatTimestamp,
  nextFreeName,
  parseSnapshotName,
  PRE_CHANGE_TYPES,
  type ParsedName,
  type SnapshotType,
} from './naming.js';
import {
  CompleteOperationInput,
  CreateSnapshotInput,
  ListSnapshotsInput,
  type CompleteOperationResult,
  type CreateSnapshotResult,
  type ListedSnapshot,
  type ListSnapshotsResult,
  type Snapshot,
} from './schemas.js';
import { listAt, snapshotLocations } from './locations.js';
import { tryParseDuration, formatDuration, formatBytes } from './units.js';
import { parseInput } from './validate.js';
import { lockVolumes } from './volume-locks.js';

export interface CallContext {
  signal?: AbortSignal | undefined;
}

export function newOperationId(now: Date): string {
  return `op-${formatTimestamp(now)}-${randomBytes(3).toString('hex')}`;
}

// Volume locks have their own module (recovery/resume.ts needs them and is needed here); the
// re-export keeps `lockVolumes` importable from this module.
export { lockVolumes } from './volume-locks.js';

/**
 * Parsed names by volume and name, with the creation time as listings print it: a listing parses
 * every name of the folder, and the names stay the same from one listing to the next. Entries are
 * shared and never changed; the maps are emptied when they hold more names than a large folder has.
 */
interface KeptName {
  parsed: ParsedName;
  createdAt: string;
}
const parsedNames = new Map<string, Map<string, KeptName | null>>();
let parsedNamesCount = 0;
const PARSED_NAMES_KEPT = 20_000;

function keptName(volumeId: string, name: string): KeptName | undefined {
  let names = parsedNames.get(volumeId);
  const known = names?.get(name);
  if (known !== undefined) return known ?? undefined;
  const parsed = parseSnapshotName(volumeId, name);
  if (parsedNamesCount >= PARSED_NAMES_KEPT) {
    parsedNames.clear();
    parsedNamesCount = 0;
    names = undefined;
  }
  if (!names) parsedNames.set(volumeId, (names = new Map()));
  const kept = parsed ? { parsed, createdAt: parsed.createdAt.toISOString() } : null;
  names.set(name, kept);
  parsedNamesCount++;
  return kept ?? undefined;
}

/**
 * The parsed name of a snapshot snapguard owns, else undefined: its name parses for the volume and,
 * unless the backend's snapshots are writable copies (dir), it is read-only (a writable subvolume
 * with a snapshot's name is not one of ours). Listings only hold entries directly in the folder
 * that are subvolumes (btrfs), dataset snapshots (zfs) or real folders, not symlinks (dir).
 */
export function ownedName(
  volume: VolumeConfig,
  raw: RawSnapshot,
  backend: Pick<SnapshotBackend, 'writableSnapshots'>,
): ParsedName | undefined {
  return ownedKept(volume, raw, backend)?.parsed;
}

function ownedKept(
  volume: VolumeConfig,
  raw: RawSnapshot,
  backend: Pick<SnapshotBackend, 'writableSnapshots'>,
): KeptName | undefined {
  if (!raw.readOnly && !backend.writableSnapshots) return undefined;
  return keptName(volume.id, raw.name);
}

export function isOwned(
  volume: VolumeConfig,
  raw: RawSnapshot,
  backend: Pick<SnapshotBackend, 'writableSnapshots'>,
): boolean {
  return ownedName(volume, raw, backend) !== undefined;
}

const FAILED_OUTCOMES = new Set(['failed', 'validation_failed', 'command_failed']);

/**
 * What a snapshot holds, in words, so that an outcome is not misread: the snapshot of a failed
 * operation is the good state from before it, and a pre-recover snapshot is the state a recovery
 * replaced (the broken one, usually).
 */
export function snapshotMeaning(
  snapshot: {
    type?: string | undefined;
    operation?: string | undefined;
    operationId?: string | undefined;
    outcome?: string | undefined;
  },
  replacedBy?: string,
): string | undefined {
  if (snapshot.type === 'pre-recover')
    return `the state replaced by recovery ${replacedBy ?? '(not recorded)'}; recover it only to undo that recovery`;
  if (!snapshot.type?.startsWith('pre-') || snapshot.outcome === undefined) return undefined;
  const what = snapshot.operation ? `"${snapshot.operation}"` : 'the change';
  const op = snapshot.operationId ? ` (${snapshot.operationId})` : '';
  if (FAILED_OUTCOMES.has(snapshot.outcome))
    return `the state just before ${what}${op}, which failed (${snapshot.outcome}): the good state to return to`;
  if (snapshot.outcome === 'success') return `the state just before ${what}${op}, which succeeded`;
  return `the state just before ${what}${op}, not completed yet (complete_operation records the outcome)`;
}

/** A short form of snapshotMeaning for tables: what the snapshot holds. */
export function snapshotHolds(
  snapshot: {
    type?: string | undefined;
    operation?: string | null | undefined;
    outcome?: string | undefined;
  },
  replacedBy?: string,
): string | undefined {
  if (snapshot.type === 'pre-recover') return `state replaced by ${replacedBy ?? 'a recovery'}`;
  if (!snapshot.type?.startsWith('pre-') || snapshot.outcome === undefined) return undefined;
  const what = snapshot.operation ?? 'the change';
  if (FAILED_OUTCOMES.has(snapshot.outcome)) return `good state before failed ${what}`;
  if (snapshot.outcome === 'success') return `state before ${what} (succeeded)`;
  return `state before ${what} (not completed)`;
}

/** snapshotHolds of a history entry, with the later operations that reuse it. */
export function entryHolds(entry: SnapshotEntry, replacedBy?: string): string | undefined {
  const own = snapshotHolds(entry, replacedBy);
  const reuses = (entry.reused_by ?? []).map(
    (r) =>
      `rollback point of ${r.operation ?? r.operation_id} (${FAILED_OUTCOMES.has(r.outcome) ? 'failed: return here' : r.outcome})`,
  );
  const parts = [own, ...reuses].filter((p): p is string => p !== undefined);
  return parts.length ? parts.join('; ') : undefined;
}

/** recovery id by the name of the pre-recover snapshot it made, from the history. */
export function recoveriesBySafetyBackup(history: History): Map<string, string> {
  const map = new Map<string, string>();
  for (const r of history.recoveries)
    if (r.safety_backup) map.set(`${r.subvolume}/${r.safety_backup}`, r.recovery_id ?? r.id);
  return map;
}

/** Snapshot entries of an operation: the ones it made and the ones it reuses as its rollback point. */
export function operationEntries(
  history: History,
  operationId: string,
): { entry: SnapshotEntry; reuse?: SnapshotReuse }[] {
  const found: { entry: SnapshotEntry; reuse?: SnapshotReuse }[] = [];
  for (const entry of history.snapshots) {
    if (entry.location === 'external') continue;
    if (entry.operation_id === operationId) found.push({ entry });
    else {
      const reuse = entry.reused_by?.find((r) => r.operation_id === operationId);
      if (reuse) found.push({ entry, reuse });
    }
  }
  return found;
}

function toSnapshot(
  volume: VolumeConfig,
  raw: RawSnapshot,
  location: 'local' | 'external',
  entry?: SnapshotEntry,
  parsed: ParsedName | undefined = parseSnapshotName(volume.id, raw.name),
  /** parsed.createdAt as an ISO string, when the caller has it already. */
  createdAt: string = (parsed?.createdAt ?? raw.createdAt).toISOString(),
): Snapshot {
  // Keys set one by one in the order of the schema (no spread copies): listings run to thousands.
  const snapshot = { name: raw.name, volume: volume.id, path: raw.path } as Snapshot;
  if (parsed) snapshot.type = parsed.type;
  if (parsed?.operation) snapshot.operation = parsed.operation;
  if (entry?.operation_id) snapshot.operationId = entry.operation_id;
  // Owned names carry their creation time; it is exact and needs no extra command.
  snapshot.createdAt = createdAt;
  snapshot.readOnly = raw.readOnly;
  snapshot.location = location;
  if (entry) snapshot.outcome = entry.outcome;
  if (entry?.reused_by?.length) snapshot.rollbackPointOf = entry.reused_by.map((r) => r.operation_id);
  return snapshot;
}

function entryToSnapshot(entry: SnapshotEntry, reuse?: SnapshotReuse): Snapshot {
  const snapshot: Snapshot = {
    name: entry.snapshot_name,
    volume: entry.subvolume,
    path: entry.path,
    type: entry.type,
    ...(entry.operation ? { operation: entry.operation } : {}),
    ...(entry.operation_id ? { operationId: entry.operation_id } : {}),
    createdAt: entry.timestamp,
    readOnly: entry.read_only ?? true,
    location: 'local',
    outcome: entry.outcome,
    ...(entry.reused_by?.length ? { rollbackPointOf: entry.reused_by.map((r) => r.operation_id) } : {}),
  };
  if (!reuse) {
    const meaning = snapshotMeaning(snapshot);
    return meaning ? { ...snapshot, meaning } : snapshot;
  }
  // Seen from the operation that reuses it: its outcome is that operation's.
  const mine = snapshotMeaning({
    type: reuse.type,
    operation: reuse.operation ?? undefined,
    operationId: reuse.operation_id,
    outcome: reuse.outcome,
  });
  return {
    ...snapshot,
    outcome: reuse.outcome,
    meaning: `${mine ?? 'the state just before this operation'}; taken earlier${entry.operation_id ? ` for ${entry.operation_id}` : ''} and reused because the volume had not changed since`,
  };
}

/** The first unused name for this second: from a listing when one was made, else by asking the backend. */
async function firstFreeName(
  volume: VolumeConfig,
  backend: SnapshotBackend,
  type: SnapshotType,
  operation: string | undefined,
  at: Date,
  listed: RawSnapshot[] | undefined,
  signal: AbortSignal | undefined,
): Promise<string> {
  if (listed || !backend.nameTaken)
    return nextFreeName(
      volume.id,
      type,
      operation,
      at,
      new Set((listed ?? (await backend.list(volume, { signal }))).map((raw) => raw.name)),
    );
  for (let sequence = 1; sequence < 10_000; sequence++) {
    const candidate = formatSnapshotName(volume.id, type, operation, at, sequence);
    if (!(await backend.nameTaken(volume, candidate))) return candidate;
  }
  throw new SnapguardError(
    'INTERNAL',
    'Could not find a free snapshot name within one second.',
    'Wait a second and retry.',
  );
}

/** The owned snapshots of a volume, newest first. */
export async function ownedSnapshots(
  deps: Deps,
  volume: VolumeConfig,
  signal?: AbortSignal,
): Promise<{ raw: RawSnapshot; createdAt: Date }[]> {
  const backend = deps.backendFor(volume);
  const all = await backend.list(volume, { signal });
  return all
    .flatMap((raw) => {
      const parsed = ownedName(volume, raw, backend);
      return parsed ? [{ raw, createdAt: parsed.createdAt, sequence: parsed.sequence }] : [];
    })
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.sequence - a.sequence);
}

/** Resolves an owned, existing snapshot of a volume or explains why not (guardrail 1). */
export async function requireOwnedSnapshot(
  deps: Deps,
  volume: VolumeConfig,
  name: unknown,
  signal?: AbortSignal,
  /**
   * `ownership`: the caller needs only the name and path of a checked snapshot (no uuid, no
   * generation); a backend that can tell read-only without running a command (btrfs) answers.
   */
  need: 'details' | 'ownership' = 'details',
): Promise<RawSnapshot> {
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name.length > 255 ||
    name.includes('\0') ||
    name.includes('/') ||
    name === '.' ||
    name === '..'
  ) {
    throw new SnapguardError('BAD_INPUT', `"${String(name).slice(0, 80)}" is not a snapshot name.`, {
      mcp: `Pass the bare name of a snapshot as list_snapshots with volume "${volume.id}" returns it, not a path.`,
      cli: `Pass the bare name of a snapshot as \`snapguard snapshot list ${volume.id}\` shows it, not a path.`,
    });
  }
  if (!parseSnapshotName(volume.id, name)) {
    throw new SnapguardError(
      'NOT_OWNED',
      `"${name}" is not a snapguard snapshot of volume "${volume.id}".`,
      pickOwnedSnapshot(volume, 'snapguard acts only on snapshots it made, named <volume>-<type>-...'),
    );
  }
  const backend = deps.backendFor(volume);
  // Checked at use, without following anything: what lies at the name must be the snapshot itself
  // (a dataset's snapshots are no folders of a snapshotDir: the backend's show checks them).
  if (!backend.volumeInPool) {
    const path = join(volume.snapshotDir, name);
    const stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
      throw error;
    });
    if (!stats) throw notFound(volume, name);
    if (!stats.isDirectory()) {
      throw notOwned(volume, name, stats.isSymbolicLink() ? 'a symlink' : 'not a folder');
    }
    if (need === 'ownership') {
      const readOnly = await backend.readOnlyAt?.(volume, name, { stats });
      if (readOnly === false) throw notOwned(volume, name, 'a writable subvolume, not a read-only snapshot');
      if (readOnly === true) return { name, path, createdAt: stats.birthtime, readOnly: true };
    }
  }
  const raw = await backend.show(volume, name, { signal });
  if (!raw) {
    if (backend.folderNotSnapshot) throw notOwned(volume, name, backend.folderNotSnapshot);
    throw notFound(volume, name);
  }
  if (!ownedName(volume, raw, backend))
    throw notOwned(volume, name, 'a writable subvolume, not a read-only snapshot');
  return raw;
}

function notFound(volume: VolumeConfig, name: string): SnapguardError {
  return new SnapguardError(
    'SNAPSHOT_NOT_FOUND',
    `Snapshot "${name}" does not exist in ${volume.snapshotDir}.`,
    listSnapshotsHint(volume),
  );
}

function notOwned(volume: VolumeConfig, name: string, what: string): SnapguardError {
  return new SnapguardError(
    'NOT_OWNED',
    `"${name}" in ${volume.snapshotDir} is ${what}; it is not a snapguard snapshot of volume "${volume.id}", so snapguard does not act on it.`,
    pickOwnedSnapshot(
      volume,
      `snapguard uses only read-only snapshots it made, lying directly in ${volume.snapshotDir}; look at what is there and remove or rename it`,
    ),
  );
}

/** Said after the reason a pre-change snapshot was reused (skipped[].reason): how to take a new one anyway. */
export const REUSE_OVERRIDE: InterfaceHint = {
  mcp: 'force: true takes a new one',
  cli: '--force takes a new one',
};

function listSnapshotsHint(volume: VolumeConfig): InterfaceHint {
  return {
    mcp: `Call list_snapshots with volume "${volume.id}" for the names that exist.`,
    cli: `Run \`snapguard snapshot list ${volume.id}\` for the names that exist.`,
  };
}

/** What to do instead when a name is not one of snapguard's snapshots: pick one of them, or take one. */
function pickOwnedSnapshot(volume: VolumeConfig, why: string): InterfaceHint {
  return {
    mcp: `${why}. Instead, call list_snapshots with volume "${volume.id}" and use one of the names it returns, or call create_snapshot with volume "${volume.id}" to take a new one.`,
    cli: `${why}. Instead, run \`snapguard snapshot list ${volume.id}\` and use one of the names it shows, or \`snapguard snapshot create ${volume.id}\` to take a new one.`,
  };
}

/** One create_snapshot call, as every step of it sees it. */
interface CreateCall {
  request: z.output<typeof CreateSnapshotInput>;
  operationId: string;
  started: Date;
  signal: AbortSignal | undefined;
}

interface PlannedSnapshot {
  volume: VolumeConfig;
  name: string;
}

interface MadeSnapshot {
  volume: VolumeConfig;
  raw: RawSnapshot;
}

/** A skipped volume's existing snapshot, recorded as the operation's rollback point. */
interface ReusedSnapshot {
  volume: VolumeConfig;
  existing: Snapshot;
}

export async function createSnapshots(
  deps: Deps,
  input: unknown,
  call: CallContext = {},
): Promise<CreateSnapshotResult> {
  const request = parseInput(CreateSnapshotInput, input, 'create_snapshot');
  const volumes = [...new Set(request.volumes)].map((id) => requireVolume(deps.config, id));
  // Guardrail 6: an interrupted recovery of these volumes is completed or reverted before anything
  // else touches them (before the volume locks, which the resolver takes itself).
  const recoveryNotes = request.dryRun
    ? []
    : (await resolveJournaledRecoveries(deps, { volumes: volumes.map((v) => v.id) })).map(
        (r) =>
          `Interrupted recovery ${r.recoveryId} of ${r.volumes.join(', ') || 'unknown volumes'}: ${r.action}, ${r.detail}.`,
      );
  const started = deps.clock();
  const create: CreateCall = { request, operationId: newOperationId(started), started, signal: call.signal };
  const release = request.dryRun
    ? async () => undefined
    : await lockVolumes(
        deps,
        volumes.map((v) => v.id),
        `create_snapshot ${create.operationId}`,
        call.signal,
      );
  try {
    const warnings: string[] = [...recoveryNotes];
    const { plans, skipped } = await planSnapshots(deps, create, volumes, warnings);
    if (request.dryRun) return dryRunResult(deps, create, plans, skipped, warnings);
    const reuses = skipped.flatMap((skip) => {
      const volume = volumes.find((v) => v.id === skip.volume);
      return volume && skip.existing ? [{ volume, existing: skip.existing }] : [];
    });
    const created = await createAndRecord(deps, create, plans, reuses, warnings);
    return {
      operationId: create.operationId,
      dryRun: false,
      created: created.map(({ volume, raw }) => ({
        ...toSnapshot(volume, raw, 'local'),
        operationId: create.operationId,
        outcome: 'pending' as const,
      })),
      planned: [],
      skipped,
      warnings,
    };
  } finally {
    await release();
  }
}

/**
 * Checks every volume before any snapshot is taken, so a refusal changes nothing: the volumes
 * whose newest snapshot stands in for a new one (skipped), the pool usage, and the name of each
 * snapshot to take.
 */
async function planSnapshots(
  deps: Deps,
  create: CreateCall,
  volumes: VolumeConfig[],
  warnings: string[],
): Promise<{ plans: PlannedSnapshot[]; skipped: CreateSnapshotResult['skipped'] }> {
  const plans: PlannedSnapshot[] = [];
  const skipped: CreateSnapshotResult['skipped'] = [];
  const { request, started, signal } = create;
  for (const volume of volumes) {
    const backend = deps.backendFor(volume);
    const needsNewest =
      !request.force && volume.minInterval !== undefined && PRE_CHANGE_TYPES.has(request.type);
    // Listing costs processes; only the minInterval check needs the newest snapshot.
    const existing = needsNewest ? await backend.list(volume, { signal }) : undefined;
    const skip = existing && (await reusableSnapshot(backend, volume, existing, started, signal));
    if (skip) {
      skipped.push(skip);
      continue;
    }
    const warning = await checkPoolUsage(deps, backend, volume, request.force, signal);
    if (warning) warnings.push(warning);
    const name = await firstFreeName(
      volume,
      backend,
      request.type,
      request.operation,
      started,
      existing,
      signal,
    );
    plans.push({ volume, name });
  }
  return { plans, skipped };
}

/**
 * The skip entry when the volume's newest snapshot is younger than minInterval and the volume has
 * not changed since it was taken: that snapshot is the state just before this change and stands in
 * for a new one. The rollback point of a change is the state just before it: never a pre-recover
 * snapshot (it holds the state a recovery replaced, not the current one). Names carry the second,
 * so several snapshots can be the newest: each is asked.
 */
async function reusableSnapshot(
  backend: SnapshotBackend,
  volume: VolumeConfig,
  existing: RawSnapshot[],
  started: Date,
  signal: AbortSignal | undefined,
): Promise<CreateSnapshotResult['skipped'][number] | undefined> {
  const owned = existing
    .flatMap((raw) => {
      const parsed = ownedName(volume, raw, backend);
      return parsed ? [{ raw, parsed }] : [];
    })
    .sort(
      (a, b) =>
        b.parsed.createdAt.getTime() - a.parsed.createdAt.getTime() || b.parsed.sequence - a.parsed.sequence,
    );
  const newest = owned[0];
  if (!newest || volume.minInterval === undefined) return undefined;
  const age = (started.getTime() - newest.parsed.createdAt.getTime()) / 1000;
  const candidates =
    age < volume.minInterval && backend.unchangedSince !== undefined
      ? owned.filter((o) => o.parsed.createdAt.getTime() === newest.parsed.createdAt.getTime())
      : [];
  if (candidates.some((o) => o.parsed.type === 'pre-recover')) return undefined;
  for (const candidate of candidates) {
    if (!(await backend.unchangedSince?.(volume, candidate.raw, { signal }))) continue;
    return {
      volume: volume.id,
      reason: `${candidate.raw.name} is ${formatDuration(Math.max(0, age))} old (younger than minInterval ${formatDuration(volume.minInterval)}) and the volume has not changed since it was taken, so it is the state just before this change and this operation's rollback point`,
      existing: toSnapshot(volume, candidate.raw, 'local'),
    };
  }
  return undefined;
}

/** Refuses a pool at or above maxPoolUsage (a warning instead with force). */
async function checkPoolUsage(
  deps: Deps,
  backend: SnapshotBackend,
  volume: VolumeConfig,
  force: boolean,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  const usage = await backend.poolUsage(volume, { signal });
  const limit = deps.config.health.maxPoolUsage;
  if (usage.ratio < limit) return undefined;
  const message = `Pool of volume "${volume.id}" is ${(usage.ratio * 100).toFixed(1)}% full (${formatBytes(usage.availableBytes)} available), at or above maxPoolUsage ${(limit * 100).toFixed(0)}%.`;
  if (force) return `${message} Snapshotting anyway because force was given.`;
  throw new SnapguardError(
    'POOL_FULL',
    `${message} No snapshot was created.`,
    {
      mcp: `Free space (call prune_snapshots with volume "${volume.id}", delete data) or call create_snapshot again with force: true to snapshot anyway.`,
      cli: `Free space (\`snapguard prune ${volume.id}\`, delete data) or run it again with --force to snapshot anyway.`,
    },
    { details: { volume: volume.id, ratio: usage.ratio, maxPoolUsage: limit } },
  );
}

function dryRunResult(
  deps: Deps,
  create: CreateCall,
  plans: PlannedSnapshot[],
  skipped: CreateSnapshotResult['skipped'],
  warnings: string[],
): CreateSnapshotResult {
  const { request, operationId, started } = create;
  return {
    operationId,
    dryRun: true,
    created: [],
    planned: plans.map(({ volume, name }) => ({
      name,
      volume: volume.id,
      path: `${volume.snapshotDir}/${name}`,
      type: request.type,
      ...(request.operation ? { operation: request.operation } : {}),
      operationId,
      createdAt: started.toISOString(),
      readOnly: !deps.backendFor(volume).writableSnapshots,
      location: 'local' as const,
    })),
    skipped,
    warnings,
  };
}

/**
 * Takes the planned snapshots and records them (and the reused ones) in the history before it
 * returns. The history is written once the snapshots exist, so its lock is never held while a
 * snapshot command runs, and it records what was really made.
 */
async function createAndRecord(
  deps: Deps,
  create: CreateCall,
  plans: PlannedSnapshot[],
  reuses: ReusedSnapshot[],
  warnings: string[],
): Promise<MadeSnapshot[]> {
  const { created, failure } = await takeSnapshots(deps, create, plans);
  const entries = created.map((one) => snapshotEntry(deps, create, one));
  // A skipped volume belongs to this operation only when the operation went through.
  const reused = failure ? [] : reuses;
  if (entries.length > 0 || reused.length > 0)
    await recordOrExplain(created, reused, warnings, () =>
      deps.history.update(recordCreated(deps, create, entries, reused)),
    );
  if (failure) throw creationFailure(failure, created);
  return created;
}

/** Takes the planned snapshots in order and stops at the first failure, which it returns. */
async function takeSnapshots(
  deps: Deps,
  create: CreateCall,
  plans: PlannedSnapshot[],
): Promise<{ created: MadeSnapshot[]; failure: unknown }> {
  const created: MadeSnapshot[] = [];
  for (const { volume, name } of plans) {
    try {
      created.push({
        volume,
        raw: await deps.backendFor(volume).create(volume, name, { signal: create.signal }),
      });
    } catch (error) {
      return { created, failure: error };
    }
  }
  return { created, failure: undefined };
}

function snapshotEntry(deps: Deps, create: CreateCall, { volume, raw }: MadeSnapshot): SnapshotEntry {
  return {
    id: `snap-${randomBytes(6).toString('hex')}`,
    timestamp: create.started.toISOString(),
    host: deps.config.host,
    subvolume: volume.id,
    type: create.request.type,
    operation: create.request.operation ?? null,
    operation_id: create.operationId,
    snapshot_name: raw.name,
    path: raw.path,
    outcome: 'pending',
    size_mb: null,
    backend: volume.backend,
    read_only: raw.readOnly,
  };
}

/**
 * The history change of a create: the new entries, and for each skipped volume its existing
 * snapshot marked as this operation's rollback point, so complete_operation, recover by
 * operationId and health see it.
 */
function recordCreated(
  deps: Deps,
  create: CreateCall,
  entries: SnapshotEntry[],
  reuses: ReusedSnapshot[],
): (history: History) => void {
  return (history) => {
    history.snapshots.push(...entries);
    for (const { volume, existing } of reuses) {
      const reuse: SnapshotReuse = {
        operation_id: create.operationId,
        operation: create.request.operation ?? null,
        type: create.request.type,
        timestamp: create.started.toISOString(),
        outcome: 'pending',
      };
      let entry = history.snapshots.findLast(
        (e) => e.subvolume === volume.id && e.snapshot_name === existing.name && e.location !== 'external',
      );
      if (!entry) {
        // Made before the history knew it (e.g. the file was moved aside): record it now.
        entry = {
          id: `snap-${randomBytes(6).toString('hex')}`,
          timestamp: existing.createdAt,
          host: deps.config.host,
          subvolume: volume.id,
          type: existing.type ?? 'manual',
          operation: existing.operation ?? null,
          operation_id: null,
          snapshot_name: existing.name,
          path: existing.path,
          outcome: 'pending',
          size_mb: null,
          backend: volume.backend,
          read_only: existing.readOnly,
        };
        history.snapshots.push(entry);
      }
      (entry.reused_by ??= []).push(reuse);
    }
  };
}

/** Runs the history write; a failure says which snapshots exist but are not recorded. */
async function recordOrExplain(
  created: MadeSnapshot[],
  reuses: ReusedSnapshot[],
  warnings: string[],
  write: () => Promise<{ movedAside?: string | undefined }>,
): Promise<void> {
  try {
    const { movedAside } = await write();
    if (movedAside)
      warnings.push(`The history file did not parse and was moved to ${movedAside}; a new one was started.`);
  } catch (error) {
    const names = [...created.map(({ raw }) => raw.name), ...reuses.map((r) => r.existing.name)].join(', ');
    const cause = error instanceof SnapguardError ? error : undefined;
    throw new SnapguardError(
      'HISTORY_WRITE_FAILED',
      `${created.length > 0 ? 'Created' : 'Reused'} ${names} but could not record ${created.length + reuses.length > 1 ? 'them' : 'it'} in the history: ${cause?.message ?? String(error)}`,
      cause?.hints ?? cause?.hint ?? 'Check the context directory.',
      { cause: error },
    );
  }
}

/** The error of a failed snapshot, naming the ones made (and recorded) before it. */
function creationFailure(failure: unknown, created: MadeSnapshot[]): SnapguardError {
  const done = created.map(({ raw }) => raw.name);
  const base = failure instanceof SnapguardError ? failure : undefined;
  return new SnapguardError(
    base?.code ?? 'COMMAND_FAILED',
    `${base?.message ?? String(failure)}${done.length ? ` (already created and recorded: ${done.join(', ')})` : ' No snapshot was created.'}`,
    base?.hints ?? base?.hint ?? 'Read the error above.',
    { cause: failure },
  );
}

function parseSince(since: string, now: Date): Date {
  const seconds = tryParseDuration(since);
  if (seconds !== undefined) return new Date(now.getTime() - seconds * 1000);
  const time = Date.parse(since);
  if (Number.isNaN(time) || !/^\d{4}-\d{2}-\d{2}/.test(since)) {
    throw new SnapguardError(
      'BAD_INPUT',
      `since: "${since}" is neither a duration nor an ISO time.`,
      'Use a duration such as 24h or 7d, or a time such as 2026-11-20T00:00:00Z.',
    );
  }
  return new Date(time);
}

export async function listSnapshots(
  deps: Deps,
  input: unknown,
  call: CallContext = {},
): Promise<ListSnapshotsResult> {
  const request = parseInput(ListSnapshotsInput, input, 'list_snapshots');
  const volumes = request.volume
    ? [requireVolume(deps.config, request.volume)]
    : Object.values(deps.config.volumes);
  const now = deps.clock();
  const since = request.since ? parseSince(request.since, now) : undefined;
  const { history } = await deps.history.read();
  const entryByName = new Map(
    history.snapshots
      // Replicated copies are recorded with location "external"; they describe the copy, not the local snapshot.
      .filter((entry) => entry.location !== 'external')
      .map((entry) => [`${entry.subvolume}/${entry.snapshot_name}`, entry]),
  );
  const replacedBy = recoveriesBySafetyBackup(history);
  const found: ListedSnapshot[] = [];
  for (const volume of volumes) {
    const sources = snapshotLocations(volume).filter(
      (source) =>
        source.kind !== 'restic' &&
        (source.location === 'local' ? request.location !== 'external' : request.location !== 'local'),
    );
    const backend = deps.backendFor(volume);
    for (const source of sources) {
      const raws = await listAt(deps, volume, source, call.signal);
      for (const raw of raws) {
        // External copies (received, or plain copies in a dir folder) are owned by their name.
        const kept =
          source.location === 'local' ? ownedKept(volume, raw, backend) : keptName(volume.id, raw.name);
        const parsed = kept?.parsed;
        if (!parsed && !request.includeForeign) continue;
        if (request.type && parsed?.type !== request.type) continue;
        if (request.operation && parsed?.operation !== request.operation) continue;
        const created = parsed?.createdAt ?? raw.createdAt;
        if (since && created < since) continue;
        const key = source.location === 'local' ? `${volume.id}/${raw.name}` : undefined;
        const entry = key === undefined ? undefined : entryByName.get(key);
        const snapshot = toSnapshot(
          volume,
          raw,
          source.location,
          entry,
          parsed,
          kept?.createdAt ?? raw.createdAt.toISOString(),
        );
        const recovery = key === undefined || replacedBy.size === 0 ? undefined : replacedBy.get(key);
        const meaning = source.location === 'local' ? snapshotMeaning(snapshot, recovery) : undefined;
        // Filled in place (same keys, same order as a copy): listings run to thousands of entries.
        const listed = snapshot as ListedSnapshot;
        if (meaning) listed.meaning = meaning;
        if (recovery && snapshot.type === 'pre-recover') listed.replacedBy = recovery;
        listed.owned = parsed !== undefined;
        listed.ageSeconds = Math.max(0, Math.round((now.getTime() - created.getTime()) / 1000));
        found.push(listed);
      }
    }
  }
  // ISO times of one format sort as strings; plain comparisons, no locale collation.
  found.sort((a, b) =>
    a.createdAt !== b.createdAt
      ? a.createdAt < b.createdAt
        ? 1
        : -1
      : a.name < b.name
        ? 1
        : a.name > b.name
          ? -1
          : 0,
  );
  return { snapshots: request.limit ? found.slice(0, request.limit) : found, total: found.length };
}

export async function completeOperation(deps: Deps, input: unknown): Promise<CompleteOperationResult> {
  const request = parseInput(CompleteOperationInput, input, 'complete_operation');
  const completedAt = deps.clock().toISOString();
  const mark = (history: History): Snapshot[] => {
    const matching = operationEntries(history, request.operationId);
    if (matching.length === 0) {
      throw new SnapguardError(
        'OPERATION_NOT_FOUND',
        `No snapshots recorded for operation ${request.operationId}.`,
        {
          mcp: 'Use the operationId returned by create_snapshot; older operations may be in backup-history.d/.',
          cli: 'Use the operation id printed by `snapguard snapshot create` or `snapguard wrap` (`snapguard history --kind snapshots` lists them); older operations may be in backup-history.d/.',
        },
      );
    }
    for (const { entry, reuse } of matching) {
      // A reused snapshot keeps the outcome of the operation that made it; this one's goes on the reuse.
      const target = reuse ?? entry;
      target.outcome = request.outcome;
      target.completed_at = completedAt;
      if (request.notes !== undefined) target.notes = request.notes;
    }
    return matching
      .map(({ entry, reuse }) => entryToSnapshot(entry, reuse))
      .sort((a, b) => (a.volume < b.volume ? -1 : a.volume > b.volume ? 1 : 0));
  };
  // A dry run applies the change to a copy read from disk and writes nothing.
  const result = request.dryRun
    ? mark((await deps.history.read()).history)
    : (await deps.history.update(mark)).result;
  return {
    operationId: request.operationId,
    outcome: request.outcome,
    dryRun: request.dryRun,
    snapshots: result,
  };
}
