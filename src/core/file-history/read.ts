import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { requireVolume } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError } from '../errors.js';
import { normaliseRelativePath, resolveRestorePaths } from '../recovery/paths.js';
import { parseInput } from '../validate.js';
import { ReadSnapshotFileInput, type ReadSnapshotFileResult } from './schemas.js';
import {
  findSnapshot,
  isoFromNs,
  openSnapshotTree,
  snapshotLabel,
  withTree,
  type FileHistoryCall,
} from './tree.js';

/**
 * The content of one file of a snapshot. The path goes through the same validator as a file
 * restore (relative, normalised, no "..", symlinks resolved inside the snapshot); a symlink that
 * stays inside is followed, nothing outside the snapshot is ever opened.
 */
export async function readSnapshotFile(
  deps: Deps,
  input: unknown,
  call: FileHistoryCall = {},
): Promise<ReadSnapshotFileResult> {
  const request = parseInput(ReadSnapshotFileInput, input, 'read_snapshot_file');
  const volume = requireVolume(deps.config, request.volume);
  const snapshot = await findSnapshot(deps, volume, request.snapshot, call.signal);
  const refuse = notAFile(request);
  return withTree(
    () => openSnapshotTree(deps, volume, snapshot, call.signal),
    async (tree) => {
      const root = tree.root.toString();
      if (normaliseRelativePath(request.path) === '.') throw refuse(request.path, 'the snapshot root');
      // The snapshot stands in for both sides: the volume is not read at all.
      const { paths } = await resolveRestorePaths([request.path], root, root);
      const rel = paths[0];
      if (rel === undefined || paths.length !== 1) throw refuse(request.path, 'a folder');
      const realRoot = await realpath(root);
      const real = await realpath(`${root}/${rel}`);
      if (!real.startsWith(`${realRoot}/`)) {
        throw new SnapguardError(
          'BAD_INPUT',
          `path: "${rel}" resolves outside the snapshot. Nothing was read.`,
          'Name a file inside the snapshot.',
        );
      }
      // Checked before opening: opening a device or a FIFO can have effects of its own.
      const before = await stat(real, { bigint: true });
      if (!before.isFile()) throw refuse(rel, before.isDirectory() ? 'a folder' : 'not a regular file');
      const handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        const stats = await handle.stat({ bigint: true });
        if (!stats.isFile() || stats.ino !== before.ino || stats.dev !== before.dev)
          throw refuse(rel, 'not a regular file');
        const hash = createHash('sha256');
        const head: Buffer[] = [];
        let kept = 0;
        let binary = false;
        const buffer = Buffer.allocUnsafe(1024 * 1024);
        for (;;) {
          call.signal?.throwIfAborted();
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
          if (bytesRead === 0) break;
          const chunk = buffer.subarray(0, bytesRead);
          hash.update(chunk);
          if (!binary && kept < request.maxBytes) {
            const part = chunk.subarray(0, request.maxBytes - kept);
            if (part.includes(0)) binary = true;
            else {
              head.push(Buffer.from(part));
              kept += part.length;
            }
          }
        }
        const size = Number(stats.size);
        let content: string | undefined;
        if (!binary) {
          let bytes = Buffer.concat(head);
          // A cut through a multi-byte character at the end is dropped rather than shown broken.
          if (size > kept) bytes = bytes.subarray(0, validUtf8Prefix(bytes));
          content = bytes.toString('utf8');
        }
        return {
          volume: volume.id,
          snapshot: snapshotLabel(snapshot),
          path: rel,
          size,
          mtime: isoFromNs(stats.mtimeNs),
          sha256: hash.digest('hex'),
          binary,
          ...(binary ? {} : { content }),
          truncated: !binary && size > kept,
        };
      } finally {
        await handle.close();
      }
    },
  );
}

/** The refusal of a path that is no regular file, for the volume and snapshot asked about. */
const notAFile =
  (at: { volume: string; snapshot: string }) =>
  (path: string, what: string): SnapguardError =>
    new SnapguardError('BAD_INPUT', `path: "${path}" is ${what}, not a file. Nothing was read.`, {
      mcp: 'Name one regular file; use file_versions or diff_snapshots to look at folders.',
      cli: `Name one regular file; use \`snapguard versions ${at.volume} ${path}\` or \`snapguard diff ${at.volume} ${at.snapshot} -- ${path}\` to look at folders.`,
    });

/** Length of `bytes` without a multi-byte UTF-8 character cut off at its end. */
function validUtf8Prefix(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(4, bytes.length); back++) {
    const byte = bytes[bytes.length - back] as number;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: look further back for its lead
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back ? bytes.length - back : bytes.length;
  }
  return bytes.length;
}
