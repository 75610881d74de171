import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, realpath, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { RawSnapshot } from '../../backends/types.js';
import { createSystemdDriver } from '../../system/systemd.js';
import { isMountPoint, mountOf, readMounts } from '../../system/mounts.js';
import { requireVolume, type VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError } from '../errors.js';
import type { RecoveryEntry, SnapshotEntry } from '../history/schema.js';
import { formatTimestamp, nextFreeName } from '../naming.js';
import { lockVolumes, requireOwnedSnapshot } from '../snapshots.js';
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
  /** Called before each step (MCP progress notifications). */
  onProgress?: (message: string) => void;
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
    const resolved = await resolveRestorePaths(request.paths ?? [], snapshot.path, volume.path);
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
    throw new SnapguardError(
      'NOT_SUPPORTED',
      `Recovery of zfs volume "${volume.id}" is not available in this build.`,
      'Use `zfs rollback` by hand, or restore files from the .zfs/snapshot folder.',
    );
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

/** Names in the volume's snapshot folder (one readdir, no process): what a plan depends on. */
async function folderNames(volume: VolumeConfig): Promise<string[]> {
  try {
    return (await readdir(volume.snapshotDir)).filter((name) => !name.startsWith('.')).sort();
  } catch {
    return [];
  }
}

