import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import {
  copyFile,
  lchown,
  lstat,
  lutimes,
  mkdir,
  open,
  opendir,
  readlink,
  realpath,
  rm,
  symlink,
} from 'node:fs/promises';
import { binaryOf, bytesOf, isUtf8, pathUnder } from '../byte-names.js';
import { requireVolume, type VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { fromSystemError, SnapguardError } from '../errors.js';
import {
  displayPath,
  findSnapshot,
  openSnapshotTree,
  snapshotLabel,
  withTree,
  type OpenTree,
} from '../file-history/tree.js';
import type { RecoveryEntry } from '../history/schema.js';
import { formatTimestamp } from '../naming.js';
import type { ListedSnapshot } from '../schemas.js';
import { lockVolumes } from '../snapshots.js';
import type { RecoverContext } from './engine.js';
import { bytePathsOf, normaliseRelativePath } from './paths.js';
import { resolveUnfinishedRecoveries } from './resume.js';
import type { RecoverInput, RecoverResult } from './schemas.js';

/**
 * Files mode with destination "beside": the snapshot's version of each path is written next to the
 * original under a new name (NAME.snapguard-YYYYMMDD-HHMMSS, the snapshot's time). Nothing that
 * exists is replaced: every new name is checked before anything is written, and each one is created
 * exclusively (O_EXCL, mkdir, symlink), so a name that appears in between makes the write fail
 * instead of overwriting. No services are stopped and no safety snapshot is made, so no
 * confirmation is needed. Names are handled as bytes below the named paths.
 */

type Request = ReturnType<typeof RecoverInput.parse>;
type Written = NonNullable<RecoverResult['written']>[number];

/** Paths below are binary strings (one char per byte): names that are not UTF-8 keep their bytes. */
interface Planned {
  rel: string;
  /** What is copied: the snapshot entry, symlinks resolved inside the snapshot. */
  source: Buffer;
  type: 'file' | 'folder';
  writtenTo: string;
  target: Buffer;
}

const show = (binary: string) => displayPath(bytesOf(binary));
/** A name for the result and the history: as it is when UTF-8, escaped (\\xNN) otherwise. */
const text = (binary: string) => {
  const bytes = bytesOf(binary);
  return isUtf8(bytes) ? bytes.toString('utf8') : displayPath(bytes);
};

function refuseInput(path: string, why: string): SnapguardError {
  return new SnapguardError(
    'BAD_INPUT',
    `paths: "${show(path).slice(0, 200)}" cannot be restored beside the original: ${why}. Nothing was written.`,
    'Name a file or folder of the snapshot, relative to the volume root, e.g. "immich/docker-compose.yml".',
  );
}

/** The suffix of the new names: the snapshot's creation time, UTC, as in snapshot names. */
export function besideSuffix(snapshot: ListedSnapshot): string {
  const created = new Date(snapshot.createdAt);
  if (Number.isNaN(created.getTime())) {
    // An external copy cannot be restored in place: reading it is what is left.
    const external = snapshot.location === 'external';
    const label = external ? `external:${snapshot.name}` : snapshot.name;
    const read = {
      mcp: `read the file with read_snapshot_file (volume "${snapshot.volume}", snapshot "${label}")`,
      cli: `print the file with \`snapguard cat ${snapshot.volume} ${label} PATH\``,
    };
    throw new SnapguardError(
      'PRECONDITION_FAILED',
      `Snapshot "${snapshot.name}" has no known creation time, which names the restored copies.`,
      external
        ? { mcp: `Instead, ${read.mcp}.`, cli: `Instead, ${read.cli}.` }
        : {
            mcp: `Restore in place (recover without destination "beside"), or ${read.mcp}.`,
            cli: `Restore in place (\`snapguard recover ${snapshot.volume} ${label} --files PATH\`, without --beside), or ${read.cli}.`,
          },
    );
  }
  return `.snapguard-${formatTimestamp(created)}`;
}

function validate(request: Request): { volume: string; snapshot: string; paths: string[] } {
  if (request.mode !== 'files' || request.operationId !== undefined) {
    throw new SnapguardError(
      'BAD_INPUT',
      'destination "beside" restores paths (mode: files) of one volume and snapshot; a rollback always replaces the volume in place.',
      'Pass mode: files with volume, snapshot and paths, or drop destination for a rollback.',
    );
  }
  if (request.volume === undefined || request.snapshot === undefined) {
    throw new SnapguardError('BAD_INPUT', 'recover with destination "beside" needs volume and snapshot.', {
      mcp: 'Pick a snapshot with list_snapshots (or file_versions) and pass its volume and name.',
      cli: 'Pick a snapshot with `snapguard snapshot list VOLUME` (or `snapguard versions VOLUME PATH`) and pass the volume and its name.',
    });
  }
  // Strings and base64 bytes alike, checked lexically first (relative, no "..", no NUL).
  const paths = [
    ...(request.paths ?? []).map((raw) => {
      const rel = normaliseRelativePath(raw);
      if (rel === '.') throw refuseInput(binaryOf(Buffer.from(raw)), wholeTree);
      return binaryOf(Buffer.from(rel));
    }),
    ...bytePathsOf(request.pathsBase64).map((rel) => {
      if (rel === '.') throw refuseInput(rel, wholeTree);
      return rel;
    }),
  ];
  if (paths.length === 0) {
    throw new SnapguardError(
      'BAD_INPUT',
      'paths: destination "beside" needs at least one path.',
      'Pass the files or folders to restore, relative to the volume root.',
    );
  }
  return { volume: request.volume, snapshot: request.snapshot, paths };
}

const wholeTree = 'the whole tree has no place beside it; name files or folders';

/** The live parent folders of `rel` must all be real folders (no symlink on the way). */
async function checkLiveParent(volume: VolumeConfig, rel: string): Promise<void> {
  // Checked at use: a volume path replaced by a symlink would send the copies elsewhere.
  const top = await lstat(volume.path).catch(() => undefined);
  if (!top?.isDirectory()) {
    throw new SnapguardError(
      'PRECONDITION_FAILED',
      `The path of volume "${volume.id}" (${volume.path}) is ${top ? (top.isSymbolicLink() ? 'a symlink' : 'not a folder') : 'missing'}; nothing was written.`,
      {
        mcp: 'Fix the path in the configuration (the real folder, not a link); if a recovery was interrupted, health_check reports it (UNFINISHED_RECOVERY) with how to finish it.',
        cli: 'Fix the path in the configuration (the real folder, not a link), or run `snapguard doctor` if a recovery was interrupted.',
      },
    );
  }
  const slash = rel.lastIndexOf('/');
  if (slash < 0) return;
  const parts = rel.slice(0, slash).split('/');
  for (let i = 0; i < parts.length; i++) {
    const shown = parts.slice(0, i + 1).join('/');
    const info = await lstat(pathUnder(volume.path, shown)).catch(() => undefined);
    if (!info) {
      throw new SnapguardError(
        'PRECONDITION_FAILED',
        `The folder "${show(shown)}" that holds "${show(rel)}" does not exist in volume "${volume.id}" any more, so there is nowhere beside the original to write it. Nothing was written.`,
        `Restore the folder itself beside its original (paths: ["${show(shown)}"]).`,
      );
    }
    if (!info.isDirectory()) {
      throw refuseInput(
        rel,
        `"${show(shown)}" in the volume is ${info.isSymbolicLink() ? 'a symlink' : 'not a folder'}`,
      );
    }
  }
}

const SLASH = Buffer.from('/');
const isInside = (path: Buffer, root: Buffer) =>
  path.length > root.length + 1 && path.subarray(0, root.length + 1).equals(Buffer.concat([root, SLASH]));

/**
 * The folders on the way to `rel` in the snapshot are real folders (no symlink), and `rel` exists
 * there. What `rel` itself names, a symlink resolved, is checked by the caller.
 */
async function checkInSnapshot(root: Buffer, rel: string): Promise<void> {
  const parts = rel.split('/');
  for (let i = 0; i < parts.length; i++) {
    const shown = parts.slice(0, i + 1).join('/');
    const info = await lstat(pathUnder(root, shown)).catch(() => undefined);
    if (!info) {
      throw new SnapguardError(
        'BAD_INPUT',
        `paths: "${show(rel)}" does not exist in the snapshot. Nothing was written.`,
        {
          mcp: 'Check the spelling against the snapshot (file_versions or find_deleted list what it holds); only paths present in the snapshot can be restored.',
          cli: 'Check the spelling against the snapshot (`snapguard versions` or `snapguard deleted` list what it holds); only paths present in the snapshot can be restored.',
        },
      );
    }
    if (info.isSymbolicLink() && i < parts.length - 1)
      throw refuseInput(rel, `"${show(shown)}" in the snapshot is a symlink; name the real path instead`);
  }
}

async function plan(
  volume: VolumeConfig,
  tree: OpenTree,
  rels: string[],
  suffix: string,
): Promise<Planned[]> {
  // The snapshot is only read; nested duplicates go (a folder brings what is below it).
  const unique = [...new Set(rels)].sort();
  const paths = unique.filter((p) => !unique.some((other) => other !== p && p.startsWith(`${other}/`)));
  const realRoot = await realpath(tree.root, { encoding: 'buffer' });
  const planned: Planned[] = [];
  for (const rel of paths) {
    await checkInSnapshot(realRoot, rel);
    const real = await realpath(pathUnder(realRoot, rel), { encoding: 'buffer' }).catch(() => undefined);
    if (real === undefined) throw refuseInput(rel, 'it is a symlink that points to nothing in the snapshot');
    if (!isInside(real, realRoot)) throw refuseInput(rel, 'it resolves outside the snapshot');
    const info = await lstat(real);
    if (!info.isFile() && !info.isDirectory())
      throw refuseInput(rel, 'it is not a regular file or a folder in the snapshot');
    const name = rel.slice(rel.lastIndexOf('/') + 1);
    if (name.length + suffix.length > 255)
      throw refuseInput(rel, `its name with "${suffix}" appended is longer than 255 bytes`);
    await checkLiveParent(volume, rel);
    const writtenTo = `${rel}${suffix}`;
    planned.push({
      rel,
      source: real,
      type: info.isDirectory() ? 'folder' : 'file',
      writtenTo,
      target: pathUnder(volume.path, writtenTo),
    });
  }
  for (const item of planned) {
    if (await lstat(item.target).catch(() => undefined)) throw exists(volume, item.writtenTo);
  }
  return planned;
}

function exists(volume: VolumeConfig, writtenTo: string): SnapguardError {
  return new SnapguardError(
    'PRECONDITION_FAILED',
    `"${show(writtenTo)}" already exists in volume "${volume.id}" (${displayPath(pathUnder(volume.path, writtenTo))}); a restore beside the original never overwrites anything. Nothing was written.`,
    'Look at that copy first (it may be an earlier restore of the same version); move or delete it, then restore again.',
    { details: { path: text(writtenTo) } },
  );
}

const join = (base: Buffer, name: Buffer) => Buffer.concat([base, SLASH, name]);

/** Owner, permission bits and times of `stats` on the new entry, set through a handle (never following a link). */
async function applyMetadata(path: Buffer, stats: BigIntStats): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    // Only root can give files away; others keep their own ownership.
    await handle.chown(Number(stats.uid), Number(stats.gid)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPERM') throw error;
    });
    // After chown, which clears set-id bits.
    await handle.chmod(Number(stats.mode & 0o7777n));
    await handle.utimes(Number(stats.atimeMs) / 1000, Number(stats.mtimeMs) / 1000);
  } finally {
    await handle.close();
  }
}

