import { link, mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { SnapguardError } from '../errors.js';
import { acquireLock } from '../lock.js';
import { createExclusive, syncDirectory, tempNameFor, writeFileAtomic } from '../atomic-file.js';
import { formatTimestamp } from '../naming.js';
import {
  emptyHistory,
  HISTORY_SECTIONS,
  HistoryFileShape,
  type History,
  type HistorySection,
} from './schema.js';

export const HISTORY_FILE = 'backup-history.json';
export const ARCHIVE_DIR = 'backup-history.d';

export interface HistoryReadResult {
  history: History;
  /** Set when the file exists but does not parse; the file is left where it is on read. */
  corrupt?: string | undefined;
}

export interface HistoryUpdateResult<T> {
  result: T;
  /** Where a corrupt file was moved before this write, if it was. */
  movedAside?: string | undefined;
}

/** A history write made and fsynced under a temporary name, the lock still held (HistoryStore.stage). */
export interface StagedUpdate<T> {
  result: T;
  /** Where a corrupt file was moved before this write, if it was. */
  movedAside?: string | undefined;
  /** Puts the new file in place durably and releases the lock. */
  commit(): Promise<HistoryUpdateResult<T>>;
  /** Removes the new file and releases the lock: the history stays as it was. */
  abandon(): Promise<void>;
}

interface Prepared<T> {
  result: T;
  movedAside: string | undefined;
  history: History;
  written: string;
  temp: string;
}

export interface HistoryStoreOptions {
  contextDir: string;
  /** Entries per section kept in the live file; older ones go to yearly archives. */
  liveEntries?: number;
  logger?: Logger | undefined;
  clock?: () => Date;
}

function writeFailure(file: string, error: unknown): SnapguardError {
  const code = (error as NodeJS.ErrnoException).code;
  return new SnapguardError(
    'HISTORY_WRITE_FAILED',
    `Could not write ${file}: ${(error as Error).message}. The previous file is unchanged.`,
    code === 'ENOSPC'
      ? 'The filesystem holding the context directory is full: free space there, then retry.'
      : 'Check that the context directory exists and is writable.',
    { cause: error },
  );
}

/**
 * Moves a file that did not parse to `<file>.corrupt-<time>`, or `-2`, `-3`... when that name is
 * taken (two corruptions within one second): link() never replaces an existing name, so an
 * earlier copy is never overwritten. Returns the new name.
 */
async function moveAside(file: string, now: Date): Promise<string> {
  const base = `${file}.corrupt-${formatTimestamp(now)}`;
  for (let n = 1; ; n++) {
    const aside = n === 1 ? base : `${base}-${n}`;
    try {
      await link(file, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && n < 1000) continue;
      throw error;
    }
    await unlink(file);
    return aside;
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function parseHistory(text: string): History {
  const parsed = HistoryFileShape.parse(JSON.parse(text));
  return { ...parsed, version: 1 } as History;
}

/**
 * backup-history.json, shared by every snapguard process of a host (MCP server, CLI, timers).
 * Each write takes a cross-process lock, writes a temp file, fsyncs it, renames it over the old
 * one and fsyncs the folder, so a reader sees the old or the new file, never a mix.
 *
 * To keep writes cheap as history grows, the live file holds the newest `liveEntries` entries
 * per section; when a section grows past that, its oldest quarter moves to
 * backup-history.d/backup-history-<year>.json (same layout). Archives are written before the live
 * file, so a crash in between can duplicate an entry (deduplicated by id) but never lose one.
 */
export class HistoryStore {
  readonly file: string;
  readonly contextDir: string;
  private readonly liveEntries: number;
  private readonly logger: Logger | undefined;
  private readonly clock: () => Date;
  private readonly listeners = new Set<() => void>();
  /**
   * The live file as this process last wrote (or read) it, when that text is exactly what
   * snapguard writes for it: then JSON.parse alone gives what validating it would, and while the
   * file still holds that text (compared in full, not by inode and times, which miss an edit in
   * place within one timestamp tick) it needs no validation. `history` is the object the text was
   * written from, the starting point of the next write.
   */
  private cache: { text: string; history?: History } | undefined;

  constructor(options: HistoryStoreOptions) {
    this.contextDir = options.contextDir;
    this.file = join(options.contextDir, HISTORY_FILE);
    this.liveEntries = options.liveEntries ?? 1000;
    this.logger = options.logger;
    this.clock = options.clock ?? (() => new Date());
  }

  private get lockFile(): string {
    return join(this.contextDir, `.${HISTORY_FILE}.lock`);
  }

  async read(): Promise<HistoryReadResult> {
    const text = await readIfExists(this.file);
    if (text === undefined) return { history: emptyHistory() };
    // Unchanged since this process read or wrote it: a fresh copy of the known-good text.
    if (text === this.cache?.text) return { history: JSON.parse(text) as History };
    try {
      const history = parseHistory(text);
      // Written by snapguard (another process, most likely): later reads of the same text are cheap.
      if (`${JSON.stringify(history)}\n` === text) this.cache = { text };
      return { history };
    } catch (error) {
      return { history: emptyHistory(), corrupt: (error as Error).message };
    }
  }

  /**
   * Runs `mutate` on the current history under the lock and writes the result durably. The history
   * `mutate` is given is kept for the next write: change it only inside `mutate`, and keep no
   * reference to it (or to entries put into it) for changing later.
   */
  async update<T>(mutate: (history: History) => T | Promise<T>): Promise<HistoryUpdateResult<T>> {
    return (await this.stage(mutate)).commit();
  }

  /**
   * The first half of update, for a caller that has other work to finish before the write may
   * count: takes the lock, runs `mutate` and writes the new file under a temporary name (fsynced),
   * then holds the lock until commit() puts that file in place (rename, folder fsync) or abandon()
   * drops it. Nothing a reader sees changes before commit(). The lock stays taken in between, so
   * other writers wait: call one of the two soon, and always (try/finally).
   */
  async stage<T>(mutate: (history: History) => T | Promise<T>): Promise<StagedUpdate<T>> {
    const lock = await this.guard(() =>
      acquireLock(this.lockFile, {
        purpose: 'history write',
        waitMs: 30_000,
        logger: this.logger,
        what: 'The history file',
      }),
    );
    let prepared: Prepared<T>;
    try {
      prepared = await this.guard(() => this.prepare(mutate));
    } catch (error) {
      await lock.release();
      throw error;
    }
    let settled = false;
    const settle = async (keep: boolean) => {
      if (settled) throw new Error('a staged history write is committed or abandoned once');
      settled = true;
      try {
        if (!keep) return await unlink(prepared.temp).catch(() => undefined);
        await this.guard(() => this.putInPlace(prepared));
      } finally {
        await lock.release();
      }
    };
    return {
      result: prepared.result,
      movedAside: prepared.movedAside,
      commit: async () => {
        await settle(true);
        for (const listener of this.listeners) listener();
        return { result: prepared.result, movedAside: prepared.movedAside };
      },
      abandon: () => settle(false),
    };
  }

  /** Filesystem failures anywhere on the write path (the lock file too) become one clear error. */
  private async guard<R>(work: () => Promise<R>): Promise<R> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof SnapguardError || !(error as NodeJS.ErrnoException).code) throw error;
      throw writeFailure(this.file, error);
    }
  }

  /** Under the lock: the current history, changed by `mutate`, written and fsynced under a temporary name. */
  private async prepare<T>(mutate: (history: History) => T | Promise<T>): Promise<Prepared<T>> {
    let history = emptyHistory();
    let movedAside: string | undefined;
    const cached = this.cache;
    // Whatever happens below, the kept copy is only trusted again once the new file is written.
    this.cache = undefined;
    const text = await readIfExists(this.file);
    if (text !== undefined && text === cached?.text) {
      history = cached.history ?? (JSON.parse(text) as History);
    } else if (text !== undefined) {
      try {
        history = parseHistory(text);
      } catch (error) {
        movedAside = await moveAside(this.file, this.clock());
        this.logger?.error(
          { file: this.file, movedAside, reason: (error as Error).message },
          'history file did not parse; moved aside and started a new one',
        );
      }
    }
    const result = await mutate(history);
    await this.archiveOverflow(history);
    // Compact: jq and JSON.parse read it alike, and it is a third smaller and quicker to write.
    const written = `${JSON.stringify(history)}\n`;
    const temp = tempNameFor(this.file);
    let created = false;
    try {
      const handle = await createExclusive(temp);
      created = true;
      try {
        await handle.writeFile(written);
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (created) await unlink(temp).catch(() => undefined);
      throw error;
    }
    return { result, movedAside, history, written, temp };
  }

  /**
   * The rename makes the new file the history; the folder's fsync makes the rename itself durable
   * (the data is already on disk, but without it a power cut can bring back the old name's entry,
   * the previous file, even though the file existed before).
   */
  private async putInPlace(prepared: Prepared<unknown>): Promise<void> {
    try {
      await rename(prepared.temp, this.file);
    } catch (error) {
      await unlink(prepared.temp).catch(() => undefined);
      throw error;
    }
    await syncDirectory(this.contextDir);
    this.cache = { text: prepared.written, history: prepared.history };
  }

  private async archiveOverflow(history: History): Promise<void> {
    const byYear = new Map<string, Partial<Record<HistorySection, unknown[]>>>();
    for (const section of HISTORY_SECTIONS) {
      const entries = history[section] as { timestamp?: string }[];
      if (entries.length <= this.liveEntries) continue;
      const keep = Math.floor(this.liveEntries * 0.75);
      const moved = entries.splice(0, entries.length - keep);
      for (const entry of moved) {
        const year = /^\d{4}/.exec(entry.timestamp ?? '')?.[0] ?? 'undated';
        const bucket = byYear.get(year) ?? {};
        (bucket[section] ??= []).push(entry);
        byYear.set(year, bucket);
      }
    }
    if (byYear.size === 0) return;
    const dir = join(this.contextDir, ARCHIVE_DIR);
    await mkdir(dir, { recursive: true });
    for (const [year, sections] of byYear) {
      const file = join(dir, `backup-history-${year}.json`);
      let archive = emptyHistory();
      try {
        archive = parseHistory(await readFile(file, 'utf8'));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
          const aside = await moveAside(file, this.clock()).catch(() => undefined);
          this.logger?.error({ file, movedAside: aside }, 'archive did not parse; moved aside');
        }
      }
      for (const section of HISTORY_SECTIONS) {
        const add = sections[section];
        if (!add) continue;
        const target = archive[section] as { id?: string }[];
        const seen = new Set(target.map((entry) => entry.id));
        for (const entry of add as { id?: string }[]) if (!seen.has(entry.id)) target.push(entry);
      }
      await writeFileAtomic(file, `${JSON.stringify(archive)}\n`);
    }
    await syncDirectory(dir);
    this.logger?.info(
      { archiveDir: dir, years: [...byYear.keys()] },
      'moved old history entries to the yearly archive',
    );
  }

  /** Reads the yearly archives, oldest year first (for reports and lookups of old entries). */
  async readArchives(): Promise<History[]> {
    const dir = join(this.contextDir, ARCHIVE_DIR);
    let names: string[];
    try {
      names = (await readdir(dir)).filter((name) => /^backup-history-.*\.json$/.test(name)).sort();
    } catch {
      return [];
    }
    const archives: History[] = [];
    for (const name of names) {
      try {
        archives.push(parseHistory(await readFile(join(dir, name), 'utf8')));
      } catch {
        this.logger?.warn({ file: join(dir, name) }, 'skipping an archive that does not parse');
      }
    }
    return archives;
  }

  /** Files set aside because they did not parse; health_check reports them. */
  async corruptFiles(): Promise<string[]> {
    try {
      return (await readdir(this.contextDir))
        .filter((name) => name.startsWith(`${HISTORY_FILE}.corrupt-`))
        .map((name) => join(this.contextDir, name));
    } catch {
      return [];
    }
  }

  /** In-process listeners, called after every write by this process. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Watches the file for writes by other processes (CLI calls, timers). */
  watch(listener: () => void): () => void {
    let watcher: FSWatcher | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      watcher = watch(this.contextDir, { persistent: false }, (_event, name) => {
        if (name !== HISTORY_FILE) return;
        clearTimeout(timer);
        timer = setTimeout(listener, 50);
      });
      watcher.on('error', () => undefined);
    } catch {
      // The folder does not exist yet: nothing has been written, nothing to watch.
    }
    return () => {
      clearTimeout(timer);
      watcher?.close();
    };
  }
}
