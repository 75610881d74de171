import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Exec } from '../system/exec.js';
import type {
  BackendCallOptions,
  BackendVolume,
  ListOptions,
  PoolUsage,
  RawSnapshot,
  SnapshotBackend,
} from './types.js';
import { statfsUsage } from './usage.js';

/** Copies in progress carry this prefix, so a half-made copy never looks like a snapshot. */
export const PARTIAL_PREFIX = '.snapguard-partial-';

/** Where restoreTree builds a tree before renaming it to `destination`. */
export const partialTreeOf = (destination: string) => `${destination}.snapguard-partial`;

async function copySnapshot(
  exec: Exec,
  volume: BackendVolume,
  name: string,
  options: BackendCallOptions = {},
): Promise<RawSnapshot> {
  await mkdir(volume.snapshotDir, { recursive: true });
  const target = join(volume.snapshotDir, name);
  const partial = join(volume.snapshotDir, `${PARTIAL_PREFIX}${name}`);
  const startedAt = new Date();
  try {
    await exec('cp', ['-a', '--reflink=auto', '--', volume.path, partial], {
      signal: options.signal,
      timeoutMs: 6 * 3600_000,
    });
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    throw error;
  }
  return { name, path: target, createdAt: startedAt, readOnly: false };
}

async function listCopies(volume: BackendVolume, options: ListOptions = {}): Promise<RawSnapshot[]> {
  const dir = options.dir ?? volume.snapshotDir;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const snapshots: RawSnapshot[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith(PARTIAL_PREFIX)) continue;
    const path = join(dir, entry.name);
    const stats = await lstat(path);
    snapshots.push({
      name: entry.name,
      path,
      createdAt: stats.birthtimeMs > 0 ? stats.birthtime : stats.mtime,
      readOnly: false,
      id: String(stats.ino),
    });
  }
  return snapshots;
}

async function showCopy(volume: BackendVolume, name: string): Promise<RawSnapshot | undefined> {
  const path = join(volume.snapshotDir, name);
  try {
    const stats = await lstat(path);
    if (!stats.isDirectory()) return undefined;
    return {
      name,
      path,
      createdAt: stats.birthtimeMs > 0 ? stats.birthtime : stats.mtime,
      readOnly: false,
      id: String(stats.ino),
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** A copy into a partial folder next to `destination`, renamed into place once complete. */
async function copyTreeInto(
  exec: Exec,
  volume: BackendVolume,
  name: string,
  destination: string,
  options: BackendCallOptions = {},
): Promise<void> {
  const partial = partialTreeOf(destination);
  await rm(partial, { recursive: true, force: true });
  await exec(
    'cp',
    ['-a', '--reflink=auto', '--no-target-directory', '--', join(volume.snapshotDir, name), partial],
    { signal: options.signal, timeoutMs: 3_600_000 },
  );
  await rename(partial, destination);
}

/**
 * Copy-based snapshots for filesystems without native ones. `cp -a --reflink=auto` shares blocks
 * where the filesystem can (XFS, btrfs) and copies otherwise. The copy is not write-protected:
 * readOnly is reported as false.
 */
export function createDirBackend(exec: Exec): SnapshotBackend {
  return {
    kind: 'dir',
    writableSnapshots: true,

    create: (volume, name, options) => copySnapshot(exec, volume, name, options),

    list: (volume, options) => listCopies(volume, options),

    async nameTaken(volume: BackendVolume, name: string): Promise<boolean> {
      return lstat(join(volume.snapshotDir, name)).then(
        () => true,
        (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return false;
          throw error;
        },
      );
    },

    show: (volume, name) => showCopy(volume, name),

    async delete(volume: BackendVolume, name: string): Promise<void> {
      await rm(join(volume.snapshotDir, name), { recursive: true, force: false });
    },

    async poolUsage(volume: BackendVolume): Promise<PoolUsage> {
      return statfsUsage(volume.path);
    },

    restoreTree: (volume, name, destination, options) =>
      copyTreeInto(exec, volume, name, destination, options),

    async discardPartialTree(destination: string): Promise<void> {
      await rm(partialTreeOf(destination), { recursive: true, force: true });
    },

    async removeTree(path: string): Promise<void> {
      await rm(path, { recursive: true, force: true });
    },

    /** A copy cannot tell what changed since it was made: every pre-change snapshot is taken anew. */
    async unchangedSince(): Promise<boolean> {
      return false;
    },
  };
}
