import { lstat, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RawSnapshot, SnapshotBackend } from '../../backends/types.js';
import type { VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { parseSnapshotName } from '../naming.js';
import type { FileReference, RestoreFailure } from './files.js';
import { censusTree } from './sampler.js';
import { RunRestoreTestInput, type RestoreTestResult } from './schemas.js';

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

export type Drift = RestoreTestResult['drift'][number];

export type NotCovered = NonNullable<RestoreTestResult['notCovered']>[number];

export interface VolumeRun {
  volume: VolumeConfig;
  request: ReturnType<typeof RunRestoreTestInput.parse>;
  seed: number;
  sampleSize: number;
  deps: Deps;
  call: RestoreTestCall;
  warnings: string[];
}

export interface Outcome {
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

/** Files restored and verified at once: enough to keep a disk busy, few enough to stay gentle. */
export const FILE_CONCURRENCY = 8;

export async function forEachLimit<T>(
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

export function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

export async function makeScratch(deps: Deps, base: string | undefined, volumeId: string): Promise<string> {
  return mkdtemp(
    join(base ?? deps.config.restoreTest.scratchDir ?? tmpdir(), `.snapguard-restore-test-${volumeId}-`),
  );
}

export interface Expected {
  reference: FileReference;
  failure?: RestoreFailure;
}

export function snapshotTime(volume: VolumeConfig, raw: RawSnapshot): Date {
  return parseSnapshotName(volume.id, raw.name)?.createdAt ?? raw.createdAt;
}

export async function fileSize(path: string | Buffer): Promise<number> {
  return (await lstat(path)).size;
}

/** Live size of the volume for the RTO estimate: the data a restore would have to write today. */
export async function liveBytes(volume: VolumeConfig, signal?: AbortSignal): Promise<number> {
  const census = await censusTree(volume.path, { signal, sizeOf: fileSize });
  return census.bytes;
}

export async function removeScratch(
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
