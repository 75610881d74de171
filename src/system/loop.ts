import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Exec } from './exec.js';

export interface LoopBtrfs {
  image: string;
  mountPoint: string;
  /** Unmounts (the loop device detaches itself: autoclear) and removes the image. Safe to call twice. */
  cleanup(): Promise<void>;
}

/** A btrfs filesystem in a sparse image file, loop-mounted under `dir`. Needs root. */
export async function createLoopBtrfs(
  exec: Exec,
  dir: string,
  sizeBytes: number,
  name = 'pool',
): Promise<LoopBtrfs> {
  const image = join(dir, `${name}.img`);
  const mountPoint = join(dir, name);
  await mkdir(mountPoint, { recursive: true });
  await exec('truncate', ['-s', String(sizeBytes), image]);
  await exec('mkfs.btrfs', ['-q', '-f', image]);
  await exec('mount', ['-o', 'loop', image, mountPoint]);
  let mounted = true;
  return {
    image,
    mountPoint,
    async cleanup() {
      if (mounted) {
        // A lazy unmount as the fallback: a test that failed may still hold a file open.
        await exec('umount', [mountPoint]).catch(() => exec('umount', ['-l', mountPoint]));
        mounted = false;
      }
      await rm(image, { force: true });
      await rm(mountPoint, { recursive: true, force: true });
    },
  };
}
