import { readdir } from 'node:fs/promises';
import { requireVolume } from '../config.js';
import type { Deps } from '../deps.js';
import { normaliseRelativePath } from '../recovery/paths.js';
import type { ListedSnapshot } from '../schemas.js';
import { parseInput } from '../validate.js';
import { FindDeletedInput, type DeletedEntry, type FindDeletedResult } from './schemas.js';
import {
  displayPath,
  entryInside,
  isoFromNs,
  liveTree,
  needsEscape,
  openSnapshotTree,
  readableSnapshots,
  childRel,
  entryInfo,
  joinPath,
  sortedEntries,
  snapshotLabel,
  withTree,
  type EntryInfo,
  type FileHistoryCall,
  type OpenTree,
} from './tree.js';

/** The search across all snapshots: what is reported so far and the counters for progress. */
interface Search {
  live: OpenTree;
  limit: number;
  snapshotCount: number;
  call: FileHistoryCall;
  warn: (text: string) => void;
  /** Paths already reported (by a newer snapshot), as binary strings: only deleted paths are kept. */
  reported: Set<string>;
  deleted: DeletedEntry[];
  total: number;
  scanned: number;
}

/** One snapshot being walked: its tree, its top entry, and its place in the list. */
interface Walk {
  snapshot: ListedSnapshot;
  index: number;
  tree: OpenTree;
  top: EntryInfo;
}

/** Reports `path` as deleted, unless a newer snapshot already did; counts it past the limit. */
function record(search: Search, walk: Walk, path: Buffer, info: EntryInfo, topLevel: boolean): void {
  const key = path.toString('latin1');
  if (search.reported.has(key)) return;
  search.reported.add(key);
  search.total += 1;
  if (search.deleted.length >= search.limit) return;
  search.deleted.push({
    path: displayPath(path),
    ...(needsEscape(path) ? { pathBase64: path.toString('base64') } : {}),
    type: info.type,
    newestSnapshot: snapshotLabel(walk.snapshot),
    snapshotCreatedAt: walk.snapshot.createdAt,
    size: info.size,
    mtime: isoFromNs(info.mtimeNs),
    topLevel,
  });
}

/**
 * One folder at a time: its names in the snapshot against the names of the same folder live (a
 * set for this level only); only entries missing live and folders are stat'ed.
 */
async function scanFolder(
  search: Search,
  walk: Walk,
  rel: Buffer | undefined,
  liveHasFolder: boolean,
): Promise<void> {
  const { call, live } = search;
  const here = rel ? joinPath(walk.tree.root, rel) : walk.tree.root;
  const liveNames = liveHasFolder
    ? await namesOf(rel ? joinPath(live.root, rel) : live.root, search.warn)
    : undefined;
  for (const { name, folder } of await sortedEntries(here, search.warn)) {
    call.signal?.throwIfAborted();
    if (++search.scanned % 5000 === 0)
      call.onProgress?.({
        progress: walk.index,
        total: search.snapshotCount,
        message: `${search.scanned} entries read, ${search.total} deleted so far`,
      });
    const child = childRel(rel, name);
    const stillLive = liveNames?.has(name.toString('latin1')) ?? false;
    // Still there and not a folder: nothing to report or enter, no stat needed.
    if (stillLive && !folder) continue;
    const info = await entryInfo(joinPath(walk.tree.root, child));
    if (!info) continue;
    if (!stillLive) record(search, walk, child, info, liveHasFolder);
    if (info.type === 'folder' && info.dev === walk.top.dev) await scanFolder(search, walk, child, stillLive);
  }
}

/** Walks one snapshot below `start`, reporting what the live volume no longer has. */
async function searchSnapshot(
  search: Search,
  snapshot: ListedSnapshot,
  index: number,
  tree: OpenTree,
  start: Buffer | undefined,
): Promise<void> {
  const top = await entryInside(tree.root, start);
  if (!top) return;
  const walk: Walk = { snapshot, index, tree, top };
  const startGone = start !== undefined && !(await entryInside(search.live.root, start));
  if (start && startGone) record(search, walk, start, top, true);
  if (top.type !== 'folder') return;
  await scanFolder(search, walk, start, !startGone);
}

/**
 * Files and folders that snapshots hold and the live volume no longer has, each with the newest
 * snapshot holding it. Snapshots are walked newest first, so the first one to show a path is the
 * newest; below a folder that is gone live, the live volume is not read again.
 */
export async function findDeleted(
  deps: Deps,
  input: unknown,
  call: FileHistoryCall = {},
): Promise<FindDeletedResult> {
  const request = parseInput(FindDeletedInput, input, 'find_deleted');
  const volume = requireVolume(deps.config, request.volume);
  const rel = request.path === undefined ? '.' : normaliseRelativePath(request.path);
  const start = rel === '.' ? undefined : Buffer.from(rel);
  const warnings: string[] = [];
  const snapshots = await readableSnapshots(deps, volume, {
    location: request.location,
    includeForeign: request.includeForeign,
    since: request.since,
    signal: call.signal,
  });
  const search: Search = {
    live: liveTree(volume),
    limit: request.limit,
    snapshotCount: snapshots.length,
    call,
    warn: (text: string) => {
      if (warnings.length < 20) warnings.push(text);
    },
    reported: new Set<string>(),
    deleted: [],
    total: 0,
    scanned: 0,
  };
  for (const [index, snapshot] of snapshots.entries()) {
    call.onProgress?.({
      progress: index,
      total: snapshots.length,
      message: `searching ${snapshotLabel(snapshot)} (${search.total} deleted so far)`,
    });
    await withTree(
      () => openSnapshotTree(deps, volume, snapshot, call.signal),
      (tree) => searchSnapshot(search, snapshot, index, tree, start),
    );
  }
  const { deleted, total } = search;
  deleted.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return {
    volume: volume.id,
    deleted,
    total,
    truncated: total > deleted.length,
    snapshotsChecked: snapshots.length,
    warnings,
  };
}

/** The names in one folder as binary strings (one char per byte: no name is altered). */
async function namesOf(folder: Buffer, warn: (text: string) => void): Promise<Set<string>> {
  try {
    return new Set(await readdir(folder, { encoding: 'latin1' }));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR')
      warn(`${displayPath(folder)} could not be read (${code ?? 'error'})`);
    return new Set();
  }
}
