import { lstat, readdir } from 'node:fs/promises';
import type { BackendVolume, SnapshotBackend } from '../../backends/types.js';
import { binaryOf, bytesOf, displayBinary } from '../byte-names.js';

/** What a recovery would change in the live volume, like `snapper status`. */
export interface ChangeSummary {
  method: 'btrfs-send' | 'walk';
  added: { count: number; first: string[] };
  removed: { count: number; first: string[] };
  modified: { count: number; first: string[] };
  metadataOnly: { count: number; first: string[] };
  /** True when a list holds fewer paths than its count. */
  truncated: boolean;
  durationSeconds: number;
}

const ORPHAN = /^o\d+-\d+-\d+$/;

/**
 * Decodes a path of `btrfs receive --dump` into its bytes, as a binary string (one char per byte):
 * the dump writes bytes outside printable ASCII as octal escapes (Caf\303\251.txt, a\377), so
 * the name is only meaningful as bytes. Characters printed as they are (a dump made in a UTF-8
 * locale) are turned back into their UTF-8 bytes.
 */
function unescapeDump(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{3}|.)|[^\p{ASCII}]+/gu, (match, code: string | undefined) => {
    if (code === undefined) return binaryOf(Buffer.from(match, 'utf8'));
    if (code.startsWith('x')) return String.fromCharCode(parseInt(code.slice(1), 16));
    if (/^[0-7]{3}$/.test(code)) return String.fromCharCode(parseInt(code, 8) & 0xff);
    return (
      ({ n: '\n', t: '\t', r: '\r', v: '\v', f: '\f', a: '\x07', b: '\b' } as Record<string, string>)[code] ??
      code
    );
  });
}

/** Splits a dump line: the command, its path, and key=value arguments (values escaped like paths). */
function splitDumpLine(
  line: string,
): { cmd: string; path: string; args: Record<string, string> } | undefined {
  const tokens = line.match(/(?:\\.|\S)+/g);
  if (!tokens || tokens.length < 2) return undefined;
  const [cmd, path, ...rest] = tokens as [string, string, ...string[]];
  const args: Record<string, string> = {};
  for (const token of rest) {
    const eq = token.indexOf('=');
    if (eq > 0) args[token.slice(0, eq)] = unescapeDump(token.slice(eq + 1));
  }
  return { cmd, path: unescapeDump(path), args };
}

/** Paths of a change, as binary strings (one char per byte). */
export interface ChangeSets {
  added: Set<string>;
  removed: Set<string>;
  modified: Set<string>;
  metadata: Set<string>;
  /** Paths whose extended attributes were set or removed (also in metadata). */
  xattrs: Set<string>;
}

const emptySets = (): ChangeSets => ({
  added: new Set<string>(),
  removed: new Set<string>(),
  modified: new Set<string>(),
  metadata: new Set<string>(),
  xattrs: new Set<string>(),
});

function collect(limit: number, sets: ChangeSets = emptySets()) {
  // Paths in the sets are binary strings (one char per byte); the summary shows them with
  // displayBinary, and the filter (the paths of a files preview) matches what is shown, which
  // for a name in valid UTF-8 is that name exactly.
  const finish = (
    method: ChangeSummary['method'],
    started: number,
    filter?: (p: string) => boolean,
  ): ChangeSummary => {
    const keep = (set: Set<string>) =>
      [...set].filter((p) => p !== '' && (!filter || filter(displayBinary(p)))).sort();
    const added = keep(sets.added);
    const removed = keep(sets.removed);
    const modified = keep(sets.modified).filter((p) => !sets.added.has(p) && !sets.removed.has(p));
    const metadata = keep(sets.metadata).filter(
      (p) => !sets.added.has(p) && !sets.removed.has(p) && !sets.modified.has(p),
    );
    const list = (paths: string[]) => ({
      count: paths.length,
      first: paths.slice(0, limit).map(displayBinary),
    });
    return {
      method,
      added: list(added),
      removed: list(removed),
      modified: list(modified),
      metadataOnly: list(metadata),
      truncated: [added, removed, modified, metadata].some((paths) => paths.length > limit),
      durationSeconds: Math.round((performance.now() - started) / 10) / 100,
    };
  };
  return { sets, finish };
}

