import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnapguardError, toSnapguardError } from '../shared/errors.js';
import type { Exec, ExecResult } from '../system/exec.js';
import { createDirBackend } from './dir.js';
import type {
  BackendCallOptions,
  BackendVolume,
  ListOptions,
  OwnedNameTest,
  PoolUsage,
  RawSnapshot,
  SnapshotBackend,
  SnapshotReader,
  VolumeCheck,
} from './types.js';

/** The hold tag that marks a pinned snapshot. */
export const PIN_HOLD_TAG = 'snapguard-pin';

/** Prefix of the temporary read-only clones used where `.zfs/snapshot` is not reachable. */
export const READ_CLONE_PREFIX = 'snapguard-read-';

const zfsEnv = { LC_ALL: 'C' };
const DATASET_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:/-]*$/;
const SNAPSHOT_COMPONENT = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;

/** What the installed zfs (and the volume's pool) can do, probed once, never assumed. */
export interface ZfsCapabilities {
  /** `zfs list -p` (exact numbers in list output): OpenZFS yes, zfs-fuse no. */
  listParsable: boolean;
  /** `zfs get -t TYPE`: OpenZFS yes, zfs-fuse no. */
  getByType: boolean;
  /**
   * `zfs holds` lists hold tags: OpenZFS yes, zfs-fuse no (hold/release work; the userrefs count is
   * read instead). Probed on the dataset's first snapshot; undefined while it has none.
   */
  listHolds: boolean | undefined;
  /** Pool feature bookmarks enabled/active (`zpool get feature@bookmarks`): zfs-fuse pools (version 23) have none. */
  bookmarks: boolean;
  /** `<mountpoint>/.zfs/snapshot/<name>` is reachable; without it snapshots are read through a temporary clone. */
  snapdir: boolean;
  /**
   * Extended attributes on the mounted dataset, probed read-only with getfattr (ENOTSUP vs ENODATA):
   * zfs-fuse says `xattr=on` but supports none. undefined: not mounted, or getfattr (attr) missing.
   */
  xattrs: boolean | undefined;
}

/** Who made a snapshot, judged by its name. Only `snapguard` snapshots are ever changed. */
export type ZfsSnapshotProducer = 'snapguard' | 'sanoid' | 'syncoid' | 'foreign';

/** `isOwned` is core's naming rule (see OwnedNameTest); the other producers are told by their prefixes. */
export function classifyZfsSnapshot(
  volumeId: string,
  name: string,
  isOwned: OwnedNameTest,
): ZfsSnapshotProducer {
  if (isOwned(volumeId, name)) return 'snapguard';
  if (name.startsWith('autosnap_')) return 'sanoid';
  if (name.startsWith('syncoid_')) return 'syncoid';
  return 'foreign';
}

export interface ZfsPropertyRow {
  name: string;
  property: string;
  value: string;
}

/** Parses `zfs get -H -p -o name,property,value` output (tab separated). */
export function parseZfsGet(text: string): ZfsPropertyRow[] {
  const rows: ZfsPropertyRow[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [name, property, ...value] = line.split('\t');
    if (!name || !property) continue;
    rows.push({ name, property, value: value.join('\t') });
  }
  return rows;
}

function numberOrUndefined(value: string | undefined): number | undefined {
  if (value === undefined || value === '-' || value === '') return undefined;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : undefined;
}

interface ZfsSnapshotInfo {
  name: string;
  createdAt: Date;
  guid: string | undefined;
  usedBytes: number | undefined;
  userrefs: number | undefined;
}

/** Groups `zfs get` rows of `dataset@snap` names into snapshot records; other names are left out. */
export function snapshotsFromRows(dataset: string, rows: readonly ZfsPropertyRow[]): ZfsSnapshotInfo[] {
  const byName = new Map<string, Map<string, string>>();
  const prefix = `${dataset}@`;
  for (const row of rows) {
    if (!row.name.startsWith(prefix)) continue;
    const snap = row.name.slice(prefix.length);
    if (!byName.has(snap)) byName.set(snap, new Map());
    byName.get(snap)?.set(row.property, row.value);
  }
  return [...byName].map(([name, props]) => ({
    name,
    createdAt: new Date((numberOrUndefined(props.get('creation')) ?? 0) * 1000),
    guid: props.get('guid') && props.get('guid') !== '-' ? props.get('guid') : undefined,
    usedBytes: numberOrUndefined(props.get('used')),
    userrefs: numberOrUndefined(props.get('userrefs')),
  }));
}

