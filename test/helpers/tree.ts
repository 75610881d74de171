import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from './btrfs.js';

/** Everything a restore must preserve, per path: type, content, mode, owner, mtime, symlink target, xattrs. */
export type TreeState = Record<string, string>;

export async function treeState(root: string, options: { mtime?: boolean } = {}): Promise<TreeState> {
  const out: TreeState = {};
  const xattrs = await exec('getfattr', ['-R', '-h', '-d', '-m', '-', '.'], { cwd: root, okExitCodes: [1] });
  const xattrByPath = new Map<string, string[]>();
  let current = '';
  for (const line of xattrs.stdout.split('\n')) {
    if (line.startsWith('# file: ')) current = line.slice(8).replace(/^\.\//, '');
    else if (line.trim()) xattrByPath.set(current, [...(xattrByPath.get(current) ?? []), line.trim()]);
  }
  async function walk(rel: string): Promise<void> {
    for (const name of (await readdir(rel ? join(root, rel) : root)).sort()) {
      if (name.startsWith('.snapguard-')) continue;
      const path = rel ? `${rel}/${name}` : name;
      const full = join(root, path);
      const info = await lstat(full);
      const kind = info.isDirectory() ? 'd' : info.isSymbolicLink() ? 'l' : 'f';
      const body =
        kind === 'f'
          ? createHash('sha256')
              .update(await readFile(full))
              .digest('hex')
              .slice(0, 16)
          : kind === 'l'
            ? `->${await readlink(full)}`
            : '';
      const mtime = options.mtime !== false && kind !== 'd' ? ` t${Math.round(info.mtimeMs)}` : '';
      out[path] =
        `${kind} ${(info.mode & 0o7777).toString(8)} ${info.uid}:${info.gid}${mtime} ${body} ${(xattrByPath.get(path) ?? []).sort().join(',')}`.trim();
      if (kind === 'd') await walk(path);
    }
  }
  await walk('');
  return out;
}

const RESTORED_BY_FILES = ['conf.yml', 'dir/x'];
const KEPT_BY_FILES = ['new-after-snapshot', 'keep/deep/a.txt'];

function pick(state: TreeState, paths: string[]): Record<string, string | undefined> {
  return Object.fromEntries(paths.map((path) => [path, state[path]]));
}

/** The paths the recovery tests look at after bringing back conf.yml and dir/ from a snapshot. */
export function afterFilesRecovery(state: TreeState): Record<string, string | undefined> {
  return pick(state, [...RESTORED_BY_FILES, ...KEPT_BY_FILES]);
}

/** What those paths must hold: conf.yml and dir/x as in the snapshot, the later edits as they were. */
export function expectedAfterFilesRecovery(
  before: TreeState,
  target: TreeState,
): Record<string, string | undefined> {
  return { ...pick(target, RESTORED_BY_FILES), ...pick(before, KEPT_BY_FILES) };
}
