import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, lstat, mkdir, readdir, realpath, rm, stat } from 'node:fs/promises';
import { join, posix, relative } from 'node:path';
import { SnapguardError, toSnapguardError } from '../shared/errors.js';
import type { Exec, ExecResult } from '../system/exec.js';
import { mountOf, readMounts } from '../system/mounts.js';
import { pipeCommands } from '../system/pipe.js';
import type {
  BackendCallOptions,
  BackendVolume,
  KnownStats,
  ListOptions,
  PoolUsage,
  RawSnapshot,
  SnapshotBackend,
  VolumeCheck,
} from './types.js';
import { PREVIEW_PREFIX } from './types.js';
import { statfsUsage } from './usage.js';

// btrfs prints otime in local time without a zone: pin the zone so the text means UTC.
const btrfsEnv = { TZ: 'UTC', LC_ALL: 'C' };

export interface BtrfsListEntry {
  id: string;
  generation: number;
  /** Only printed with `-s`; undefined otherwise. */
  otime: Date | undefined;
  parentUuid: string | undefined;
  receivedUuid: string | undefined;
  uuid: string | undefined;
  path: string;
}

/** The word after `key` in a listing line's head (before " path "), or undefined; "-" means none. */
function wordAfter(line: string, key: string, end: number): string | undefined {
  const at = line.indexOf(key);
  if (at < 0 || at >= end) return undefined;
  const from = at + key.length;
  const stop = line.indexOf(' ', from);
  const value = line.slice(from, stop < 0 || stop > end ? end : stop);
  return value === '-' || value === '' ? undefined : value;
}

/**
 * Parses `btrfs subvolume list` output. The columns depend on the flags (-s adds cgen and otime,
 * -q/-R/-u add uuids), so fields are found by name; the path is everything after " path ". A few
 * indexOf per line, no regular expressions and no word arrays: listings run to thousands of lines,
 * and "-" fields are padded with dozens of spaces.
 */
export function parseSubvolumeList(text: string): BtrfsListEntry[] {
  const entries: BtrfsListEntry[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    const at = line.indexOf(' path ');
    if (at < 0 || !line.startsWith('ID ')) continue;
    const id = wordAfter(line, 'ID ', at);
    if (!id) continue;
    const otimeAt = line.indexOf(' otime ');
    let otime: Date | undefined;
    if (otimeAt >= 0 && otimeAt < at) {
      const day = wordAfter(line, ' otime ', at);
      const clock = day ? wordAfter(line.slice(otimeAt + ' otime '.length + day.length), ' ', at) : undefined;
      if (day && clock) otime = new Date(`${day}T${clock}Z`);
    }
    let path = line.slice(at + ' path '.length);
    if (path.startsWith('<FS_TREE>/')) path = path.slice('<FS_TREE>/'.length);
    entries.push({
      id,
      generation: Number(wordAfter(line, ' gen ', at) ?? 0),
      otime,
      parentUuid: wordAfter(line, ' parent_uuid ', at),
      receivedUuid: wordAfter(line, ' received_uuid ', at),
      uuid: wordAfter(line, ' uuid ', at),
      path,
    });
  }
  return entries;
}

/** The value of the `length` decimal digits at `from` in `text`, or -1 when one of them is no digit. */
function digitsAt(text: string, from: number, length: number): number {
  if (from < 0 || length < 1) return -1;
  let value = 0;
  for (let i = from; i < from + length; i++) {
    const code = text.charCodeAt(i) - 48;
    if (!(code >= 0 && code <= 9)) return -1;
    value = value * 10 + code;
  }
  return value;
}

