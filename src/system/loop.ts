import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Exec } from './exec.js';
import { readMounts } from './mounts.js';

export interface LoopBtrfs {
  image: string;
  mountPoint: string;
  /** Creates the subvolume `name` at the top of the filesystem and returns its path. */
  subvolume(name: string): Promise<string>;
  /** A read-only snapshot of `source` at `target` (both on this filesystem). */
  readOnlySnapshot(source: string, target: string): Promise<void>;
  /** Unmounts (the loop device detaches itself: autoclear) and removes the image. Safe to call twice. */
  cleanup(): Promise<void>;
}

/** Whether a loop-mounted btrfs image can be made here: root, with btrfs-progs installed. */
export async function canUseLoopBtrfs(exec: Exec): Promise<{ ok: boolean; reason: string }> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not running as root (loop mounts need root)' };
  try {
    await exec('btrfs', ['--version'], { timeoutMs: 10_000 });
    await exec('mkfs.btrfs', ['--version'], { timeoutMs: 10_000 });
    return { ok: true, reason: 'root with btrfs-progs' };
  } catch {
    return { ok: false, reason: 'btrfs-progs is not installed' };
  }
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
    async subvolume(subvolumeName: string) {
      const path = join(mountPoint, subvolumeName);
      await exec('btrfs', ['subvolume', 'create', path]);
      return path;
    },
    async readOnlySnapshot(source: string, target: string) {
      await exec('btrfs', ['subvolume', 'snapshot', '-r', source, target]);
    },
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

/**
 * Unmounts `mountPoint` when something is mounted there (a loop mount detaches its device:
 * autoclear) and detaches a loop device still bound to `image`. For a sandbox left by
 * `createLoopBtrfs` whose handle is gone (`snapguard demo --keep`, then `--clean`).
 */
export async function releaseLoopMount(exec: Exec, image: string, mountPoint: string): Promise<void> {
  if (readMounts().some((entry) => entry.mountPoint === mountPoint))
    await exec('umount', [mountPoint]).catch(() => exec('umount', ['-l', mountPoint]));
  const bound = await exec('losetup', ['-j', image]).catch(() => ({ stdout: '' }));
  for (const line of bound.stdout.split('\n')) {
    const device = line.split(':')[0]?.trim();
    if (device?.startsWith('/dev/loop')) await exec('losetup', ['-d', device]).catch(() => undefined);
  }
}
