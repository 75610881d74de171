import { lstat, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createRestic, type ResticNode, type ResticSnapshot } from '../../system/restic.js';
import { binaryOf } from '../byte-names.js';
import { SnapguardError } from '../errors.js';
import {
  compareEntry,
  errorCode,
  hashFile,
  referenceOf,
  type FileReference,
  type RestoreFailure,
} from './files.js';
import { snapshotLocations } from '../locations.js';
import { ReservoirSampler, topLevelGroup } from './sampler.js';
import { redactUrls } from '../../shared/redact.js';
import { type Drift, type VolumeRun, type Outcome, makeScratch, liveBytes } from './run-context.js';
import { roundRto } from './verify.js';

/** restic prints nanoseconds with a zone offset; Date keeps milliseconds, the fraction is added back. */
function resticMtimeUs(node: ResticNode): number {
  const fraction = /\.(\d+)/.exec(node.mtime)?.[1] ?? '';
  const ms = Date.parse(node.mtime);
  const extraUs = Number((fraction + '000000').slice(3, 6));
  return Math.floor(ms) * 1000 + extraUs;
}

type Restic = ReturnType<typeof createRestic>;

/** The volume's restic repository, or why it cannot be read. */
function resticOf(run: VolumeRun): { restic: Restic; repository: string } {
  const { deps, volume } = run;
  const external = snapshotLocations(volume).find((place) => place.kind === 'restic');
  if (!external?.repository) {
    throw new SnapguardError(
      'PRECONDITION_FAILED',
      `Volume "${volume.id}" has no restic repository configured.`,
      `Add volumes.${volume.id}.external: [{ kind: restic, repository: /path/or/url, passwordFile: /etc/snapguard/restic.pass }].`,
    );
  }
  if (!external.passwordFile && !process.env.RESTIC_PASSWORD && !process.env.RESTIC_PASSWORD_FILE) {
    throw new SnapguardError(
      'PRECONDITION_FAILED',
      `The restic repository of volume "${volume.id}" has no passwordFile.`,
      `Set volumes.${volume.id}.external[].passwordFile to a file holding the repository password (mode 0600).`,
    );
  }
  const restic = createRestic(deps.exec, {
    repository: external.repository,
    passwordFile: external.passwordFile,
    cacheDir: join(deps.config.stateDir, 'restic-cache'),
  });
  return { restic, repository: external.repository };
}

/** The named restic snapshot, or the newest one of the volume's path. */
async function chooseSnapshot(run: VolumeRun, restic: Restic, repository: string): Promise<ResticSnapshot> {
  const { volume, request, call } = run;
  const snapshots = await restic.snapshots(call.signal);
  const forVolume = snapshots.filter((s) =>
    s.paths.some((p) => p === volume.path || p.startsWith(`${volume.path}/`)),
  );
  const candidates = (forVolume.length > 0 ? forVolume : snapshots).sort(
    (a, b) => b.time.getTime() - a.time.getTime(),
  );
  const chosen: ResticSnapshot | undefined = request.snapshot
    ? snapshots.find(
        (s) =>
          s.id === request.snapshot ||
          s.shortId === request.snapshot ||
          s.id.startsWith(request.snapshot as string),
      )
    : candidates[0];
  if (!chosen) {
    throw new SnapguardError(
      'SNAPSHOT_NOT_FOUND',
      request.snapshot
        ? `restic snapshot "${request.snapshot}" is not in ${redactUrls(repository)}.`
        : `The restic repository ${redactUrls(repository)} has no snapshots of ${volume.path}.`,
      'List them with `restic snapshots`; back the volume up first if there are none.',
    );
  }
  return chosen;
}

/** The files and symlinks of the snapshot under `root`: all of them (full mode) or a seeded sample. */
function pickPaths(
  run: VolumeRun,
  nodes: ResticNode[],
  root: string,
): { picked: string[]; byPath: Map<string, ResticNode>; population: number } {
  const { request } = run;
  const sampler = new ReservoirSampler(
    request.mode === 'full' ? Number.MAX_SAFE_INTEGER : run.sampleSize,
    run.seed,
  );
  const byPath = new Map<string, ResticNode>();
  for (const node of nodes) {
    if ((node.type !== 'file' && node.type !== 'symlink') || !node.path.startsWith(`${root}/`)) continue;
    const rel = relative(root, node.path);
    if (request.mode === 'full') byPath.set(rel, node);
    sampler.offer(rel, request.spread ? topLevelGroup(rel) : '');
  }
  const picked = sampler.result();
  if (request.mode !== 'full')
    for (const rel of picked) byPath.set(rel, nodes.find((n) => n.path === join(root, rel)) as ResticNode);
  return { picked, byPath, population: sampler.population };
}

