import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, realpath, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { RawSnapshot } from '../../backends/types.js';
import { isZfsBackend, type ZfsBackend } from '../../backends/zfs.js';
import {
  planZfsRevert,
  replaceTreeFromSnapshot,
  requireZfsMount,
  restoreZfsPaths,
} from '../../backends/zfs-recover.js';
import { createSystemdDriver } from '../../system/systemd.js';
import { isMountPoint, mountOf, readMounts } from '../../system/mounts.js';
import { requireVolume, type VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError } from '../errors.js';
import type { RecoveryEntry, SnapshotEntry } from '../history/schema.js';
import { formatTimestamp, nextFreeName } from '../naming.js';
import { lockVolumes, ownedSnapshots, requireOwnedSnapshot } from '../snapshots.js';
import { parseInput } from '../validate.js';
import {
  faultPoint,
  readJournals,
  removeJournal,
  writeJournal,
  type Journal,
  type JournalItem,
  type RecoveryStep,
} from './journal.js';
import { resolveRestorePaths } from './paths.js';
import {
  RecoverInput,
  type RecoverResult,
  type RecoveryPlan,
  type ResolvedRecovery,
  type ValidationCheck,
} from './schemas.js';
import {
  servicesOf,
  startUnits,
  stopUnits,
  validateVolume,
  type ServiceDriver,
  type ServiceDriverFactory,
} from './services.js';
import { btrfsChangeSummary, walkChangeSummary } from './summary.js';

export interface RecoverContext {
  signal?: AbortSignal | undefined;
  /** How units are reached; defaults to the systemd driver. */
  services?: ServiceDriverFactory | undefined;
  /**
   * The confirmation gate, called with the plan when the call is not a dry run. Returns true to
   * proceed, or a result to return instead (confirmation_required, declined...).
   */
  confirm?: (gate: {
    plan: RecoveryPlan;
    fingerprint: string;
    summary: string;
  }) => Promise<true | RecoverResult>;
  /** Skip the change summary (automation that has already decided, e.g. wrap --auto-rollback). */
  skipChanges?: boolean;
}

function driverFor(deps: Deps, volume: VolumeConfig, context: RecoverContext): ServiceDriver | undefined {
  const services = servicesOf(volume);
  if (services.units.length === 0) return undefined;
  const factory: ServiceDriverFactory =
    context.services ?? ((target) => createSystemdDriver(deps.exec, target));
  return factory({ systemctl: services.systemctl, scope: services.scope });
}

interface Target {
  volume: VolumeConfig;
  snapshot: RawSnapshot;
  paths?: string[];
  removeOnly?: string[];
}

const safetyPathOf = (item: { snapshotDir: string; safety: string }) => join(item.snapshotDir, item.safety);

function zfsBackendOf(deps: Deps, volume: VolumeConfig): ZfsBackend {
  const backend = deps.backendFor(volume);
  if (!isZfsBackend(backend)) {
    throw new SnapguardError('INTERNAL', `Volume "${volume.id}" has no zfs backend.`, 'Report this.');
  }
  return backend;
}

/** Runs `work` on a readable folder of a zfs snapshot (.zfs/snapshot or a temporary clone). */
async function withZfsSnapshot<T>(
  deps: Deps,
  volume: VolumeConfig,
  name: string,
  work: (path: string) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const reader = await zfsBackendOf(deps, volume).openSnapshot(volume, name, { signal });
  try {
    return await work(reader.path);
  } finally {
    await reader.close();
  }
}

