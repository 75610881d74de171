import { requireVolume } from '../config.js';
import type { Deps } from '../deps.js';
import { normaliseRelativePath } from '../recovery/paths.js';
import { parseInput } from '../validate.js';
import { FileVersionsInput, type FileVersion, type FileVersionsResult } from './schemas.js';
import {
  displayPath,
  entryInside,
  isoFromNs,
  joinPath,
  liveTree,
  octalMode,
  openSnapshotTree,
  readableSnapshots,
  sha256Of,
  snapshotLabel,
  withTree,
  type EntryInfo,
  type OpenTree,
  type FileHistoryCall,
} from './tree.js';

interface Seen {
  label: string;
  live: boolean;
  info: EntryInfo;
  sha256?: string;
  open: () => Promise<OpenTree>;
}

function metadataKey(info: EntryInfo): string {
  return [
    info.type,
    info.size,
    info.mtimeNs,
    octalMode(info.mode),
    `${info.uid}:${info.gid}`,
    info.target?.toString('hex') ?? '',
    info.type === 'char-device' || info.type === 'block-device' ? info.rdev : '',
  ].join('|');
}

interface Source {
  label: string;
  live: boolean;
  open: () => Promise<OpenTree>;
}

/**
 * Stats `relBytes` in every source (hashing files with checksum); returns the copies found, in
 * source order, and the labels of the sources that do not hold the path.
 */
async function readSources(
  sources: Source[],
  relBytes: Buffer | undefined,
  options: { parallel: number; checksum: boolean },
  call: FileHistoryCall,
): Promise<{ seen: Seen[]; absent: string[] }> {
  const { parallel } = options;
  const found: (Seen | undefined)[] = new Array(sources.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (let index = next++; index < sources.length; index = next++) {
      call.signal?.throwIfAborted();
      const source = sources[index] as Source;
      await withTree(source.open, async (tree) => {
        const info = await entryInside(tree.root, relBytes);
        if (!info) return;
        const item: Seen = { label: source.label, live: source.live, info, open: source.open };
        if (options.checksum && info.type === 'file')
          item.sha256 = await sha256Of(relBytes ? joinPath(tree.root, relBytes) : tree.root, call.signal);
        found[index] = item;
      });
      if (++done % 100 === 0 || parallel === 1)
        call.onProgress?.({ progress: done, total: sources.length, message: `read ${source.label}` });
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, sources.length) }, worker));
  const seen: Seen[] = [];
  const absent: string[] = [];
  for (const [index, source] of sources.entries()) {
    const item = found[index];
    if (item) seen.push(item);
    else absent.push(source.label);
  }
  return { seen, absent };
}

/** Groups identical copies; the order of first appearance is newest first (live, then snapshots). */
function groupIdentical(seen: Seen[]): Seen[][] {
  const groups = new Map<string, Seen[]>();
  for (const item of seen) {
    const key = `${metadataKey(item.info)}|${item.sha256 ?? ''}`;
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return [...groups.values()];
}

/**
 * Versions that differ only in mode or owner share size and mtime: their content is hashed so
 * the reader can see whether it is the same.
 */
async function hashLookalikes(
  grouped: Seen[][],
  relBytes: Buffer | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const bySizeTime = new Map<string, Seen[][]>();
  for (const group of grouped) {
    const first = group[0] as Seen;
    if (first.info.type !== 'file') continue;
    const key = `${first.info.size}|${first.info.mtimeNs}`;
    bySizeTime.set(key, [...(bySizeTime.get(key) ?? []), group]);
  }
  for (const clash of bySizeTime.values()) {
    if (clash.length < 2) continue;
    for (const group of clash) {
      const first = group[0] as Seen;
      first.sha256 = await withTree(first.open, (tree) =>
        sha256Of(relBytes ? joinPath(tree.root, relBytes) : tree.root, signal),
      );
    }
  }
}

function versionOf(group: Seen[]): FileVersion {
  const first = group[0] as Seen;
  const { info } = first;
  return {
    snapshots: group.filter((item) => !item.live).map((item) => item.label),
    ...(group.some((item) => item.live) ? { live: true } : {}),
    type: info.type,
    size: info.size,
    mtime: isoFromNs(info.mtimeNs),
    mode: octalMode(info.mode),
    owner: `${info.uid}:${info.gid}`,
    links: info.nlink,
    ...(info.target ? { target: displayPath(info.target) } : {}),
    ...(first.sha256 ? { sha256: first.sha256 } : {}),
  };
}

/**
 * The distinct versions of one path across the live volume and the snapshots, newest first.
 * Every copy is stat'ed; content is read only where size and mtime cannot tell two versions apart
 * (or for every copy with checksum).
 */
export async function fileVersions(
  deps: Deps,
  input: unknown,
  call: FileHistoryCall = {},
): Promise<FileVersionsResult> {
  const request = parseInput(FileVersionsInput, input, 'file_versions');
  const volume = requireVolume(deps.config, request.volume);
  const rel = normaliseRelativePath(request.path);
  const relBytes = rel === '.' ? undefined : Buffer.from(rel);
  const warnings: string[] = [];
  const snapshots = await readableSnapshots(deps, volume, {
    location: request.location,
    includeForeign: request.includeForeign,
    signal: call.signal,
  });
  if (snapshots.length === 0) warnings.push(`Volume "${volume.id}" has no snapshots to compare with.`);
  const sources: Source[] = [
    { label: 'live', live: true, open: async () => liveTree(volume) },
    ...snapshots.map((snapshot) => ({
      label: snapshotLabel(snapshot),
      live: false,
      open: () => openSnapshotTree(deps, volume, snapshot, call.signal),
    })),
  ];
  // Snapshots that are plain folders are stat'ed several at a time; those opened through the
  // backend (zfs clones) one after the other.
  const parallel = deps.backendFor(volume).openSnapshot === undefined ? 16 : 1;
  const { seen, absent } = await readSources(
    sources,
    relBytes,
    { parallel, checksum: request.checksum },
    call,
  );
  const grouped = groupIdentical(seen);
  if (!request.checksum) await hashLookalikes(grouped, relBytes, call.signal);
  const versions = grouped.map(versionOf);
  return {
    volume: volume.id,
    path: rel,
    versions: versions.slice(0, request.limit),
    total: versions.length,
    truncated: versions.length > request.limit,
    absent,
    snapshotsChecked: snapshots.length,
    warnings,
  };
}
