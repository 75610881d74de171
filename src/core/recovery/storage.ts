import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { InPlacePlan, SnapshotBackend } from '../../backends/types.js';
import { requireVolume, type VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError } from '../errors.js';
import type { Journal, JournalItem } from './journal.js';
import { exists } from './paths.js';

// What recovery asks of a volume's storage, always through its backend: whether a snapshot exists,
// the names of its snapshots, a snapshot's files to read, and for backends that recover in place
// (their files are replaced, never swapped) the check, the plan and the copy. Recovery never asks
// which storage a volume is on.

/** Whether a backend recovers in place (its files replaced, the volume never swapped). */
export const recoversInPlace = (backend: SnapshotBackend): boolean => backend.replaceTree !== undefined;

/** Whether a backend has nested trees that snapshots do not hold (btrfs subvolumes). */
export const hasNestedTrees = (backend: SnapshotBackend): boolean => backend.nestedSubvolumes !== undefined;

/** Snapshots without a plain folder on every system are opened through the backend to be read. */
export const opensSnapshots = (deps: Deps, volume: VolumeConfig): boolean =>
  deps.backendFor(volume).openSnapshot !== undefined;

type InPlaceBackend = SnapshotBackend &
  Required<Pick<SnapshotBackend, 'replaceTree' | 'restorePaths' | 'checkInPlace' | 'planInPlace'>>;

/** The backend of a volume recovered in place: its files are replaced, never swapped. */
function inPlaceBackendOf(deps: Deps, volume: VolumeConfig): InPlaceBackend {
  const backend = deps.backendFor(volume);
  if (!backend.replaceTree || !backend.restorePaths || !backend.checkInPlace || !backend.planInPlace) {
    throw new SnapguardError(
      'INTERNAL',
      `The ${backend.kind} backend of volume "${volume.id}" cannot replace files in place.`,
      'Report this.',
    );
  }
  return backend as InPlaceBackend;
}

/** A rollback replaces the whole tree: filesystems mounted inside it are refused (their files are in no snapshot). */
const nestedMounts = (mode: 'rollback' | 'files') => (mode === 'rollback' ? 'refuse' : 'allow');

/** The backend's check that a volume recovered in place can have its files replaced where it is. */
export async function checkInPlace(
  deps: Deps,
  volume: VolumeConfig,
  mode: 'rollback' | 'files',
  signal?: AbortSignal,
): Promise<void> {
  await inPlaceBackendOf(deps, volume).checkInPlace(volume, { signal, nested: nestedMounts(mode) });
}

/** What an in-place recovery does to the volume's other snapshots, told in the plan. */
export async function planInPlace(
  deps: Deps,
  volume: VolumeConfig,
  target: string,
  safety: string,
  mode: 'rollback' | 'files',
  signal?: AbortSignal,
): Promise<InPlacePlan> {
  return inPlaceBackendOf(deps, volume).planInPlace(volume, target, safety, {
    signal,
    nested: nestedMounts(mode),
  });
}

/**
 * Runs `work` on a readable folder of a snapshot: its own path, or, for snapshots without a plain
 * folder on every system, what the backend opens for reading (e.g. a temporary clone, closed afterwards).
 */
export async function withSnapshotFiles<T>(
  deps: Deps,
  volume: VolumeConfig,
  snapshot: { name: string; path: string },
  work: (path: string) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const backend = deps.backendFor(volume);
  if (!backend.openSnapshot) return work(snapshot.path);
  const reader = await backend.openSnapshot(volume, snapshot.name, { signal });
  try {
    return await work(reader.path);
  } finally {
    await reader.close();
  }
}

/** The configured volume a journal item recovers. */
export function volumeOf(deps: Deps, item: JournalItem): VolumeConfig {
  return deps.config.volumes[item.volume] ?? requireVolume(deps.config, item.volume);
}

/** Whether a snapshot exists, asked the backend's way: some snapshots have no folder on every system. */
export async function snapshotThere(deps: Deps, item: JournalItem, name: string): Promise<boolean> {
  const volume = volumeOf(deps, item);
  const backend = deps.backendFor(volume);
  // Backends that open snapshots for reading have no snapshot folder everywhere: ask them.
  if (backend.openSnapshot) return (await backend.show(volume, name)) !== undefined;
  return exists(join(item.snapshotDir, name));
}

/**
 * The names of a volume's snapshots (sorted): one readdir of the snapshot folder, or one listing
 * through the backend where snapshots are not a folder everywhere (a zfs dataset's on zfs-fuse).
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

/** The in-place copy step: the whole tree (rollback) or the named paths (files) from the target. */
export async function copyInPlace(
  deps: Deps,
  journal: Journal,
  item: JournalItem,
  signal?: AbortSignal,
): Promise<void> {
  const volume = volumeOf(deps, item);
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

/** Puts the files of a volume recovered in place back from its safety snapshot (undo of an interrupted copy). */
export async function putBackInPlace(deps: Deps, item: JournalItem): Promise<void> {
  const volume = volumeOf(deps, item);
  await inPlaceBackendOf(deps, volume).replaceTree(volume, item.safety);
}