/**
 * Reads `btrfs receive --dump` of a `send --no-data -p NOW TARGET` stream: the operations that turn
 * the current state into the target. New inodes appear under orphan names (o<ino>-<gen>-0) and are
 * renamed into place; existing ones are renamed to orphan names before they are removed.
 */
export function parseSendDump(
  text: string,
  limit = 20,
  filter?: (path: string) => boolean,
  started = performance.now(),
): ChangeSummary {
  return collect(limit, sendDumpSets(text)).finish('btrfs-send', started, filter);
}

type DumpKind = 'create' | 'rename' | 'link' | 'remove' | 'content' | 'metadata' | 'xattr';

/** What each dump command does to the path it names (commands not listed change nothing shown). */
const DUMP_KINDS = new Map<string, DumpKind>([
  ['mkfile', 'create'],
  ['mkdir', 'create'],
  ['mknod', 'create'],
  ['mkfifo', 'create'],
  ['mksock', 'create'],
  ['symlink', 'create'],
  ['rename', 'rename'],
  ['link', 'link'],
  ['unlink', 'remove'],
  ['rmdir', 'remove'],
  ['write', 'content'],
  ['update_extent', 'content'],
  ['clone', 'content'],
  ['truncate', 'content'],
  ['encoded_write', 'content'],
  ['fallocate', 'content'],
  ['chmod', 'metadata'],
  ['chown', 'metadata'],
  ['utimes', 'metadata'],
  ['fileattr', 'metadata'],
  ['set_xattr', 'xattr'],
  ['remove_xattr', 'xattr'],
]);

const isOrphan = (path: string) => ORPHAN.test(path.split('/').pop() ?? '');

/** The paths of a dump as it is read: which are new, which are renamed, relative to the subvolume. */
class DumpPaths {
  /** Stream paths of inodes that do not exist now. */
  readonly created = new Set<string>();
  /** Orphan stream path -> its path in the current state. */
  readonly alias = new Map<string, string>();
  prefix: string | undefined;

  /** A stream path relative to the subvolume the stream names. */
  rel(streamPath: string): string {
    const prefix = this.prefix;
    if (prefix === undefined) return streamPath;
    if (streamPath === prefix || streamPath === `${prefix}/`) return '';
    return streamPath.startsWith(`${prefix}/`) ? streamPath.slice(prefix.length + 1) : streamPath;
  }

  /** Maps a stream path to the path it has in the current state (through renamed parents). */
  original(path: string): string {
    const parts = path.split('/');
    for (let i = parts.length; i > 0; i--) {
      const head = parts.slice(0, i).join('/');
      const mapped = this.alias.get(head);
      if (mapped !== undefined) return [mapped, ...parts.slice(i)].filter(Boolean).join('/');
    }
    return path;
  }

  isNew(path: string): boolean {
    const parts = path.split('/');
    for (let i = parts.length; i > 0; i--) if (this.created.has(parts.slice(0, i).join('/'))) return true;
    return false;
  }
}

/** A rename: of a new inode (still new), into an orphan name (before removal), or a move. */
function applyRename(paths: DumpPaths, sets: ChangeSets, path: string, dest: string): void {
  const destIsOrphan = isOrphan(dest);
  if (paths.isNew(path)) {
    paths.created.add(dest);
    if (!destIsOrphan) sets.added.add(dest);
    return;
  }
  const from = paths.original(path);
  if (destIsOrphan) paths.alias.set(dest, from);
  else if (from !== dest) {
    sets.removed.add(from);
    sets.added.add(dest);
  }
}

/** Records one dump command on `path` (relative to the subvolume) in the sets. */
function applyDumpCommand(
  paths: DumpPaths,
  sets: ChangeSets,
  cmd: string,
  path: string,
  args: Record<string, string>,
): void {
  const kind = DUMP_KINDS.get(cmd);
  if (kind === 'create') {
    paths.created.add(path);
    if (!isOrphan(path)) sets.added.add(path);
  } else if (kind === 'rename') applyRename(paths, sets, path, paths.rel(args.dest ?? ''));
  else if (kind === 'link') sets.added.add(path);
  else if (kind === undefined || paths.isNew(path)) return;
  else if (kind === 'remove') sets.removed.add(paths.original(path));
  else if (kind === 'content') sets.modified.add(paths.original(path));
  else if (kind === 'metadata') sets.metadata.add(paths.original(path));
  else {
    sets.xattrs.add(paths.original(path));
    sets.metadata.add(paths.original(path));
  }
}