/** The time written as YYYYMMDD-HHMMSS right before `end` in `name`, in UTC. */
function timeEndingAt(name: string, end: number): Date | undefined {
  if (end < 15 || name.charCodeAt(end - 7) !== 45) return undefined;
  const year = digitsAt(name, end - 15, 4);
  const month = digitsAt(name, end - 11, 2);
  const day = digitsAt(name, end - 9, 2);
  const hour = digitsAt(name, end - 6, 2);
  const minute = digitsAt(name, end - 4, 2);
  const second = digitsAt(name, end - 2, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return undefined;
  const time = Date.UTC(year, month - 1, day, hour, minute, second);
  return Number.isNaN(time) ? undefined : new Date(time);
}

/**
 * snapguard names (and many others) end in YYYYMMDD-HHMMSS[-N], in UTC. Read with character codes,
 * not a regular expression: listings call this once per snapshot.
 */
export function timeFromName(name: string): Date | undefined {
  const direct = timeEndingAt(name, name.length);
  if (direct) return direct;
  const dash = name.lastIndexOf('-');
  if (dash < 0 || digitsAt(name, dash + 1, name.length - dash - 1) < 0) return undefined;
  return timeEndingAt(name, dash);
}

function parseSubvolumeShow(text: string): {
  createdAt?: Date;
  readOnly: boolean;
  id?: string;
  generation?: number;
  uuid?: string;
  parentUuid?: string;
} {
  const field = (label: string) => new RegExp(`^\\s*${label}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const created = field('Creation time');
  const uuid = field('UUID');
  const parentUuid = field('Parent UUID');
  return {
    ...(created ? { createdAt: new Date(created.replace(' ', 'T').replace(' ', '')) } : {}),
    readOnly: /\breadonly\b/.test(field('Flags') ?? ''),
    ...(field('Subvolume ID') ? { id: field('Subvolume ID') } : {}),
    ...(field('Generation') ? { generation: Number(field('Generation')) } : {}),
    ...(uuid && uuid !== '-' ? { uuid } : {}),
    ...(parentUuid && parentUuid !== '-' ? { parentUuid } : {}),
  };
}

/** The entries directly in a folder (`prefix` is its path from the top level, with a trailing slash), by name. */
function inFolder(entries: BtrfsListEntry[], prefix: string): Map<string, BtrfsListEntry> {
  const byName = new Map<string, BtrfsListEntry>();
  for (const entry of entries) {
    if (!entry.path.startsWith(prefix)) continue;
    const name = entry.path.slice(prefix.length);
    if (name && !name.includes('/')) byName.set(name, entry);
  }
  return byName;
}

async function realDir(dir: string): Promise<string | undefined> {
  try {
    return await realpath(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** `btrfs device stats` counters that are not zero, e.g. { "/dev/loop3 corruption_errs": 2 }. */
export function parseDeviceStats(text: string): Record<string, number> {
  const errors: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^\[(.+)\]\.(\w+)\s+(\d+)\s*$/.exec(line.trim());
    if (match && Number(match[3]) > 0) errors[`${match[1]} ${match[2]}`] = Number(match[3]);
  }
  return errors;
}

/** Exclusive bytes per subvolume id from `btrfs qgroup show --raw`; empty when quotas are off. */
export function parseQgroupShow(text: string): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^0\/(\d+)\s+(\d+)\s+(\d+)/.exec(line.trim());
    if (match) sizes.set(match[1] as string, Number(match[3]));
  }
  return sizes;
}

/** What each btrfs operation runs with: the exec, and `btrfs` with snapguard's environment and timeout. */
interface BtrfsContext {
  exec: Exec;
  btrfs: (args: string[], options?: BackendCallOptions) => Promise<ExecResult>;
}

export function createBtrfsBackend(exec: Exec): SnapshotBackend {
  const btrfs = (args: string[], options: BackendCallOptions = {}) =>
    exec('btrfs', args, { env: btrfsEnv, signal: options.signal, timeoutMs: 300_000 });
  const ctx: BtrfsContext = { exec, btrfs };

  const backend: SnapshotBackend = {
    kind: 'btrfs',
    ctimeTrusted: true,
    needsRoot: true,
    deleteBatch: DELETE_BATCH,
    folderNotSnapshot: 'a plain folder, not a btrfs subvolume',

    create: (volume, name, options) => createSnapshot(ctx, volume, name, options),

    list: (volume, options) => listSnapshots(ctx, volume, options),

    async nameTaken(volume: BackendVolume, name: string): Promise<boolean> {
      return lstat(join(volume.snapshotDir, name)).then(
        () => true,
        (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return false;
          throw error;
        },
      );
    },

    show: (volume, name, options) => showSnapshot(ctx, volume, name, options),
    readOnlyAt: (volume, name, known) => readOnlyAtOf(ctx, volume, name, known?.stats),

    async delete(volume: BackendVolume, name: string, options: BackendCallOptions = {}): Promise<void> {
      await btrfs(['subvolume', 'delete', join(volume.snapshotDir, name)], options);
    },

    deleteMany: (volume, names, options) => deleteSnapshots(ctx, volume, names, options),
    nestedSubvolumes: (volume, options) => nestedSubvolumesOf(ctx, volume, options),

    async poolUsage(volume: BackendVolume): Promise<PoolUsage> {
      return statfsUsage(volume.path);
    },

    selfCheck: (volume, options) => showVolume(ctx, volume, options),

    async exclusiveBytes(volume: BackendVolume, options: BackendCallOptions = {}) {
      return parseQgroupShow((await btrfs(['qgroup', 'show', '--raw', volume.path], options)).stdout);
    },

    async deviceErrors(volume: BackendVolume, options: BackendCallOptions = {}) {
      return parseDeviceStats((await btrfs(['device', 'stats', volume.path], options)).stdout);
    },

    sendReceive: (snapshot, intoDir, options) => sendReceiveThroughFifo(ctx, snapshot, intoDir, options),
    replicateTo: (snapshot, targetDir, options) => replicateSnapshot(ctx, snapshot, targetDir, options),
    receivedUuidOf: (path, options) => receivedUuidAt(ctx, path, options),

    async deleteReceived(path: string) {
      // A received subvolume is read-only: rm cannot remove it, btrfs can.
      await exec('btrfs', ['subvolume', 'delete', path]).catch(() => undefined);
    },

    restoreTree: (volume, name, destination, options) =>
      restoreTreeOf(ctx, volume, name, destination, options),
    setReadOnly: (path, readOnly, options) => setReadOnlyAt(ctx, path, readOnly, options),
    removeTree: (path, options) => removeTreeAt(ctx, path, options),
    changeDump: (volume, targetPath, options) => changeDumpOf(ctx, volume, targetPath, options),
    unchangedSince: (volume, raw, options) => unchangedSinceOf(ctx, volume, raw, options),
    checkVolume: (volume, options) => checkSubvolumeRoot(backend, volume, options),

    firstReadOnly: (volume, names, options) => firstReadOnlyOf(backend, volume, names, options),
  };
  return backend;
}

async function listSnapshots(
  ctx: BtrfsContext,
  volume: BackendVolume,
  options: ListOptions = {},
): Promise<RawSnapshot[]> {
  const dir = options.dir ?? volume.snapshotDir;
  const real = await realDir(dir);
  if (!real) return [];
  const mount = mountOf(real, readMounts());
  if (!mount || mount.fsType !== 'btrfs') {
    throw new SnapguardError(
      'NOT_SUPPORTED',
      `${dir} is not on a btrfs filesystem (found ${mount?.fsType ?? 'no mount'}).`,
      'Point snapshotDir (or the external path) at a folder on the btrfs pool, or use backend: dir.',
    );
  }
  // Paths in `subvolume list` are relative to the top level; mountinfo's root says where this mount sits in it.
  const inTree = posix.join(mount.root, relative(mount.mountPoint, real)).replace(/^\/+/, '');
  const prefix = inTree ? `${inTree}/` : '';
  // `subvolume list` has no flags column, but `-r` keeps only the read-only subvolumes: one
  // listing of those (with uuids; without -s, so received copies are included: -s lists only
  // local snapshots) holds every snapguard snapshot. A writable subvolume in the folder is
  // rare; the folder's names say whether there is one, and only then does a second listing
  // (of all subvolumes) give its id and uuids.
  const [readOnly, names] = await Promise.all([
    ctx.btrfs(['subvolume', 'list', '-o', '-r', '-u', '-q', '-R', real], options),
    readdir(real),
  ]);
  let entries = inFolder(parseSubvolumeList(readOnly.stdout), prefix);
  const readOnlyNames = new Set(entries.keys());
  let writable = false;
  for (const name of names) {
    if (readOnlyNames.has(name)) continue;
    // The root folder of every btrfs subvolume is inode 256; anything else is no subvolume.
    const stats = await lstat(join(real, name)).catch(() => undefined);
    if (stats?.isDirectory() && stats.ino === 256) {
      writable = true;
      break;
    }
  }
  if (writable) {
    const all = await ctx.btrfs(['subvolume', 'list', '-o', '-u', '-q', '-R', real], options);
    // In the full listing's order (by id), as without writable ones.
    const merged = inFolder(parseSubvolumeList(all.stdout), prefix);
    for (const [name, entry] of entries) if (!merged.has(name)) merged.set(name, entry);
    entries = merged;
  }
  const snapshots: RawSnapshot[] = [];
  // Names from the listing hold no '/': the folder's normalised path and the name make the path.
  const base = join(dir, '/');
  for (const [name, entry] of entries) {
    const path = base + name;
    // Without -s there is no otime: names that carry their time give it for free; for the
    // others the subvolume root's birth time (statx btime is the btrfs otime) costs one syscall.
    const createdAt = timeFromName(name) ?? (await lstat(path)).birthtime;
    // Fields set one by one (no spread copies): listings run to thousands of entries.
    const snapshot: RawSnapshot = {
      name,
      path,
      createdAt,
      readOnly: readOnlyNames.has(name),
      id: entry.id,
      generation: entry.generation,
    };
    if (entry.uuid) snapshot.uuid = entry.uuid;
    if (entry.parentUuid) snapshot.parentUuid = entry.parentUuid;
    if (entry.receivedUuid) snapshot.receivedUuid = entry.receivedUuid;
    snapshots.push(snapshot);
  }
  return snapshots;
}

async function showSnapshot(
  ctx: BtrfsContext,
  volume: BackendVolume,
  name: string,
  options: BackendCallOptions = {},
): Promise<RawSnapshot | undefined> {
  const path = join(volume.snapshotDir, name);
  // Never follow: a symlink or a plain folder with a snapshot's name is not a snapshot. The root
  // folder of every btrfs subvolume is inode 256.
  const stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw error;
  });
  if (!stats || !stats.isDirectory() || stats.ino !== 256) return undefined;
  try {
    const result = await ctx.btrfs(['subvolume', 'show', path], options);
    const info = parseSubvolumeShow(result.stdout);
    return { ...info, name, path, createdAt: info.createdAt ?? new Date(0) };
  } catch (error) {
    if (error instanceof SnapguardError && /not a subvolume/i.test(error.message)) return undefined;
    throw error;
  }
}

async function readOnlyAtOf(
  ctx: BtrfsContext,
  volume: BackendVolume,
  name: string,
  /** The caller's lstat of the path, made just before: not looked at twice. */
  known?: KnownStats,
): Promise<boolean | undefined> {
  const path = join(volume.snapshotDir, name);
  const stats = known ?? (await lstat(path).catch(() => undefined));
  if (!stats || !stats.isDirectory() || stats.ino !== 256) return undefined;
  // The kernel refuses write access to anything in a read-only subvolume with EROFS (and
  // grants it to root in a writable one). A read-only mount gives EROFS as well: the answer
  // counts only when snapshotDir itself is writable and the snapshot is not a mount point.
  const writable = (target: string) =>
    access(target, constants.W_OK).then(
      () => 'yes' as const,
      (error: NodeJS.ErrnoException) => (error.code === 'EROFS' ? ('erofs' as const) : undefined),
    );
  const [here, dir] = await Promise.all([writable(path), writable(volume.snapshotDir)]);
  if (dir !== 'yes' || here === undefined) return undefined;
  const real = await realpath(path).catch(() => undefined);
  if (real === undefined || mountOf(real, readMounts())?.mountPoint === real) return undefined;
  return here === 'erofs';
}

/** Snapshots deleted by one `btrfs subvolume delete` process (a bound on its command line). */
const DELETE_BATCH = 200;

async function deleteSnapshots(
  ctx: BtrfsContext,
  volume: BackendVolume,
  names: readonly string[],
  options: BackendCallOptions = {},
): Promise<{ name: string; error?: unknown }[]> {
  const results: { name: string; error?: unknown }[] = [];
  // One process per batch instead of per snapshot; btrfs goes on after a failed path.
  for (let start = 0; start < names.length; start += DELETE_BATCH) {
    const batch = names.slice(start, start + DELETE_BATCH);
    await ctx.exec('btrfs', ['subvolume', 'delete', ...batch.map((name) => join(volume.snapshotDir, name))], {
      env: btrfsEnv,
      signal: options.signal,
      timeoutMs: 600_000,
      okExitCodes: [1],
    });
    for (const name of batch) {
      if (!(await realDir(join(volume.snapshotDir, name)))) {
        results.push({ name });
        continue;
      }
      // Still there: delete it on its own, which also gives the error of this one snapshot.
      try {
        await ctx.btrfs(['subvolume', 'delete', join(volume.snapshotDir, name)], options);
        results.push({ name });
      } catch (error) {
        results.push({ name, error });
      }
    }
  }
  return results;
}

async function nestedSubvolumesOf(
  ctx: BtrfsContext,
  volume: BackendVolume,
  options: BackendCallOptions & { path?: string } = {},
): Promise<string[]> {
  const real = await realDir(options.path ?? volume.path);
  if (!real) return [];
  const mount = mountOf(real, readMounts());
  if (!mount || mount.fsType !== 'btrfs') return [];
  // `list -o` names the subvolumes whose parent is this one (deeper ones move along with them),
  // by their path from the top level; mountinfo's root says where this mount sits in it.
  const inTree = posix.join(mount.root, relative(mount.mountPoint, real)).replace(/^\/+/, '');
  const prefix = inTree ? `${inTree}/` : '';
  const listed = await ctx.btrfs(['subvolume', 'list', '-o', real], options);
  return parseSubvolumeList(listed.stdout)
    .filter((entry) => entry.path.startsWith(prefix) && entry.path.length > prefix.length)
    .map((entry) => entry.path.slice(prefix.length))
    .sort();
}

async function sendReceiveThroughFifo(
  ctx: BtrfsContext,
  snapshot: RawSnapshot,
  intoDir: string,
  options: BackendCallOptions & { fifo: string },
) {
  // Two processes joined by a named pipe: a pipe without a shell. If one fails, the other is stopped.
  const pair = new AbortController();
  const stopBoth = () => pair.abort();
  options.signal?.addEventListener('abort', stopBoth, { once: true });
  const run = { signal: pair.signal, env: { LC_ALL: 'C' }, timeoutMs: 24 * 3600_000 };
  // When one side fails the other normally ends by itself (EOF for receive, EPIPE for send) with
  // its own, more telling error: a send that hit EIO must be reported as EIO, not as the
  // receive's "unexpected EOF". It is stopped only if it is still running after a grace period
  // (e.g. blocked opening the FIFO that its partner never opened).
  let graceTimer: NodeJS.Timeout | undefined;
  const stopPartnerLater = (error: unknown) => {
    graceTimer ??= setTimeout(stopBoth, 3000);
    throw error;
  };
  try {
    const settled = await Promise.allSettled([
      ctx.exec('btrfs', ['send', '-q', '-f', options.fifo, snapshot.path], run).catch(stopPartnerLater),
      ctx.exec('btrfs', ['receive', '-f', options.fifo, intoDir], run).catch(stopPartnerLater),
    ]);
    clearTimeout(graceTimer);
    options.signal?.throwIfAborted();
    // Report the command that failed first, not the one stopped because of it.
    const errors = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
    const cause =
      errors.find(
        (e) => !(e instanceof SnapguardError && (e.code === 'CANCELLED' || /SIGPIPE/.test(e.message))),
      ) ?? errors[0];
    if (cause !== undefined) throw cause;
  } finally {
    options.signal?.removeEventListener('abort', stopBoth);
  }
}

/**
 * A temporary read-only snapshot of the live state, a metadata-only send stream against the
 * target, read back with `btrfs receive --dump`. The snapshot and the stream are always removed.
 */
async function changeDumpOf(
  ctx: BtrfsContext,
  volume: BackendVolume,
  targetPath: string,
  options: BackendCallOptions & { workDir: string; parentPath?: string },
): Promise<string> {
  const tag = randomBytes(4).toString('hex');
  const now = join(volume.snapshotDir, `${PREVIEW_PREFIX}${tag}`);
  await mkdir(options.workDir, { recursive: true });
  const stream = join(options.workDir, `preview-${tag}.stream`);
  const run = (args: string[], timeoutMs?: number) =>
    ctx.exec('btrfs', args, {
      env: btrfsEnv,
      signal: options.signal,
      ...(timeoutMs ? { timeoutMs } : {}),
    });
  // Between two snapshots: no snapshot of the live tree is needed.
  const parent = options.parentPath ?? now;
  if (options.parentPath === undefined) await run(['subvolume', 'snapshot', '-r', volume.path, now]);
  try {
    await run(['send', '-q', '--no-data', '-f', stream, '-p', parent, targetPath], 600_000);
    return (await run(['receive', '--dump', '-f', stream], 600_000)).stdout;
  } finally {
    await rm(stream, { force: true });
    if (options.parentPath === undefined)
      await ctx.exec('btrfs', ['subvolume', 'delete', now], { env: btrfsEnv }).catch(() => undefined);
  }
}

async function unchangedSinceOf(
  ctx: BtrfsContext,
  volume: BackendVolume,
  raw: RawSnapshot,
  options: BackendCallOptions = {},
): Promise<boolean> {
  // A subvolume's generation moves when a transaction that touched its tree commits (a write,
  // delete, rename, chmod or xattr change; also an atime update), and taking a read-only
  // snapshot sets it to the snapshot's creation generation. Commit the running transaction
  // first, or changes of the last seconds would not show yet.
  try {
    await ctx.btrfs(['filesystem', 'sync', volume.path], options);
    const [live, snapshot] = await Promise.all([
      ctx.btrfs(['subvolume', 'show', volume.path], options),
      ctx.btrfs(['subvolume', 'show', raw.path], options),
    ]);
    const current = parseSubvolumeShow(live.stdout);
    const taken = parseSubvolumeShow(snapshot.stdout);
    const createdAt = creationGeneration(snapshot.stdout);
    // Only a snapshot of this very subvolume can say anything about it (after a rollback the
    // live subvolume is a new one).
    if (!current.uuid || taken.parentUuid !== current.uuid) return false;
    if (current.generation === undefined || createdAt === undefined) return false;
    return current.generation <= createdAt;
  } catch (error) {
    if (options.signal?.aborted) throw error;
    if (error instanceof SnapguardError) return false;
    throw error;
  }
}

async function replicateSnapshot(
  ctx: BtrfsContext,
  snapshot: RawSnapshot,
  targetDir: string,
  options: BackendCallOptions & { parent?: RawSnapshot | undefined; timeoutMs: number },
) {
  const send: [string, ...string[]] = options.parent
    ? ['btrfs', 'send', '-q', '-p', options.parent.path, snapshot.path]
    : ['btrfs', 'send', '-q', snapshot.path];
  await pipeCommands(send, ['btrfs', 'receive', targetDir], {
    timeoutMs: options.timeoutMs,
    signal: options.signal,
  });
}

async function receivedUuidAt(ctx: BtrfsContext, path: string, options: BackendCallOptions = {}) {
  const shown = await ctx.exec('btrfs', ['subvolume', 'show', path], { signal: options.signal });
  const match = /^\s*Received UUID:\s*(\S+)/m.exec(shown.stdout);
  return match && match[1] !== '-' ? match[1] : undefined;
}

/** A writable snapshot of the snapshot: atomic, it appears complete or not at all. */
async function restoreTreeOf(
  ctx: BtrfsContext,
  volume: BackendVolume,
  name: string,
  destination: string,
  options: BackendCallOptions = {},
): Promise<void> {
  await ctx.btrfs(['subvolume', 'snapshot', join(volume.snapshotDir, name), destination], options);
}

async function setReadOnlyAt(
  ctx: BtrfsContext,
  path: string,
  readOnly: boolean,
  options: BackendCallOptions = {},
): Promise<void> {
  await ctx.exec('btrfs', ['property', 'set', '-ts', path, 'ro', readOnly ? 'true' : 'false'], {
    env: btrfsEnv,
    signal: options.signal,
    timeoutMs: 60_000,
  });
}

async function removeTreeAt(
  ctx: BtrfsContext,
  path: string,
  options: BackendCallOptions = {},
): Promise<void> {
  await ctx.btrfs(['subvolume', 'delete', path], options);
}

async function createSnapshot(
  ctx: BtrfsContext,
  volume: BackendVolume,
  name: string,
  options: BackendCallOptions = {},
): Promise<RawSnapshot> {
  await mkdir(volume.snapshotDir, { recursive: true });
  const target = join(volume.snapshotDir, name);
  const startedAt = new Date();
  await ctx.btrfs(['subvolume', 'snapshot', '-r', volume.path, target], options);
  return { name, path: target, createdAt: startedAt, readOnly: true };
}

async function showVolume(ctx: BtrfsContext, volume: BackendVolume, options: BackendCallOptions = {}) {
  await ctx.exec('btrfs', ['subvolume', 'show', volume.path], {
    env: btrfsEnv,
    signal: options.signal,
    timeoutMs: 15_000,
  });
  return {};
}

/** The newest subvolume by name that is also read-only (one `subvolume show` in the usual case). */
async function firstReadOnlyOf(
  backend: SnapshotBackend,
  volume: BackendVolume,
  names: readonly string[],
  options: BackendCallOptions = {},
): Promise<RawSnapshot | undefined> {
  for (const name of names) {
    const shown = await backend.show(volume, name, options);
    if (shown?.readOnly) return shown;
  }
  return undefined;
}

/** Doctor's check: the volume's path is the root of a btrfs subvolume that `subvolume show` reads. */
async function checkSubvolumeRoot(
  backend: SnapshotBackend,
  volume: BackendVolume,
  options: BackendCallOptions = {},
): Promise<VolumeCheck | undefined> {
  const info = await stat(volume.path).catch(() => undefined);
  // A missing path or a file is doctor's own finding.
  if (!info?.isDirectory()) return undefined;
  // The root of a btrfs subvolume always has inode number 256.
  if (info.ino !== 256) {
    return {
      status: 'critical',
      message: `${volume.id}: ${volume.path} is not the root of a btrfs subvolume (inode ${info.ino})`,
      fix: `Point volumes.${volume.id}.path at the subvolume itself (btrfs subvolume list <mount>), or create one with btrfs subvolume create.`,
    };
  }
  try {
    await backend.selfCheck?.(volume, options);
  } catch (error) {
    const failure = toSnapguardError(error);
    return {
      status: 'critical',
      message: `${volume.id}: ${volume.path}: ${failure.message}`,
      fix: failure.hintFor('cli'),
    };
  }
  return { status: 'ok', message: `${volume.id}: btrfs subvolume ${volume.path}` };
}

/** `Gen at creation` of `btrfs subvolume show`: the transaction the snapshot was taken in. */
function creationGeneration(text: string): number | undefined {
  const value = /^\s*Gen at creation:\s*(\d+)\s*$/m.exec(text)?.[1];
  return value === undefined ? undefined : Number(value);
}
