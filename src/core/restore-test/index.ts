import { randomBytes, randomInt } from 'node:crypto';
import { lstat, mkdtemp, readdir, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { RawSnapshot, SnapshotBackend } from '../../backends/types.js';
import { mountOf, mountsBelow, readMounts } from '../../system/mounts.js';
import { createRestic, type ResticNode, type ResticSnapshot } from '../../system/restic.js';
import { requireVolume, type VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { binaryOf, displayBinary, pathUnder } from '../byte-names.js';
import { SnapguardError, hostErrorHints } from '../errors.js';
import type { RestoreTestEntry } from '../history/schema.js';
import { parseSnapshotName } from '../naming.js';
import { ownedSnapshots, requireOwnedSnapshot } from '../snapshots.js';
import { nestedSubvolumesOf } from '../recovery/nested.js';
import { parseInput } from '../validate.js';
import {
  applyXattrs,
  compareEntry,
  errorCode,
  hashFile,
  readXattrs,
  referenceOf,
  restoreEntry,
  type FileReference,
  type RestoreFailure,
} from './files.js';
import { listExternalCopies } from './external.js';
import { snapshotCopyLocations, snapshotLocations } from '../locations.js';
import { censusTree, sampleTree, ReservoirSampler, topLevelGroup, type TreeCensus } from './sampler.js';
import { RunRestoreTestInput, type RestoreTestResult, type RunRestoreTestResult } from './schemas.js';
import { redactUrls } from '../../shared/redact.js';

export interface Progress {
  progress: number;
  total?: number;
  message: string;
}

export interface RestoreTestCall {
  signal?: AbortSignal | undefined;
  onProgress?: (progress: Progress) => void;
  /** Called after history is written (metrics are refreshed from it). */
  afterRecord?: () => Promise<void>;
}

type Drift = RestoreTestResult['drift'][number];
type NotCovered = NonNullable<RestoreTestResult['notCovered']>[number];

interface VolumeRun {
  volume: VolumeConfig;
  request: ReturnType<typeof RunRestoreTestInput.parse>;
  seed: number;
  sampleSize: number;
  deps: Deps;
  call: RestoreTestCall;
  warnings: string[];
}

interface Outcome {
  snapshot: string;
  checkedPaths: string[];
  population: number;
  filesChecked: number;
  bytesRestored: number;
  restoreSeconds: number;
  failures: RestoreFailure[];
  drift: Drift[];
  rtoEstimateSeconds: number | null;
  /** Empty folders in the snapshot that stand for nested subvolumes (btrfs). */
  placeholders?: string[];
}

const NESTED_DETAIL =
  'a nested subvolume: snapshots of the volume hold only an empty folder in its place, so its files were not tested; snapshot and test it as a volume of its own';

/**
 * Nested subvolumes and mount points inside the volume now: their contents are not in the
 * volume's snapshots, so a restore test covers nothing of them and says so.
 */
async function liveNotCovered(deps: Deps, volume: VolumeConfig, signal?: AbortSignal): Promise<NotCovered[]> {
  const found: NotCovered[] = [];
  const real = await realpath(volume.path).catch(() => undefined);
  if (!real) return found;
  const snapshotDir = await realpath(volume.snapshotDir).catch(() => volume.snapshotDir);
  const ours = (rel: string) => {
    const abs = join(real, rel);
    return (
      rel === '.zfs' || rel.startsWith('.zfs/') || abs === snapshotDir || abs.startsWith(`${snapshotDir}/`)
    );
  };
  for (const rel of await nestedSubvolumesOf(deps, volume, { signal }).catch(() => [])) {
    if (!ours(rel)) found.push({ path: rel, kind: 'nested-subvolume', detail: NESTED_DETAIL });
  }
  const mounts = readMounts();
  for (const mountPoint of mountsBelow(real, mounts)) {
    const rel = relative(real, mountPoint);
    if (ours(rel)) continue;
    const entry = mountOf(mountPoint, mounts);
    found.push({
      path: rel,
      kind: 'mount-point',
      detail: `${entry ? `${entry.fsType} ${entry.source}` : 'a filesystem'} is mounted here: what it holds is not part of the volume's snapshots and was not tested; back it up on its own`,
    });
  }
  return found;
}

function mergeNotCovered(live: NotCovered[], placeholders: readonly string[]): NotCovered[] {
  const merged = [...live];
  for (const rel of placeholders) {
    if (!merged.some((entry) => entry.path === rel))
      merged.push({ path: rel, kind: 'nested-subvolume', detail: NESTED_DETAIL });
  }
  return merged.sort((a, b) => a.path.localeCompare(b.path));
}

const underAny = (path: string, roots: readonly NotCovered[]) =>
  roots.some((root) => path === root.path || path.startsWith(`${root.path}/`));

/**
 * Proves that a snapshot (or a received copy, or a restic snapshot) restores: restores a random
 * sample (or everything) into a scratch folder by reading the data, verifies content and
 * metadata, records the result in history and removes the scratch folder in every case.
 */
/**
 * Files only root may read are not a broken backup: a test that could not read them as another
 * user says it needs root instead of recording a FAIL (nothing is written to the history).
 */
function refuseWithoutRoot(volumeId: string, failures: readonly RestoreFailure[]): void {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return;
  const denied = failures.find(
    (failure) => failure.check === 'read-error' && /^(EACCES|EPERM)\b/.test(failure.actual),
  );
  if (!denied) return;
  throw new SnapguardError(
    'NOT_ROOT',
    `The restore test of ${volumeId} could not read ${denied.path} (${denied.actual.split(':')[0]}) as uid ${uid}; a restore test must read every file, so no result was recorded.`,
    hostErrorHints.NOT_ROOT,
    { details: { volume: volumeId, path: denied.path } },
  );
}

export async function runRestoreTest(
  deps: Deps,
  input: unknown,
  call: RestoreTestCall = {},
): Promise<RunRestoreTestResult> {
  const request = parseInput(RunRestoreTestInput, input ?? {}, 'run_restore_test');
  const volumes = request.volume
    ? [requireVolume(deps.config, request.volume)]
    : Object.values(deps.config.volumes);
  if (volumes.length === 0) {
    throw new SnapguardError(
      'PRECONDITION_FAILED',
      'No volumes are configured, so there is nothing to test.',
      'Add volumes to snapguard.yaml (see docs/configuration.md).',
    );
  }
  if (request.snapshot && volumes.length > 1) {
    throw new SnapguardError(
      'BAD_INPUT',
      'snapshot was given without volume.',
      'Name the volume the snapshot belongs to, or leave snapshot out to test the newest of each volume.',
    );
  }
  const seed = request.seed ?? randomInt(0, 2 ** 32 - 1);
  const sampleSize = request.sampleSize ?? deps.config.restoreTest.sampleSize;
  const warnings: string[] = [];
  const results: RestoreTestResult[] = [];
  for (const volume of volumes) {
    const run: VolumeRun = { volume, request, seed, sampleSize, deps, call, warnings };
    const started = performance.now();
    let outcome: Outcome;
    try {
      outcome = await testVolume(run);
    } catch (error) {
      if (!(error instanceof SnapguardError) || error.code !== 'SNAPSHOT_NOT_FOUND' || request.snapshot)
        throw error;
      outcome = {
        snapshot: '',
        checkedPaths: [],
        population: 0,
        filesChecked: 0,
        bytesRestored: 0,
        restoreSeconds: 0,
        failures: [
          { path: '', check: 'no-snapshot', expected: 'a snapshot to restore', actual: error.message },
        ],
        drift: [],
        rtoEstimateSeconds: null,
      };
    }
    refuseWithoutRoot(volume.id, outcome.failures);
    const durationSeconds = (performance.now() - started) / 1000;
    const timed = outcome.restoreSeconds > 0 ? outcome.restoreSeconds : durationSeconds;
    const notCovered =
      request.source === 'restic'
        ? []
        : mergeNotCovered(await liveNotCovered(deps, volume, call.signal), outcome.placeholders ?? []);
    results.push({
      volume: volume.id,
      snapshot: outcome.snapshot,
      source: request.source,
      mode: request.mode,
      outcome: outcome.failures.length === 0 ? 'PASS' : 'FAIL',
      seed,
      population: outcome.population,
      filesChecked: outcome.filesChecked,
      bytesRestored: outcome.bytesRestored,
      durationSeconds: round(durationSeconds),
      throughputBytesPerSecond: timed > 0 ? Math.round(outcome.bytesRestored / timed) : 0,
      rtoEstimateSeconds: outcome.rtoEstimateSeconds,
      checkedPaths: outcome.checkedPaths,
      failures: outcome.failures,
      // What changed inside a nested subvolume or a mount is not drift of the volume's files.
      drift: outcome.drift.filter((d) => !underAny(d.path, notCovered)),
      notCovered,
    });
  }
  await recordResults(deps, results, warnings);
  if (call.afterRecord) {
    try {
      await call.afterRecord();
    } catch (error) {
      warnings.push(`Metrics were not updated: ${(error as Error).message}`);
    }
  }
  return {
    overall: results.every((result) => result.outcome === 'PASS') ? 'PASS' : 'FAIL',
    results,
    warnings,
  };
}

/** Files restored and verified at once: enough to keep a disk busy, few enough to stay gentle. */
const FILE_CONCURRENCY = 8;

async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  });
  await Promise.all(workers);
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