/** Whether a snapshot exists, asked the backend's way: zfs snapshots have no folder on every system. */
async function snapshotThere(deps: Deps, item: JournalItem, name: string): Promise<boolean> {
  if (item.backend === 'zfs')
    return (await deps.backendFor(volumeOf(deps, item)).show(volumeOf(deps, item), name)) !== undefined;
  return exists(join(item.snapshotDir, name));
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

function mountPointRefusal(volume: VolumeConfig, real: string): SnapguardError {
  const mount = mountOf(real, readMounts());
  return new SnapguardError(
    'PRECONDITION_FAILED',
    `Volume "${volume.id}" cannot be rolled back in place: its path ${volume.path} is a mount point` +
      `${mount ? ` (${mount.fsType} ${mount.source}, subvolume ${mount.root})` : ''}. A mounted path cannot be moved aside ` +
      '(the kernel refuses with EBUSY), and a subvolume created at that path would stay hidden under the mount. Nothing was changed.',
    'Either restore in files mode over the whole tree (mode: files, paths: ["."]; the current state is kept in a pre-recover snapshot first), ' +
      'or follow the remount procedure in docs/recovery.md: stop the users of the mount, make a writable snapshot of the target next to it, ' +
      'point the mount (subvol= in /etc/fstab, or `btrfs subvolume set-default` for the root filesystem) at it and remount.',
    { details: { volume: volume.id, path: volume.path } },
  );
}

async function resolveTargets(
  deps: Deps,
  request: ReturnType<typeof RecoverInput.parse>,
  signal?: AbortSignal,
): Promise<Target[]> {
  if (request.operationId !== undefined) {
    if (request.volume !== undefined || request.snapshot !== undefined) {
      throw new SnapguardError(
        'BAD_INPUT',
        'Give either operationId or volume + snapshot, not both.',
        'operationId recovers every volume the operation snapshotted; volume + snapshot recovers one.',
      );
    }
    if (request.mode !== 'rollback') {
      throw new SnapguardError(
        'BAD_INPUT',
        'Recovering a whole operation is a rollback of each of its volumes; files mode needs volume + snapshot.',
        'Drop mode/paths, or name one volume and snapshot for a file restore.',
      );
    }
    const { history } = await deps.history.read();
    const entries = history.snapshots.filter((entry) => entry.operation_id === request.operationId);
    if (entries.length === 0) {
      throw new SnapguardError(
        'OPERATION_NOT_FOUND',
        `No snapshots recorded for operation ${request.operationId}.`,
        'Use the operationId returned by create_snapshot (see snapguard history).',
      );
    }
    const targets: Target[] = [];
    for (const entry of [...entries].sort((a, b) => a.subvolume.localeCompare(b.subvolume))) {
      const volume = requireVolume(deps.config, entry.subvolume);
      targets.push({
        volume,
        snapshot: await requireOwnedSnapshot(deps, volume, entry.snapshot_name, signal),
      });
    }
    return targets;
  }
  if (request.volume === undefined || request.snapshot === undefined) {
    throw new SnapguardError(
      'BAD_INPUT',
      'recover needs volume and snapshot (or operationId).',
      'Pick a snapshot with list_snapshots and pass its volume and name.',
    );
  }
  const volume = requireVolume(deps.config, request.volume);
  const snapshot = await requireOwnedSnapshot(deps, volume, request.snapshot, signal);
  if (request.mode === 'files') {
    const resolved =
      volume.backend === 'zfs'
        ? await withZfsSnapshot(
            deps,
            volume,
            snapshot.name,
            (root) => resolveRestorePaths(request.paths ?? [], root, volume.path),
            signal,
          )
        : await resolveRestorePaths(request.paths ?? [], snapshot.path, volume.path);
    return [{ volume, snapshot, paths: resolved.paths, removeOnly: resolved.removeOnly }];
  }
  if (request.paths && request.paths.length > 0) {
    throw new SnapguardError(
      'BAD_INPUT',
      'paths are only used in files mode.',
      'Pass mode: files to restore these paths, or drop paths to roll back the whole volume.',
    );
  }
  return [{ volume, snapshot }];
}

async function checkTarget(deps: Deps, target: Target, mode: 'rollback' | 'files'): Promise<void> {
  const { volume } = target;
  if (volume.backend === 'zfs') {
    // No `zfs rollback`: the dataset stays mounted and its files are replaced (see docs/zfs.md).
    await requireZfsMount(zfsBackendOf(deps, volume), volume, {
      nested: mode === 'rollback' ? 'refuse' : 'allow',
    });
    return;
  }
  let real: string;
  try {
    real = await realpath(volume.path);
  } catch {
    throw new SnapguardError(
      'PRECONDITION_FAILED',
      `The path of volume "${volume.id}" (${volume.path}) does not exist.`,
      'If a recovery was interrupted, run `snapguard doctor`; otherwise fix the path in the configuration.',
    );
  }
  if (mode === 'rollback' && isMountPoint(real)) throw mountPointRefusal(volume, real);
  void deps;
}

async function fingerprintOf(deps: Deps, targets: Target[], signal?: AbortSignal): Promise<string> {
  const parts: string[] = [];
  for (const target of [...targets].sort((a, b) => a.volume.id.localeCompare(b.volume.id))) {
    const owned = await ownedSnapshots(deps, target.volume, signal);
    parts.push(
      `${target.volume.id}|${target.snapshot.name}|${target.snapshot.uuid ?? target.snapshot.id ?? ''}|${owned.map((o) => o.raw.name).join(',')}`,
    );
  }
  const journals = (await readJournals(deps.config.stateDir)).map((j) => j.journal?.recoveryId ?? j.file);
  parts.push(`journals:${journals.join(',')}`);
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

async function safetyName(
  deps: Deps,
  volume: VolumeConfig,
  now: Date,
  signal?: AbortSignal,
): Promise<string> {
  const taken = new Set((await deps.backendFor(volume).list(volume, { signal })).map((raw) => raw.name));
  // A moved-aside volume that was made with `subvolume create` is not a snapshot in btrfs' eyes and
  // may be missing from the listing: check the folder too.
  for (;;) {
    const name = nextFreeName(volume.id, 'pre-recover', undefined, now, taken);
    if (!(await exists(join(volume.snapshotDir, name)))) return name;
    taken.add(name);
  }
}

function describeSteps(mode: 'rollback' | 'files', items: RecoveryPlan['volumes']): string[] {
  const steps: string[] = [];
  for (const item of items) {
    const units = item.services.units;
    const scope = item.services.scope === 'user' ? ' (user scope)' : '';
    if (item.backend === 'zfs') {
      if (mode === 'rollback' && units.length) steps.push(`${item.volume}: stop ${units.join(', ')}${scope}`);
      steps.push(
        `${item.volume}: zfs snapshot of the current state as ${item.safetyBackup} (kept; recover it to undo)`,
      );
      if (mode === 'files' && units.length) steps.push(`${item.volume}: stop ${units.join(', ')}${scope}`);
      steps.push(
        mode === 'rollback'
          ? `${item.volume}: replace every file under ${item.volumePath} with the files of ${item.snapshot} (cp -a; no zfs rollback, nothing destroyed)`
          : `${item.volume}: copy ${item.paths?.length ?? 0} path(s) from ${item.snapshot} over the live ones (cp -a): ${(item.paths ?? []).slice(0, 10).join(', ')}${(item.paths?.length ?? 0) > 10 ? ', ...' : ''}`,
      );
      if (mode === 'files' && item.removeOnly?.length)
        steps.push(
          `${item.volume}: remove ${item.removeOnly.length} top-level entr(ies) absent from the snapshot: ${item.removeOnly.join(', ')}`,
        );
      if (item.newerSnapshotsEffect) steps.push(`${item.volume}: ${item.newerSnapshotsEffect}`);
    } else if (mode === 'files') {
      steps.push(
        `${item.volume}: snapshot the current state read-only as ${item.safetyBackup} (kept; recover it to undo)`,
      );
      if (units.length) steps.push(`${item.volume}: stop ${units.join(', ')}${scope}`);
      steps.push(
        `${item.volume}: copy ${item.paths?.length ?? 0} path(s) from ${item.snapshot} over the live ones (owners, modes, times, xattrs, symlinks kept): ${(item.paths ?? []).slice(0, 10).join(', ')}${(item.paths?.length ?? 0) > 10 ? ', ...' : ''}`,
      );
      if (item.removeOnly?.length)
        steps.push(
          `${item.volume}: remove ${item.removeOnly.length} top-level entr(ies) absent from the snapshot: ${item.removeOnly.join(', ')}`,
        );
    } else {
      if (units.length) steps.push(`${item.volume}: stop ${units.join(', ')}${scope}`);
      steps.push(
        `${item.volume}: move ${item.volumePath} aside as ${item.safetyBackup} (kept read-only; recover it to undo)`,
      );
      steps.push(`${item.volume}: create a writable snapshot of ${item.snapshot} at ${item.volumePath}`);
    }
    if (units.length)
      steps.push(`${item.volume}: start ${units.join(', ')} and check they are active after the settle time`);
    for (const check of item.validate) steps.push(`${item.volume}: validate with \`${check}\``);
  }
  steps.push('record the recovery in backup-history.json');
  return steps;
}

function summaryText(plan: RecoveryPlan): string {
  const lines = [
    `${plan.mode === 'rollback' ? 'Roll back' : 'Restore files of'} ${plan.volumes.map((v) => `${v.volume} to ${v.snapshot}`).join(', ')}${plan.reason ? ` (reason: ${plan.reason})` : ''}.`,
  ];
  for (const item of plan.volumes) {
    const c = item.changes;
    if (c)
      lines.push(
        `${item.volume} changes: ${c.added.count} added, ${c.removed.count} removed, ${c.modified.count} modified, ${c.metadataOnly.count} metadata-only${c.truncated ? ' (lists truncated)' : ''}.`,
      );
  }
  lines.push('Steps:', ...plan.steps.map((step, i) => `${i + 1}. ${step}`));
  lines.push(...plan.warnings.map((w) => `Warning: ${w}`));
  return lines.join('\n');
}

export async function planRecovery(
  deps: Deps,
  input: unknown,
  context: RecoverContext & { withChanges?: boolean } = {},
): Promise<{
  request: ReturnType<typeof RecoverInput.parse>;
  targets: Target[];
  plan: RecoveryPlan;
  fingerprint: string;
  summary: string;
}> {
  const request = parseInput(RecoverInput, input, 'recover');
  const targets = await resolveTargets(deps, request, context.signal);
  for (const target of targets) await checkTarget(deps, target, request.mode);
  const now = deps.clock();
  const volumes: RecoveryPlan['volumes'] = [];
  for (const target of targets) {
    const { volume, snapshot } = target;
    const services = servicesOf(volume);
    let changes;
    if (context.withChanges) {
      const filter = target.paths
        ? (path: string) =>
            [...(target.paths ?? []), ...(target.removeOnly ?? [])].some(
              (p) => path === p || path.startsWith(`${p}/`),
            )
        : undefined;
      changes =
        volume.backend === 'zfs'
          ? await withZfsSnapshot(
              deps,
              volume,
              snapshot.name,
              (root) => walkChangeSummary(volume.path, root, 20, filter),
              context.signal,
            )
          : volume.backend === 'btrfs'
            ? await btrfsChangeSummary(deps.exec, {
                volumePath: volume.path,
                snapshotDir: volume.snapshotDir,
                targetPath: snapshot.path,
                workDir: join(deps.config.stateDir, 'tmp'),
                ...(filter ? { filter } : {}),
                signal: context.signal,
              })
            : await walkChangeSummary(volume.path, snapshot.path, 20, filter);
    }
    const safetyBackup = await safetyName(deps, volume, now, context.signal);
    const zfsPlan =
      volume.backend === 'zfs'
        ? await planZfsRevert(zfsBackendOf(deps, volume), volume, snapshot.name, safetyBackup, {
            signal: context.signal,
            nested: request.mode === 'rollback' ? 'refuse' : 'allow',
          })
        : undefined;
    volumes.push({
      volume: volume.id,
      snapshot: snapshot.name,
      snapshotPath: snapshot.path,
      volumePath: volume.path,
      safetyBackup,
      ...(zfsPlan
        ? {
            backend: 'zfs' as const,
            newerSnapshots: zfsPlan.newerSnapshots.map((s) => ({
              name: s.name,
              ...(s.producer ? { producer: s.producer } : {}),
              effect: s.effect,
            })),
            newerSnapshotsEffect: zfsPlan.newerSnapshotsEffect,
          }
        : {}),
      ...(target.paths ? { paths: target.paths } : {}),
      ...(target.removeOnly?.length ? { removeOnly: target.removeOnly } : {}),
      services: { units: services.units, scope: services.scope },
      validate: (volume.validate ?? []).map((v) => v.command.join(' ')),
      ...(changes ? { changes } : {}),
    });
  }
  const warnings: string[] = [];
  const unfinished = (await readJournals(deps.config.stateDir)).filter((j) =>
    j.journal?.items.some((item) => targets.some((t) => t.volume.id === item.volume)),
  );
  if (unfinished.length)
    warnings.push(
      `An interrupted recovery of this volume is pending (${unfinished.map((j) => j.journal?.recoveryId).join(', ')}); it is finished or undone first.`,
    );
  const plan: RecoveryPlan = {
    mode: request.mode,
    ...(request.operationId ? { operationId: request.operationId } : {}),
    ...(request.reason ? { reason: request.reason } : {}),
    volumes,
    steps: describeSteps(request.mode, volumes),
    warnings,
  };
  return {
    request,
    targets,
    plan,
    fingerprint: await fingerprintOf(deps, targets, context.signal),
    summary: summaryText(plan),
  };
}

// ---- the steps ---------------------------------------------------------------------------

async function step(
  deps: Deps,
  journal: Journal,
  item: JournalItem,
  name: RecoveryStep,
  work: () => Promise<void>,
): Promise<void> {
  if (item.done.includes(name)) return;
  item.current = name;
  await writeJournal(deps.config.stateDir, journal);
  faultPoint('before', name);
  await work();
  faultPoint('after', name);
  item.done.push(name);
  item.current = undefined;
  await writeJournal(deps.config.stateDir, journal);
}

async function restoreInto(deps: Deps, item: JournalItem, signal?: AbortSignal): Promise<void> {
  const source = join(item.snapshotDir, item.target);
  if (item.backend === 'btrfs') {
    await deps.exec('btrfs', ['subvolume', 'snapshot', source, item.path], { signal, timeoutMs: 300_000 });
    return;
  }
  const partial = `${item.path}.snapguard-partial`;
  await rm(partial, { recursive: true, force: true });
  await deps.exec('cp', ['-a', '--reflink=auto', '--no-target-directory', '--', source, partial], {
    signal,
    timeoutMs: 3_600_000,
  });
  await rename(partial, item.path);
}

async function protectSafety(deps: Deps, item: JournalItem): Promise<void> {
  if (item.backend === 'btrfs')
    await deps.exec('btrfs', ['property', 'set', '-ts', safetyPathOf(item), 'ro', 'true'], {
      timeoutMs: 60_000,
    });
}

async function takeSafetySnapshot(
  deps: Deps,
  volume: VolumeConfig,
  item: JournalItem,
  signal?: AbortSignal,
): Promise<void> {
  // Every backend makes a snapshot appear under its name only when complete.
  if (await snapshotThere(deps, item, item.safety)) return;
  await deps.backendFor(volume).create(volume, item.safety, { signal });
}

async function copyPaths(
  deps: Deps,
  item: JournalItem,
  recoveryId: string,
  removeOnly: string[],
  signal?: AbortSignal,
): Promise<void> {
  const staging = join(item.path, `.snapguard-restore-${recoveryId}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(join(staging, 'new'), { recursive: true });
  await mkdir(join(staging, 'old'), { recursive: true });
  const source = join(item.snapshotDir, item.target);
  for (const rel of item.paths) {
    const staged = join(staging, 'new', rel);
    await mkdir(dirname(staged), { recursive: true });
    await deps.exec(
      'cp',
      ['-a', '--reflink=auto', '--no-target-directory', '--', join(source, rel), staged],
      {
        signal,
        timeoutMs: 3_600_000,
      },
    );
    const live = join(item.path, rel);
    if (await exists(live)) {
      await mkdir(dirname(join(staging, 'old', rel)), { recursive: true });
      await rename(live, join(staging, 'old', rel));
    } else {
      await mkdir(dirname(live), { recursive: true });
    }
    await rename(staged, live);
  }
  for (const rel of removeOnly) {
    const live = join(item.path, rel);
    if (await exists(live)) await rename(live, join(staging, 'old', rel));
  }
  // What was there is in the safety snapshot; the staging copy of it is not needed.
  await rm(staging, { recursive: true, force: true });
}

/** The zfs swap step: the whole tree (rollback) or the named paths (files) from the target. */
async function zfsCopy(deps: Deps, journal: Journal, item: JournalItem, signal?: AbortSignal): Promise<void> {
  const volume = volumeOf(deps, item);
  const backend = zfsBackendOf(deps, volume);
  if (journal.mode === 'rollback') {
    await replaceTreeFromSnapshot(backend, deps.exec, volume, item.target, { signal });
    return;
  }
  if (item.paths.length > 0)
    await restoreZfsPaths(backend, deps.exec, volume, item.target, item.paths, item.safety, { signal });
  for (const rel of item.removeOnly ?? []) {
    await deps.exec('rm', ['-rf', '--one-file-system', '--', join(item.path, rel)], { signal });
  }
}

async function recordHistory(
  deps: Deps,
  journal: Journal,
  outcomes: Map<string, 'success' | 'failed' | 'reverted'>,
  checks: ValidationCheck[],
  durationSeconds: number,
  note?: string,
): Promise<void> {
  const multi = journal.items.length > 1;
  // Asked before taking the history lock: for zfs this runs a command.
  const safetyByVolume = new Map<string, { exists: boolean; path: string }>();
  for (const item of journal.items) {
    if (item.backend === 'zfs') {
      const volume = volumeOf(deps, item);
      const shown = await deps.backendFor(volume).show(volume, item.safety);
      safetyByVolume.set(item.volume, {
        exists: shown !== undefined,
        path: shown?.path ?? safetyPathOf(item),
      });
    } else {
      safetyByVolume.set(item.volume, { exists: await exists(safetyPathOf(item)), path: safetyPathOf(item) });
    }
  }
  await deps.history.update(async (history) => {
    for (const item of journal.items) {
      const id = multi ? `${journal.recoveryId}-${item.volume}` : journal.recoveryId;
      const safetyExists = safetyByVolume.get(item.volume)?.exists ?? false;
      if (!history.recoveries.some((entry) => entry.id === id)) {
        const entry: RecoveryEntry = {
          id,
          timestamp: journal.startedAt,
          host: deps.config.host,
          subvolume: item.volume,
          restored_snapshot: item.target,
          mode: journal.mode,
          paths: item.paths,
          reason: journal.reason,
          duration_seconds: durationSeconds,
          outcome: outcomes.get(item.volume) ?? 'failed',
          safety_backup: safetyExists ? item.safety : null,
          operation_id: journal.operationId,
          validation: checks
            .filter((c) => c.volume === item.volume)
            .map(({ check, ok, detail }) => ({ check, ok, ...(detail ? { detail } : {}) })),
          recovery_id: journal.recoveryId,
          ...(note ? { notes: note } : {}),
        };
        history.recoveries.push(entry);
      }
      if (
        safetyExists &&
        !history.snapshots.some((s) => s.subvolume === item.volume && s.snapshot_name === item.safety)
      ) {
        const snap: SnapshotEntry = {
          id: `snap-${randomBytes(6).toString('hex')}`,
          timestamp: journal.startedAt,
          host: deps.config.host,
          subvolume: item.volume,
          type: 'pre-recover',
          operation: null,
          operation_id: journal.operationId,
          snapshot_name: item.safety,
          path: safetyByVolume.get(item.volume)?.path ?? safetyPathOf(item),
          outcome: 'success',
          size_mb: null,
          backend: item.backend,
          read_only: item.backend !== 'dir',
          notes: `state before recovery ${journal.recoveryId} to ${item.target}; recover it to undo`,
        };
        history.snapshots.push(snap);
      }
    }
  });
}

function volumeOf(deps: Deps, item: JournalItem): VolumeConfig {
  return deps.config.volumes[item.volume] ?? requireVolume(deps.config, item.volume);
}

/** Runs (or, after a crash, continues) a journaled recovery. Returns the outcome per volume. */
async function runJournal(
  deps: Deps,
  journal: Journal,
  context: RecoverContext,
): Promise<{
  outcomes: Map<string, 'success' | 'failed' | 'reverted'>;
  checks: ValidationCheck[];
  error?: SnapguardError;
}> {
  const outcomes = new Map<string, 'success' | 'failed' | 'reverted'>();
  const checks: ValidationCheck[] = [];
  const drivers = new Map<string, ServiceDriver | undefined>();
  for (const item of journal.items) drivers.set(item.volume, driverFor(deps, volumeOf(deps, item), context));
  const signal = context.signal;
  const swapSteps: readonly RecoveryStep[] =
    journal.mode === 'rollback'
      ? ['stop-services', 'move-aside', 'restore', 'protect-safety', 'safety-snapshot', 'copy']
      : ['safety-snapshot', 'stop-services', 'copy'];
  // zfs datasets are never swapped: a safety snapshot, then their files are replaced (docs/zfs.md).
  const stepsOf = (item: JournalItem): readonly RecoveryStep[] =>
    item.backend === 'zfs'
      ? ['stop-services', 'safety-snapshot', 'copy']
      : journal.mode === 'rollback'
        ? ['stop-services', 'move-aside', 'restore', 'protect-safety']
        : ['safety-snapshot', 'stop-services', 'copy'];
  try {
    for (const name of swapSteps) {
      for (const item of journal.items) {
        if (!stepsOf(item).includes(name)) continue;
        const volume = volumeOf(deps, item);
        const driver = drivers.get(item.volume);
        await step(deps, journal, item, name, async () => {
          switch (name) {
            case 'stop-services':
              if (driver) await stopUnits(driver, volume, signal);
              break;
            case 'move-aside':
              await mkdir(item.snapshotDir, { recursive: true });
              await rename(item.path, safetyPathOf(item));
              break;
            case 'restore':
              await restoreInto(deps, item, signal);
              break;
            case 'protect-safety':
              await protectSafety(deps, item);
              break;
            case 'safety-snapshot':
              await takeSafetySnapshot(deps, volume, item, signal);
              break;
            case 'copy':
              if (item.backend === 'zfs') await zfsCopy(deps, journal, item, signal);
              else await copyPaths(deps, item, journal.recoveryId, item.removeOnly ?? [], signal);
              break;
            default:
              break;
          }
        });
      }
    }
  } catch (error) {
    // The swap did not complete: put every volume back as it was, then report.
    const failure =
      error instanceof SnapguardError
        ? error
        : new SnapguardError('INTERNAL', (error as Error).message, 'Read the error and retry.', {
            cause: error,
          });
    const notes = await revertJournal(deps, journal, drivers);
    for (const item of journal.items) outcomes.set(item.volume, 'reverted');
    return {
      outcomes,
      checks,
      error: new SnapguardError(
        failure.code,
        `${failure.message} The recovery was undone: ${notes.join('; ')}.`,
        failure.hint,
        { cause: error },
      ),
    };
  }
  for (const item of journal.items) {
    const volume = volumeOf(deps, item);
    const driver = drivers.get(item.volume);
    await step(deps, journal, item, 'start-services', async () => {
      if (driver) checks.push(...(await startUnits(driver, volume, signal)));
    });
  }
  for (const item of journal.items) {
    const volume = volumeOf(deps, item);
    await step(deps, journal, item, 'validate', async () => {
      checks.push(...(await validateVolume(deps, drivers.get(item.volume), volume, signal)));
    });
    outcomes.set(item.volume, checks.some((c) => c.volume === item.volume && !c.ok) ? 'failed' : 'success');
  }
  return { outcomes, checks };
}

/** Puts volumes back after a failed or interrupted swap: the safety snapshot becomes the volume again. */
async function revertJournal(
  deps: Deps,
  journal: Journal,
  drivers?: Map<string, ServiceDriver | undefined>,
): Promise<string[]> {
  const notes: string[] = [];
  for (const item of [...journal.items].reverse()) {
    const safety = safetyPathOf(item);
    if (item.backend === 'zfs') {
      const copyBegan = item.done.includes('copy') || item.current === 'copy';
      if (copyBegan && (await snapshotThere(deps, item, item.safety))) {
        const volume = volumeOf(deps, item);
        await replaceTreeFromSnapshot(zfsBackendOf(deps, volume), deps.exec, volume, item.safety);
        notes.push(`${item.volume}: its files were put back from ${item.safety}, which is kept`);
      } else {
        notes.push(`${item.volume}: nothing had changed`);
      }
    } else if (journal.mode === 'rollback') {
      const pathThere = await exists(item.path);
      const safetyThere = await exists(safety);
      if (safetyThere && !pathThere) {
        if (item.backend === 'btrfs')
          await deps.exec('btrfs', ['property', 'set', '-ts', safety, 'ro', 'false']).catch(() => undefined);
        await rename(safety, item.path);
        notes.push(`${item.volume}: ${item.path} is back as it was`);
      } else if (safetyThere && pathThere) {
        // The swap went through for this volume; a fresh clone of the target holds no data of its own.
        const aside = `${item.path}.snapguard-undone-${journal.recoveryId}`;
        await rename(item.path, aside);
        if (item.backend === 'btrfs') {
          await deps.exec('btrfs', ['property', 'set', '-ts', safety, 'ro', 'false']).catch(() => undefined);
          await rename(safety, item.path);
          await deps.exec('btrfs', ['subvolume', 'delete', aside]).catch(() => undefined);
        } else {
          await rename(safety, item.path);
          await rm(aside, { recursive: true, force: true });
        }
        notes.push(`${item.volume}: the restored copy was removed and ${item.path} is back as it was`);
      } else {
        notes.push(`${item.volume}: nothing had changed`);
      }
      await rm(`${item.path}.snapguard-partial`, { recursive: true, force: true });
    } else {
      await rm(join(item.path, `.snapguard-restore-${journal.recoveryId}`), { recursive: true, force: true });
      notes.push(
        item.done.includes('copy') || item.current === 'copy'
          ? `${item.volume}: the copy was interrupted; the state before it is in ${item.safety}`
          : `${item.volume}: nothing had changed`,
      );
    }
    if (item.done.includes('stop-services') || item.current === 'stop-services') {
      const driver = drivers?.get(item.volume) ?? undefined;
      if (driver) {
        const started = await startUnits(driver, volumeOf(deps, item));
        notes.push(...started.map((c) => `${item.volume}: ${c.check} failed: ${c.detail ?? ''}`));
      }
    }
  }
  return notes;
}

function newRecoveryId(now: Date): string {
  return `rec-${formatTimestamp(now)}-${randomBytes(3).toString('hex')}`;
}

/**
 * `recover`: plan, confirm, then (under the volume locks, with a journal) swap and validate.
 * Unfinished recoveries of the same volumes are resolved first.
 */
export async function recover(
  deps: Deps,
  input: unknown,
  context: RecoverContext = {},
): Promise<RecoverResult> {
  const started = performance.now();
  const raw = parseInput(RecoverInput, input, 'recover');
  const resolved = raw.dryRun ? [] : await resolveUnfinishedRecoveries(deps, { context });
  const needsGate = !raw.dryRun && raw.confirmationToken === undefined && deps.config.confirm !== 'never';
  const planned = await planRecovery(deps, input, {
    ...context,
    withChanges: (raw.dryRun || needsGate) && !context.skipChanges,
  });
  const extra = resolved.length ? { resolved } : {};
  if (raw.dryRun) return { status: 'planned', plan: planned.plan, ...extra };
  if (context.confirm) {
    const answer = await context.confirm({
      plan: planned.plan,
      fingerprint: planned.fingerprint,
      summary: planned.summary,
    });
    if (answer !== true) return { ...answer, ...extra };
  }
  const release = await lockVolumes(
    deps,
    planned.targets.map((t) => t.volume.id),
    `recover ${planned.plan.volumes.map((v) => `${v.volume}<-${v.snapshot}`).join(', ')}`,
    context.signal,
  );
  try {
    const now = deps.clock();
    if ((await fingerprintOf(deps, planned.targets, context.signal)) !== planned.fingerprint) {
      throw new SnapguardError(
        'CONFIRMATION_INVALID',
        'The volume changed while this recovery waited (another recovery or a new snapshot); the confirmed plan no longer applies. Nothing was changed.',
        'Look at the current state (list_snapshots, history) and ask for a fresh plan.',
        { details: { reason: 'state-changed' } },
      );
    }
    const journal: Journal = {
      version: 1,
      recoveryId: newRecoveryId(now),
      mode: planned.request.mode,
      startedAt: now.toISOString(),
      pid: process.pid,
      reason: planned.request.reason ?? null,
      operationId: planned.request.operationId ?? null,
      items: [],
    };
    for (const target of planned.targets) {
      journal.items.push({
        volume: target.volume.id,
        backend: target.volume.backend,
        path: target.volume.path,
        snapshotDir: target.volume.snapshotDir,
        target: target.snapshot.name,
        safety: await safetyName(deps, target.volume, now, context.signal),
        paths: target.paths ?? [],
        ...(target.removeOnly?.length ? { removeOnly: target.removeOnly } : {}),
        units: servicesOf(target.volume).units,
        done: [],
      });
    }
    await writeJournal(deps.config.stateDir, journal);
    const run = await runJournal(deps, journal, context);
    const durationSeconds = Math.round((performance.now() - started) / 10) / 100;
    const first = journal.items[0] as JournalItem;
    await step(deps, journal, first, 'record', () =>
      recordHistory(deps, journal, run.outcomes, run.checks, durationSeconds, run.error?.message),
    );
    await removeJournal(deps.config.stateDir, journal.recoveryId);
    if (run.error) throw run.error;
    const failed = [...run.outcomes.values()].some((o) => o !== 'success');
    const firstFail = run.checks.find((c) => !c.ok);
    return {
      status: failed ? 'failed' : 'recovered',
      recoveryId: journal.recoveryId,
      safetyBackup: journal.items[0]?.safety,
      volumes: journal.items.map((item) => ({
        volume: item.volume,
        snapshot: item.target,
        safetyBackup: item.safety,
        outcome: run.outcomes.get(item.volume) ?? 'failed',
      })),
      durationSeconds,
      validation: run.checks,
      message: failed
        ? `Recovered, but validation failed (${firstFail?.check}: ${firstFail?.detail ?? 'not ok'}). Nothing was deleted: the previous state is kept in ${journal.items.map((i) => i.safety).join(', ')}; recover that snapshot to undo.`
        : `Recovered ${journal.items.map((i) => `${i.volume} to ${i.target}`).join(', ')}; the previous state is kept in ${journal.items.map((i) => i.safety).join(', ')} (recover it to undo).`,
      ...extra,
    };
  } finally {
    await release();
  }
}

// ---- crash recovery ---------------------------------------------------------------------

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Finds journals of interrupted recoveries and brings each to a consistent end: when the current
 * state has been moved into the safety snapshot (or the safety snapshot of a file restore exists),
 * the recovery is completed; otherwise nothing had changed and it is closed as reverted. Either
 * way services are started again and the history says what happened.
 */
export async function resolveUnfinishedRecoveries(
  deps: Deps,
  options: { volumes?: string[]; context?: RecoverContext } = {},
): Promise<ResolvedRecovery[]> {
  const reports: ResolvedRecovery[] = [];
  for (const found of await readJournals(deps.config.stateDir)) {
    const journal = found.journal;
    if (!journal) {
      reports.push({
        recoveryId: found.file,
        volumes: [],
        action: 'unreadable',
        detail: `cannot read ${found.file}: ${found.error}; inspect and remove it by hand`,
      });
      continue;
    }
    const volumes = journal.items.map((i) => i.volume);
    if (options.volumes && !volumes.some((v) => options.volumes?.includes(v))) continue;
    if (journal.pid !== process.pid && pidAlive(journal.pid)) {
      reports.push({
        recoveryId: journal.recoveryId,
        volumes,
        action: 'in-progress',
        detail: `pid ${journal.pid} is still running it`,
      });
      continue;
    }
    let release: (() => Promise<void>) | undefined;
    try {
      release = await lockVolumes(
        deps,
        volumes,
        `doctor: finish ${journal.recoveryId}`,
        options.context?.signal,
      );
    } catch (error) {
      reports.push({
        recoveryId: journal.recoveryId,
        volumes,
        action: 'in-progress',
        detail: (error as Error).message,
      });
      continue;
    }
    try {
      // The lock is held for a recovery's whole run: once we have it, a journal that is still
      // there belongs to a recovery that is not running any more.
      const again = (await readJournals(deps.config.stateDir)).find((j) => j.file === found.file)?.journal;
      if (!again) continue;
      reports.push(await resolveOne(deps, again, options.context ?? {}));
    } finally {
      await release();
    }
  }
  return reports;
}

async function resolveOne(deps: Deps, journal: Journal, context: RecoverContext): Promise<ResolvedRecovery> {
  const started = performance.now();
  const volumes = journal.items.map((i) => i.volume);
  // Did the swap begin for any volume? Look at the filesystem, not only at the journal.
  let swapBegan = false;
  for (const item of journal.items) {
    if (await snapshotThere(deps, item, item.safety)) swapBegan = true;
  }
  const targetsThere = await Promise.all(journal.items.map((item) => snapshotThere(deps, item, item.target)));
  const drivers = new Map<string, ServiceDriver | undefined>();
  for (const item of journal.items) drivers.set(item.volume, driverFor(deps, volumeOf(deps, item), context));
  let action: 'completed' | 'reverted';
  let detail: string;
  let outcomes = new Map<string, 'success' | 'failed' | 'reverted'>();
  let checks: ValidationCheck[] = [];
  if (swapBegan && targetsThere.every(Boolean)) {
    // Re-derive the done steps from the filesystem for the swap, then continue the journal.
    for (const item of journal.items) {
      const safetyThere = await snapshotThere(deps, item, item.safety);
      const pathThere = await exists(item.path);
      if (item.backend === 'zfs') {
        // A zfs copy is redone from the start: it is idempotent, the safety snapshot is reused.
        if (safetyThere && !item.done.includes('safety-snapshot')) item.done.push('safety-snapshot');
        item.done = item.done.filter((s) => s !== 'copy');
      } else if (journal.mode === 'rollback') {
        if (safetyThere && !item.done.includes('move-aside')) item.done.push('move-aside');
        if (safetyThere && pathThere && !item.done.includes('restore')) {
          // A dir-backend copy is renamed into place only when complete, a btrfs snapshot is atomic.
          item.done.push('restore');
        }
        if (!pathThere) item.done = item.done.filter((s) => s !== 'restore' && s !== 'protect-safety');
        await rm(`${item.path}.snapguard-partial`, { recursive: true, force: true });
      } else {
        if (safetyThere && !item.done.includes('safety-snapshot')) item.done.push('safety-snapshot');
      }
      if (!item.done.includes('stop-services') && item.current !== 'stop-services' && item.units.length === 0)
        item.done.push('stop-services');
    }
    const run = await runJournal(deps, journal, context);
    if (run.error) throw run.error;
    outcomes = run.outcomes;
    checks = run.checks;
    action = 'completed';
    detail = `the interrupted ${journal.mode} was completed: ${journal.items.map((i) => `${i.volume} is at ${i.target}, the state before is in ${i.safety}`).join('; ')}`;
  } else {
    const notes = await revertJournal(deps, journal, drivers);
    for (const item of journal.items) outcomes.set(item.volume, 'reverted');
    action = 'reverted';
    detail = `the interrupted ${journal.mode} was undone: ${notes.join('; ')}`;
  }
  const durationSeconds = Math.round((performance.now() - started) / 10) / 100;
  await recordHistory(
    deps,
    journal,
    outcomes,
    checks,
    durationSeconds,
    `interrupted; ${action} by doctor: ${detail}`,
  );
  await removeJournal(deps.config.stateDir, journal.recoveryId);
  deps.logger.warn({ recoveryId: journal.recoveryId, action, volumes }, detail);
  const outcome = [...outcomes.values()].includes('failed')
    ? 'failed'
    : action === 'completed'
      ? 'success'
      : 'reverted';
  return { recoveryId: journal.recoveryId, volumes, action, outcome, detail };
}

/** Leftovers of interrupted previews (temporary read-only snapshots) are removed by doctor. */
export async function cleanPreviewLeftovers(deps: Deps): Promise<string[]> {
  const removed: string[] = [];
  for (const volume of Object.values(deps.config.volumes)) {
    if (volume.backend !== 'btrfs') continue;
    let raws: RawSnapshot[];
    try {
      raws = await deps.backendFor(volume).list(volume);
    } catch {
      continue;
    }
    for (const raw of raws) {
      if (!raw.name.startsWith('.snapguard-preview-')) continue;
      await deps.exec('btrfs', ['subvolume', 'delete', raw.path]).catch(() => undefined);
      removed.push(raw.path);
    }
  }
  return removed;
}
