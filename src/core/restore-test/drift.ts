import { lstat, readdir } from 'node:fs/promises';
import type { VolumeConfig } from '../config.js';
import { binaryOf, displayBinary, pathUnder } from '../byte-names.js';
import type { FileReference } from './files.js';
import type { Drift } from './run-context.js';

/** Files changed on the live volume since the snapshot: information, never a failure. */
export async function liveDrift(
  volume: VolumeConfig,
  snapshotTime: Date,
  references: Map<string, FileReference>,
): Promise<Drift[]> {
  const drift: Drift[] = [];
  for (const [path, reference] of references) {
    try {
      const live = await lstat(pathUnder(volume.path, path), { bigint: true });
      // The snapshot's own mtime of the file tells a change apart; the snapshot's time (whole
      // seconds in its name) would count files written in the same second as changed.
      if (
        Number(live.mtimeNs / 1000n) !== reference.mtimeUs ||
        (reference.kind === 'file' && Number(live.size) !== reference.size)
      ) {
        drift.push({
          path: displayBinary(path),
          change: 'modified',
          detail: `live mtime ${live.mtime.toISOString()} (snapshot: ${new Date(reference.mtimeUs / 1000).toISOString()}), size ${live.size} (snapshot: ${reference.size})`,
        });
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        drift.push({
          path: displayBinary(path),
          change: 'deleted',
          detail: 'not on the live volume any more',
        });
    }
  }
  return drift;
}

const ADDED_LISTED = 50;

/**
 * Entries on the live volume that the snapshot does not have (added since it was taken). Only
 * entries whose ctime is after the snapshot are looked up in it (a create or rename sets ctime); a
 * new folder is reported once, not with its contents; other filesystems below the volume (nested
 * subvolumes, mounts) are not entered.
 */
export async function addedSince(
  volume: VolumeConfig,
  snapshotRoot: string,
  signal?: AbortSignal,
): Promise<Drift[]> {
  // Added = a name in a live folder that the same folder of the snapshot does not have. Comparing
  // the two listings of each folder costs two readdirs a folder instead of an lstat a file, and
  // names are compared as bytes. Folders on another device (nested subvolumes, mounts) are not
  // entered: they are not part of the snapshot.
  let rootDev: number;
  try {
    rootDev = (await lstat(volume.path)).dev;
  } catch {
    return [];
  }
  const added: string[] = [];
  const pending: string[] = [''];
  const listNames = async (root: string, rel: string) =>
    readdir(pathUnder(root, rel), { withFileTypes: true, encoding: 'buffer' }).catch(() => undefined);
  const visit = async (rel: string): Promise<void> => {
    signal?.throwIfAborted();
    const [live, inSnapshot] = await Promise.all([listNames(volume.path, rel), listNames(snapshotRoot, rel)]);
    if (!live || !inSnapshot) return;
    const there = new Set(inSnapshot.map((entry) => binaryOf(entry.name)));
    for (const entry of live) {
      const name = binaryOf(entry.name);
      if (!rel && name.startsWith('.snapguard-')) continue;
      const path = rel ? `${rel}/${name}` : name;
      if (!there.has(name)) {
        added.push(path);
        continue;
      }
      if (!entry.isDirectory()) continue;
      const info = await lstat(pathUnder(volume.path, path)).catch(() => undefined);
      if (info?.dev === rootDev) pending.push(path);
    }
  };
  const running = new Set<Promise<void>>();
  let failure: unknown;
  while ((pending.length > 0 && failure === undefined) || running.size > 0) {
    while (pending.length > 0 && running.size < 8 && failure === undefined) {
      const job: Promise<void> = visit(pending.pop() as string)
        .catch((error: unknown) => {
          failure ??= error;
        })
        .finally(() => running.delete(job));
      running.add(job);
    }
    if (running.size > 0) await Promise.race(running);
  }
  if (failure !== undefined) throw failure;
  added.sort();
  const drift: Drift[] = added.slice(0, ADDED_LISTED).map((path) => ({
    path: displayBinary(path),
    change: 'added' as const,
    detail: 'on the live volume, not in the snapshot',
  }));
  if (added.length > ADDED_LISTED)
    drift.push({
      path: '.',
      change: 'added',
      detail: `${added.length - ADDED_LISTED} more added path(s) not listed`,
    });
  return drift;
}