async function recordResults(deps: Deps, results: RestoreTestResult[], warnings: string[]): Promise<void> {
  const timestamp = deps.clock().toISOString();
  const entries: RestoreTestEntry[] = results.map((result) => ({
    id: `rt-${randomBytes(6).toString('hex')}`,
    timestamp,
    host: deps.config.host,
    subvolume: result.volume,
    snapshot: result.snapshot,
    source: result.source,
    mode: result.mode,
    files_checked: result.filesChecked,
    bytes: result.bytesRestored,
    duration_seconds: result.durationSeconds,
    outcome: result.outcome === 'PASS' ? 'pass' : 'fail',
    // A broken snapshot can fail thousands of files; the history keeps the first 100 of them.
    failures: result.failures.slice(0, 100),
    population: result.population,
    ...(result.notCovered?.length
      ? { not_covered: result.notCovered.map(({ path, kind }) => ({ path, kind })) }
      : {}),
    seed: result.seed,
    throughput_bytes_per_second: result.throughputBytesPerSecond,
    rto_estimate_seconds: result.rtoEstimateSeconds,
  }));
  const { movedAside } = await deps.history.update((history) => {
    history.restore_tests.push(...entries);
  });
  if (movedAside) warnings.push(`The history file did not parse and was moved to ${movedAside}.`);
}