/** Parses `zfs list -H -p -o name,creation,guid,used,userrefs` rows. */
export function snapshotsFromList(dataset: string, text: string): ZfsSnapshotInfo[] {
  const rows: ZfsPropertyRow[] = [];
  for (const line of text.split('\n')) {
    const [name, creation, guid, used, userrefs] = line.split('\t');
    if (!name || creation === undefined) continue;
    rows.push(
      { name, property: 'creation', value: creation },
      { name, property: 'guid', value: guid ?? '-' },
      { name, property: 'used', value: used ?? '-' },
      { name, property: 'userrefs', value: userrefs ?? '-' },
    );
  }
  return snapshotsFromRows(dataset, rows);
}

function requireDataset(volume: BackendVolume): string {
  const dataset = volume.dataset;
  if (!dataset || !DATASET_PATTERN.test(dataset) || dataset.includes('@') || dataset.includes('//')) {
    throw new SnapguardError(
      'CONFIG_INVALID',
      `Volume "${volume.id}" uses the zfs backend but has no valid dataset (got ${JSON.stringify(dataset ?? null)}).`,
      `Set volumes.${volume.id}.dataset to the ZFS dataset, e.g. tank/containers.`,
    );
  }
  return dataset;
}

function requireSnapshotName(name: string): string {
  if (!SNAPSHOT_COMPONENT.test(name) || name.length > 200) {
    throw new SnapguardError(
      'BAD_INPUT',
      `"${name.slice(0, 80)}" is not a ZFS snapshot name snapguard can use.`,
      'Snapshot names use letters, digits, "_", ".", ":" and "-", starting with a letter or digit.',
    );
  }
  return name;
}

function isMissingDataset(error: unknown): boolean {
  return (
    error instanceof SnapguardError &&
    /dataset does not exist|could not find any snapshots/i.test(error.message)
  );
}

const UNSUPPORTED =
  /invalid option|unrecognized command|pyzfs\.py not found|invalid property|bad property list/i;

/** A probe's verdict from its exit code and full stderr: supported, unsupported, or a real failure. */
function probeVerdict(result: {
  exitCode: number;
  stdout: string;
  stderr: string;
  command: string;
}): boolean {
  if (result.exitCode === 0) return true;
  // zfs-fuse prints some of these (e.g. the missing pyzfs behind `zfs holds`) on stdout.
  if (UNSUPPORTED.test(result.stderr) || UNSUPPORTED.test(result.stdout)) return false;
  throw new SnapguardError(
    'COMMAND_FAILED',
    `\`${result.command}\` failed with exit code ${result.exitCode}: ${(result.stderr || result.stdout).trim().split('\n').slice(0, 3).join(' ')}`,
    'Check that the pool is imported and the dataset exists (zfs list).',
  );
}

export interface ZfsDatasetMount {
  mountpoint: string | undefined;
  mounted: boolean;
}

export interface ZfsBackend extends SnapshotBackend {
  readonly kind: 'zfs';
  capabilities(volume: BackendVolume, options?: BackendCallOptions): Promise<ZfsCapabilities>;
  mountInfo(volume: BackendVolume, options?: BackendCallOptions): Promise<ZfsDatasetMount>;
  hold(volume: BackendVolume, name: string, tag?: string, options?: BackendCallOptions): Promise<void>;
  release(volume: BackendVolume, name: string, tag?: string, options?: BackendCallOptions): Promise<void>;
  /** Hold tags of a snapshot where `zfs holds` exists; otherwise the count from `userrefs` and tags undefined. */
  holds(
    volume: BackendVolume,
    name: string,
    options?: BackendCallOptions,
  ): Promise<{ count: number; tags: string[] | undefined }>;
  openSnapshot(volume: BackendVolume, name: string, options?: BackendCallOptions): Promise<SnapshotReader>;
}

/** What the zfs operations share: the command runner, the owned-name test, and what was probed once. */
interface ZfsContext {
  exec: Exec;
  isOwned: OwnedNameTest;
  zfs(args: string[], options?: BackendCallOptions): Promise<ExecResult>;
  /** Command-level capabilities belong to the installed zfs: probed once per process. */
  commandCaps?: Promise<Pick<ZfsCapabilities, 'listParsable' | 'getByType'>> | undefined;
  /** Pool features are probed once per pool. */
  poolBookmarks: Map<string, Promise<boolean>>;
  /** Whether `zfs holds` works, learnt from the first snapshot asked about. */
  listHolds?: boolean | undefined;
}

