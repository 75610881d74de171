import { lstat, mkdir, readdir, realpath, rename, rmdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { mountsBelow, readMounts } from '../../system/mounts.js';
import type { VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError } from '../errors.js';

/**
 * Nested subvolumes and mount points inside a volume. btrfs snapshots hold an empty folder where a
 * nested subvolume is, and no snapshot holds what another filesystem mounted inside has. A rollback
 * moves each nested subvolume from the old tree into the new one (they keep their current files); a
 * file restore leaves them where they are; mount points under the touched paths are refused.
 */

/** A btrfs subvolume root is a folder with inode 256; the empty folder a snapshot holds in its place has inode 2. */
export async function isSubvolumeRoot(path: string): Promise<boolean> {
  const info = await lstat(path).catch(() => undefined);
  return Boolean(info?.isDirectory() && info.ino === 256);
}

const under = (path: string, root: string) => root === '.' || path === root || path.startsWith(`${root}/`);

/** Nested subvolumes directly inside `path` (default: the volume's path), relative to it. */
export async function nestedSubvolumesOf(
  deps: Deps,
  volume: VolumeConfig,
  options: { path?: string; signal?: AbortSignal | undefined } = {},
): Promise<string[]> {
  const backend = deps.backendFor(volume);
  if (!backend.nestedSubvolumes) return [];
  return backend.nestedSubvolumes(volume, {
    ...(options.path ? { path: options.path } : {}),
    signal: options.signal,
  });
}

export interface NestedLayout {
  /** Nested subvolumes under the touched paths (relative to the volume), carried over or kept. */
  nested: string[];
  /** Absolute mount points under the touched paths. */
  mounts: string[];
  /** Every nested subvolume of the volume (relative), touched or not: one listing serves the plan. */
  all: string[];
}

/** What lies under the touched paths (undefined: the whole volume) that snapshots do not hold. */
export async function nestedLayout(
  deps: Deps,
  volume: VolumeConfig,
  touched: readonly string[] | undefined,
  signal?: AbortSignal,
): Promise<NestedLayout> {
  const real = await realpath(volume.path);
  const inTouched = (rel: string) => !touched || touched.some((root) => under(rel, root));
  const all = await nestedSubvolumesOf(deps, volume, { signal });
  const nested = all.filter((rel) => !rel.startsWith('.snapguard-restore-') && inTouched(rel));
  const mounts = mountsBelow(real, readMounts()).filter((mp) => inTouched(relative(real, mp)));
  return { nested, mounts, all };
}

export function mountsRefusal(
  volume: VolumeConfig,
  mounts: string[],
  mode: 'rollback' | 'files',
  snapshot = 'SNAPSHOT',
): SnapguardError {
  const them = mounts.length === 1 ? 'it' : 'them';
  const shown = `${mounts.slice(0, 5).join(', ')}${mounts.length > 5 ? `, … (${mounts.length} in all)` : ''}`;
  return new SnapguardError(
    'PRECONDITION_FAILED',
    `Volume "${volume.id}": ${mounts.length === 1 ? 'a filesystem is' : 'filesystems are'} mounted under the ${mode === 'rollback' ? 'volume' : 'paths to restore'} (${shown}). ` +
      'What is mounted there is not part of the snapshot, and a mounted folder cannot be moved or replaced. Nothing was changed.',
    mode === 'rollback'
      ? {
          mcp: `Unmount ${them} (stop what uses ${them} first) and roll back again, then mount again; or restore the other paths with mode: files.`,
          cli: `Unmount ${them} (stop what uses ${them} first) and roll back again, then mount again; or restore the other paths with \`snapguard recover ${volume.id} ${snapshot} --files PATH...\`.`,
        }
      : `Unmount ${them} (stop what uses ${them} first) and restore again, then mount again; or restore other paths that do not contain a mount point.`,
    { details: { volume: volume.id, mountPoints: mounts } },
  );
}

/**
 * Checks that each nested subvolume can be put at its place in the restored tree: every folder on
 * the way is a folder (or absent) in `treeRoot`, and the place itself is absent or an empty folder.
 * `fromDepth` skips the leading components that stay live (files mode: above the restored path).
 * Returns the nested paths that cannot be placed, with why.
 */
export async function unplaceable(
  treeRoot: string,
  nested: readonly string[],
  fromDepth: (rel: string) => number = () => 0,
): Promise<{ path: string; why: string }[]> {
  const problems: { path: string; why: string }[] = [];
  for (const rel of nested) {
    const parts = rel.split('/');
    for (let i = fromDepth(rel); i < parts.length; i++) {
      const here = parts.slice(0, i + 1).join('/');
      const info = await lstat(join(treeRoot, here)).catch(() => undefined);
      if (!info) break;
      const last = i === parts.length - 1;
      if (!info.isDirectory()) {
        problems.push({
          path: rel,
          why: `the snapshot has ${info.isSymbolicLink() ? 'a symlink' : 'a file'} at ${here}`,
        });
        break;
      }
      if (last && (await readdir(join(treeRoot, here))).length > 0)
        problems.push({ path: rel, why: `the snapshot has a non-empty folder at ${here}` });
    }
  }
  return problems;
}

export function unplaceableRefusal(
  volume: VolumeConfig,
  problems: { path: string; why: string }[],
  snapshot: string,
): SnapguardError {
  const shown = problems.slice(0, 5).map((p) => `${p.path} (${p.why})`);
  return new SnapguardError(
    'PRECONDITION_FAILED',
    `Volume "${volume.id}": nested subvolume${problems.length === 1 ? '' : 's'} ${shown.join(', ')}${problems.length > 5 ? ', …' : ''} cannot be carried into the restored tree: ` +
      `${snapshot} holds other content at that place, and a nested subvolume is not part of any snapshot of the volume. Nothing was changed.`,
    {
      mcp:
        'Move the nested subvolume elsewhere on the same filesystem first (mv keeps it intact), recover, then decide where it belongs; ' +
        'or restore only the paths that do not contain it with mode: files.',
      cli:
        'Move the nested subvolume elsewhere on the same filesystem first (mv keeps it intact), recover, then decide where it belongs; ' +
        `or restore only the paths that do not contain it with \`snapguard recover ${volume.id} ${snapshot} --files PATH...\`.`,
    },
    { details: { volume: volume.id, nestedSubvolumes: problems.map((p) => p.path) } },
  );
}

export function namedNestedRefusal(volume: VolumeConfig, requested: string, nested: string): SnapguardError {
  return new SnapguardError(
    'BAD_INPUT',
    `paths: "${requested}" is ${requested === nested ? 'a nested subvolume' : `inside the nested subvolume ${nested}`} of volume "${volume.id}". ` +
      'Snapshots of the volume do not contain the files of a nested subvolume (only an empty folder), so there is nothing to restore from. Nothing was changed.',
    `Snapshot ${nested} on its own (configure it as a volume) to be able to restore it; restore the paths around it here.`,
    { details: { volume: volume.id, nestedSubvolume: nested } },
  );
}

async function freeName(base: string, tag: string): Promise<string> {
  for (let n = 1; ; n++) {
    const name = `${base}.snapguard-kept-${tag}${n > 1 ? `-${n}` : ''}`;
    if (!(await lstat(name).catch(() => undefined))) return name;
  }
}

/**
 * Puts the subvolume at `source` at `rel` under `root`: an empty folder there (what a snapshot holds
 * in a nested subvolume's place) is removed first, missing parent folders are created. When the
 * place is taken by anything else, or a file or symlink is on the way, the subvolume goes next to
 * it under a free name, so it is never lost and never leaves the tree. Returns where it went.
 */
export async function placeSubvolume(
  source: string,
  root: string,
  rel: string,
  tag: string,
): Promise<string> {
  const parts = rel.split('/');
  for (let i = 0; i < parts.length - 1; i++) {
    const here = join(root, ...parts.slice(0, i + 1));
    const info = await lstat(here).catch(() => undefined);
    if (!info) break;
    if (!info.isDirectory()) {
      const target = await freeName(here, tag);
      await rename(source, target);
      return target;
    }
  }
  const destination = join(root, rel);
  let target = destination;
  const there = await lstat(destination).catch(() => undefined);
  if (there) {
    const emptyDir =
      there.isDirectory() &&
      !(await isSubvolumeRoot(destination)) &&
      (await readdir(destination)).length === 0;
    if (emptyDir) await rmdir(destination);
    else target = await freeName(destination, tag);
  }
  await mkdir(dirname(target), { recursive: true });
  await rename(source, target);
  return target;
}

/**
 * Moves every nested subvolume directly inside `from` to the same relative path under `to`
 * (rename(2) moves a subvolume between subvolumes of one filesystem). Idempotent: what was moved is
 * no longer listed under `from`. Returns the notes of subvolumes that had to go elsewhere.
 */
export async function carryNested(
  deps: Deps,
  volume: VolumeConfig,
  from: string,
  to: string,
  tag: string,
  options: {
    skip?: (rel: string) => boolean;
    signal?: AbortSignal | undefined;
    /** The nested subvolumes of `from`, when the caller listed them already (after `from` got its name). */
    listed?: readonly string[] | undefined;
  } = {},
): Promise<string[]> {
  const notes: string[] = [];
  const listed =
    options.listed ?? (await nestedSubvolumesOf(deps, volume, { path: from, signal: options.signal }));
  for (const rel of listed) {
    if (options.skip?.(rel)) continue;
    const destination = join(to, rel);
    const placed = await placeSubvolume(join(from, rel), to, rel, tag);
    if (placed !== destination) notes.push(`nested subvolume ${rel} was kept at ${placed}`);
  }
  return notes;
}

/**
 * Files mode: nested subvolumes that the copy moved into the staging folder (inside a replaced
 * path) go back to their place in the live tree. Run before the staging folder is removed.
 */
export async function rescueStaged(
  deps: Deps,
  volume: VolumeConfig,
  live: string,
  stagingName: string,
  tag: string,
  signal?: AbortSignal,
): Promise<string[]> {
  const notes: string[] = [];
  for (const rel of await nestedSubvolumesOf(deps, volume, { path: live, signal })) {
    if (!rel.startsWith(`${stagingName}/`)) continue;
    const inside = rel.slice(stagingName.length + 1);
    const slash = inside.indexOf('/');
    const original = slash < 0 ? '' : inside.slice(slash + 1);
    if (!original) continue;
    const destination = join(live, original);
    const placed = await placeSubvolume(join(live, rel), live, original, tag);
    if (placed !== destination) notes.push(`nested subvolume ${original} was kept at ${placed}`);
  }
  return notes;
}
