import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { requireVolume, type VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { bytesOf, binaryOf } from '../byte-names.js';
import { normaliseRelativePath } from '../recovery/paths.js';
import { sendDumpSets, type ChangeSets } from '../recovery/summary.js';
import type { ListedSnapshot } from '../schemas.js';
import { parseInput } from '../validate.js';
import { DiffSnapshotsInput, type DiffSnapshotsResult } from './schemas.js';
import {
  childRel,
  displayPath,
  entryInfo,
  entryInside,
  findSnapshot,
  joinPath,
  liveTree,
  openSnapshotTree,
  sha256Of,
  sortedNames,
  walk,
  type EntryInfo,
  type OpenTree,
  type FileHistoryCall,
} from './tree.js';

const PATCH_MAX_INPUT = 1024 * 1024;
const PATCH_MAX_OUTPUT = 64 * 1024;

class ChangeList {
  count = 0;
  readonly paths: string[] = [];
  constructor(private readonly limit: number) {}
  add(path: Buffer): boolean {
    this.count += 1;
    if (this.paths.length >= this.limit) return false;
    this.paths.push(displayPath(path));
    return true;
  }
  result() {
    return { count: this.count, paths: this.paths, truncated: this.count > this.paths.length };
  }
}

interface DiffRun {
  deps: Deps;
  volume: VolumeConfig;
  from: OpenTree;
  to: OpenTree;
  fromDev: bigint;
  toDev: bigint;
  checksum: boolean;
  /** ctime is kept by btrfs and zfs snapshots, so an equal ctime means equal xattrs there. */
  ctimeTrusted: boolean;
  added: ChangeList;
  removed: ChangeList;
  modified: ChangeList;
  metadata: ChangeList;
  metadataChanges: { path: string; fields: string[] }[];
  warn(text: string): void;
  signal?: AbortSignal | undefined;
  onProgress?: FileHistoryCall['onProgress'];
  compared: number;
  /**
   * Set when a send stream named the changed paths: each is compared on its own (no descent into
   * folders both sides have), xattr changes come from the stream, and `seen` keeps a path listed
   * under an added or removed folder from being listed again.
   */
  stream?: { xattrs: Set<string>; seen: Set<string> };
}

/**
 * What changed between two snapshots, or a snapshot and the live volume: one merge walk over both
 * trees in byte order, memory one listing per folder level. Size or mtime differing means
 * modified; equal size and mtime means unchanged unless checksum is asked. Access times are
 * never compared.
 */
export async function diffSnapshots(
  deps: Deps,
  input: unknown,
  call: FileHistoryCall = {},
): Promise<DiffSnapshotsResult> {
  const request = parseInput(DiffSnapshotsInput, input, 'diff_snapshots');
  const volume = requireVolume(deps.config, request.volume);
  const rel = request.path === undefined ? '.' : normaliseRelativePath(request.path);
  const start = rel === '.' ? undefined : Buffer.from(rel);
  const fromSnapshot = await findSnapshot(deps, volume, request.from, call.signal);
  const toSnapshot = request.to ? await findSnapshot(deps, volume, request.to, call.signal) : undefined;
  const warnings: string[] = [];
  const from = await openSnapshotTree(deps, volume, fromSnapshot, call.signal);
  try {
    const to = toSnapshot ? await openSnapshotTree(deps, volume, toSnapshot, call.signal) : liveTree(volume);
    try {
      const fromRoot = await entryInside(from.root, undefined);
      const toRoot = await entryInside(to.root, undefined);
      const run: DiffRun = {
        deps,
        volume,
        from,
        to,
        fromDev: fromRoot?.dev ?? 0n,
        toDev: toRoot?.dev ?? 0n,
        checksum: request.checksum,
        ctimeTrusted: deps.backendFor(volume).ctimeTrusted === true,
        added: new ChangeList(request.limit),
        removed: new ChangeList(request.limit),
        modified: new ChangeList(request.limit),
        metadata: new ChangeList(request.limit),
        metadataChanges: [],
        warn: (text) => {
          if (warnings.length < 20) warnings.push(text);
        },
        signal: call.signal,
        onProgress: call.onProgress,
        compared: 0,
      };
      const a = await entryInside(from.root, start);
      const b = await entryInside(to.root, start);
      const sets =
        toSnapshot && !request.checksum
          ? await sendStream(deps, volume, fromSnapshot, toSnapshot, run.warn, call.signal)
          : undefined;
      if (sets) {
        run.stream = { xattrs: sets.xattrs, seen: new Set() };
        await compareCandidates(run, sets, start);
      } else if (start) await compareEntry(run, start, a, b);
      else await compareFolders(run, undefined);
      let patch: { text: string; truncated: boolean } | undefined;
      if (request.patch) patch = await unifiedDiff(run, start, a, b, warnings);
      return {
        volume: volume.id,
        from: from.label,
        to: to.label,
        ...(start ? { path: rel } : {}),
        added: run.added.result(),
        removed: run.removed.result(),
        modified: run.modified.result(),
        metadata: { ...run.metadata.result(), changes: run.metadataChanges },
        ...(patch ? { patch: patch.text, patchTruncated: patch.truncated } : {}),
        method: sets ? ('btrfs-send' as const) : ('walk' as const),
        warnings,
      };
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}

async function compareFolders(run: DiffRun, rel: Buffer | undefined): Promise<void> {
  const fromNames = await sortedNames(rel ? joinPath(run.from.root, rel) : run.from.root, run.warn);
  const toNames = await sortedNames(rel ? joinPath(run.to.root, rel) : run.to.root, run.warn);
  let i = 0;
  let j = 0;
  while (i < fromNames.length || j < toNames.length) {
    run.signal?.throwIfAborted();
    if (++run.compared % 5000 === 0)
      run.onProgress?.({
        progress: run.compared,
        message: `${run.compared} entries compared, ${run.added.count + run.removed.count + run.modified.count + run.metadata.count} changes`,
      });
    const a = fromNames[i];
    const b = toNames[j];
    const order = a === undefined ? 1 : b === undefined ? -1 : Buffer.compare(a, b);
    const name = (order <= 0 ? a : b) as Buffer;
    if (order <= 0) i++;
    if (order >= 0) j++;
    const child = childRel(rel, name);
    // The folders on the way were stat'ed as real folders already: one lstat per side suffices.
    const fromInfo = order <= 0 ? await entryInfo(joinPath(run.from.root, child)) : undefined;
    const toInfo = order >= 0 ? await entryInfo(joinPath(run.to.root, child)) : undefined;
    await compareEntry(run, child, fromInfo, toInfo);
  }
}

async function compareEntry(
  run: DiffRun,
  rel: Buffer,
  a: EntryInfo | undefined,
  b: EntryInfo | undefined,
): Promise<void> {
  if (!a && !b) return;
  if (!a || !b) {
    const side = a ? run.from : run.to;
    const list = a ? run.removed : run.added;
    const info = (a ?? b) as EntryInfo;
    const seen = run.stream?.seen;
    const add = (path: Buffer) => {
      if (seen) {
        const key = `${a ? '-' : '+'}${binaryOf(path)}`;
        if (seen.has(key)) return;
        seen.add(key);
      }
      list.add(path);
    };
    add(rel);
    if (info.type === 'folder' && info.dev === (a ? run.fromDev : run.toDev))
      for await (const item of walk(side, rel, info.dev, run.warn, run.signal)) add(item.rel);
    return;
  }
  if (a.type !== b.type) {
    // A different kind of entry under the same name: the old one is gone, the new one is there.
    await compareEntry(run, rel, a, undefined);
    await compareEntry(run, rel, undefined, b);
    return;
  }
  if (a.type !== 'folder' && (await contentDiffers(run, rel, a, b))) {
    run.modified.add(rel);
    return;
  }
  const fields: string[] = [];
  if (a.mode !== b.mode) fields.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) fields.push('owner');
  // An xattr change moves ctime; copies (dir backend) have new ctimes, so there only checksum reads them.
  if (run.stream) {
    if (run.stream.xattrs.has(binaryOf(rel))) fields.push('xattrs');
  } else {
    const askXattrs = run.ctimeTrusted ? a.ctimeNs !== b.ctimeNs : run.checksum;
    if (askXattrs && (await xattrsDiffer(run, rel))) fields.push('xattrs');
  }
  if (fields.length > 0 && run.metadata.add(rel))
    run.metadataChanges.push({ path: displayPath(rel), fields });
  if (!run.stream && a.type === 'folder' && a.dev === run.fromDev && b.dev === run.toDev)
    await compareFolders(run, rel);
}

/**
 * Between two local btrfs snapshots: the paths a metadata-only `send -p FROM TO` stream touches
 * (its cost follows the size of the change, not of the tree). Undefined where there is no such
 * stream (other backends, external copies) or it cannot be made: the trees are walked then.
 */
async function sendStream(
  deps: Deps,
  volume: VolumeConfig,
  from: ListedSnapshot,
  to: ListedSnapshot,
  warn: (text: string) => void,
  signal?: AbortSignal,
): Promise<ChangeSets | undefined> {
  const backend = deps.backendFor(volume);
  // Only storage that can stream the changes between two snapshots (btrfs send) offers it.
  if (!backend.changeDump) return undefined;
  if (from.location !== 'local' || to.location !== 'local') return undefined;
  try {
    const dump = await backend.changeDump(volume, to.path, {
      parentPath: from.path,
      workDir: join(deps.config.stateDir, 'tmp'),
      signal,
    });
    return sendDumpSets(dump);
  } catch (error) {
    signal?.throwIfAborted();
    warn(
      `the send stream between the snapshots could not be read (${(error as Error).message.split('\n')[0]}); both trees were walked instead`,
    );
    return undefined;
  }
}

/** Path components compared by bytes: the order of the tree walk (a folder, then what is inside it). */
function walkOrder(a: Buffer, b: Buffer): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (x === y) continue;
    if (x === 0x2f) return -1;
    if (y === 0x2f) return 1;
    return x - y;
  }
  return a.length - b.length;
}

