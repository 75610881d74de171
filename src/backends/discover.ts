import { posix } from 'node:path';
import { toSnapguardError } from '../shared/errors.js';
import type { Exec } from '../system/exec.js';
import { readMounts, type MountEntry } from '../system/mounts.js';
import { parseSubvolumeList } from './btrfs.js';

/** A btrfs subvolume or ZFS dataset found on the host, before any decision about it. */
export interface FoundVolume {
  backend: 'btrfs' | 'zfs';
  /** Where it is reachable on the host (the mountpoint of a dataset). */
  path: string;
  /** ZFS only: the dataset name. */
  dataset?: string;
  /** btrfs only: the path from the filesystem's top level, and the device it lives on. */
  treePath?: string;
  device?: string;
  readOnly: boolean;
  /** ZFS only: whether the dataset has child datasets. */
  hasChildren?: boolean;
  /**
   * btrfs only: mount points of the same filesystem on the host (a snapshot folder must be on the
   * filesystem of its volume).
   */
  fsMounts?: string[];
}

export interface DiscoveryNote {
  /** What the note is about: a mount point, a device, `zfs`. */
  subject: string;
  detail: string;
}

export interface Discovery {
  found: FoundVolume[];
  /** What could not be looked at, and why (a listing that failed, zfs not installed). */
  notes: DiscoveryNote[];
}

export interface DiscoverOptions {
  exec: Exec;
  /** Only filesystems with a mount at or below one of these folders (default: all). */
  under?: readonly string[];
  /** mountinfo entries (default: /proc/self/mountinfo). */
  mounts?: MountEntry[];
  signal?: AbortSignal | undefined;
}

/** Whether `child` is `parent` or lies below it (absolute, normalised paths). */
export const pathInside = (child: string, parent: string) =>
  parent === '/' || child === parent || child.startsWith(`${parent}/`);

/** Where a subvolume (its path from the top level, with a leading slash) is reachable: the mount of its filesystem whose root is nearest above it. */
function hostPathOf(tree: string, mounts: MountEntry[]): string | undefined {
  let best: MountEntry | undefined;
  for (const mount of mounts) {
    if (!pathInside(tree, mount.root)) continue;
    if (!best || mount.root.length > best.root.length) best = mount;
  }
  if (!best) return undefined;
  return posix.join(best.mountPoint, posix.relative(best.root, tree));
}

async function discoverBtrfs(options: DiscoverOptions, mounts: MountEntry[], out: Discovery): Promise<void> {
  const byDevice = new Map<string, MountEntry[]>();
  for (const mount of mounts) {
    if (mount.fsType !== 'btrfs') continue;
    byDevice.set(mount.source, [...(byDevice.get(mount.source) ?? []), mount]);
  }
  for (const [device, fsMounts] of byDevice) {
    const under = options.under;
    if (
      under &&
      !fsMounts.some((m) =>
        under.some((dir) => pathInside(m.mountPoint, dir) || pathInside(dir, m.mountPoint)),
      )
    )
      continue;
    const at = fsMounts[0]!.mountPoint;
    let all: string;
    let readOnly: string;
    try {
      const run = (args: string[]) =>
        options.exec('btrfs', ['subvolume', 'list', ...args, at], {
          timeoutMs: 60_000,
          signal: options.signal,
          env: { LC_ALL: 'C' },
        });
      [all, readOnly] = await Promise.all([run([]).then((r) => r.stdout), run(['-r']).then((r) => r.stdout)]);
    } catch (error) {
      const failure = toSnapguardError(error);
      if (failure.code === 'CANCELLED') throw failure;
      out.notes.push({
        subject: `${device} (mounted at ${at})`,
        detail: `btrfs subvolume list failed: ${failure.message}`,
      });
      continue;
    }
    const readOnlyIds = new Set(parseSubvolumeList(readOnly).map((entry) => entry.id));
    for (const entry of parseSubvolumeList(all)) {
      const tree = `/${entry.path}`;
      const path = hostPathOf(tree, fsMounts);
      if (!path) {
        out.notes.push({
          subject: `${device}:${tree}`,
          detail: 'not reachable under any mount point of its filesystem',
        });
        continue;
      }
      out.found.push({
        backend: 'btrfs',
        path,
        treePath: tree,
        device,
        readOnly: readOnlyIds.has(entry.id),
        fsMounts: fsMounts.map((m) => m.mountPoint),
      });
    }
  }
}

async function discoverZfs(options: DiscoverOptions, out: Discovery): Promise<void> {
  let text: string;
  try {
    text = (
      await options.exec(
        'zfs',
        ['list', '-H', '-t', 'filesystem', '-o', 'name,mountpoint,mounted,readonly'],
        { timeoutMs: 60_000, signal: options.signal, env: { LC_ALL: 'C' } },
      )
    ).stdout;
  } catch (error) {
    const failure = toSnapguardError(error);
    if (failure.code === 'CANCELLED') throw failure;
    if (failure.code === 'COMMAND_NOT_FOUND') return;
    out.notes.push({ subject: 'zfs', detail: `zfs list failed: ${failure.message}` });
    return;
  }
  const rows = text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [name = '', mountpoint = '', mounted = '', readonly = ''] = line.split('\t');
      return { name, mountpoint, mounted: mounted === 'yes', readOnly: readonly === 'on' };
    });
  for (const row of rows) {
    if (options.under && !options.under.some((dir) => pathInside(row.mountpoint, dir))) continue;
    if (!row.mounted || !row.mountpoint.startsWith('/')) {
      out.notes.push({
        subject: `zfs ${row.name}`,
        detail: `not mounted (mountpoint ${row.mountpoint || '-'}): snapguard reads a dataset's files through its mountpoint`,
      });
      continue;
    }
    out.found.push({
      backend: 'zfs',
      path: row.mountpoint,
      dataset: row.name,
      readOnly: row.readOnly,
      hasChildren: rows.some((other) => other.name.startsWith(`${row.name}/`)),
    });
  }
}

/**
 * The btrfs subvolumes of every mounted btrfs filesystem (`btrfs subvolume list`, two runs per
 * filesystem: all and read-only) and the ZFS datasets (`zfs list`, when zfs is installed).
 * Decides nothing: what to propose is the caller's.
 */
export async function discoverVolumes(options: DiscoverOptions): Promise<Discovery> {
  const mounts = options.mounts ?? readMounts();
  const out: Discovery = { found: [], notes: [] };
  await discoverBtrfs(options, mounts, out);
  await discoverZfs(options, out);
  return out;
}
