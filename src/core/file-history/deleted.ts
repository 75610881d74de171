import { readdir } from 'node:fs/promises';
import { requireVolume } from '../config.js';
import type { Deps } from '../deps.js';
import { normaliseRelativePath } from '../recovery/paths.js';
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
  type FileHistoryCall,
} from './tree.js';

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
  const warn = (text: string) => {
    if (warnings.length < 20) warnings.push(text);
  };
  const snapshots = await readableSnapshots(deps, volume, {
    location: request.location,
    includeForeign: request.includeForeign,
    since: request.since,
    signal: call.signal,
  });
  const live = liveTree(volume);
  // Paths already reported (by a newer snapshot), as binary strings: only deleted paths are kept.
  const reported = new Set<string>();
  const deleted: DeletedEntry[] = [];
  let total = 0;

  let scanned = 0;
  for (const [index, snapshot] of snapshots.entries()) {
    call.onProgress?.({
      progress: index,
      total: snapshots.length,
      message: `searching ${snapshotLabel(snapshot)} (${total} deleted so far)`,
    });
    await withTree(
      () => openSnapshotTree(deps, volume, snapshot, call.signal),
      async (tree) => {
        const top = await entryInside(tree.root, start);
        if (!top) return;
        const record = (path: Buffer, info: NonNullable<typeof top>, topLevel: boolean) => {
          const key = path.toString('latin1');
          if (reported.has(key)) return;
          reported.add(key);
          total += 1;
          if (deleted.length >= request.limit) return;
          deleted.push({
            path: displayPath(path),
            ...(needsEscape(path) ? { pathBase64: path.toString('base64') } : {}),
            type: info.type,
            newestSnapshot: snapshotLabel(snapshot),
            snapshotCreatedAt: snapshot.createdAt,
            size: info.size,
            mtime: isoFromNs(info.mtimeNs),
            topLevel,
          });
        };
        const startGone = start !== undefined && !(await entryInside(live.root, start));
        if (start && startGone) record(start, top, true);
        if (top.type !== 'folder') return;
        // One folder at a time: its names in the snapshot against the names of the same folder
        // live (a set for this level only); only entries missing live and folders are stat'ed.
        const scan = async (rel: Buffer | undefined, liveHasFolder: boolean): Promise<void> => {
          const here = rel ? joinPath(tree.root, rel) : tree.root;
          const liveNames = liveHasFolder
            ? await namesOf(rel ? joinPath(live.root, rel) : live.root, warn)
            : undefined;
          for (const { name, folder } of await sortedEntries(here, warn)) {
            call.signal?.throwIfAborted();
            if (++scanned % 5000 === 0)
              call.onProgress?.({
                progress: index,
                total: snapshots.length,
                message: `${scanned} entries read, ${total} deleted so far`,
              });
            const child = childRel(rel, name);
            const stillLive = liveNames?.has(name.toString('latin1')) ?? false;
            // Still there and not a folder: nothing to report or enter, no stat needed.
            if (stillLive && !folder) continue;
            const info = await entryInfo(joinPath(tree.root, child));
            if (!info) continue;
            if (!stillLive) record(child, info, liveHasFolder);
            if (info.type === 'folder' && info.dev === top.dev) await scan(child, stillLive);
          }
        };
        await scan(start, !startGone);
      },
    );
  }
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