interface CopyState {
  rootDev: bigint;
  warnings: string[];
  signal?: AbortSignal | undefined;
}

/** Copies one entry of the snapshot to a name that must not exist yet. */
async function copyEntry(source: Buffer, target: Buffer, state: CopyState, shown: string): Promise<void> {
  state.signal?.throwIfAborted();
  const stats = await lstat(source, { bigint: true });
  if (stats.isSymbolicLink()) {
    await symlink(await readlink(source, { encoding: 'buffer' }), target);
    await lchown(target, Number(stats.uid), Number(stats.gid)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPERM') throw error;
    });
    await lutimes(target, Number(stats.atimeMs) / 1000, Number(stats.mtimeMs) / 1000);
    return;
  }
  if (stats.isFile()) {
    // Exclusive create; a clone of the extents where the filesystem can (btrfs), a copy otherwise.
    await copyFile(source, target, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
    await applyMetadata(target, stats);
    return;
  }
  if (stats.isDirectory()) {
    await mkdir(target, { mode: 0o700 });
    const made = await lstat(target, { bigint: true });
    if (!made.isDirectory()) throw new Error(`${displayPath(target)} changed while it was being written`);
    // A nested subvolume or mount inside the snapshot is another tree: its place stays an empty folder.
    if (stats.dev === state.rootDev) {
      const dir = await opendir(source, { encoding: 'buffer' as BufferEncoding, bufferSize: 256 });
      for await (const entry of dir) {
        const name = entry.name as unknown as Buffer;
        await copyEntry(join(source, name), join(target, name), state, `${shown}/${displayPath(name)}`);
      }
    } else {
      state.warnings.push(`${shown} is another filesystem in the snapshot; written as an empty folder`);
    }
    await applyMetadata(target, stats);
    return;
  }
  state.warnings.push(`${shown} is a special file (fifo, socket or device); not copied`);
}

