import { lstat, mkdir, readdir, realpath } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SnapguardError } from '../shared/errors.js';
import { normaliseRelativePath } from '../shared/relative-path.js';
import type { Exec } from '../system/exec.js';
import { readMounts } from '../system/mounts.js';
import type { BackendCallOptions, BackendVolume, RawSnapshot } from './types.js';
import type { ZfsBackend } from './zfs.js';

/**
 * Bringing a ZFS dataset back to a snapshot without destroying anything.
 *
 * `zfs rollback` is never used: it only reaches the newest snapshot, and `-r`/`-R` destroy every
 * newer snapshot (and their clones). Promote/rename tricks move foreign (sanoid/syncoid) snapshots
 * to another dataset name, which breaks their tools. Instead the current state is first kept as a
 * safety snapshot, then the live files are replaced by the snapshot's files (read through
 * `.zfs/snapshot` or a temporary read-only clone). The dataset, its guid and every snapshot, older
 * and newer, owned and foreign, stay exactly as they are; the safety snapshot becomes the newest.
 * The cost: the restored data is written anew (not shared with the target snapshot's blocks), so it
 * needs free space roughly the size of the restored tree, and it takes the time of a full copy.
 */

export interface ZfsRevertPlan {
  volume: string;
  dataset: string;
  mountpoint: string;
  target: string;
  safetySnapshot: string;
  /** Whether the safety snapshot exists already (a resumed revert reuses it, never retakes it). */
  safetyExists: boolean;
  newerSnapshots: { name: string; producer: RawSnapshot['producer']; effect: 'kept unchanged' }[];
  steps: string[];
  /** One sentence on what happens to newer snapshots, for the confirmation gate. */
  newerSnapshotsEffect: string;
}

export interface ZfsRevertResult {
  plan: ZfsRevertPlan;
  safetySnapshot: RawSnapshot;
  via: 'snapdir' | 'clone' | 'path';
}

function childMounts(mountpoint: string): string[] {
  return readMounts()
    .map((entry) => entry.mountPoint)
    .filter((mp) => mp.startsWith(`${mountpoint}/`));
}

/**
 * The dataset's mountpoint, when it is mounted where the volume's path says. Rollback
 * (`nested: 'refuse'`) also refuses when another filesystem is mounted inside, since its contents
 * are not part of the dataset's snapshots; files mode checks its paths instead.
 */
export async function requireZfsMount(
  backend: ZfsBackend,
  volume: BackendVolume,
  options: BackendCallOptions & { nested?: 'refuse' | 'allow' } = {},
): Promise<string> {
  const mount = await backend.mountInfo(volume, options);
  if (!mount.mounted || !mount.mountpoint) {
    throw new SnapguardError(
      'PRECONDITION_FAILED',
      `Dataset ${volume.dataset} is not mounted, so its files cannot be restored in place.`,
      `Mount it (zfs mount ${volume.dataset}) and try again.`,
    );
  }
  const configured = await realpath(volume.path).catch(() => volume.path);
  if (configured !== mount.mountpoint) {
    throw new SnapguardError(
      'CONFIG_INVALID',
      `Volume "${volume.id}" has path ${volume.path}, but dataset ${volume.dataset} is mounted at ${mount.mountpoint}.`,
      `Set volumes.${volume.id}.path to ${mount.mountpoint} so snapguard restores into the dataset it snapshots.`,
    );
  }
  const nested = options.nested === 'allow' ? [] : childMounts(mount.mountpoint);
  if (nested.length > 0) {
    throw new SnapguardError(
      'NOT_SUPPORTED',
      `Refusing to restore ${volume.dataset}: other filesystems are mounted inside it (${nested.slice(0, 5).join(', ')}${nested.length > 5 ? ', …' : ''}), and their contents are not part of its snapshots.`,
      'Configure each child dataset as its own volume and recover them one by one, or restore single paths with files mode.',
    );
  }
  return mount.mountpoint;
}