async function testVolume(run: VolumeRun): Promise<Outcome> {
  if (run.request.source === 'restic') return testRestic(run);
  const { volume, deps, request, call } = run;
  if (volume.backend === 'zfs') return testZfs(run);
  let sourceSnapshot: RawSnapshot;
  let referenceRoot: string;
  if (request.source === 'local') {
    sourceSnapshot = await pickLocalSnapshot(run);
    referenceRoot = sourceSnapshot.path;
  } else {
    const external = snapshotCopyLocations(volume).find((place) => place.dir);
    if (!external?.dir) {
      throw new SnapguardError(
        'PRECONDITION_FAILED',
        `Volume "${volume.id}" has no external copy of kind ${volume.backend} configured.`,
        `Add volumes.${volume.id}.external: [{ kind: ${volume.backend}, path: /path/to/received/snapshots }].`,
      );
    }
    const copies = await listExternalCopies(volume, external.dir);
    const chosen = request.snapshot ? copies.find((copy) => copy.name === request.snapshot) : copies[0];
    if (!chosen) {
      throw new SnapguardError(
        'SNAPSHOT_NOT_FOUND',
        request.snapshot
          ? `No external copy named "${request.snapshot}" under ${external.dir}.`
          : `No external copies of volume "${volume.id}" under ${external.dir}.`,
        'Replicate a snapshot there first (btrfs send | btrfs receive), or test source: local.',
      );
    }
    sourceSnapshot = chosen;
    const local = await deps.backendFor(volume).show(volume, chosen.name, { signal: call.signal });
    if (local) {
      referenceRoot = local.path;
    } else {
      referenceRoot = chosen.path;
      run.warnings.push(
        `${volume.id}: no local snapshot ${chosen.name} to compare with; the external copy was verified against itself (readability and restore only).`,
      );
    }
  }
  return request.mode === 'full'
    ? fullBtrfs(run, sourceSnapshot, referenceRoot)
    : sampleLocal(run, sourceSnapshot, referenceRoot);
}

/**
 * zfs: the snapshot is read through `.zfs/snapshot/<name>` or a temporary read-only clone (where
 * `.zfs` is not reachable, e.g. zfs-fuse), which is destroyed afterwards, also on failure.
 */
async function testZfs(run: VolumeRun): Promise<Outcome> {
  const { volume, deps, request, call } = run;
  if (request.source !== 'local' || request.mode === 'full') {
    throw new SnapguardError(
      'NOT_SUPPORTED',
      `Restore tests of zfs volume "${volume.id}" support source local in sample mode; ${request.source !== 'local' ? `source ${request.source}` : 'full mode'} is not available for zfs.`,
      'Run a sample test of the local snapshots (source: local, mode: sample), or test a restic copy (source: restic).',
    );
  }
  const backend = deps.backendFor(volume);
  if (!backend.openSnapshot) {
    throw new SnapguardError(
      'INTERNAL',
      `The ${backend.kind} backend cannot open snapshots.`,
      'Report this.',
    );
  }
  const snapshot = await pickLocalSnapshot(run);
  const reader = await backend.openSnapshot(volume, snapshot.name, { signal: call.signal });
  try {
    return await sampleLocal(run, { ...snapshot, path: reader.path }, reader.path);
  } finally {
    await reader.close();
  }
}

async function pickLocalSnapshot(run: VolumeRun): Promise<RawSnapshot> {
  const { deps, volume, request, call } = run;
  if (request.snapshot) return requireOwnedSnapshot(deps, volume, request.snapshot, call.signal);
  // Reading the folder finds the newest by its name without running `btrfs subvolume list` twice.
  let newest: RawSnapshot | undefined;
  if (volume.backend === 'btrfs') {
    // The newest subvolume by name that is also read-only (one `subvolume show` in the usual case).
    for (const candidate of await listExternalCopies(volume, volume.snapshotDir, { subvolumesOnly: true })) {
      const shown = await deps.backendFor(volume).show(volume, candidate.name, { signal: call.signal });
      if (shown?.readOnly) {
        newest = { ...shown, createdAt: candidate.createdAt };
        break;
      }
    }
  } else newest = (await ownedSnapshots(deps, volume, call.signal))[0]?.raw;
  if (!newest) {
    throw new SnapguardError(
      'SNAPSHOT_NOT_FOUND',
      `Volume "${volume.id}" has no snapguard snapshots to test.`,
      {
        mcp: `Take one: call create_snapshot with volumes ["${volume.id}"].`,
        cli: `Take one: \`snapguard snapshot create ${volume.id}\`.`,
      },
    );
  }
  return newest;
}