const PROBE_OK = [1, 2, 255] as const;

function zfsContext(exec: Exec, isOwned: OwnedNameTest): ZfsContext {
  return {
    exec,
    isOwned,
    zfs: (args, options = {}) =>
      exec('zfs', args, { env: zfsEnv, signal: options.signal, timeoutMs: 300_000 }),
    poolBookmarks: new Map(),
  };
}

async function probeZfs(ctx: ZfsContext, args: string[], options: BackendCallOptions): Promise<boolean> {
  return probeVerdict(
    await ctx.exec('zfs', args, { env: zfsEnv, signal: options.signal, okExitCodes: PROBE_OK }),
  );
}

function commandCapabilities(ctx: ZfsContext, dataset: string, options: BackendCallOptions) {
  const probe = (ctx.commandCaps ??= (async () => ({
    listParsable: await probeZfs(ctx, ['list', '-H', '-p', '-o', 'name', '-d', '0', dataset], options),
    getByType: await probeZfs(ctx, ['get', '-H', '-t', 'filesystem', '-o', 'name', 'name', dataset], options),
  }))());
  // A failed probe (e.g. the dataset is missing) must not be cached as an answer.
  probe.catch(() => {
    ctx.commandCaps = undefined;
  });
  return probe;
}

function bookmarksOf(ctx: ZfsContext, pool: string, options: BackendCallOptions): Promise<boolean> {
  let probe = ctx.poolBookmarks.get(pool);
  if (!probe) {
    probe = (async () => {
      const result = await ctx.exec('zpool', ['get', '-H', '-o', 'value', 'feature@bookmarks', pool], {
        env: zfsEnv,
        signal: options.signal,
        okExitCodes: PROBE_OK,
      });
      return probeVerdict(result) && ['enabled', 'active'].includes(result.stdout.trim());
    })();
    probe.catch(() => ctx.poolBookmarks.delete(pool));
    ctx.poolBookmarks.set(pool, probe);
  }
  return probe;
}

async function mountInfoOf(
  ctx: ZfsContext,
  dataset: string,
  options: BackendCallOptions = {},
): Promise<ZfsDatasetMount> {
  const result = await ctx.zfs(['get', '-H', '-o', 'property,value', 'mountpoint,mounted', dataset], options);
  const props = new Map(
    result.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('\t') as [string, string]),
  );
  const mountpoint = props.get('mountpoint');
  return {
    mountpoint: mountpoint && mountpoint.startsWith('/') ? mountpoint : undefined,
    mounted: props.get('mounted') === 'yes',
  };
}

async function snapdirReachable(mount: ZfsDatasetMount): Promise<boolean> {
  if (!mount.mounted || !mount.mountpoint) return false;
  try {
    return (await stat(join(mount.mountpoint, '.zfs', 'snapshot'))).isDirectory();
  } catch {
    return false;
  }
}

async function xattrsOf(
  ctx: ZfsContext,
  mount: ZfsDatasetMount,
  options: BackendCallOptions,
): Promise<boolean | undefined> {
  if (!mount.mounted || !mount.mountpoint) return undefined;
  try {
    const result = await ctx.exec('getfattr', ['-n', 'user.snapguard-probe', '--', mount.mountpoint], {
      env: zfsEnv,
      signal: options.signal,
      okExitCodes: [1],
    });
    if (result.exitCode === 0 || /no such attribute/i.test(result.stderr)) return true;
    if (/operation not supported/i.test(result.stderr)) return false;
    return undefined;
  } catch (error) {
    if (error instanceof SnapguardError && error.code === 'COMMAND_NOT_FOUND') return undefined;
    throw error;
  }
}

function snapshotPath(dataset: string, mount: ZfsDatasetMount, snapdir: boolean, name: string): string {
  return snapdir && mount.mountpoint
    ? join(mount.mountpoint, '.zfs', 'snapshot', name)
    : `${dataset}@${name}`;
}

