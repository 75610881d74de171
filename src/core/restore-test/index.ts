import { randomBytes, randomInt } from 'node:crypto';
import { requireVolume } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError, hostErrorHints } from '../errors.js';
import type { RestoreTestEntry } from '../history/schema.js';
import { parseInput } from '../validate.js';
import type { RestoreFailure } from './files.js';
import { RunRestoreTestInput, type RestoreTestResult, type RunRestoreTestResult } from './schemas.js';
import { type RestoreTestCall, type VolumeRun, type Outcome, round } from './run-context.js';
import { liveNotCovered, mergeNotCovered, underAny } from './not-covered.js';
import { testVolume } from './volume.js';

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

/**
 * Proves that a snapshot (or a received copy, or a restic snapshot) restores: restores a random
 * sample (or everything) into a scratch folder by reading the data, verifies content and
 * metadata, records the result in history and removes the scratch folder in every case.
 *
 * The parts: volume.ts picks the way a volume is tested (local.ts: a sample of a local snapshot
 * or of a zfs snapshot opened for reading; full-btrfs.ts: the whole snapshot sent and received;
 * restic.ts: a restic snapshot), verify.ts restores and checks files, drift.ts tells drift of the
 * live volume from damage, not-covered.ts names what the volume's snapshots do not hold, and
 * run-context.ts holds what they share.
 */
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
    results.push(await testOneVolume({ volume, request, seed, sampleSize, deps, call, warnings }));
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

/** One volume's test, as its result: a missing snapshot is a FAIL of that volume unless one was named. */
async function testOneVolume(run: VolumeRun): Promise<RestoreTestResult> {
  const { volume, request, seed, deps, call } = run;
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
  return {
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
  };
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

export type { Progress, RestoreTestCall } from './run-context.js';
export { roundRto } from './verify.js';