/** The plan for `revertZfsDataset`, without changing anything. */
export async function planZfsRevert(
  backend: ZfsBackend,
  volume: BackendVolume,
  target: string,
  safetyName: string,
  options: BackendCallOptions & { nested?: 'refuse' | 'allow' } = {},
): Promise<ZfsRevertPlan> {
  const mountpoint = await requireZfsMount(backend, volume, options);
  const all = await backend.list(volume, options);
  const index = all.findIndex((raw) => raw.name === target);
  const found = all[index];
  if (!found) {
    throw new SnapguardError('SNAPSHOT_NOT_FOUND', `Snapshot ${volume.dataset}@${target} does not exist.`, {
      mcp: `Call list_snapshots with volume "${volume.id}" for the names that exist.`,
      cli: `Run \`snapguard snapshot list ${volume.id}\` for the names that exist.`,
    });
  }
  // zfs lists a dataset's snapshots in creation order; equal creation seconds keep that order.
  const newer = all.filter(
    (raw, i) =>
      raw.name !== safetyName &&
      (raw.createdAt > found.createdAt ||
        (raw.createdAt.getTime() === found.createdAt.getTime() && i > index)),
  );
  const safetyExists = all.some((raw) => raw.name === safetyName);
  const dataset = volume.dataset as string;
  return {
    volume: volume.id,
    dataset,
    mountpoint,
    target,
    safetySnapshot: safetyName,
    safetyExists,
    newerSnapshots: newer.map((raw) => ({
      name: raw.name,
      producer: raw.producer,
      effect: 'kept unchanged',
    })),
    newerSnapshotsEffect:
      newer.length === 0
        ? `No snapshot is newer than ${target}; nothing else changes.`
        : `All ${newer.length} newer snapshot${newer.length > 1 ? 's' : ''} (${newer.map((raw) => raw.name).join(', ')}) stay on ${dataset} unchanged: no zfs rollback, no destroy, no rename. They remain restorable.`,
    steps: [
      safetyExists
        ? `reuse the existing safety snapshot ${dataset}@${safetyName} (a resumed recovery)`
        : `zfs snapshot ${dataset}@${safetyName} (keeps the current state; it becomes the newest snapshot)`,
      `open ${dataset}@${target} for reading (.zfs/snapshot, or a temporary read-only clone destroyed afterwards)`,
      `remove the current files under ${mountpoint} (they stay in ${safetyName})`,
      `copy the snapshot's files into ${mountpoint} with owners, modes, times, links and xattrs (cp -a)`,
    ],
  };
}

async function clearDirectory(exec: Exec, dir: string, options: BackendCallOptions): Promise<void> {
  for (const entry of await readdir(dir)) {
    if (entry === '.zfs') continue;
    // --one-file-system: never descend into anything mounted below (checked above, kept as a guard).
    await exec('rm', ['-rf', '--one-file-system', '--', join(dir, entry)], {
      signal: options.signal,
      timeoutMs: 6 * 3600_000,
    });
  }
}

/**
 * Replaces every file under the mounted dataset with the tree of snapshot `name`, without taking
 * a safety snapshot first: the caller has one (revert), or is putting one back after a failure.
 */
async function replaceTreeFromSnapshot(
  backend: ZfsBackend,
  exec: Exec,
  volume: BackendVolume,
  name: string,
  options: BackendCallOptions = {},
): Promise<'snapdir' | 'clone' | 'path'> {
  const mountpoint = await requireZfsMount(backend, volume, options);
  const reader = await backend.openSnapshot(volume, name, options);
  try {
    await clearDirectory(exec, mountpoint, options);
    await exec('cp', ['-a', '--', `${reader.path}/.`, `${mountpoint}/`], {
      signal: options.signal,
      timeoutMs: 6 * 3600_000,
    });
  } finally {
    await reader.close();
  }
  return reader.via;
}

/**
 * Makes the dataset's live files those of `target`, keeping the current state as the snapshot
 * `safetyName` (an owned pre-recover name chosen by the caller). Idempotent: after a crash, calling
 * it again with the same names reuses the safety snapshot and finishes the copy. Undo is the same
 * call with the safety snapshot as target.
 */
export async function revertZfsDataset(
  backend: ZfsBackend,
  exec: Exec,
  volume: BackendVolume,
  target: string,
  safetyName: string,
  options: BackendCallOptions = {},
): Promise<ZfsRevertResult> {
  if (target === safetyName) {
    throw new SnapguardError(
      'BAD_INPUT',
      'The safety snapshot cannot be the target.',
      'Choose another name.',
    );
  }
  const plan = await planZfsRevert(backend, volume, target, safetyName, options);
  const safetySnapshot = plan.safetyExists
    ? ((await backend.show(volume, safetyName, options)) as RawSnapshot)
    : await backend.create(volume, safetyName, options);
  const via = await replaceTreeFromSnapshot(backend, exec, volume, target, options);
  return { plan, safetySnapshot, via };
}