async function listInfo(
  ctx: ZfsContext,
  dataset: string,
  options: BackendCallOptions,
): Promise<ZfsSnapshotInfo[]> {
  const caps = await commandCapabilities(ctx, dataset, options);
  if (caps.listParsable) {
    const result = await ctx.zfs(
      ['list', '-H', '-p', '-t', 'snapshot', '-o', 'name,creation,guid,used,userrefs', '-d', '1', dataset],
      options,
    );
    return snapshotsFromList(dataset, result.stdout);
  }
  // zfs-fuse: no `list -p` and no `get -t`; `get -p -d 1` gives the dataset, its children and its
  // snapshots with exact numbers in one command, and the snapshots are picked by their `@`.
  const result = await ctx.zfs(
    ['get', '-H', '-p', '-d', '1', '-o', 'name,property,value', 'creation,guid,used,userrefs', dataset],
    options,
  );
  return snapshotsFromRows(dataset, parseZfsGet(result.stdout));
}

function toRaw(
  ctx: ZfsContext,
  volume: BackendVolume,
  dataset: string,
  mount: ZfsDatasetMount,
  snapdir: boolean,
  info: ZfsSnapshotInfo,
): RawSnapshot {
  return {
    name: info.name,
    path: snapshotPath(dataset, mount, snapdir, info.name),
    createdAt: info.createdAt,
    readOnly: true,
    ...(info.guid ? { id: info.guid } : {}),
    producer: classifyZfsSnapshot(volume.id, info.name, ctx.isOwned),
    ...(info.userrefs !== undefined ? { holds: info.userrefs } : {}),
    ...(info.usedBytes !== undefined ? { usedBytes: info.usedBytes } : {}),
  };
}

function requireOwned(ctx: ZfsContext, volume: BackendVolume, name: string, action: string): void {
  const producer = classifyZfsSnapshot(volume.id, name, ctx.isOwned);
  if (producer !== 'snapguard') {
    throw new SnapguardError(
      'NOT_OWNED',
      `Refusing to ${action} ${volume.dataset}@${name}: snapguard did not make it (${producer} snapshot).`,
      'snapguard only changes snapshots whose names it owns; manage this one with the tool that made it.',
    );
  }
}

async function capabilitiesOf(
  ctx: ZfsContext,
  backend: ZfsBackend,
  volume: BackendVolume,
  options: BackendCallOptions = {},
): Promise<ZfsCapabilities> {
  const dataset = requireDataset(volume);
  const caps = await commandCapabilities(ctx, dataset, options);
  const mount = await mountInfoOf(ctx, dataset, options);
  let listHolds = ctx.listHolds;
  if (listHolds === undefined) {
    // Asking for the holds of the first snapshot probes whether `zfs holds` works.
    const [first] = await listInfo(ctx, dataset, options);
    if (first) {
      await backend.holds(volume, first.name, options);
      listHolds = ctx.listHolds;
    }
  }
  return {
    ...caps,
    listHolds,
    bookmarks: await bookmarksOf(ctx, dataset.split('/')[0] as string, options),
    snapdir: await snapdirReachable(mount),
    xattrs: await xattrsOf(ctx, mount, options),
  };
}

async function createSnapshot(
  ctx: ZfsContext,
  volume: BackendVolume,
  name: string,
  options: BackendCallOptions = {},
): Promise<RawSnapshot> {
  const dataset = requireDataset(volume);
  requireSnapshotName(name);
  const startedAt = new Date();
  await ctx.zfs(['snapshot', `${dataset}@${name}`], options);
  const mount = await mountInfoOf(ctx, dataset, options);
  return {
    name,
    path: snapshotPath(dataset, mount, await snapdirReachable(mount), name),
    createdAt: startedAt,
    readOnly: true,
    producer: 'snapguard',
  };
}

async function listSnapshots(
  ctx: ZfsContext,
  folderCopies: SnapshotBackend,
  volume: BackendVolume,
  options: ListOptions = {},
): Promise<RawSnapshot[]> {
  // An external copy kept as plain folders (kind dir) is listed like the dir backend does.
  if (options.dir !== undefined)
    return folderCopies.list(volume, { dir: options.dir, signal: options.signal });
  const dataset =
    options.dataset !== undefined
      ? requireDataset({ ...volume, dataset: options.dataset })
      : requireDataset(volume);
  const [infos, mount] = await Promise.all([
    listInfo(ctx, dataset, options),
    mountInfoOf(ctx, dataset, options),
  ]);
  const snapdir = await snapdirReachable(mount);
  return infos.map((info) => toRaw(ctx, volume, dataset, mount, snapdir, info));
}

