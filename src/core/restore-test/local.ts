import { rm } from 'node:fs/promises';
import type { RawSnapshot } from '../../backends/types.js';
import { SnapguardError } from '../errors.js';
import { ownedSnapshots, requireOwnedSnapshot } from '../snapshots.js';
import { listExternalCopies } from './external.js';
import { sampleTree } from './sampler.js';
import { type VolumeRun, type Outcome, makeScratch, snapshotTime } from './run-context.js';
import { restoreAndVerify } from './verify.js';
import { liveDrift, addedSince } from './drift.js';

/**
 * zfs: the snapshot is read through `.zfs/snapshot/<name>` or a temporary read-only clone (where
 * `.zfs` is not reachable, e.g. zfs-fuse), which is destroyed afterwards, also on failure.
 */
export async function testZfs(run: VolumeRun): Promise<Outcome> {
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

export async function pickLocalSnapshot(run: VolumeRun): Promise<RawSnapshot> {
  const { deps, volume, request, call } = run;
  if (request.snapshot) return requireOwnedSnapshot(deps, volume, request.snapshot, call.signal);
  // Reading the folder finds the newest by its name without running `btrfs subvolume list` twice.
  let newest: RawSnapshot | undefined;
  const backend = deps.backendFor(volume);
  if (backend.firstReadOnly) {
    // The owned names in the folder, newest first; the storage says which is a read-only snapshot.
    const candidates = await listExternalCopies(volume, volume.snapshotDir);
    const shown = await backend.firstReadOnly(
      volume,
      candidates.map((candidate) => candidate.name),
      { signal: call.signal },
    );
    const candidate = shown && candidates.find((c) => c.name === shown.name);
    if (shown && candidate) newest = { ...shown, createdAt: candidate.createdAt };
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

export async function sampleLocal(
  run: VolumeRun,
  snapshot: RawSnapshot,
  referenceRoot: string,
): Promise<Outcome> {
  const { deps, volume, call } = run;
  const scratch = await makeScratch(deps, undefined, volume.id);
  try {
    const started = performance.now();
    const sample = await sampleTree(snapshot.path, run.sampleSize, {
      seed: run.seed,
      spread: run.request.spread,
      signal: call.signal,
      // A backend with nested trees (btrfs subvolumes) leaves an empty folder in their place in a snapshot.
      nestedPlaceholders: deps.backendFor(volume).nestedSubvolumes !== undefined,
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
