import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of a new file (default 0644). */
  mode?: number;
  /** fsync the data before the rename (default true). */
  fsync?: boolean;
  /** fsync the folder after the rename, so the rename itself survives a power cut (default false). */
  syncDir?: boolean;
  /** Create the folder first. */
  mkdir?: boolean;
}

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
 * Replaces `file` with `text` so that a reader sees the old or the new content, never a mix: a
 * temp file in the same folder, written (and fsynced), then renamed over the target. The temp
 * name starts with a dot and does not keep the file's extension, so collectors that read *.prom
 * or *.json never pick it up. On any failure the temp file is removed and the target is untouched.
 */
export async function writeFileAtomic(
  file: string,
  text: string,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(file);
  if (options.mkdir) await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const handle = await open(temp, 'wx', options.mode ?? 0o644);
    try {
      await handle.writeFile(text);
      if (options.fsync ?? true) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  if (options.syncDir) await syncDirectory(dir);
}