/** What the repository's listing says a restored entry must be. */
function expectedOf(node: ResticNode): FileReference {
  return {
    kind: node.type === 'symlink' ? 'symlink' : 'file',
    mode: node.mode & 0o777,
    uid: node.uid,
    gid: node.gid,
    mtimeUs: resticMtimeUs(node),
    size: node.type === 'symlink' ? 0 : node.size,
    ...(node.linktarget ? { linkTarget: binaryOf(Buffer.from(node.linktarget, 'utf8')) } : {}),
  };
}

/**
 * Content is compared with the live file when it has not changed since the backup (its hash is
 * added to `expected`); otherwise the difference is drift of the live volume, not damage.
 */
async function compareWithLive(
  run: VolumeRun,
  path: string,
  rel: string,
  expected: FileReference,
  backupTime: Date,
  drift: Drift[],
): Promise<void> {
  try {
    const live = await lstat(path);
    const liveUs = Number((await lstat(path, { bigint: true })).mtimeNs / 1000n);
    if (live.mtimeMs <= backupTime.getTime() && Math.abs(liveUs - expected.mtimeUs) <= 1) {
      expected.sha256 = (await hashFile(path, run.call.signal)).sha256;
    } else {
      drift.push({
        path: rel,
        change: 'modified',
        detail: `live mtime ${live.mtime.toISOString()} differs from the backup; content checked against the repository's size only`,
      });
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      drift.push({ path: rel, change: 'deleted', detail: 'not on the live volume any more' });
  }
}

/** Checks each restored path against the listing (and the live file where it is unchanged). */
async function verifyRestored(
  run: VolumeRun,
  chosen: ResticSnapshot,
  root: string,
  scratch: string,
  picked: string[],
  byPath: Map<string, ResticNode>,
): Promise<{ failures: RestoreFailure[]; drift: Drift[]; bytes: number; checked: number }> {
  const { volume, call } = run;
  const failures: RestoreFailure[] = [];
  const drift: Drift[] = [];
  let bytes = 0;
  let checked = 0;
  for (const [index, rel] of picked.entries()) {
    call.signal?.throwIfAborted();
    const target = join(scratch, root, rel);
    const expected = expectedOf(byPath.get(rel) as ResticNode);
    let actual: FileReference;
    try {
      actual = await referenceOf(target);
      actual.mode &= 0o777;
      if (actual.kind === 'symlink') actual.size = 0;
      if (actual.kind === 'file') actual.sha256 = (await hashFile(target, call.signal)).sha256;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      failures.push({
        path: rel,
        check: code === 'ENOENT' ? 'missing' : 'read-error',
        expected: `restored from restic snapshot ${chosen.shortId}`,
        actual:
          code === 'ENOENT'
            ? 'not restored (data missing or unreadable in the repository)'
            : errorCode(error),
      });
      continue;
    }
    if (expected.kind === 'file')
      await compareWithLive(run, join(root, rel), rel, expected, chosen.time, drift);
    bytes += actual.size;
    failures.push(...compareEntry(rel, expected, actual, { xattrs: false }));
    checked++;
    call.onProgress?.({
      progress: index + 1,
      total: picked.length,
      message: `${volume.id}: verified ${index + 1}/${picked.length}`,
    });
  }
  return { failures, drift, bytes, checked };
}

/** Restic source: restore the sampled paths (or all) with restic restore, verify against the listing and the live files. */
export async function testRestic(run: VolumeRun): Promise<Outcome> {
  const { deps, volume, request, call } = run;
  const { restic, repository } = resticOf(run);
  const chosen = await chooseSnapshot(run, restic, repository);
  const root = chosen.paths.includes(volume.path) ? volume.path : (chosen.paths[0] ?? '/');
  const { picked, byPath, population } = pickPaths(run, await restic.ls(chosen.id, call.signal), root);
  const scratch = await makeScratch(deps, undefined, volume.id);
  try {
    const started = performance.now();
    call.onProgress?.({
      progress: 0,
      total: picked.length,
      message: `${volume.id}: restic restore of ${picked.length} file(s)`,
    });
    const restored = await restic.restore(
      chosen.id,
      scratch,
      request.mode === 'full' ? [] : picked.map((rel) => join(root, rel)),
      call.signal,
    );
    const restoreSeconds = (performance.now() - started) / 1000;
    if (restored.exitCode !== 0)
      run.warnings.push(
        `${volume.id}: restic restore reported errors: ${restored.stderr.trim().split('\n').slice(-3).join(' | ')}`,
      );
    const { failures, drift, bytes, checked } = await verifyRestored(
      run,
      chosen,
      root,
      scratch,
      picked,
      byPath,
    );
    return {
      snapshot: chosen.shortId,
      checkedPaths: request.mode === 'full' ? [] : picked,
      population,
      filesChecked: checked,
      bytesRestored: bytes,
      restoreSeconds,
      failures,
      drift,
      rtoEstimateSeconds:
        request.mode === 'full' && restoreSeconds > 0 && bytes > 0
          ? roundRto((await liveBytes(volume, call.signal)) / (bytes / restoreSeconds))
          : null,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
