import { realpath } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { mountOf, mountsBelow, readMounts } from '../../system/mounts.js';
import type { VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { nestedSubvolumesOf } from '../recovery/nested.js';
import type { NotCovered } from './run-context.js';

const NESTED_DETAIL =
  'a nested subvolume: snapshots of the volume hold only an empty folder in its place, so its files were not tested; snapshot and test it as a volume of its own';

/**
 * Nested subvolumes and mount points inside the volume now: their contents are not in the
 * volume's snapshots, so a restore test covers nothing of them and says so.
 */
export async function liveNotCovered(
  deps: Deps,
  volume: VolumeConfig,
  signal?: AbortSignal,
): Promise<NotCovered[]> {
  const found: NotCovered[] = [];
  const real = await realpath(volume.path).catch(() => undefined);
  if (!real) return found;
  const snapshotDir = await realpath(volume.snapshotDir).catch(() => volume.snapshotDir);
  const ours = (rel: string) => {
    const abs = join(real, rel);
    return (
      rel === '.zfs' || rel.startsWith('.zfs/') || abs === snapshotDir || abs.startsWith(`${snapshotDir}/`)
    );
  };
  for (const rel of await nestedSubvolumesOf(deps, volume, { signal }).catch(() => [])) {
    if (!ours(rel)) found.push({ path: rel, kind: 'nested-subvolume', detail: NESTED_DETAIL });
  }
  const mounts = readMounts();
  for (const mountPoint of mountsBelow(real, mounts)) {
    const rel = relative(real, mountPoint);
    if (ours(rel)) continue;
    const entry = mountOf(mountPoint, mounts);
    found.push({
      path: rel,
      kind: 'mount-point',
      detail: `${entry ? `${entry.fsType} ${entry.source}` : 'a filesystem'} is mounted here: what it holds is not part of the volume's snapshots and was not tested; back it up on its own`,
    });
  }
  return found;
}

export function mergeNotCovered(live: NotCovered[], placeholders: readonly string[]): NotCovered[] {
  const merged = [...live];
  for (const rel of placeholders) {
    if (!merged.some((entry) => entry.path === rel))
      merged.push({ path: rel, kind: 'nested-subvolume', detail: NESTED_DETAIL });
  }
  return merged.sort((a, b) => a.path.localeCompare(b.path));
}

export const underAny = (path: string, roots: readonly NotCovered[]) =>
  roots.some((root) => path === root.path || path.startsWith(`${root.path}/`));
