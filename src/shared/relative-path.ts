import { posix } from 'node:path';
import { SnapguardError } from './errors.js';

/**
 * The one lexical check of a path relative to a volume (or snapshot) root, used by core's file
 * restores and file history and by the zfs backend's path restore: relative, normalised, without
 * "..", NUL or absolute forms. "." names the whole tree. What a path names on disk (symlinks on the
 * way) is checked where it is used.
 */

export function refusePath(path: string, why: string): SnapguardError {
  return new SnapguardError(
    'BAD_INPUT',
    `paths: "${path.replace(/\0/g, '\\0').slice(0, 200)}" is refused: ${why}. Nothing was changed.`,
    'Give paths relative to the volume root, e.g. "immich/docker-compose.yml" or "jellyfin/config", without "..", and not through symlinks that leave the volume.',
  );
}

const notInside = 'not a relative path inside the volume';

/** Returns the normalised relative path ("." for the whole tree), or throws BAD_INPUT saying why. */
export function normaliseRelativePath(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length === 0) throw refusePath(String(raw), `it is empty, ${notInside}`);
  if (raw.length > 4096) throw refusePath(raw, 'it is longer than 4096 characters');
  if (raw.includes('\0')) throw refusePath(raw, `it contains a NUL byte, ${notInside}`);
  if (raw.startsWith('/') || raw.startsWith('~') || /^[A-Za-z]:[\\/]/.test(raw))
    throw refusePath(raw, `it is absolute, ${notInside}; paths are relative to the volume root`);
  if (raw.split('/').includes('..')) throw refusePath(raw, `it contains "..", ${notInside}`);
  const normal = posix.normalize(raw).replace(/\/+$/, '') || '.';
  if (normal.startsWith('../') || normal === '..' || posix.isAbsolute(normal))
    throw refusePath(raw, `it leaves the volume, ${notInside}`);
  return normal;
}
