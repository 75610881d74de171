import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, opendir, readlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import type { VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError } from '../errors.js';
import type { ListedSnapshot } from '../schemas.js';
import { listSnapshots } from '../snapshots.js';
import type { EntryType } from './schemas.js';

/**
 * The pieces the file-history tools share: where a snapshot can be read, what one entry is (by
 * lstat, never following a symlink), and a sorted, streaming walk over names kept as bytes.
 */

/** A call of a file-history tool: cancellation, and progress for long walks (MCP progress notifications). */
export interface FileHistoryCall {
  signal?: AbortSignal | undefined;
  onProgress?: ((progress: { progress: number; total?: number; message: string }) => void) | undefined;
}

export interface OpenTree {
  /** A snapshot name, or "live". */
  label: string;
  root: Buffer;
  createdAt?: string;
  close(): Promise<void>;
}

export interface EntryInfo {
  type: EntryType;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  dev: bigint;
  rdev: bigint;
  target?: Buffer;
}

export function typeOf(stats: BigIntStats): EntryType {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'folder';
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isFIFO()) return 'fifo';
  if (stats.isSocket()) return 'socket';
  if (stats.isCharacterDevice()) return 'char-device';
  return 'block-device';
}

/** lstat of one entry; undefined when it does not exist. */
export async function entryInfo(path: Buffer): Promise<EntryInfo | undefined> {
  let stats: BigIntStats;
  try {
    stats = await lstat(path, { bigint: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
  const type = typeOf(stats);
  return {
    type,
    size: Number(stats.size),
    mtimeNs: stats.mtimeNs,
    ctimeNs: stats.ctimeNs,
    mode: Number(stats.mode & 0o7777n),
    uid: Number(stats.uid),
    gid: Number(stats.gid),
    nlink: Number(stats.nlink),
    dev: stats.dev,
    rdev: stats.rdev,
    ...(type === 'symlink' ? { target: await readlink(path, { encoding: 'buffer' }) } : {}),
  };
}

/**
 * Looks up `rel` under `root` one component at a time, so a symlinked folder on the way is never
 * followed out of the tree: such a path counts as absent in that tree.
 */
export async function entryInside(root: Buffer, rel: Buffer | undefined): Promise<EntryInfo | undefined> {
  if (!rel) return entryInfo(root);
  const parts = splitPath(rel);
  let current = root;
  for (let i = 0; i < parts.length; i++) {
    current = joinPath(current, parts[i] as Buffer);
    const info = await entryInfo(current);
    if (!info) return undefined;
    if (i < parts.length - 1 && info.type !== 'folder') return undefined;
    if (i === parts.length - 1) return info;
  }
  return undefined;
}

const SLASH = Buffer.from('/');

export function joinPath(base: Buffer, name: Buffer): Buffer {
  return Buffer.concat([base, SLASH, name]);
}

export function childRel(rel: Buffer | undefined, name: Buffer): Buffer {
  return rel ? joinPath(rel, name) : name;
}

function splitPath(rel: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= rel.length; i++) {
    if (i === rel.length || rel[i] === 0x2f) {
      if (i > start) parts.push(rel.subarray(start, i));
      start = i + 1;
    }
  }
  return parts;
}

/** The entries of one folder, sorted by name bytes; a folder that vanished or cannot be read lists as empty with a warning. */
export async function sortedEntries(
  folder: Buffer,
  warn: (text: string) => void,
): Promise<{ name: Buffer; folder: boolean }[]> {
  const entries: { name: Buffer; folder: boolean }[] = [];
  try {
    const dir = await opendir(folder, { encoding: 'buffer' as BufferEncoding, bufferSize: 256 });
    for await (const entry of dir)
      entries.push({ name: entry.name as unknown as Buffer, folder: entry.isDirectory() });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR')
      warn(`${displayPath(folder)} could not be read (${code ?? 'error'})`);
  }
  return entries.sort((a, b) => Buffer.compare(a.name, b.name));
}

/** The names in one folder, sorted by bytes. */
export async function sortedNames(folder: Buffer, warn: (text: string) => void): Promise<Buffer[]> {
  return (await sortedEntries(folder, warn)).map((entry) => entry.name);
}

/**
 * Every entry below `rel` (not `rel` itself), depth first in byte order. Memory is one listing per
 * folder level; folders on another device (nested subvolumes, mounts) are not entered.
 */
export async function* walk(
  tree: OpenTree,
  rel: Buffer | undefined,
  rootDev: bigint,
  warn: (text: string) => void,
  signal?: AbortSignal,
): AsyncGenerator<{ rel: Buffer; info: EntryInfo }> {
  const folder = rel ? joinPath(tree.root, rel) : tree.root;
  for (const name of await sortedNames(folder, warn)) {
    signal?.throwIfAborted();
    const child = childRel(rel, name);
    const info = await entryInfo(joinPath(tree.root, child));
    if (!info) continue;
    yield { rel: child, info };
    if (info.type === 'folder' && info.dev === rootDev) yield* walk(tree, child, rootDev, warn, signal);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\\\u0000-\u001f\u007f]/g, (ch) => {
    if (ch === '\\') return '\\\\';
    if (ch === '\n') return '\\n';
    if (ch === '\t') return '\\t';
    return `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** A name as text: UTF-8 as is; control characters and bytes that are not UTF-8 escaped. */
export function displayPath(bytes: Buffer): string {
  try {
    const text = utf8.decode(bytes);
    // eslint-disable-next-line no-control-regex
    return /[\u0000-\u001f\u007f]/.test(text) ? escapeControls(text) : text;
  } catch {
    let out = '';
    let i = 0;
    while (i < bytes.length) {
      const lead = bytes[i] as number;
      const length = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
      if (length > 0 && i + length <= bytes.length) {
        try {
          out += escapeControls(utf8.decode(bytes.subarray(i, i + length)));
          i += length;
          continue;
        } catch {
          // not a valid sequence: escaped byte by byte below
        }
      }
      out += `\\x${lead.toString(16).padStart(2, '0')}`;
      i += 1;
    }
    return out;
  }
}

/** Whether displayPath had to change the name (then the raw bytes are given as base64 as well). */
export function needsEscape(bytes: Buffer): boolean {
  return displayPath(bytes) !== bytes.toString('utf8');
}

export function isoFromNs(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}

export function octalMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

/** sha256 of a regular file, read without following a symlink. */
export async function sha256Of(path: Buffer, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** How a snapshot is named in results: external copies carry an "external:" prefix (their names repeat local ones). */
export function snapshotLabel(snapshot: ListedSnapshot): string {
  return snapshot.location === 'external' ? `external:${snapshot.name}` : snapshot.name;
}

/** The snapshots of a volume that can be read, newest first; foreign ones only when asked. */
export async function readableSnapshots(
  deps: Deps,
  volume: VolumeConfig,
  options: {
    location: 'local' | 'external' | 'all';
    includeForeign: boolean;
    since?: string | undefined;
    signal?: AbortSignal | undefined;
  },
): Promise<ListedSnapshot[]> {
  const { snapshots } = await listSnapshots(
    deps,
    {
      volume: volume.id,
      location: options.location,
      includeForeign: options.includeForeign,
      ...(options.since ? { since: options.since } : {}),
    },
    { signal: options.signal },
  );
  return snapshots;
}

/**
 * A snapshot by name, owned or foreign, local first then external copies ("external:NAME" names
 * the external copy). Reading changes
 * nothing, so foreign snapshots are allowed here.
 */
export async function findSnapshot(
  deps: Deps,
  volume: VolumeConfig,
  label: string,
  signal?: AbortSignal,
): Promise<ListedSnapshot> {
  const external = label.startsWith('external:');
  const name = external ? label.slice('external:'.length) : label;
  if (name.includes('/') || name.includes('\0') || name === '.' || name === '..') {
    throw new SnapguardError('BAD_INPUT', `"${name.slice(0, 80)}" is not a snapshot name.`, {
      mcp: `Pass the bare name of a snapshot as list_snapshots with volume "${volume.id}" returns it, not a path.`,
      cli: `Pass the bare name of a snapshot as \`snapguard snapshot list ${volume.id}\` shows it, not a path.`,
    });
  }
  const all = await readableSnapshots(deps, volume, { location: 'all', includeForeign: true, signal });
  const found = external
    ? all.find((s) => s.name === name && s.location === 'external')
    : (all.find((s) => s.name === name && s.location === 'local') ?? all.find((s) => s.name === name));
  if (!found) {
    throw new SnapguardError(
      'SNAPSHOT_NOT_FOUND',
      `Volume "${volume.id}" has no snapshot named "${name}" (locally or in its external copies).`,
      {
        mcp: `Call list_snapshots with volume "${volume.id}", location "all" and includeForeign: true for the names that exist.`,
        cli: `List them with: snapguard snapshot list ${volume.id} --all-locations --include-foreign`,
      },
    );
  }
  return found;
}