/** Compares each path the stream named, in walk order, below `start` when given. */
async function compareCandidates(run: DiffRun, sets: ChangeSets, start: Buffer | undefined): Promise<void> {
  const names = new Set<string>();
  for (const set of [sets.added, sets.removed, sets.modified, sets.metadata])
    for (const path of set) if (path !== '') names.add(path);
  const prefix = start ? binaryOf(start) : undefined;
  const candidates = [...names]
    .filter((path) => prefix === undefined || path === prefix || path.startsWith(`${prefix}/`))
    .map(bytesOf)
    .sort(walkOrder);
  for (const rel of candidates) {
    run.signal?.throwIfAborted();
    if (++run.compared % 5000 === 0)
      run.onProgress?.({ progress: run.compared, message: `${run.compared} changed entries compared` });
    const a = await entryInside(run.from.root, rel);
    const b = await entryInside(run.to.root, rel);
    await compareEntry(run, rel, a, b);
  }
}

async function contentDiffers(run: DiffRun, rel: Buffer, a: EntryInfo, b: EntryInfo): Promise<boolean> {
  switch (a.type) {
    case 'symlink':
      return !(a.target as Buffer).equals(b.target as Buffer);
    case 'char-device':
    case 'block-device':
      return a.rdev !== b.rdev;
    case 'file':
      if (a.size !== b.size || a.mtimeNs !== b.mtimeNs) return true;
      if (!run.checksum) return false;
      return (
        (await sha256Of(joinPath(run.from.root, rel), run.signal)) !==
        (await sha256Of(joinPath(run.to.root, rel), run.signal))
      );
    default:
      return false;
  }
}