/** What the result reports for each planned copy. */
function writtenOf(planned: Planned[]): Written[] {
  return planned.map((item) => ({
    path: text(item.rel),
    writtenTo: text(item.writtenTo),
    ...(isUtf8(bytesOf(item.writtenTo))
      ? {}
      : { writtenToBase64: bytesOf(item.writtenTo).toString('base64') }),
    fullPath: displayPath(item.target),
    type: item.type,
  }));
}

/** The error for a copy that failed; what this call had written is already removed. */
function writeFailure(error: unknown, item: Planned): SnapguardError {
  return (
    fromSystemError(error, `writing ${show(item.writtenTo)} beside the original`) ??
    (error instanceof SnapguardError
      ? error
      : new SnapguardError(
          'INTERNAL',
          `Writing ${show(item.writtenTo)} failed: ${(error as Error).message}. What this restore had written was removed.`,
          'Run it again; if it fails the same way, report the output of --json.',
          { cause: error },
        ))
  );
}

/** Writes every planned copy; on a failure removes what this call created and throws. */
async function writeAll(
  volume: VolumeConfig,
  planned: Planned[],
  state: CopyState,
  onProgress: RecoverContext['onProgress'],
): Promise<void> {
  const done: Buffer[] = [];
  for (const item of planned) {
    onProgress?.(`writing ${show(item.writtenTo)}`);
    try {
      done.push(item.target);
      await copyEntry(item.source, item.target, state, show(item.writtenTo));
    } catch (error) {
      // Only names this call created are removed; one that appeared in between is left alone.
      const err = error as NodeJS.ErrnoException & { dest?: string };
      const code = err.code;
      const atTarget = code === 'EEXIST' && String(err.dest ?? err.path) === item.target.toString();
      if (atTarget) done.pop();
      for (const path of done) await rm(path, { recursive: true, force: true }).catch(() => undefined);
      if (atTarget) throw exists(volume, item.writtenTo);
      throw writeFailure(error, item);
    }
  }
}