/**
 * Opens a snapshot for reading: its own folder, or the backend's reader where its snapshots have no
 * plain readable path everywhere (zfs).
 */
export async function openSnapshotTree(
  deps: Deps,
  volume: VolumeConfig,
  snapshot: ListedSnapshot,
  signal?: AbortSignal,
): Promise<OpenTree> {
  const base = { label: snapshotLabel(snapshot), createdAt: snapshot.createdAt };
  const backend = deps.backendFor(volume);
  if (!backend.openSnapshot)
    return { ...base, root: Buffer.from(snapshot.path), close: async () => undefined };
  if (snapshot.location === 'external') {
    throw new SnapguardError(
      'NOT_SUPPORTED',
      `Snapshot "${snapshot.name}" is an external ${backend.kind} copy; only the volume's own ${backend.kind} snapshots can be read.`,
      'Read the local snapshot of the same name, or read the copy on the host that holds it.',
    );
  }
  const reader = await backend.openSnapshot(volume, snapshot.name, { signal });
  return { ...base, root: Buffer.from(reader.path), close: () => reader.close() };
}

export function liveTree(volume: VolumeConfig): OpenTree {
  return { label: 'live', root: Buffer.from(volume.path), close: async () => undefined };
}

/** Runs `work` on each opened tree in turn, closing each one (also on failure) before the next. */
export async function withTree<T>(
  open: () => Promise<OpenTree>,
  work: (tree: OpenTree) => Promise<T>,
): Promise<T> {
  const tree = await open();
  try {
    return await work(tree);
  } finally {
    await tree.close();
  }
}