async function makeScratch(deps: Deps, base: string | undefined, volumeId: string): Promise<string> {
  return mkdtemp(
    join(base ?? deps.config.restoreTest.scratchDir ?? tmpdir(), `.snapguard-restore-test-${volumeId}-`),
  );
}

interface Expected {
  reference: FileReference;
  failure?: RestoreFailure;
}

/**
 * Restores `paths` from sourceRoot into scratch and verifies them against referenceRoot. Paths
 * are binary strings (one char per byte, see sampleTree's bytePaths); failures show them escaped.
 */
async function restoreAndVerify(
  run: VolumeRun,
  paths: readonly string[],
  sourceRoot: string,
  referenceRoot: string,
  targetRoot: string,
  options: { restore: boolean },
): Promise<{
  failures: RestoreFailure[];
  bytes: number;
  checked: number;
  references: Map<string, FileReference>;
}> {
  const { deps, call } = run;
  const failures: RestoreFailure[] = [];
  const restoredHashes = new Map<string, string | undefined>();
  let bytes = 0;
  const readable: string[] = [];
  let restoredCount = 0;
  await forEachLimit(paths, FILE_CONCURRENCY, async (path) => {
    call.signal?.throwIfAborted();
    try {
      if (options.restore) {
        const copied = await restoreEntry(
          pathUnder(sourceRoot, path),
          pathUnder(targetRoot, path),
          call.signal,
        );
        restoredHashes.set(path, copied.sha256);
        bytes += copied.bytes;
      } else {
        const info = await lstat(pathUnder(sourceRoot, path));
        bytes += info.isFile() ? info.size : 0;
      }
      readable.push(path);
    } catch (error) {
      if (error instanceof Error && error.name === 'AbortError') throw error;
      failures.push({
        path: displayBinary(path),
        check: 'read-error',
        expected: 'readable',
        actual: errorCode(error),
      });
    }
    restoredCount++;
    call.onProgress?.({
      progress: restoredCount,
      total: paths.length * 2,
      message: `${run.volume.id}: restored ${restoredCount}/${paths.length}`,
    });
  });
  // Keep the sample order in results whatever order the copies finished in.
  const order = new Map(paths.map((path, index) => [path, index]));
  readable.sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
  let sourceXattrs: Awaited<ReturnType<typeof readXattrs>> | undefined;
  if (options.restore && readable.length > 0) {
    sourceXattrs = await readXattrs(deps.exec, sourceRoot, readable, call.signal);
    await applyXattrs(deps.exec, targetRoot, sourceXattrs.dump, call.signal);
  }
  const [referenceXattrs, restoredXattrs] = await Promise.all([
    sourceXattrs && referenceRoot === sourceRoot
      ? sourceXattrs
      : readXattrs(deps.exec, referenceRoot, readable, call.signal),
    readXattrs(deps.exec, targetRoot, readable, call.signal),
  ]);
  const references = new Map<string, FileReference>();
  let checked = 0;
  const perFile = new Map<string, RestoreFailure[]>();
  let verifiedCount = 0;
  await forEachLimit(readable, FILE_CONCURRENCY, async (path) => {
    call.signal?.throwIfAborted();
    const fileFailures: RestoreFailure[] = [];
    perFile.set(path, fileFailures);
    const expected = await expectedFrom(
      referenceRoot,
      path,
      referenceRoot === sourceRoot ? restoredHashes.get(path) : undefined,
      call.signal,
    );
    if (expected.failure) {
      fileFailures.push(expected.failure);
      return;
    }
    expected.reference.xattrs = referenceXattrs.byPath.get(path);
    references.set(path, expected.reference);
    let actual: FileReference;
    try {
      actual = await referenceOf(pathUnder(targetRoot, path));
      if (actual.kind === 'file')
        actual.sha256 = (await hashFile(pathUnder(targetRoot, path), call.signal)).sha256;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      fileFailures.push({
        path: displayBinary(path),
        check: code === 'ENOENT' ? 'missing' : 'read-error',
        expected: 'restored',
        actual: errorCode(error),
      });
      return;
    }
    actual.xattrs = restoredXattrs.byPath.get(path);
    fileFailures.push(...compareEntry(displayBinary(path), expected.reference, actual));
    checked++;
    verifiedCount++;
    call.onProgress?.({
      progress: paths.length + verifiedCount,
      total: paths.length * 2,
      message: `${run.volume.id}: verified ${verifiedCount}/${readable.length}`,
    });
  });
  for (const path of readable) failures.push(...(perFile.get(path) ?? []));
  return { failures, bytes, checked, references };
}