/** Extended attributes of one entry as getfattr prints them (names and hex values), sorted. */
async function xattrsOf(run: DiffRun, root: Buffer, rel: Buffer): Promise<string | undefined> {
  const path = joinPath(root, rel);
  // getfattr takes text arguments: names that are not UTF-8 cannot be passed and are skipped.
  if (Buffer.from(path.toString('utf8')).compare(path) !== 0) return undefined;
  try {
    const result = await run.deps.exec(
      'getfattr',
      [
        '--absolute-names',
        '--no-dereference',
        '--dump',
        '--match=-',
        '--encoding=hex',
        '--',
        path.toString('utf8'),
      ],
      { timeoutMs: 30_000, signal: run.signal },
    );
    return result.stdout
      .split('\n')
      .filter((line) => line.includes('='))
      .sort()
      .join('\n');
  } catch (error) {
    run.warn(`xattrs of ${displayPath(rel)} could not be read: ${(error as Error).message.split('\n')[0]}`);
    return undefined;
  }
}

async function xattrsDiffer(run: DiffRun, rel: Buffer): Promise<boolean> {
  const a = await xattrsOf(run, run.from.root, rel);
  const b = await xattrsOf(run, run.to.root, rel);
  return a !== undefined && b !== undefined && a !== b;
}

async function looksLikeText(path: Buffer, size: number): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(Math.min(size, 8192));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return !buffer.subarray(0, bytesRead).includes(0);
  } finally {
    await handle.close();
  }
}

/** `diff -u` of one small text file, bounded; explained in a warning when it cannot be made. */
async function unifiedDiff(
  run: DiffRun,
  start: Buffer | undefined,
  a: EntryInfo | undefined,
  b: EntryInfo | undefined,
  warnings: string[],
): Promise<{ text: string; truncated: boolean } | undefined> {
  const skip = (why: string) => {
    warnings.push(`No patch: ${why}.`);
    return undefined;
  };
  if (!start) return skip('patch needs path to name one file');
  const files = [a, b].filter((x): x is EntryInfo => x !== undefined);
  if (files.length === 0) return skip('the path exists on neither side');
  if (files.some((info) => info.type !== 'file')) return skip('the path is not a regular file on both sides');
  if (files.some((info) => info.size > PATCH_MAX_INPUT))
    return skip(`the file is larger than ${PATCH_MAX_INPUT} bytes`);
  const fromPath = a ? joinPath(run.from.root, start).toString() : '/dev/null';
  const toPath = b ? joinPath(run.to.root, start).toString() : '/dev/null';
  for (const [info, path] of [
    [a, fromPath],
    [b, toPath],
  ] as const) {
    if (info && !(await looksLikeText(Buffer.from(path), info.size))) return skip('the file is binary');
  }
  const name = displayPath(start);
  const result = await run.deps.exec(
    'diff',
    ['-u', '--label', `a/${name}`, '--label', `b/${name}`, '--', fromPath, toPath],
    { timeoutMs: 60_000, signal: run.signal, okExitCodes: [0, 1] },
  );
  const truncated = result.stdout.length > PATCH_MAX_OUTPUT;
  return { text: truncated ? result.stdout.slice(0, PATCH_MAX_OUTPUT) : result.stdout, truncated };
}
