import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isZfsBackend, type ZfsBackend } from '../../backends/zfs.js';
import type { SnapshotBackend } from '../../backends/types.js';
import { requireVolume, type VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError } from '../errors.js';
import type { Journal, JournalItem } from './journal.js';

// What recovery needs to know about zfs volumes: their snapshots are asked of the backend (zfs-fuse
// has no .zfs folder), and their files are replaced in place, never swapped (docs/zfs.md).

export function zfsBackendOf(deps: Deps, volume: VolumeConfig): ZfsBackend {
  const backend = deps.backendFor(volume);
  if (!isZfsBackend(backend)) {
    throw new SnapguardError('INTERNAL', `Volume "${volume.id}" has no zfs backend.`, 'Report this.');
  }
  return backend;
}

type InPlaceBackend = SnapshotBackend & Required<Pick<SnapshotBackend, 'replaceTree' | 'restorePaths'>>;

/** The backend of a volume recovered in place (zfs): its files are replaced, never swapped. */
function inPlaceBackendOf(deps: Deps, volume: VolumeConfig): InPlaceBackend {
  const backend = deps.backendFor(volume);
  if (!backend.replaceTree || !backend.restorePaths) {
    throw new SnapguardError(
      'INTERNAL',
      `The ${backend.kind} backend of volume "${volume.id}" cannot replace files in place.`,
      'Report this.',
    );
  }
  return backend as InPlaceBackend;
}

/** Runs `work` on a readable folder of a zfs snapshot (.zfs/snapshot or a temporary clone). */
export async function withZfsSnapshot<T>(
  deps: Deps,
  volume: VolumeConfig,
  name: string,
  work: (path: string) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const backend = deps.backendFor(volume);
  if (!backend.openSnapshot) {
    throw new SnapguardError(
      'INTERNAL',
      `The ${backend.kind} backend of volume "${volume.id}" cannot open a snapshot for reading.`,
      'Report this.',
    );
  }
  const reader = await backend.openSnapshot(volume, name, { signal });
  try {
    return await work(reader.path);
  } finally {
    await reader.close();
  }
}

const volumeOfItem = (deps: Deps, item: JournalItem): VolumeConfig =>
  deps.config.volumes[item.volume] ?? requireVolume(deps.config, item.volume);

/** Whether a snapshot exists, asked the backend's way: zfs snapshots have no folder on every system. */
export async function snapshotThere(deps: Deps, item: JournalItem, name: string): Promise<boolean> {
  const volume = volumeOfItem(deps, item);
  const backend = deps.backendFor(volume);
  // Backends that open snapshots for reading (zfs) have no snapshot folder everywhere: ask them.
  if (backend.openSnapshot) return (await backend.show(volume, name)) !== undefined;
  return lstat(join(item.snapshotDir, name)).then(
    () => true,
    () => false,
  );
}

/**
 * The names of a volume's snapshots (sorted): one readdir of the snapshot folder, or for zfs one
 * listing through the backend (a dataset's snapshots are not a folder on zfs-fuse).
 */
export async function snapshotNames(
  deps: Deps,
  volume: VolumeConfig,
  signal?: AbortSignal,
): Promise<string[]> {
  const backend = deps.backendFor(volume);
  if (backend.openSnapshot) {
    return (await backend.list(volume, { signal })).map((raw) => raw.name).sort();
  }
  try {
    return (await readdir(volume.snapshotDir)).filter((name) => !name.startsWith('.')).sort();
  } catch {
    return [];
  }
}

/** The zfs copy step: the whole tree (rollback) or the named paths (files) from the target. */
export async function zfsCopy(
  deps: Deps,
  journal: Journal,
  item: JournalItem,
  signal?: AbortSignal,
): Promise<void> {
  const volume = volumeOfItem(deps, item);
  const backend = inPlaceBackendOf(deps, volume);
  if (journal.mode === 'rollback') {
    await backend.replaceTree(volume, item.target, { signal });
    return;
  }
  if (item.paths.length > 0)
    await backend.restorePaths(volume, item.target, item.paths, item.safety, { signal });
  for (const rel of item.removeOnly ?? []) {
    await deps.exec('rm', ['-rf', '--one-file-system', '--', join(item.path, rel)], { signal });
  }
}

/** Puts a zfs volume's files back from its safety snapshot (undo of an interrupted copy). */
export async function zfsPutBack(deps: Deps, item: JournalItem): Promise<void> {
  const volume = volumeOfItem(deps, item);
  await inPlaceBackendOf(deps, volume).replaceTree(volume, item.safety);
}