async function expectedFrom(
  root: string,
  path: string,
  knownSha: string | undefined,
  signal?: AbortSignal,
): Promise<Expected> {
  try {
    const reference = await referenceOf(pathUnder(root, path));
    if (reference.kind === 'file')
      reference.sha256 = knownSha ?? (await hashFile(pathUnder(root, path), signal)).sha256;
    return { reference };
  } catch (error) {
    if (error instanceof Error && error.name === 'AbortError') throw error;
    const code = (error as NodeJS.ErrnoException).code;
    return {
      reference: undefined as unknown as FileReference,
      failure: {
        path: displayBinary(path),
        check: code === 'ENOENT' ? 'missing' : 'read-error',
        expected: `present and readable in the reference ${root}`,
        actual: errorCode(error),
      },
    };
  }
}

/** Whole seconds from 10 s on; below, two significant digits, so a sub-second RTO is not shown as 0. */
export function roundRto(seconds: number): number {
  if (seconds >= 10) return Math.round(seconds);
  return Number(seconds.toPrecision(2));
}

/** Files changed on the live volume since the snapshot: information, never a failure. */
async function liveDrift(
  volume: VolumeConfig,
  snapshotTime: Date,
  references: Map<string, FileReference>,
): Promise<Drift[]> {
  const drift: Drift[] = [];
  for (const [path, reference] of references) {
    try {
      const live = await lstat(pathUnder(volume.path, path), { bigint: true });
      // The snapshot's own mtime of the file tells a change apart; the snapshot's time (whole
      // seconds in its name) would count files written in the same second as changed.
      if (
        Number(live.mtimeNs / 1000n) !== reference.mtimeUs ||
        (reference.kind === 'file' && Number(live.size) !== reference.size)
      ) {
        drift.push({
          path: displayBinary(path),
          change: 'modified',
          detail: `live mtime ${live.mtime.toISOString()} (snapshot: ${new Date(reference.mtimeUs / 1000).toISOString()}), size ${live.size} (snapshot: ${reference.size})`,
        });
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        drift.push({
          path: displayBinary(path),
          change: 'deleted',
          detail: 'not on the live volume any more',
        });
    }
  }
  return drift;
}

const ADDED_LISTED = 50;

/**
 * Entries on the live volume that the snapshot does not have (added since it was taken). Only
 * entries whose ctime is after the snapshot are looked up in it (a create or rename sets ctime); a
 * new folder is reported once, not with its contents; other filesystems below the volume (nested
 * subvolumes, mounts) are not entered.
 */
async function addedSince(
  volume: VolumeConfig,
  snapshotRoot: string,
  signal?: AbortSignal,
): Promise<Drift[]> {
  // Added = a name in a live folder that the same folder of the snapshot does not have. Comparing
  // the two listings of each folder costs two readdirs a folder instead of an lstat a file, and
  // names are compared as bytes. Folders on another device (nested subvolumes, mounts) are not
  // entered: they are not part of the snapshot.
  let rootDev: number;
  try {
    rootDev = (await lstat(volume.path)).dev;
  } catch {
    return [];
  }
  const added: string[] = [];
  const pending: string[] = [''];
  const listNames = async (root: string, rel: string) =>
    readdir(pathUnder(root, rel), { withFileTypes: true, encoding: 'buffer' }).catch(() => undefined);
  const visit = async (rel: string): Promise<void> => {
    signal?.throwIfAborted();
    const [live, inSnapshot] = await Promise.all([listNames(volume.path, rel), listNames(snapshotRoot, rel)]);
    if (!live || !inSnapshot) return;
    const there = new Set(inSnapshot.map((entry) => binaryOf(entry.name)));
    for (const entry of live) {
      const name = binaryOf(entry.name);
      if (!rel && name.startsWith('.snapguard-')) continue;
      const path = rel ? `${rel}/${name}` : name;
      if (!there.has(name)) {
        added.push(path);
        continue;
      }
      if (!entry.isDirectory()) continue;
      const info = await lstat(pathUnder(volume.path, path)).catch(() => undefined);
      if (info?.dev === rootDev) pending.push(path);
    }
  };
  const running = new Set<Promise<void>>();
  let failure: unknown;
  while ((pending.length > 0 && failure === undefined) || running.size > 0) {
    while (pending.length > 0 && running.size < 8 && failure === undefined) {
      const job: Promise<void> = visit(pending.pop() as string)
        .catch((error: unknown) => {
          failure ??= error;
        })
        .finally(() => running.delete(job));
      running.add(job);
    }
    if (running.size > 0) await Promise.race(running);
  }
  if (failure !== undefined) throw failure;
  added.sort();
  const drift: Drift[] = added.slice(0, ADDED_LISTED).map((path) => ({
    path: displayBinary(path),
    change: 'added' as const,
    detail: 'on the live volume, not in the snapshot',
  }));
  if (added.length > ADDED_LISTED)
    drift.push({
      path: '.',
      change: 'added',
      detail: `${added.length - ADDED_LISTED} more added path(s) not listed`,
    });
  return drift;
}

function snapshotTime(volume: VolumeConfig, raw: RawSnapshot): Date {
  return parseSnapshotName(volume.id, raw.name)?.createdAt ?? raw.createdAt;
}

async function sampleLocal(run: VolumeRun, snapshot: RawSnapshot, referenceRoot: string): Promise<Outcome> {
  const { deps, volume, call } = run;
  const scratch = await makeScratch(deps, undefined, volume.id);
  try {
    const started = performance.now();
    const sample = await sampleTree(snapshot.path, run.sampleSize, {
      seed: run.seed,
      spread: run.request.spread,
      signal: call.signal,
      nestedPlaceholders: volume.backend === 'btrfs',
    });
    call.onProgress?.({
      progress: 0,
      total: sample.paths.length * 2,
      message: `${volume.id}: sampled ${sample.paths.length} of ${sample.population} files`,
    });
    const verified = await restoreAndVerify(run, sample.bytePaths, snapshot.path, referenceRoot, scratch, {
      restore: true,
    });
    const failures = [
      ...sample.unreadable.map((entry) => ({
        path: entry.path,
        check: 'read-error',
        expected: 'readable folder',
        actual: entry.code,
      })),
      ...verified.failures,
    ];
    return {
      snapshot: snapshot.name,
      checkedPaths: sample.paths,
      population: sample.population,
      filesChecked: verified.checked,
      bytesRestored: verified.bytes,
      restoreSeconds: (performance.now() - started) / 1000,
      failures,
      drift: [
        ...(await liveDrift(volume, snapshotTime(volume, snapshot), verified.references)),
        ...(await addedSince(volume, snapshot.path, call.signal)),
      ],
      rtoEstimateSeconds: null,
      placeholders: sample.placeholders,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function fileSize(path: string | Buffer): Promise<number> {
  return (await lstat(path)).size;
}

function censusFailures(expected: TreeCensus, actual: TreeCensus): RestoreFailure[] {
  const failures: RestoreFailure[] = [];
  if (expected.files !== actual.files || expected.symlinks !== actual.symlinks)
    failures.push({
      path: '.',
      check: 'file-count',
      expected: `${expected.files} files, ${expected.symlinks} symlinks`,
      actual: `${actual.files} files, ${actual.symlinks} symlinks`,
    });
  if (expected.directories !== actual.directories)
    failures.push({
      path: '.',
      check: 'directory-count',
      expected: String(expected.directories),
      actual: String(actual.directories),
    });
  if (expected.bytes !== actual.bytes)
    failures.push({
      path: '.',
      check: 'bytes',
      expected: String(expected.bytes),
      actual: String(actual.bytes),
    });
  for (const entry of [...expected.unreadable, ...actual.unreadable])
    failures.push({ path: entry.path, check: 'read-error', expected: 'readable folder', actual: entry.code });
  return failures;
}

/** Live size of the volume for the RTO estimate: the data a restore would have to write today. */
async function liveBytes(volume: VolumeConfig, signal?: AbortSignal): Promise<number> {
  const census = await censusTree(volume.path, { signal, sizeOf: fileSize });
  return census.bytes;
}

/** Full drill: btrfs send | btrfs receive into scratch on the pool, then verify the whole tree. */
async function fullBtrfs(run: VolumeRun, snapshot: RawSnapshot, referenceRoot: string): Promise<Outcome> {
  const { deps, volume, call } = run;
  const backend = deps.backendFor(volume);
  const sendReceive = backend.sendReceive?.bind(backend);
  if (!sendReceive) {
    throw new SnapguardError(
      'NOT_SUPPORTED',
      `Full restore drills need btrfs send/receive; volume "${volume.id}" uses the ${volume.backend} backend.`,
      'Run mode: sample for this volume, or a full drill from its restic copy (source: restic).',
    );
  }
  const base = deps.config.restoreTest.drillDir ?? dirname(volume.snapshotDir);
  const scratch = await makeScratch(deps, base, volume.id);
  const fifo = join(scratch, 'stream');
  const receiveDir = join(scratch, 'received');
  const received = join(receiveDir, snapshot.name);
  try {
    await deps.exec('mkfifo', ['-m', '600', fifo]);
    await deps.exec('mkdir', [receiveDir]);
    call.onProgress?.({ progress: 0, message: `${volume.id}: btrfs send | receive of ${snapshot.name}` });
    const started = performance.now();
    try {
      await sendReceive(snapshot, receiveDir, { signal: call.signal, fifo });
    } catch (cause) {
      call.signal?.throwIfAborted();
      // A stream that breaks (unreadable block, full pool) is a failed drill, recorded like any other failure.
      const message = cause instanceof Error ? cause.message : String(cause);
      return {
        snapshot: snapshot.name,
        checkedPaths: [],
        population: 0,
        filesChecked: 0,
        bytesRestored: 0,
        restoreSeconds: (performance.now() - started) / 1000,
        failures: [
          {
            path: '.',
            check: /input\/output error|EIO/i.test(message) ? 'read-error' : 'send-receive',
            expected: 'btrfs send | receive completes',
            actual: message,
          },
        ],
        drift: [],
        rtoEstimateSeconds: null,
      };
    }
    call.signal?.throwIfAborted();
    const restoreSeconds = (performance.now() - started) / 1000;
    call.onProgress?.({
      progress: 1,
      message: `${volume.id}: received in ${restoreSeconds.toFixed(1)} s, verifying`,
    });
    const [expected, actual] = await Promise.all([
      censusTree(referenceRoot, { signal: call.signal, sizeOf: fileSize, nestedPlaceholders: true }),
      censusTree(received, { signal: call.signal, sizeOf: fileSize, nestedPlaceholders: true }),
    ]);
    const sample = await sampleTree(referenceRoot, run.sampleSize, {
      seed: run.seed,
      spread: run.request.spread,
      signal: call.signal,
      nestedPlaceholders: true,
    });
    const verified = await restoreAndVerify(run, sample.bytePaths, received, referenceRoot, received, {
      restore: false,
    });
    const throughput = restoreSeconds > 0 ? actual.bytes / restoreSeconds : 0;
    const live = await liveBytes(volume, call.signal);
    return {
      snapshot: snapshot.name,
      checkedPaths: [],
      population: expected.files + expected.symlinks,
      filesChecked: actual.files + actual.symlinks,
      bytesRestored: actual.bytes,
      restoreSeconds,
      failures: [...censusFailures(expected, actual), ...verified.failures],
      drift: [],
      rtoEstimateSeconds: throughput > 0 ? roundRto(live / throughput) : null,
      placeholders: expected.placeholders,
    };
  } finally {
    await removeScratch(deps, backend, scratch, received);
  }
}

async function removeScratch(
  deps: Deps,
  backend: SnapshotBackend,
  scratch: string,
  received: string,
): Promise<void> {
  try {
    const info = await stat(received);
    // The root of a received btrfs subvolume is inode 256.
    if (info.isDirectory() && info.ino === 256) await backend.deleteReceived?.(received);
  } catch {
    // not received (yet): nothing to delete
  }
  await rm(scratch, { recursive: true, force: true }).catch((error: unknown) => {
    deps.logger.error({ scratch, err: error }, 'could not remove the restore test scratch folder');
  });
}

/** restic prints nanoseconds with a zone offset; Date keeps milliseconds, the fraction is added back. */
function resticMtimeUs(node: ResticNode): number {
  const fraction = /\.(\d+)/.exec(node.mtime)?.[1] ?? '';
  const ms = Date.parse(node.mtime);
  const extraUs = Number((fraction + '000000').slice(3, 6));
  return Math.floor(ms) * 1000 + extraUs;
}

/** Restic source: restore the sampled paths (or all) with restic restore, verify against the listing and the live files. */
async function testRestic(run: VolumeRun): Promise<Outcome> {
  const { deps, volume, request, call } = run;
  const external = snapshotLocations(volume).find((place) => place.kind === 'restic');
  if (!external?.repository) {
    throw new SnapguardError(
      'PRECONDITION_FAILED',
      `Volume "${volume.id}" has no restic repository configured.`,
      `Add volumes.${volume.id}.external: [{ kind: restic, repository: /path/or/url, passwordFile: /etc/snapguard/restic.pass }].`,
    );
  }
  if (!external.passwordFile && !process.env.RESTIC_PASSWORD && !process.env.RESTIC_PASSWORD_FILE) {
    throw new SnapguardError(
      'PRECONDITION_FAILED',
      `The restic repository of volume "${volume.id}" has no passwordFile.`,
      `Set volumes.${volume.id}.external[].passwordFile to a file holding the repository password (mode 0600).`,
    );
  }
  const restic = createRestic(deps.exec, {
    repository: external.repository,
    passwordFile: external.passwordFile,
    cacheDir: join(deps.config.stateDir, 'restic-cache'),
  });
  const snapshots = await restic.snapshots(call.signal);
  const forVolume = snapshots.filter((s) =>
    s.paths.some((p) => p === volume.path || p.startsWith(`${volume.path}/`)),
  );
  const candidates = (forVolume.length > 0 ? forVolume : snapshots).sort(
    (a, b) => b.time.getTime() - a.time.getTime(),
  );
  const chosen: ResticSnapshot | undefined = request.snapshot
    ? snapshots.find(
        (s) =>
          s.id === request.snapshot ||
          s.shortId === request.snapshot ||
          s.id.startsWith(request.snapshot as string),
      )
    : candidates[0];
  if (!chosen) {
    throw new SnapguardError(
      'SNAPSHOT_NOT_FOUND',
      request.snapshot
        ? `restic snapshot "${request.snapshot}" is not in ${redactUrls(external.repository)}.`
        : `The restic repository ${redactUrls(external.repository)} has no snapshots of ${volume.path}.`,
      'List them with `restic snapshots`; back the volume up first if there are none.',
    );
  }
  const root = chosen.paths.includes(volume.path) ? volume.path : (chosen.paths[0] ?? '/');
  const nodes = await restic.ls(chosen.id, call.signal);
  const sampler = new ReservoirSampler(
    request.mode === 'full' ? Number.MAX_SAFE_INTEGER : run.sampleSize,
    run.seed,
  );
  const byPath = new Map<string, ResticNode>();
  for (const node of nodes) {
    if ((node.type !== 'file' && node.type !== 'symlink') || !node.path.startsWith(`${root}/`)) continue;
    const rel = relative(root, node.path);
    if (request.mode === 'full') byPath.set(rel, node);
    sampler.offer(rel, request.spread ? topLevelGroup(rel) : '');
  }
  const picked = sampler.result();
  if (request.mode !== 'full')
    for (const rel of picked) byPath.set(rel, nodes.find((n) => n.path === join(root, rel)) as ResticNode);
  const scratch = await makeScratch(deps, undefined, volume.id);
  try {
    const started = performance.now();
    call.onProgress?.({
      progress: 0,
      total: picked.length,
      message: `${volume.id}: restic restore of ${picked.length} file(s)`,
    });
    const restored = await restic.restore(
      chosen.id,
      scratch,
      request.mode === 'full' ? [] : picked.map((rel) => join(root, rel)),
      call.signal,
    );
    const restoreSeconds = (performance.now() - started) / 1000;
    if (restored.exitCode !== 0)
      run.warnings.push(
        `${volume.id}: restic restore reported errors: ${restored.stderr.trim().split('\n').slice(-3).join(' | ')}`,
      );
    const failures: RestoreFailure[] = [];
    const drift: Drift[] = [];
    let bytes = 0;
    let checked = 0;
    for (const [index, rel] of picked.entries()) {
      call.signal?.throwIfAborted();
      const node = byPath.get(rel) as ResticNode;
      const target = join(scratch, root, rel);
      const expected: FileReference = {
        kind: node.type === 'symlink' ? 'symlink' : 'file',
        mode: node.mode & 0o777,
        uid: node.uid,
        gid: node.gid,
        mtimeUs: resticMtimeUs(node),
        size: node.type === 'symlink' ? 0 : node.size,
        ...(node.linktarget ? { linkTarget: binaryOf(Buffer.from(node.linktarget, 'utf8')) } : {}),
      };
      let actual: FileReference;
      try {
        actual = await referenceOf(target);
        actual.mode &= 0o777;
        if (actual.kind === 'symlink') actual.size = 0;
        if (actual.kind === 'file') actual.sha256 = (await hashFile(target, call.signal)).sha256;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        failures.push({
          path: rel,
          check: code === 'ENOENT' ? 'missing' : 'read-error',
          expected: `restored from restic snapshot ${chosen.shortId}`,
          actual:
            code === 'ENOENT'
              ? 'not restored (data missing or unreadable in the repository)'
              : errorCode(error),
        });
        continue;
      }
      // Content: compared with the live file when it has not changed since the backup.
      if (expected.kind === 'file') {
        try {
          const live = await lstat(join(root, rel));
          const liveUs = Number((await lstat(join(root, rel), { bigint: true })).mtimeNs / 1000n);
          if (live.mtimeMs <= chosen.time.getTime() && Math.abs(liveUs - expected.mtimeUs) <= 1) {
            expected.sha256 = (await hashFile(join(root, rel), call.signal)).sha256;
          } else {
            drift.push({
              path: rel,
              change: 'modified',
              detail: `live mtime ${live.mtime.toISOString()} differs from the backup; content checked against the repository's size only`,
            });
          }
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT')
            drift.push({ path: rel, change: 'deleted', detail: 'not on the live volume any more' });
        }
      }
      bytes += actual.size;
      failures.push(...compareEntry(rel, expected, actual, { xattrs: false }));
      checked++;
      call.onProgress?.({
        progress: index + 1,
        total: picked.length,
        message: `${volume.id}: verified ${index + 1}/${picked.length}`,
      });
    }
    return {
      snapshot: chosen.shortId,
      checkedPaths: request.mode === 'full' ? [] : picked,
      population: sampler.population,
      filesChecked: checked,
      bytesRestored: bytes,
      restoreSeconds,
      failures,
      drift,
      rtoEstimateSeconds:
        request.mode === 'full' && restoreSeconds > 0 && bytes > 0
          ? roundRto((await liveBytes(volume, call.signal)) / (bytes / restoreSeconds))
          : null,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