/** The paths a dumped `send --no-data -p FROM TO` stream touches, by kind of change (see parseSendDump). */
export function sendDumpSets(text: string): ChangeSets {
  const sets = emptySets();
  const paths = new DumpPaths();
  for (const line of text.split('\n')) {
    const parsed = splitDumpLine(line);
    if (!parsed) continue;
    if (parsed.cmd === 'snapshot' || parsed.cmd === 'subvol') {
      paths.prefix = parsed.path.replace(/\/$/, '');
      continue;
    }
    applyDumpCommand(paths, sets, parsed.cmd, paths.rel(parsed.path), parsed.args);
  }
  return sets;
}

/**
 * The summary of a swapped volume: from the backend's change dump where it has one (btrfs: a
 * metadata-only send stream against the target, its cost follows the size of the difference, not
 * of the volume), otherwise by walking both trees.
 */
export async function backendChangeSummary(
  backend: SnapshotBackend,
  volume: BackendVolume,
  options: {
    targetPath: string;
    workDir: string;
    limit?: number;
    filter?: (path: string) => boolean;
    signal?: AbortSignal | undefined;
  },
): Promise<ChangeSummary> {
  if (!backend.changeDump) return walkChangeSummary(volume.path, options.targetPath, 20, options.filter);
  const started = performance.now();
  const dump = await backend.changeDump(volume, options.targetPath, {
    workDir: options.workDir,
    signal: options.signal,
  });
  return parseSendDump(dump, options.limit, options.filter, started);
}

interface Entry {
  kind: string;
  size: number;
  mtimeMs: number;
  mode: number;
  uid: number;
  gid: number;
}

/** Walks by bytes: keys are binary strings (one char per byte), so no name is lost or altered. */
async function walk(root: string, rel = '', out = new Map<string, Entry>()): Promise<Map<string, Entry>> {
  let names: string[];
  try {
    names = (
      await readdir(rel ? bytesOf(`${binaryOf(Buffer.from(root))}/${rel}`) : root, { encoding: 'buffer' })
    ).map(binaryOf);
  } catch {
    return out;
  }
  for (const name of names) {
    if (!rel && name.startsWith('.snapguard-restore-')) continue;
    const path = rel ? `${rel}/${name}` : name;
    const info = await lstat(bytesOf(`${binaryOf(Buffer.from(root))}/${path}`));
    const kind = info.isDirectory()
      ? 'dir'
      : info.isSymbolicLink()
        ? 'link'
        : info.isFile()
          ? 'file'
          : 'other';
    out.set(path, {
      kind,
      size: info.size,
      mtimeMs: info.mtimeMs,
      mode: info.mode,
      uid: info.uid,
      gid: info.gid,
    });
    if (kind === 'dir') await walk(root, path, out);
  }
  return out;
}

/** The fallback for backends without a send stream: walks both trees and compares stat data. */
export async function walkChangeSummary(
  volumePath: string,
  targetPath: string,
  limit = 20,
  filter?: (path: string) => boolean,
): Promise<ChangeSummary> {
  const started = performance.now();
  const { sets, finish } = collect(limit);
  const [now, target] = await Promise.all([walk(volumePath), walk(targetPath)]);
  for (const [path, entry] of target) {
    const current = now.get(path);
    if (!current || current.kind !== entry.kind) {
      sets.added.add(path);
      if (current) sets.removed.add(path);
    } else if (entry.kind !== 'dir' && (current.size !== entry.size || current.mtimeMs !== entry.mtimeMs)) {
      sets.modified.add(path);
    } else if (current.mode !== entry.mode || current.uid !== entry.uid || current.gid !== entry.gid) {
      sets.metadata.add(path);
    }
  }
  for (const path of now.keys()) if (!target.has(path)) sets.removed.add(path);
  return finish('walk', started, filter);
}
