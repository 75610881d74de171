import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0644, less the umask). Given explicitly, it is set exactly (fchmod). */
  mode?: number;
  /** fsync the data before the rename (default true). */
  fsync?: boolean;
  /** fsync the folder after the rename, so the rename itself survives a power cut (default false). */
  syncDir?: boolean;
  /** Create the folder first. */
  mkdir?: boolean;
  /**
   * Only create: fail with EEXIST when anything (a file, a folder, a symlink) already has the
   * name, instead of replacing it. The new file is linked into place, never renamed over.
   */
  exclusive?: boolean;
}

/** Flags of every file snapguard creates: a new file only, never through a symlink. */
export const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** fsyncs a folder, making a rename or a new entry in it durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates `file`, which must not exist yet (O_CREAT|O_EXCL|O_NOFOLLOW: a planted file or symlink
 * makes this fail with EEXIST instead of being written through). With an explicit mode, the mode
 * is set on the open file (fchmod), never by path.
 */
export async function createExclusive(file: string, mode?: number): Promise<FileHandle> {
  const handle = await open(file, CREATE_FLAGS, mode ?? 0o644);
  if (mode !== undefined) {
    try {
      await handle.chmod(mode);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }
  return handle;
}

/** A name next to `file` that nobody can guess: a dot, the file's name, pid and random hex. */
export function tempNameFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/**
 * Replaces `file` with `text` so that a reader sees the old or the new content, never a mix: a
 * temp file in the same folder, written (and fsynced), then renamed over the target. The temp
 * name starts with a dot and does not keep the file's extension, so collectors that read *.prom
 * or *.json never pick it up. On any failure the temp file is removed and the target is untouched.
 *
 * Nothing is written through a symlink: the temp file is created with O_EXCL|O_NOFOLLOW under an
 * unguessable name, and a symlink at `file` itself is replaced by the new file (rename does not
 * follow it), so whatever it pointed at stays as it was.
 */
export async function writeFileAtomic(
  file: string,
  text: string | Buffer,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(file);
  if (options.mkdir) await mkdir(dir, { recursive: true });
  const temp = tempNameFor(file);
  let created = false;
  try {
    const handle = await createExclusive(temp, options.mode);
    created = true;
    try {
      await handle.writeFile(text);
      if (options.fsync ?? true) await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.exclusive) {
      await link(temp, file);
      await unlink(temp);
    } else {
      await rename(temp, file);
    }
  } catch (error) {
    if (created) await unlink(temp).catch(() => undefined);
    throw error;
  }
  if (options.syncDir) await syncDirectory(dir);
}
