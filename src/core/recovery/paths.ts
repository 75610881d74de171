import { lstat, readlink, readdir, realpath } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { normaliseRelativePath, refusePath } from '../../shared/relative-path.js';
import { binaryOfBase64, bytesOf, displayBinary, isUtf8 } from '../byte-names.js';
import { SnapguardError } from '../errors.js';

/**
 * Guardrail 1 for file restores: a path is relative, normalised, without "..", NUL or absolute
 * forms, and what it names (symlinks resolved) stays inside the snapshot and inside the volume.
 */

const refuse = refusePath;

const inside = (child: string, root: string) => child === root || child.startsWith(`${root}/`);

/** Lexical checks (shared with the zfs backend): the normalised relative path, "." for the whole tree. */
export { normaliseRelativePath };

/** Whether anything is at `path` (lstat: a symlink counts, whatever it points at). */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The parent folders of `rel` under `root` must be real folders (no symlink on the way), and a
 * symlink named by `rel` itself must point inside `root`. Missing parts are fine (they are created).
 */
/**
 * Checks one normalised path again right before it is acted on (after the services stopped): a
 * symlink planted on the way since the plan must not lead the restore outside the snapshot or the
 * volume.
 */
export async function recheckRestorePath(
  snapshotRoot: string,
  volumeRoot: string,
  rel: string,
): Promise<void> {
  await checkContainment(snapshotRoot, rel, 'snapshot', rel);
  await checkContainment(volumeRoot, rel, 'volume', rel);
}

async function checkContainment(root: string, rel: string, side: string, original: string): Promise<void> {
  const realRoot = await realpath(root);
  const parts = rel === '.' ? [] : rel.split('/');
  let current = realRoot;
  for (let i = 0; i < parts.length; i++) {
    const next = `${current}/${parts[i]}`;
    let info;
    try {
      info = await lstat(next);
    } catch {
      return; // does not exist on this side: nothing below it can escape
    }
    if (info.isSymbolicLink()) {
      const target = await realpath(next).catch(async () => resolve(dirname(next), await readlink(next)));
      if (!inside(target, realRoot)) {
        throw refuse(
          original,
          `"${parts.slice(0, i + 1).join('/')}" in the ${side} is a symlink pointing outside it (to ${target})`,
        );
      }
      if (i < parts.length - 1) {
        throw refuse(
          original,
          `"${parts.slice(0, i + 1).join('/')}" in the ${side} is a symlink; name the real path instead`,
        );
      }
    }
    current = next;
  }
}

export interface ResolvedPaths {
  /** Normalised paths, nested duplicates removed; "." expanded to the top-level entries. */
  paths: string[];
  /** Entries that exist in the volume but not in the snapshot (only from "."): restoring removes them. */
  removeOnly: string[];
}

export async function resolveRestorePaths(
  rawPaths: readonly unknown[],
  snapshotRoot: string,
  volumeRoot: string,
): Promise<ResolvedPaths> {
  if (rawPaths.length === 0) {
    throw new SnapguardError(
      'BAD_INPUT',
      'paths: files mode needs at least one path.',
      'Pass the files or folders to restore, relative to the volume root, or use mode rollback for the whole volume.',
    );
  }
  const normal = [...new Set(rawPaths.map(normaliseRelativePath))].sort();
  for (const rel of normal) {
    await checkContainment(snapshotRoot, rel, 'snapshot', rel);
    await checkContainment(volumeRoot, rel, 'volume', rel);
  }
  let paths: string[];
  const removeOnly: string[] = [];
  if (normal.includes('.')) {
    const inSnapshot = (await readdir(snapshotRoot)).filter(
      (name) => !name.startsWith('.snapguard-restore-'),
    );
    const inVolume = (await readdir(volumeRoot)).filter((name) => !name.startsWith('.snapguard-restore-'));
    paths = inSnapshot.sort();
    removeOnly.push(...inVolume.filter((name) => !inSnapshot.includes(name)).sort());
    for (const name of [...paths, ...removeOnly]) {
      await checkContainment(snapshotRoot, name, 'snapshot', name);
      await checkContainment(volumeRoot, name, 'volume', name);
    }
  } else {
    paths = normal.filter((p) => !normal.some((other) => other !== p && p.startsWith(`${other}/`)));
    for (const rel of paths) {
      if (!(await exists(`${snapshotRoot}/${rel}`))) {
        throw new SnapguardError(
          'BAD_INPUT',
          `paths: "${rel}" does not exist in the snapshot. Nothing was changed.`,
          'Check the spelling against the snapshot (list it under the snapshot path); only paths present in the snapshot can be restored.',
        );
      }
    }
  }
  return { paths, removeOnly };
}

/**
 * pathsBase64 of a recover request (the pathBase64 that file_versions and find_deleted return for
 * names that are not UTF-8): each decoded to its bytes, as a binary string, and checked exactly like
 * paths (relative, normalised, no "..", no NUL, not absolute).
 */
export function bytePathsOf(encoded: readonly string[] | undefined): string[] {
  return (encoded ?? []).map((text) => {
    const binary = binaryOfBase64(text);
    if (binary === undefined) {
      throw new SnapguardError(
        'BAD_INPUT',
        `pathsBase64: "${text.slice(0, 100)}" is not base64 of a path. Nothing was changed.`,
        {
          mcp: 'Pass the bytes of each path in base64, as pathBase64 in the results of find_deleted and file_versions.',
          cli: 'Pass the bytes of each path in base64, as pathBase64 in the output of `snapguard deleted --json` and `snapguard versions --json`.',
        },
      );
    }
    try {
      return normaliseRelativePath(binary);
    } catch (error) {
      if (!(error instanceof SnapguardError)) throw error;
      const why = error.message.slice(error.message.indexOf(' is refused: ') + ' is refused: '.length);
      throw new SnapguardError(
        'BAD_INPUT',
        `pathsBase64: "${displayBinary(binary).replace(/\0/g, '\\0').slice(0, 200)}" is refused: ${why}`,
        error.hints ?? error.hint,
      );
    }
  });
}

/**
 * An in-place restore works on names that strings hold: pathsBase64 whose bytes are UTF-8 join
 * paths; a name that is not UTF-8 is refused (it can be written beside the original).
 */
export function withBytePaths<T extends { paths?: string[] | undefined; pathsBase64?: string[] | undefined }>(
  request: T,
): T {
  if (request.pathsBase64 === undefined) return request;
  const decoded = bytePathsOf(request.pathsBase64).map((binary) => {
    const bytes = bytesOf(binary);
    if (!isUtf8(bytes)) {
      throw new SnapguardError(
        'BAD_INPUT',
        `pathsBase64: "${displayBinary(binary).slice(0, 200)}" is not a UTF-8 name; a restore in place handles only UTF-8 names. Nothing was changed.`,
        {
          mcp: 'Restore it beside the original instead (destination: "beside", same pathsBase64); rename the copy afterwards if it should replace the live one.',
          cli: 'Restore it beside the original instead (--beside with the same --files-base64); rename the copy afterwards if it should replace the live one.',
        },
      );
    }
    return bytes.toString('utf8');
  });
  const { pathsBase64: _bytes, ...rest } = request;
  void _bytes;
  return { ...rest, paths: [...(request.paths ?? []), ...decoded] } as T;
}