async function fingerprintOf(deps: Deps, targets: Target[]): Promise<string> {
  const parts: string[] = [];
  for (const target of [...targets].sort((a, b) => a.volume.id.localeCompare(b.volume.id))) {
    const info = await lstat(target.snapshot.path).catch(() => undefined);
    parts.push(
      `${target.volume.id}|${target.snapshot.name}|${info ? `${info.ino}:${info.ctimeMs}` : 'missing'}|${(await folderNames(target.volume)).join(',')}`,
    );
  }
  const journals = (await readJournals(deps.config.stateDir)).map((j) => j.journal?.recoveryId ?? j.file);
  parts.push(`journals:${journals.join(',')}`);
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

async function safetyName(volume: VolumeConfig, now: Date): Promise<string> {
  const taken = new Set(await folderNames(volume));
  return nextFreeName(volume.id, 'pre-recover', undefined, now, taken);
}

function describeSteps(mode: 'rollback' | 'files', items: RecoveryPlan['volumes']): string[] {
  const steps: string[] = [];
  for (const item of items) {
    const units = item.services.units;
    const scope = item.services.scope === 'user' ? ' (user scope)' : '';
    if (mode === 'files') {
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
        volume.backend === 'btrfs'
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
    volumes.push({
      volume: volume.id,
      snapshot: snapshot.name,
      snapshotPath: snapshot.path,
      volumePath: volume.path,
      safetyBackup: await safetyName(volume, now),
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
    fingerprint: await fingerprintOf(deps, targets),
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
  options: { noop?: boolean } = {},
): Promise<void> {
  if (item.done.includes(name)) return;
  item.current = name;
  // A step with nothing to do (no units, no checks) changes nothing a crash could leave half done.
  if (!options.noop) await writeJournal(deps.config.stateDir, journal);
  faultPoint('before', name);
  await work();
  faultPoint('after', name);
  // The completion is written with the next step's intent (or when the journal is removed): after a
  // crash the filesystem, not this flag, tells whether a step happened, and every step is safe to redo.
  item.done.push(name);
  item.current = undefined;
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
  // Both backends make a snapshot appear under its name only when complete.
  if (await exists(safetyPathOf(item))) return;
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

async function recordHistory(
  deps: Deps,
  journal: Journal,
  outcomes: Map<string, 'success' | 'failed' | 'reverted'>,
  checks: ValidationCheck[],
  durationSeconds: number,
  note?: string,
): Promise<void> {
  const multi = journal.items.length > 1;
  await deps.history.update(async (history) => {
    for (const item of journal.items) {
      const id = multi ? `${journal.recoveryId}-${item.volume}` : journal.recoveryId;
      const safetyExists = await exists(safetyPathOf(item));
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
          path: safetyPathOf(item),
          outcome: 'success',
          size_mb: null,
          backend: item.backend,
          read_only: item.backend === 'btrfs',
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
      ? ['stop-services', 'move-aside', 'restore', 'protect-safety']
      : ['safety-snapshot', 'stop-services', 'copy'];
  try {
    for (const name of swapSteps) {
      for (const item of journal.items) {
        const volume = volumeOf(deps, item);
        const driver = drivers.get(item.volume);
        if (!item.done.includes(name)) context.onProgress?.(`${item.volume}: ${name}`);
        await step(
          deps,
          journal,
          item,
          name,
          async () => {
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
                await copyPaths(deps, item, journal.recoveryId, item.removeOnly ?? [], signal);
                break;
              default:
                break;
            }
          },
          { noop: name === 'stop-services' && !driver },
        );
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
    await step(
      deps,
      journal,
      item,
      'start-services',
      async () => {
        if (driver) checks.push(...(await startUnits(driver, volume, signal)));
      },
      { noop: !driver },
    );
  }
  for (const item of journal.items) {
    const volume = volumeOf(deps, item);
    await step(
      deps,
      journal,
      item,
      'validate',
      async () => {
        checks.push(...(await validateVolume(deps, drivers.get(item.volume), volume, signal)));
      },
      { noop: !drivers.get(item.volume) && (volume.validate ?? []).length === 0 },
    );
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
    if (journal.mode === 'rollback') {
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
        if (!(await exists(join(item.snapshotDir, item.target)))) {
          // The target is gone, so this copy is the only one of it: keep it next to the volume.
          if (item.backend === 'btrfs')
            await deps
              .exec('btrfs', ['property', 'set', '-ts', safety, 'ro', 'false'])
              .catch(() => undefined);
          await rename(safety, item.path);
          notes.push(`${item.volume}: ${item.path} is back as it was; the restored copy is kept at ${aside}`);
        } else if (item.backend === 'btrfs') {
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
/** The volumes a request touches, known before planning (an unknown id is refused by planning). */
async function volumeIdsOf(deps: Deps, request: ReturnType<typeof RecoverInput.parse>): Promise<string[]> {
  if (request.operationId !== undefined) {
    const { history } = await deps.history.read();
    return history.snapshots
      .filter((entry) => entry.operation_id === request.operationId)
      .map((entry) => entry.subvolume)
      .filter((id) => deps.config.volumes[id] !== undefined);
  }
  return request.volume !== undefined && deps.config.volumes[request.volume] ? [request.volume] : [];
}

export async function recover(
  deps: Deps,
  input: unknown,
  context: RecoverContext = {},
): Promise<RecoverResult> {
  const started = performance.now();
  const raw = parseInput(RecoverInput, input, 'recover');
  const resolved = raw.dryRun ? [] : await resolveUnfinishedRecoveries(deps, { context });
  const needsGate = !raw.dryRun && raw.confirmationToken === undefined && deps.config.confirm !== 'never';
  // Plan under the volume locks (briefly): a plan never sees a volume in the middle of another
  // recovery's swap. The locks are released while the user decides.
  const releasePlan = await lockVolumes(
    deps,
    await volumeIdsOf(deps, raw),
    'recover: planning',
    context.signal,
  );
  let planned: Awaited<ReturnType<typeof planRecovery>>;
  try {
    planned = await planRecovery(deps, input, {
      ...context,
      withChanges: (raw.dryRun || needsGate) && !context.skipChanges,
    });
  } finally {
    await releasePlan();
  }
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
    if ((await fingerprintOf(deps, planned.targets)) !== planned.fingerprint) {
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
        safety: await safetyName(target.volume, now),
        paths: target.paths ?? [],
        ...(target.removeOnly?.length ? { removeOnly: target.removeOnly } : {}),
        units: servicesOf(target.volume).units,
        done: [],
      });
    }
    await writeJournal(deps.config.stateDir, journal, { first: true });
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
    if (await exists(safetyPathOf(item))) swapBegan = true;
  }
  const targetsThere = await Promise.all(
    journal.items.map((item) => exists(join(item.snapshotDir, item.target))),
  );
  const drivers = new Map<string, ServiceDriver | undefined>();
  for (const item of journal.items) drivers.set(item.volume, driverFor(deps, volumeOf(deps, item), context));
  let action: 'completed' | 'reverted';
  let detail: string;
  let outcomes = new Map<string, 'success' | 'failed' | 'reverted'>();
  let checks: ValidationCheck[] = [];
  if (swapBegan && targetsThere.every(Boolean)) {
    // Re-derive the done steps from the filesystem for the swap, then continue the journal.
    for (const item of journal.items) {
      const safetyThere = await exists(safetyPathOf(item));
      const pathThere = await exists(item.path);
      if (journal.mode === 'rollback') {
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