async function showSnapshot(
  ctx: ZfsContext,
  volume: BackendVolume,
  name: string,
  options: BackendCallOptions = {},
): Promise<RawSnapshot | undefined> {
  const dataset = requireDataset(volume);
  if (!SNAPSHOT_COMPONENT.test(name)) return undefined;
  let rows: ZfsPropertyRow[];
  try {
    const result = await ctx.zfs(
      ['get', '-H', '-p', '-o', 'name,property,value', 'creation,guid,used,userrefs', `${dataset}@${name}`],
      options,
    );
    rows = parseZfsGet(result.stdout);
  } catch (error) {
    if (isMissingDataset(error)) return undefined;
    throw error;
  }
  const [info] = snapshotsFromRows(dataset, rows);
  if (!info) return undefined;
  const mount = await mountInfoOf(ctx, dataset, options);
  return toRaw(ctx, volume, dataset, mount, await snapdirReachable(mount), info);
}

async function destroySnapshot(
  ctx: ZfsContext,
  volume: BackendVolume,
  name: string,
  options: BackendCallOptions = {},
): Promise<void> {
  const dataset = requireDataset(volume);
  requireSnapshotName(name);
  requireOwned(ctx, volume, name, 'destroy');
  try {
    // Never -r/-R: exactly this one snapshot, nothing that depends on it.
    await ctx.zfs(['destroy', `${dataset}@${name}`], options);
  } catch (error) {
    if (error instanceof SnapguardError && /dataset is busy|has dependent clones/i.test(error.message)) {
      const held = /busy/i.test(error.message);
      throw new SnapguardError(
        'PRECONDITION_FAILED',
        `${dataset}@${name} cannot be destroyed: ${held ? 'it carries a hold (pinned, or held by another tool)' : 'a clone depends on it'}.`,
        held
          ? `Unpin it first (releases the ${PIN_HOLD_TAG} hold); other holds are released with zfs release by whoever set them.`
          : 'Destroy or promote the dependent clone first.',
        { cause: error },
      );
    }
    throw error;
  }
}

async function unchangedSince(
  ctx: ZfsContext,
  volume: BackendVolume,
  raw: RawSnapshot,
  options: BackendCallOptions = {},
): Promise<boolean> {
  const dataset = requireDataset(volume);
  if (!SNAPSHOT_COMPONENT.test(raw.name)) return false;
  // written@ counts what was committed; sync the mounted dataset so the open transaction group
  // (the last seconds of writes) is counted too.
  const mount = await mountInfoOf(ctx, dataset, options);
  if (mount.mountpoint && mount.mounted)
    await ctx.exec('sync', ['-f', mount.mountpoint], { signal: options.signal, timeoutMs: 300_000 });
  // Exit 1/2: the property is unknown to this zfs (zfs-fuse, pool version 23) or the snapshot is
  // gone. Not knowing means "changed": a new snapshot is taken.
  const result = await ctx.exec('zfs', ['get', '-H', '-p', '-o', 'value', `written@${raw.name}`, dataset], {
    env: zfsEnv,
    signal: options.signal,
    okExitCodes: [1, 2],
  });
  return result.exitCode === 0 && result.stdout.trim() === '0';
}

async function poolUsageOf(
  ctx: ZfsContext,
  volume: BackendVolume,
  options: BackendCallOptions = {},
): Promise<PoolUsage> {
  const pool = requireDataset(volume).split('/')[0] as string;
  // used/available of the pool's root dataset: what datasets can still write, after reservations.
  const result = await ctx.zfs(['get', '-H', '-p', '-o', 'property,value', 'used,available', pool], options);
  const props = new Map(
    result.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('\t') as [string, string]),
  );
  const usedBytes = numberOrUndefined(props.get('used'));
  const availableBytes = numberOrUndefined(props.get('available'));
  if (usedBytes === undefined || availableBytes === undefined) {
    throw new SnapguardError(
      'COMMAND_FAILED',
      `Could not read used/available of pool ${pool} (got ${JSON.stringify(result.stdout.trim())}).`,
      'Check that the pool is imported: zpool status.',
    );
  }
  const totalBytes = usedBytes + availableBytes;
  return { totalBytes, usedBytes, availableBytes, ratio: totalBytes > 0 ? usedBytes / totalBytes : 0 };
}

