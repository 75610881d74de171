import { dirname, join } from 'node:path';
import type { RawSnapshot } from '../../backends/types.js';
import { SnapguardError } from '../errors.js';
import { censusTree, sampleTree } from './sampler.js';
import {
  type VolumeRun,
  type Outcome,
  makeScratch,
  fileSize,
  liveBytes,
  removeScratch,
} from './run-context.js';
import { restoreAndVerify, roundRto, censusFailures } from './verify.js';

/** A stream that breaks (unreadable block, full pool) is a failed drill, recorded like any other failure. */
function brokenStream(snapshot: RawSnapshot, restoreSeconds: number, cause: unknown): Outcome {
  const message = cause instanceof Error ? cause.message : String(cause);
  return {
    snapshot: snapshot.name,
    checkedPaths: [],
    population: 0,
    filesChecked: 0,
    bytesRestored: 0,
    restoreSeconds,
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

/** Compares the received tree with the reference: counts of the whole tree, content of a sample. */
async function verifyReceived(
  run: VolumeRun,
  snapshot: RawSnapshot,
  received: string,
  referenceRoot: string,
  restoreSeconds: number,
): Promise<Outcome> {
  const { volume, call } = run;
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
}

/** Full drill: btrfs send | btrfs receive into scratch on the pool, then verify the whole tree. */
export async function fullBtrfs(
  run: VolumeRun,
  snapshot: RawSnapshot,
  referenceRoot: string,
): Promise<Outcome> {
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
      return brokenStream(snapshot, (performance.now() - started) / 1000, cause);
    }
    call.signal?.throwIfAborted();
    const restoreSeconds = (performance.now() - started) / 1000;
    call.onProgress?.({
      progress: 1,
      message: `${volume.id}: received in ${restoreSeconds.toFixed(1)} s, verifying`,
    });
    return await verifyReceived(run, snapshot, received, referenceRoot, restoreSeconds);
  } finally {
    await removeScratch(deps, backend, scratch, received);
  }
}
