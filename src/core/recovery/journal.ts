import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';

/**
 * The recovery journal (guardrail 6). Before every step a recovery writes which step it is about to
 * take, durably (temp file, fsync, rename, fsync the folder); after it, that the step is done. After
 * a crash, `snapguard doctor` and the next recovery read the journal, look at the filesystem to see
 * how far the interrupted step got, and finish or undo the recovery.
 */

export const ROLLBACK_STEPS = [
  'stop-services',
  'move-aside',
  'restore',
  'carry-nested',
  'protect-safety',
  'start-services',
  'validate',
  'record',
] as const;
export const FILES_STEPS = [
  'stop-services',
  'safety-snapshot',
  'copy',
  'start-services',
  'validate',
  'record',
] as const;
export type RecoveryStep = (typeof ROLLBACK_STEPS)[number] | (typeof FILES_STEPS)[number];

export interface JournalItem {
  volume: string;
  backend: 'btrfs' | 'zfs' | 'dir';
  /** The live volume path. */
  path: string;
  snapshotDir: string;
  /** The snapshot being restored (a name in snapshotDir). */
  target: string;
  /** The pre-recover safety snapshot's name in snapshotDir. */
  safety: string;
  paths: string[];
  /** Files mode with ".": top-level entries absent from the snapshot, moved out of the volume. */
  removeOnly?: string[] | undefined;
  units: string[];
  /** Steps finished for this volume. */
  done: RecoveryStep[];
  /** The step announced last (it may or may not have happened). */
  current?: RecoveryStep | undefined;
}

export interface Journal {
  version: 1;
  recoveryId: string;
  mode: 'rollback' | 'files';
  startedAt: string;
  pid: number;
  /** The owner's process start time: a recycled pid with another start time is not the owner. */
  procStart?: string | undefined;
  reason: string | null;
  operationId: string | null;
  items: JournalItem[];
  /** Set once the history entry is written. */
  outcome?: 'success' | 'failed' | 'reverted' | undefined;
}

export function journalDir(stateDir: string): string {
  return join(stateDir, 'recovery');
}

export function journalFile(stateDir: string, recoveryId: string): string {
  return join(journalDir(stateDir), `${recoveryId}.json`);
}

/**
 * Writes the journal atomically (temp file, rename). The first write of a recovery is fsynced,
 * folder included, so the journal is on disk before anything changes. Later writes only replace it
 * atomically: a killed process leaves them in the page cache, and after a power cut an older
 * version is as good a starting point for doctor, which reads the filesystem (not the journal's
 * flags) to see how far the recovery got.
 */
export async function writeJournal(
  stateDir: string,
  journal: Journal,
  options: { first?: boolean } = {},
): Promise<void> {
  const dir = journalDir(stateDir);
  if (options.first) await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(journalFile(stateDir, journal.recoveryId), `${JSON.stringify(journal, null, 2)}\n`, {
    mode: 0o600,
    fsync: Boolean(options.first),
    syncDir: Boolean(options.first),
  });
}

export async function removeJournal(stateDir: string, recoveryId: string): Promise<void> {
  // Not fsynced: if a power cut brings the journal back, doctor finds every step done and only
  // confirms the history entry (written once, by id).
  await unlink(journalFile(stateDir, recoveryId)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/** Every journal left in stateDir: each is an unfinished recovery. */
export async function readJournals(
  stateDir: string,
): Promise<{ file: string; journal?: Journal; error?: string }[]> {
  let names: string[];
  try {
    names = (await readdir(journalDir(stateDir))).filter((name) => /^rec-[\w-]+\.json$/.test(name)).sort();
  } catch {
    return [];
  }
  const found: { file: string; journal?: Journal; error?: string }[] = [];
  for (const name of names) {
    const file = join(journalDir(stateDir), name);
    try {
      found.push({ file, journal: JSON.parse(await readFile(file, 'utf8')) as Journal });
    } catch (error) {
      found.push({ file, error: (error as Error).message });
    }
  }
  return found;
}

export const FAULT_ENV = 'SNAPGUARD_TEST_FAULT';

/**
 * Test aid (documented in docs/recovery.md): SNAPGUARD_TEST_FAULT=after:<step> or before:<step>
 * kills this process with SIGKILL right after the step (before its completion is journaled) or
 * right after its intent is journaled, to prove the journal brings the volume back. during:copy
 * kills a file restore in the middle of its step: the replaced paths (with any nested subvolume
 * inside them) are in the staging folder and the restored ones in place.
 */
export function faultPoint(when: 'before' | 'after' | 'during', step: RecoveryStep): void {
  const fault = process.env[FAULT_ENV];
  if (fault && fault === `${when}:${step}`) process.kill(process.pid, 'SIGKILL');
}