/**
 * `zfs hold` or `zfs release` of one tag on one snapshot; the answer that says it is so already
 * (`alreadyDone`) counts as done, so both are safe to repeat.
 */
async function holdCommand(
  ctx: ZfsContext,
  verb: 'hold' | 'release',
  alreadyDone: RegExp,
  volume: BackendVolume,
  name: string,
  tag: string,
  options: BackendCallOptions,
): Promise<void> {
  const dataset = requireDataset(volume);
  requireSnapshotName(name);
  try {
    await ctx.zfs([verb, tag, `${dataset}@${name}`], options);
  } catch (error) {
    if (error instanceof SnapguardError && alreadyDone.test(error.message)) return;
    throw error;
  }
}

async function holdsOf(
  ctx: ZfsContext,
  volume: BackendVolume,
  name: string,
  options: BackendCallOptions = {},
): Promise<{ count: number; tags: string[] | undefined }> {
  const dataset = requireDataset(volume);
  requireSnapshotName(name);
  const target = `${dataset}@${name}`;
  if (ctx.listHolds !== false) {
    const result = await ctx.exec('zfs', ['holds', '-H', target], {
      env: zfsEnv,
      signal: options.signal,
      okExitCodes: PROBE_OK,
    });
    if (probeVerdict(result)) {
      ctx.listHolds = true;
      const tags = result.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('\t')[1]?.trim())
        .filter((tag): tag is string => Boolean(tag));
      return { count: tags.length, tags };
    }
    ctx.listHolds = false;
  }
  const result = await ctx.zfs(['get', '-H', '-p', '-o', 'value', 'userrefs', target], options);
  return { count: numberOrUndefined(result.stdout.trim()) ?? 0, tags: undefined };
}

/** Reads a snapshot through `.zfs/snapshot`, or where that is not reachable through a temporary read-only clone. */
async function openSnapshotOf(
  ctx: ZfsContext,
  volume: BackendVolume,
  name: string,
  options: BackendCallOptions = {},
): Promise<SnapshotReader> {
  const dataset = requireDataset(volume);
  requireSnapshotName(name);
  const mount = await mountInfoOf(ctx, dataset, options);
  if (await snapdirReachable(mount)) {
    const path = snapshotPath(dataset, mount, true, name);
    await stat(path).catch((error: unknown) => {
      throw new SnapguardError('SNAPSHOT_NOT_FOUND', `${path} is not readable: ${(error as Error).message}`, {
        mcp: `Call list_snapshots with volume "${volume.id}" for the names that exist.`,
        cli: `Run \`snapguard snapshot list ${volume.id}\` for the names that exist.`,
      });
    });
    return { path, via: 'snapdir', close: async () => undefined };
  }
  return openReadClone(ctx, dataset, name, options, volume.id);
}

/**
 * No .zfs/snapshot (zfs-fuse, or the dataset is not mounted): a read-only clone in the same pool,
 * mounted under a private temporary folder, destroyed on close.
 */
async function openReadClone(
  ctx: ZfsContext,
  dataset: string,
  name: string,
  options: BackendCallOptions,
  volumeId: string,
): Promise<SnapshotReader> {
  const pool = dataset.split('/')[0] as string;
  const clone = `${pool}/${READ_CLONE_PREFIX}${randomBytes(6).toString('hex')}`;
  const mountDir = await mkdtemp(join(tmpdir(), 'snapguard-zfs-read-'));
  try {
    await ctx.zfs(
      ['clone', '-o', 'readonly=on', '-o', `mountpoint=${mountDir}`, `${dataset}@${name}`, clone],
      options,
    );
  } catch (error) {
    await rm(mountDir, { recursive: true, force: true });
    if (isMissingDataset(error)) {
      throw new SnapguardError('SNAPSHOT_NOT_FOUND', `Snapshot ${dataset}@${name} does not exist.`, {
        mcp: `Call list_snapshots with volume "${volumeId}" for the names that exist.`,
        cli: `Run \`snapguard snapshot list ${volumeId}\` for the names that exist.`,
      });
    }
    throw error;
  }
  let closed = false;
  return {
    path: mountDir,
    via: 'clone',
    async close() {
      if (closed) return;
      closed = true;
      // The clone is ours by its generated name; -r/-R are never used here either. Its unmount
      // can lag behind the last reader for a moment (busy): retry briefly before failing.
      for (let attempt = 1; ; attempt++) {
        try {
          await ctx.zfs(['destroy', clone]);
          break;
        } catch (error) {
          if (attempt >= 10 || !(error instanceof SnapguardError && /busy/i.test(error.message))) throw error;
          await new Promise((resolve) => setTimeout(resolve, 300));
        }
      }
      await rm(mountDir, { recursive: true, force: true });
    },
  };
}

