import { closeSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { CREATE_FLAGS, createExclusive } from './atomic-file.js';
import { SnapguardError } from './errors.js';

export interface LockOwner {
  pid: number;
  host: string;
  /** Process start time from /proc, so a recycled pid is not mistaken for the owner. */
  procStart: string | undefined;
  purpose: string;
  since: string;
}

export interface HeldLock {
  file: string;
  release(): Promise<void>;
}

export interface LockOptions {
  purpose: string;
  /** How long to wait for a live holder before giving up; 0 = fail at once. */
  waitMs?: number;
  logger?: Logger | undefined;
  signal?: AbortSignal | undefined;
  /** Label used in the error: "volume containers", "the history file". */
  what?: string;
}

/** The start time of a process (/proc/PID/stat field 22), which tells a recycled pid apart. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime) counts from after the parenthesised command name, which may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function isOwnerAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true; // cannot tell for another host: assume alive
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const start = processStart(owner.pid);
  return owner.procStart === undefined || start === undefined || start === owner.procStart;
}

async function readOwner(file: string): Promise<LockOwner | undefined | 'missing'> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LockOwner;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    return undefined;
  }
}

/** This process's start time: it does not change while the process runs. */
let ownStart: { value: string | undefined } | undefined;

/**
 * Writes the owner to a new file `temp` and links it into place as `file` (EEXIST when the lock is
 * taken); the folder is made only when it is missing. These are a handful of short metadata calls
 * on a local folder, made synchronously: through the thread pool each would cost a round trip that
 * takes longer than the call itself, and every snapshot takes two locks (its volume, the history).
 */
function linkOwnerFile(temp: string, file: string, ownerText: string): void {
  let fd: number;
  try {
    fd = openSync(temp, CREATE_FLAGS, 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    mkdirSync(dirname(temp), { recursive: true });
    fd = openSync(temp, CREATE_FLAGS, 0o644);
  }
  try {
    try {
      writeFileSync(fd, ownerText);
    } finally {
      closeSync(fd);
    }
    linkSync(temp, file);
  } finally {
    try {
      unlinkSync(temp);
    } catch {
      // Already gone: nothing to clean up.
    }
  }
}

/** The lock's owner when it is this one, read synchronously (see linkOwnerFile); then the lock is removed. */
function unlinkIfOwner(file: string, owner: LockOwner): void {
  let current: LockOwner | undefined;
  try {
    current = JSON.parse(readFileSync(file, 'utf8')) as LockOwner;
  } catch {
    return;
  }
  if (current.pid !== owner.pid || current.since !== owner.since) return;
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A cross-process lock file. It is created complete (written to a temp name, then hard-linked
 * into place, which fails if the lock exists), so a reader never sees a half-written owner. A lock
 * whose owner process is dead is stale and is taken over, under a second short-lived takeover
 * lock so two processes cannot both take it.
 */
export async function acquireLock(file: string, options: LockOptions): Promise<HeldLock> {
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    procStart: (ownStart ??= { value: processStart(process.pid) }).value,
    purpose: options.purpose,
    since: new Date().toISOString(),
  };
  const ownerText = JSON.stringify(owner);
  const deadline = Date.now() + (options.waitMs ?? 0);
  let delay = 5;
  for (;;) {
    options.signal?.throwIfAborted();
    const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      linkOwnerFile(temp, file, ownerText);
      return {
        file,
        release: async () => unlinkIfOwner(file, owner),
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readOwner(file);
    if (holder === 'missing') continue;
    if (holder === undefined || !isOwnerAlive(holder)) {
      if (await takeOverStale(file, holder, options)) continue;
    } else if (Date.now() >= deadline) {
      throw new SnapguardError(
        'LOCKED',
        `${options.what ?? file} is busy: pid ${holder.pid} on ${holder.host} holds it for "${holder.purpose}" since ${holder.since}.`,
        'Wait for that operation to finish and retry. If that process is gone for good, the lock is taken over automatically.',
        { details: { lockFile: file, holder } },
      );
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 100);
  }
}

async function takeOverStale(
  file: string,
  seen: LockOwner | undefined,
  options: LockOptions,
): Promise<boolean> {
  const guard = `${file}.takeover`;
  try {
    const handle = await createExclusive(guard);
    try {
      await handle.writeFile(String(process.pid));
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // A takeover guard older than 10 s belongs to a process that died mid-takeover.
    const age = await stat(guard).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age > 10_000) await unlink(guard).catch(() => undefined);
    return false;
  }
  try {
    const again = await readOwner(file);
    const unchanged = again === 'missing' || JSON.stringify(again) === JSON.stringify(seen);
    if (!unchanged) return false;
    if (again !== 'missing') {
      await unlink(file).catch(() => undefined);
      options.logger?.warn(
        { lockFile: file, stalePid: seen?.pid, staleHost: seen?.host, stalePurpose: seen?.purpose },
        `took over a stale lock from pid ${seen?.pid ?? 'unknown'} (process no longer running)`,
      );
    }
    return true;
  } finally {
    await unlink(guard).catch(() => undefined);
  }
}

export async function withLock<T>(file: string, options: LockOptions, work: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(file, options);
  try {
    return await work();
  } finally {
    await lock.release();
  }
}
