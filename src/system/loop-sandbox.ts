import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Exec } from './exec.js';
import { createLoopBtrfs } from './loop.js';

/**
 * A throwaway place for volumes (the demo's sandbox): a loop-mounted btrfs image, or a plain folder
 * where snapshots are copies.
 */
export interface SandboxPool {
  kind: 'btrfs' | 'dir';
  /** The image file and its mount point (btrfs only). */
  image?: string;
  mountPoint?: string;
  /** Makes the volume `name` in the pool (a subvolume on btrfs, a folder otherwise); returns its path. */
  volume(name: string): Promise<string>;
  /** A snapshot of `source` at `target` as another tool would make it (btrfs: read-only; else a copy). */
  foreignSnapshot(source: string, target: string): Promise<void>;
  /** Unmounts and removes the image (btrfs); a folder pool is left to whoever removes the sandbox. */
  cleanup(): Promise<void>;
}

/** Makes a pool of that kind under `dir` (btrfs: an image of `sizeBytes`, which needs root). */
export async function createSandboxPool(
  exec: Exec,
  dir: string,
  kind: 'btrfs' | 'dir',
  sizeBytes = 256 * 1024 * 1024,
): Promise<SandboxPool> {
  if (kind === 'btrfs') {
    const loop = await createLoopBtrfs(exec, dir, sizeBytes);
    return {
      kind,
      image: loop.image,
      mountPoint: loop.mountPoint,
      volume: (name) => loop.subvolume(name),
      foreignSnapshot: (source, target) => loop.readOnlySnapshot(source, target),
      cleanup: () => loop.cleanup(),
    };
  }
  const poolDir = join(dir, 'pool');
  return {
    kind,
    async volume(name) {
      const path = join(poolDir, name);
      await mkdir(path, { recursive: true });
      return path;
    },
    async foreignSnapshot(source, target) {
      await exec('cp', ['-a', source, target]);
    },
    cleanup: async () => undefined,
  };
}