/** `isOwned` decides which snapshots are snapguard's: only those are ever held, released or destroyed. */
export function createZfsBackend(exec: Exec, isOwned: OwnedNameTest): ZfsBackend {
  const ctx = zfsContext(exec, isOwned);
  const folderCopies = createDirBackend(exec);
  const backend: ZfsBackend = {
    kind: 'zfs',
    listsUsedBytes: true,
    volumeInPool: true,
    ctimeTrusted: true,
    needsRoot: true,
    capabilities: (volume, options) => capabilitiesOf(ctx, backend, volume, options),
    mountInfo: (volume, options) => mountInfoOf(ctx, requireDataset(volume), options),
    create: (volume, name, options) => createSnapshot(ctx, volume, name, options),
    list: (volume, options) => listSnapshots(ctx, folderCopies, volume, options),
    show: (volume, name, options) => showSnapshot(ctx, volume, name, options),
    delete: (volume, name, options) => destroySnapshot(ctx, volume, name, options),
    unchangedSince: (volume, raw, options) => unchangedSince(ctx, volume, raw, options),
    async selfCheck(volume, options = {}) {
      const result = await exec('zfs', ['get', '-H', '-o', 'value', 'mountpoint', requireDataset(volume)], {
        env: zfsEnv,
        signal: options.signal,
        timeoutMs: 15_000,
      });
      return { mountpoint: result.stdout.trim() };
    },
    checkVolume: (volume, options) => checkMountpoint(backend, volume, options),
    poolUsage: (volume, options) => poolUsageOf(ctx, volume, options),
    hold: (volume, name, tag = PIN_HOLD_TAG, options = {}) =>
      holdCommand(ctx, 'hold', /tag already exists/i, volume, name, tag, options),
    release: (volume, name, tag = PIN_HOLD_TAG, options = {}) =>
      holdCommand(ctx, 'release', /no such tag/i, volume, name, tag, options),
    holds: (volume, name, options) => holdsOf(ctx, volume, name, options),
    openSnapshot: (volume, name, options) => openSnapshotOf(ctx, volume, name, options),
  };
  return backend;
}

/** Doctor's check: the dataset is readable and mounted where the configuration says. */
async function checkMountpoint(
  backend: SnapshotBackend,
  volume: BackendVolume,
  options: BackendCallOptions = {},
): Promise<VolumeCheck> {
  const bad = (message: string, fix: string): VolumeCheck => ({
    status: 'critical',
    message,
    fix,
    final: true,
  });
  let mountpoint: string;
  try {
    mountpoint = (await backend.selfCheck?.(volume, options))?.mountpoint ?? '';
  } catch (error) {
    const failure = toSnapguardError(error);
    return bad(
      `${volume.id}: dataset ${volume.dataset} cannot be read: ${failure.message}`,
      `Check volumes.${volume.id}.dataset (zfs list) and that the pool is imported. ${failure.hintFor('cli')}`,
    );
  }
  if (mountpoint !== volume.path && mountpoint !== 'legacy') {
    // Without a configured path snapguard assumes /<dataset>; say so instead of failing.
    if (volume.path === `/${volume.dataset}`) {
      return {
        status: 'warning',
        message: `${volume.id}: dataset ${volume.dataset} is mounted at ${mountpoint}, not at the assumed /${volume.dataset}`,
        fix: `Set volumes.${volume.id}.path to ${mountpoint}.`,
        final: true,
      };
    }
    return bad(
      `${volume.id}: dataset ${volume.dataset} is mounted at ${mountpoint}, the configuration says ${volume.path}`,
      `Set volumes.${volume.id}.path to ${mountpoint}, or fix the dataset's mountpoint.`,
    );
  }
  return {
    status: 'ok',
    message: `${volume.id}: zfs dataset ${volume.dataset} at ${mountpoint}`,
    final: true,
  };
}
