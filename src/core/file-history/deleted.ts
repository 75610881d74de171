import { requireVolume } from '../config.js';
import type { Deps } from '../deps.js';
import { normaliseRelativePath } from '../recovery/paths.js';
import type { CallContext } from '../snapshots.js';
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
  snapshotLabel,
  walk,
  withTree,
} from './tree.js';

/**
 * Files and folders that snapshots hold and the live volume no longer has, each with the newest
 * snapshot holding it. Snapshots are walked newest first, so the first one to show a path is the
 * newest; below a folder that is gone live, the live volume is not asked again.
 */
export async function findDeleted(
  deps: Deps,
  input: unknown,
  call: CallContext = {},
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
  // Paths already reported (by a newer snapshot), as raw bytes in hex: only deleted paths are kept.
  const reported = new Set<string>();
  const deleted: DeletedEntry[] = [];
  let total = 0;

  for (const snapshot of snapshots) {
    await withTree(
      () => openSnapshotTree(deps, volume, snapshot, call.signal),
      async (tree) => {
        const top = await entryInside(tree.root, start);
        if (!top) return;
        // Folders gone live, as byte prefixes: what is below them is gone too.
        const goneFolders: Buffer[] = [];
        const record = (path: Buffer, info: NonNullable<typeof top>, topLevel: boolean) => {
          const key = path.toString('hex');
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
        if (start && !(await entryInside(live.root, start))) {
          record(start, top, true);
          if (top.type !== 'folder') return;
          goneFolders.push(start);
        }
        if (top.type !== 'folder') return;
        for await (const { rel: path, info } of walk(tree, start, top.dev, warn, call.signal)) {
          while (goneFolders.length > 0 && !isBelow(path, goneFolders[goneFolders.length - 1] as Buffer))
            goneFolders.pop();
          if (goneFolders.length > 0) {
            record(path, info, false);
          } else if (!(await entryInside(live.root, path))) {
            record(path, info, true);
          } else {
            continue;
          }
          if (info.type === 'folder') goneFolders.push(path);
        }
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

function isBelow(path: Buffer, folder: Buffer): boolean {
  return (
    path.length > folder.length + 1 &&
    path[folder.length] === 0x2f &&
    path.subarray(0, folder.length).equals(folder)
  );
}