async function insideRoot(root: string, path: string): Promise<boolean> {
  // Resolve the deepest existing ancestor: a symlink anywhere on the way must not lead outside.
  let probe = path;
  for (;;) {
    try {
      const real = await realpath(probe);
      return real === root || real.startsWith(`${root}/`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      const parent = dirname(probe);
      if (parent === probe) return false;
      probe = parent;
    }
  }
}

/**
 * Restores single paths (files or directories) from `target` into the live dataset, after keeping
 * the current state as `safetyName`. Everything else, and every snapshot, stays as it is.
 */
export async function restoreZfsPaths(
  backend: ZfsBackend,
  exec: Exec,
  volume: BackendVolume,
  target: string,
  paths: readonly string[],
  safetyName: string,
  options: BackendCallOptions = {},
): Promise<ZfsRevertResult & { restored: string[] }> {
  // The same check as core's file restore: "." is the whole tree.
  const relative = [...new Set(paths.map(normaliseRelativePath))];
  if (relative.length === 0) {
    throw new SnapguardError('BAD_INPUT', 'No paths to restore.', 'Name at least one path.');
  }
  const wholeTree = relative.includes('.');
  // The whole tree, like a rollback, refuses filesystems mounted inside: their files are in no snapshot.
  const plan = await planZfsRevert(backend, volume, target, safetyName, {
    ...options,
    nested: wholeTree ? 'refuse' : 'allow',
  });
  const reader = await backend.openSnapshot(volume, target, options);
  try {
    const sourceRoot = await realpath(reader.path);
    const liveRoot = plan.mountpoint;
    for (const rel of wholeTree ? [] : relative) {
      const source = join(sourceRoot, rel);
      // The source itself may be a symlink (copied as a link); its parent chain must stay inside.
      if (!(await insideRoot(sourceRoot, dirname(source)))) {
        throw new SnapguardError('BAD_INPUT', `${rel} leads outside the snapshot.`, 'Name a path inside it.');
      }
      await lstat(source).catch(() => {
        throw new SnapguardError(
          'SNAPSHOT_NOT_FOUND',
          `${rel} does not exist in ${volume.dataset}@${target}.`,
          'List the snapshot contents and name a path that exists there.',
        );
      });
      if (!(await insideRoot(liveRoot, dirname(join(liveRoot, rel))))) {
        throw new SnapguardError(
          'BAD_INPUT',
          `${rel} leads outside the volume through a symlink.`,
          'Name a path inside it.',
        );
      }
    }
    const safetySnapshot = plan.safetyExists
      ? ((await backend.show(volume, safetyName, options)) as RawSnapshot)
      : await backend.create(volume, safetyName, options);
    if (wholeTree) {
      await clearDirectory(exec, liveRoot, options);
      await exec('cp', ['-a', '--', `${sourceRoot}/.`, `${liveRoot}/`], {
        signal: options.signal,
        timeoutMs: 6 * 3600_000,
      });
      return { plan, safetySnapshot, via: reader.via, restored: ['.'] };
    }
    for (const rel of relative) {
      const destination = join(liveRoot, rel);
      await exec('rm', ['-rf', '--one-file-system', '--', destination], { signal: options.signal });
      await mkdir(dirname(destination), { recursive: true });
      await exec('cp', ['-a', '--', join(sourceRoot, rel), destination], {
        signal: options.signal,
        timeoutMs: 6 * 3600_000,
      });
    }
    return { plan, safetySnapshot, via: reader.via, restored: relative };
  } finally {
    await reader.close();
  }
}

/**
 * Attaches the in-place recovery of zfs to its backend (datasets are never swapped: their files are
 * replaced, see docs/zfs.md), so that recovery reaches it through SnapshotBackend.
 */
export function withInPlaceRecovery(backend: ZfsBackend, exec: Exec): ZfsBackend {
  return Object.assign(backend, {
    async checkInPlace(
      volume: BackendVolume,
      options: BackendCallOptions & { nested?: 'refuse' | 'allow' } = {},
    ): Promise<void> {
      await requireZfsMount(backend, volume, options);
    },
    planInPlace: (
      volume: BackendVolume,
      name: string,
      safetyName: string,
      options: BackendCallOptions & { nested?: 'refuse' | 'allow' } = {},
    ): Promise<ZfsRevertPlan> => planZfsRevert(backend, volume, name, safetyName, options),
    async replaceTree(volume: BackendVolume, name: string, options: BackendCallOptions = {}): Promise<void> {
      await replaceTreeFromSnapshot(backend, exec, volume, name, options);
    },
    async restorePaths(
      volume: BackendVolume,
      name: string,
      paths: readonly string[],
      safetyName: string,
      options: BackendCallOptions = {},
    ): Promise<void> {
      await restoreZfsPaths(backend, exec, volume, name, paths, safetyName, options);
    },
  });
}