interface Recorded {
  recoveryId: string;
  now: Date;
  durationSeconds: number;
}

/** Adds the recovery to the history; a failure to record becomes a warning, the copies stay. */
async function recordBeside(
  run: BesideRun,
  planned: Planned[],
  recorded: Recorded,
  warnings: string[],
): Promise<void> {
  const { deps, request, volume, snapshot } = run;
  try {
    await deps.history.update(async (history) => {
      const entry: RecoveryEntry = {
        id: recorded.recoveryId,
        timestamp: recorded.now.toISOString(),
        host: deps.config.host,
        subvolume: volume.id,
        restored_snapshot: snapshotLabel(snapshot),
        mode: 'files',
        destination: 'beside',
        paths: planned.map((p) => text(p.rel)),
        written: planned.map((p) => text(p.writtenTo)),
        reason: request.reason ?? null,
        duration_seconds: recorded.durationSeconds,
        outcome: 'success',
        safety_backup: null,
        operation_id: null,
        validation: [],
        recovery_id: recorded.recoveryId,
      };
      history.recoveries.push(entry);
    });
  } catch (error) {
    warnings.push(
      `the restore could not be recorded in backup-history.json (${(error as Error).message}); the copies are written as reported.`,
    );
  }
}

interface BesideRun {
  deps: Deps;
  request: Request;
  context: RecoverContext;
  volume: VolumeConfig;
  snapshot: ListedSnapshot;
  paths: string[];
  suffix: string;
  started: number;
  extra: Partial<Pick<RecoverResult, 'resolved'>>;
}

