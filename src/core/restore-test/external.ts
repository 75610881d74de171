import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RawSnapshot } from '../../backends/types.js';
import type { VolumeConfig } from '../config.js';
import { parseSnapshotName } from '../naming.js';

/**
 * Owned copies directly in an external folder, newest first. Received btrfs subvolumes are not
 * snapshots to `btrfs subvolume list -s` (they have no parent in the target filesystem), so the
 * folder is read directly and each owned name that is a folder counts.
 */
export async function listExternalCopies(volume: VolumeConfig, dir: string): Promise<RawSnapshot[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const copies: { raw: RawSnapshot; sequence: number }[] = [];
  for (const name of names) {
    const parsed = parseSnapshotName(volume.id, name);
    if (!parsed) continue;
    const path = join(dir, name);
    // lstat: a symlink with an owned name is not a copy, wherever it points.
    const info = await lstat(path).catch(() => undefined);
    if (!info?.isDirectory()) continue;
    copies.push({
      raw: { name, path, createdAt: parsed.createdAt, readOnly: true },
      sequence: parsed.sequence,
    });
  }
  return copies
    .sort((a, b) => b.raw.createdAt.getTime() - a.raw.createdAt.getTime() || b.sequence - a.sequence)
    .map((copy) => copy.raw);
}