/** Plans the copies in the open snapshot tree, then (unless a dry run) writes and records them. */
async function besideInTree(run: BesideRun, tree: OpenTree): Promise<RecoverResult> {
  const { deps, request, context, volume, snapshot, extra } = run;
  const planned = await plan(volume, tree, run.paths, run.suffix);
  const written = writtenOf(planned);
  const list = planned.map((item) => show(item.writtenTo)).join(', ');
  if (request.dryRun) {
    return {
      status: 'planned' as const,
      written,
      message: `Dry run: would write ${list} in volume "${volume.id}" from ${snapshotLabel(snapshot)}; nothing was written.`,
      ...extra,
    };
  }
  const now = deps.clock();
  const recoveryId = `rec-${formatTimestamp(now)}-${randomBytes(3).toString('hex')}`;
  const state: CopyState = {
    rootDev: (await lstat(tree.root, { bigint: true })).dev,
    warnings: [],
    signal: context.signal,
  };
  await writeAll(volume, planned, state, context.onProgress);
  const durationSeconds = Math.round((performance.now() - run.started) / 10) / 100;
  const warnings = state.warnings.slice(0, 50);
  if (state.warnings.length > 50) warnings.push(`... and ${state.warnings.length - 50} more`);
  await recordBeside(run, planned, { recoveryId, now, durationSeconds }, warnings);
  return {
    status: 'recovered' as const,
    recoveryId,
    written,
    durationSeconds,
    message: [
      `Wrote ${list} in volume "${volume.id}" from ${snapshotLabel(snapshot)}, beside the original${planned.length === 1 ? '' : 's'}; nothing was replaced.`,
      ...warnings.map((w) => `Warning: ${w}`),
    ].join(' '),
    ...(warnings.length ? { warnings } : {}),
    ...extra,
  };
}

/** recover with destination "beside". */
export async function recoverBeside(
  deps: Deps,
  request: Request,
  context: RecoverContext = {},
): Promise<RecoverResult> {
  const started = performance.now();
  const input = validate(request);
  const volume = requireVolume(deps.config, input.volume);
  // Reading changes nothing: own and foreign snapshots, local or an external copy ("external:NAME").
  const snapshot = await findSnapshot(deps, volume, input.snapshot, context.signal);
  const suffix = besideSuffix(snapshot);
  const resolved = request.dryRun
    ? []
    : await resolveUnfinishedRecoveries(deps, { volumes: [volume.id], context });
  const extra = resolved.length ? { resolved } : {};
  const release = await lockVolumes(
    deps,
    [volume.id],
    `recover beside ${volume.id}<-${snapshot.name}`,
    context.signal,
  );
  const run: BesideRun = {
    deps,
    request,
    context,
    volume,
    snapshot,
    paths: input.paths,
    suffix,
    started,
    extra,
  };
  try {
    return await withTree(
      () => openSnapshotTree(deps, volume, snapshot, context.signal),
      (tree) => besideInTree(run, tree),
    );
  } finally {
    await release();
  }
}
