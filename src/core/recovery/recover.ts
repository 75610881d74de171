import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, realpath, stat, unlink } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file.js';
import { dirname, join } from 'node:path';
import type { RawSnapshot } from '../../backends/types.js';
import { isMountPoint, mountOf, readMounts } from '../../system/mounts.js';
import { requireVolume, type VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError } from '../errors.js';
import { formatTimestamp, nextFreeName, parseSnapshotName } from '../naming.js';
import { processStart } from '../lock.js';
import { lockVolumes, operationEntries, requireOwnedSnapshot } from '../snapshots.js';
import { parseInput } from '../validate.js';
import { readJournals, removeJournal, writeJournal, type Journal, type JournalItem } from './journal.js';
import {
  mountsRefusal,
  namedNestedRefusal,
  nestedLayout,
  nestedSubvolumesOf,
  unplaceable,
  unplaceableRefusal,
} from './nested.js';
import { normaliseRelativePath, resolveRestorePaths, withBytePaths } from './paths.js';
import { RecoverInput, type RecoverResult, type RecoveryPlan } from './schemas.js';
import { servicesOf } from './services.js';
import { backendChangeSummary, walkChangeSummary } from './summary.js';
import { recordHistory, runJournal, step, type RecoverContext } from './engine.js';
import { resolveUnfinishedRecoveries } from './resume.js';
import { recoverBeside } from './beside.js';
import { describeSteps } from './steps.js';
import {
  checkInPlace,
  hasNestedTrees,
  planInPlace,
  recoversInPlace,
  snapshotNames,
  opensSnapshots,
  withSnapshotFiles,
} from './storage.js';

export type { RecoverContext } from './engine.js';
export { cleanPreviewLeftovers, resolveUnfinishedRecoveries } from './resume.js';

interface Target {
  volume: VolumeConfig;
  snapshot: RawSnapshot;
  paths?: string[];
  removeOnly?: string[];
  /** Nested subvolumes under the touched paths: carried into the new tree (rollback) or kept (files). */
  nested?: string[];
  /** Every nested subvolume of the volume, as listed while planning (feeds the state fingerprint). */
  nestedAll?: string[];
  /** Files mode with ".": the whole tree, so the live top-level listing is part of the plan. */
  wholeTree?: boolean;
}

function mountPointRefusal(volume: VolumeConfig, real: string, snapshot: string): SnapguardError {
  const mount = mountOf(real, readMounts());
  const remount =
    'or follow the remount procedure in docs/recovery.md: stop the users of the mount, make a writable snapshot of the target next to it, ' +
    'point the mount (subvol= in /etc/fstab, or `btrfs subvolume set-default` for the root filesystem) at it and remount.';
  return new SnapguardError(
    'PRECONDITION_FAILED',
    `Volume "${volume.id}" cannot be rolled back in place: its path ${volume.path} is a mount point` +
      `${mount ? ` (${mount.fsType} ${mount.source}, subvolume ${mount.root})` : ''}. A mounted path cannot be moved aside ` +
      '(the kernel refuses with EBUSY), and a subvolume created at that path would stay hidden under the mount. Nothing was changed.',
    {
      mcp:
        'Either restore in files mode over the whole tree (mode: files, paths: ["."]; the current state is kept in a pre-recover snapshot first), ' +
        remount,
      cli:
        `Either restore in files mode over the whole tree (\`snapguard recover ${volume.id} ${snapshot} --files .\`; the current state is kept in a pre-recover snapshot first), ` +
        remount,
    },
    { details: { volume: volume.id, path: volume.path } },
  );
}

/** The targets of a whole operation: each volume it snapshotted, rolled back to that snapshot. */
async function operationTargets(
  deps: Deps,
  request: ReturnType<typeof RecoverInput.parse> & { operationId: string },
  signal?: AbortSignal,
): Promise<Target[]> {
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
  // The snapshots the operation made and the ones it reuses (volumes unchanged since them).
  const entries = operationEntries(history, request.operationId).map(({ entry }) => entry);
  if (entries.length === 0) {
    throw new SnapguardError(
      'OPERATION_NOT_FOUND',
      `No snapshots recorded for operation ${request.operationId}.`,
      {
        mcp: 'Use the operationId returned by create_snapshot (the snapguard://history resource lists them).',
        cli: 'Use the operation id printed by `snapguard snapshot create` or `snapguard wrap` (see `snapguard history`).',
      },
    );
  }
  const targets: Target[] = [];
  for (const entry of [...entries].sort((a, b) => a.subvolume.localeCompare(b.subvolume))) {
    const volume = requireVolume(deps.config, entry.subvolume);
    targets.push({
      volume,
      snapshot: await requireOwnedSnapshot(deps, volume, entry.snapshot_name, signal, 'ownership'),
    });
  }
  return targets;
}

/** What a request recovers: a whole operation's volumes, or one volume to one snapshot (files or all). */
async function resolveTargets(
  deps: Deps,
  request: ReturnType<typeof RecoverInput.parse>,
  signal?: AbortSignal,
): Promise<Target[]> {
  if (request.operationId !== undefined) {
    return operationTargets(deps, { ...request, operationId: request.operationId }, signal);
  }
  if (request.volume === undefined || request.snapshot === undefined) {
    throw new SnapguardError('BAD_INPUT', 'recover needs volume and snapshot (or operationId).', {
      mcp: 'Pick a snapshot with list_snapshots and pass its volume and name.',
      cli: 'Pick a snapshot with `snapguard snapshot list VOLUME` and pass the volume and its name (or --operation-id).',
    });
  }
  const volume = requireVolume(deps.config, request.volume);
  const snapshot = await requireOwnedSnapshot(deps, volume, request.snapshot, signal, 'ownership');
  if (request.mode === 'files') {
    const resolved = await withSnapshotFiles(
      deps,
      volume,
      snapshot,
      (root) => resolveRestorePaths(request.paths ?? [], root, volume.path),
      signal,
    );
    return [
      {
        volume,
        snapshot,
        paths: resolved.paths,
        removeOnly: resolved.removeOnly,
        ...((request.paths ?? []).some((p) => normaliseRelativePath(p) === '.') ? { wholeTree: true } : {}),
      },
    ];
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

async function checkTarget(
  deps: Deps,
  target: Target,
  mode: 'rollback' | 'files',
  signal?: AbortSignal,
): Promise<void> {
  const { volume } = target;
  if (recoversInPlace(deps.backendFor(volume))) {
    // The volume is never moved: its storage checks that its files can be replaced where it is.
    await checkInPlace(deps, volume, mode, signal);
    return;
  }
  let real: string;
  try {
    real = await realpath(volume.path);
  } catch {
    throw new SnapguardError(
      'PRECONDITION_FAILED',
      `The path of volume "${volume.id}" (${volume.path}) does not exist.`,
      {
        mcp: 'If a recovery was interrupted, health_check reports it (UNFINISHED_RECOVERY) with how to finish it; otherwise fix the path in the configuration.',
        cli: 'If a recovery was interrupted, run `snapguard doctor`; otherwise fix the path in the configuration.',
      },
    );
  }
  // Checked at use too: a path replaced by a symlink after the configuration was loaded would move
  // the link aside and act on whatever it points at.
  if ((await lstat(volume.path)).isSymbolicLink()) {
    throw new SnapguardError(
      'PRECONDITION_FAILED',
      `The path of volume "${volume.id}" (${volume.path}) is a symlink to ${real}; a recovery would move the link, not the volume. Nothing was changed.`,
      `Write the real path (${real}) in volumes.${volume.id}.path, or put the volume back at ${volume.path}.`,
    );
  }
  if (mode === 'rollback' && isMountPoint(real)) throw mountPointRefusal(volume, real, target.snapshot.name);
  void deps;
}

const within = (path: string, root: string) => root === '.' || path === root || path.startsWith(`${root}/`);

/**
 * Nested subvolumes and mount points under the paths a recovery touches. Mount points are refused;
 * nested subvolumes are carried over (rollback) or kept (files mode), unless the restored tree has
 * other content at their place or the request names one itself: refused, before anything changes.
 */
async function checkNestedLayout(
  deps: Deps,
  target: Target,
  request: ReturnType<typeof RecoverInput.parse>,
  signal?: AbortSignal,
): Promise<void> {
  const { volume } = target;
  // An in-place rollback refuses every filesystem mounted inside the volume (checkInPlace).
  if (request.mode === 'rollback' && recoversInPlace(deps.backendFor(volume))) return;
  const touched =
    request.mode === 'files' ? [...(target.paths ?? []), ...(target.removeOnly ?? [])] : undefined;
  const layout = await nestedLayout(deps, volume, touched, signal);
  target.nestedAll = layout.all;
  if (layout.mounts.length > 0)
    throw mountsRefusal(volume, layout.mounts, request.mode, target.snapshot.name);
  if (request.mode === 'files') {
    const wholeTree = (request.paths ?? []).some((p) => normaliseRelativePath(p) === '.');
    if (!wholeTree) {
      const all = layout.all.filter((rel) => !rel.startsWith('.snapguard-restore-'));
      for (const rel of target.paths ?? []) {
        const hit = all.find((nested) => within(rel, nested));
        if (hit) throw namedNestedRefusal(volume, rel, hit);
      }
    }
  }
  if (layout.nested.length === 0) return;
  const fromDepth = (rel: string) => {
    const root = (touched ?? []).find((r) => within(rel, r));
    return root && root !== '.' ? root.split('/').length - 1 : 0;
  };
  const problems = await unplaceable(target.snapshot.path, layout.nested, fromDepth);
  if (problems.length > 0) throw unplaceableRefusal(volume, problems, target.snapshot.name);
  target.nested = layout.nested;
}

/** What a target's state is identified by: its inode (a folder) or its guid (zfs, asked anew). */
async function targetIdentity(deps: Deps, target: Target, signal?: AbortSignal): Promise<string> {
  const backend = deps.backendFor(target.volume);
  if (backend.openSnapshot) {
    const shown = await backend.show(target.volume, target.snapshot.name, {
      signal,
    });
    return shown ? `guid:${shown.id ?? shown.uuid ?? ''}` : 'missing';
  }
  const info = await lstat(target.snapshot.path).catch(() => undefined);
  return info ? `${info.ino}:${info.ctimeMs}` : 'missing';
}

/**
 * Files mode: the state of the live paths the restore touches (one lstat each, plus the top-level
 * listing for "."), so that a plan confirmed for one state is not carried out on another.
 */
async function touchedState(target: Target): Promise<string> {
  if (!target.paths) return '';
  const parts: string[] = [];
  if (target.wholeTree) {
    const names = await readdir(target.volume.path).catch(() => [] as string[]);
    parts.push(
      `listing:${names
        .filter((n) => !n.startsWith('.snapguard-restore-'))
        .sort()
        .join('/')}`,
    );
  }
  for (const rel of [...target.paths, ...(target.removeOnly ?? [])]) {
    const info = await lstat(join(target.volume.path, rel)).catch(() => undefined);
    parts.push(
      info
        ? `${rel}:${info.ino}:${info.mode}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`
        : `${rel}:missing`,
    );
  }
  return parts.join('|');
}

/**
 * The state a confirmation is bound to. `fresh`: list everything again (the re-check after the user
 * answered); otherwise the plan's own nested-subvolume listing is reused.
 */
async function fingerprintOf(
  deps: Deps,
  targets: Target[],
  signal?: AbortSignal,
  fresh = false,
): Promise<string> {
  const parts: string[] = [];
  for (const target of [...targets].sort((a, b) => a.volume.id.localeCompare(b.volume.id))) {
    parts.push(
      `${target.volume.id}|${target.snapshot.name}|${await targetIdentity(deps, target, signal)}|${(await snapshotNames(deps, target.volume, signal)).join(',')}|${await touchedState(target)}`,
    );
    // A nested subvolume appearing or going away after the plan changes what the recovery moves.
    // The plan's own listing, made moments ago under the same lock, serves; a new one otherwise.
    if (hasNestedTrees(deps.backendFor(target.volume)))
      parts.push(
        `nested:${((fresh ? undefined : target.nestedAll) ?? (await nestedSubvolumesOf(deps, target.volume, { signal }))).join(',')}`,
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
  planned?: string,
): Promise<string> {
  const taken = new Set(await snapshotNames(deps, volume, signal));
  // The name the confirmed plan showed is the one made, unless it was taken in the meantime.
  if (
    planned !== undefined &&
    !taken.has(planned) &&
    parseSnapshotName(volume.id, planned)?.type === 'pre-recover'
  )
    return planned;
  return nextFreeName(volume.id, 'pre-recover', undefined, now, taken);
}

/**
 * The safety snapshot names of a plan that was answered with a confirmation token, kept in stateDir
 * until the token comes back: the confirmed call then makes exactly the names the user saw, even
 * when the clock moved on to another second in between.
 */
function plannedNamesFile(deps: Deps, token: string): string {
  return join(
    deps.config.stateDir,
    'confirm',
    'plans',
    `${createHash('sha256').update(token).digest('hex').slice(0, 32)}.json`,
  );
}

async function rememberPlannedNames(deps: Deps, token: string, plan: RecoveryPlan): Promise<void> {
  const file = plannedNamesFile(deps, token);
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Plans whose token has expired are no longer needed.
  const cutoff = Date.now() - 24 * 3600_000;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info && info.mtimeMs < cutoff) await unlink(join(dir, name)).catch(() => undefined);
  }
  const names = Object.fromEntries(plan.volumes.map((v) => [v.volume, v.safetyBackup]));
  await writeFileAtomic(file, JSON.stringify(names), { mode: 0o600 });
}

async function takePlannedNames(deps: Deps, token: string): Promise<Record<string, string>> {
  const file = plannedNamesFile(deps, token);
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    await unlink(file).catch(() => undefined);
    if (!parsed || typeof parsed !== 'object') return {};
    return Object.fromEntries(
      Object.entries(parsed).filter((pair): pair is [string, string] => typeof pair[1] === 'string'),
    );
  } catch {
    return {};
  }
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

type RecoverRequest = ReturnType<typeof RecoverInput.parse>;
type PlannedVolume = RecoveryPlan['volumes'][number];

/** What a recovery would change in one volume (the plan's change summary), for the paths it touches. */
async function changeSummaryOf(
  deps: Deps,
  target: Target,
  signal?: AbortSignal,
): Promise<PlannedVolume['changes']> {
  const { volume, snapshot } = target;
  const filter = target.paths
    ? (path: string) =>
        [...(target.paths ?? []), ...(target.removeOnly ?? [])].some(
          (p) => path === p || path.startsWith(`${p}/`),
        )
    : undefined;
  // Snapshots the backend opens for reading are compared by walking both trees.
  if (opensSnapshots(deps, volume)) {
    return withSnapshotFiles(
      deps,
      volume,
      snapshot,
      (root) => walkChangeSummary(volume.path, root, 20, filter),
      signal,
    );
  }
  return backendChangeSummary(deps.backendFor(volume), volume, {
    targetPath: snapshot.path,
    workDir: join(deps.config.stateDir, 'tmp'),
    ...(filter ? { filter } : {}),
    signal,
  });
}

/** The plan of one volume: what it is recovered to, its safety snapshot, services, checks and changes. */
async function plannedVolume(
  deps: Deps,
  target: Target,
  request: RecoverRequest,
  now: Date,
  context: RecoverContext & { withChanges?: boolean },
): Promise<PlannedVolume> {
  const { volume, snapshot } = target;
  const services = servicesOf(volume);
  const changes = context.withChanges ? await changeSummaryOf(deps, target, context.signal) : undefined;
  const safetyBackup = await safetyName(deps, volume, now, context.signal);
  const inPlacePlan = recoversInPlace(deps.backendFor(volume))
    ? await planInPlace(deps, volume, snapshot.name, safetyBackup, request.mode, context.signal)
    : undefined;
  return {
    volume: volume.id,
    snapshot: snapshot.name,
    snapshotPath: snapshot.path,
    volumePath: volume.path,
    safetyBackup,
    ...(inPlacePlan
      ? {
          backend: volume.backend,
          newerSnapshots: inPlacePlan.newerSnapshots.map((s) => ({
            name: s.name,
            ...(s.producer ? { producer: s.producer } : {}),
            effect: s.effect,
          })),
          newerSnapshotsEffect: inPlacePlan.newerSnapshotsEffect,
        }
      : {}),
    ...(target.paths ? { paths: target.paths } : {}),
    ...(target.removeOnly?.length ? { removeOnly: target.removeOnly } : {}),
    ...(target.nested?.length ? { nestedSubvolumes: target.nested } : {}),
    services: { units: services.units, scope: services.scope },
    validate: (volume.validate ?? []).map((v) => v.command.join(' ')),
    ...(changes ? { changes } : {}),
  };
}

/** The plan's warning about interrupted recoveries of these volumes, which run first. */
async function pendingWarnings(deps: Deps, targets: Target[]): Promise<string[]> {
  const unfinished = (await readJournals(deps.config.stateDir)).filter((j) =>
    j.journal?.items.some((item) => targets.some((t) => t.volume.id === item.volume)),
  );
  if (unfinished.length === 0) return [];
  return [
    `An interrupted recovery of this volume is pending (${unfinished.map((j) => j.journal?.recoveryId).join(', ')}); it is finished or undone first.`,
  ];
}

export async function planRecovery(
  deps: Deps,
  input: unknown,
  context: RecoverContext & { withChanges?: boolean } = {},
): Promise<{
  request: RecoverRequest;
  targets: Target[];
  plan: RecoveryPlan;
  fingerprint: string;
  summary: string;
}> {
  const request = withBytePaths(parseInput(RecoverInput, input, 'recover'));
  const targets = await resolveTargets(deps, request, context.signal);
  for (const target of targets) {
    await checkTarget(deps, target, request.mode, context.signal);
    await checkNestedLayout(deps, target, request, context.signal);
  }
  const now = deps.clock();
  const volumes: PlannedVolume[] = [];
  for (const target of targets) volumes.push(await plannedVolume(deps, target, request, now, context));
  const plan: RecoveryPlan = {
    mode: request.mode,
    ...(request.operationId ? { operationId: request.operationId } : {}),
    ...(request.reason ? { reason: request.reason } : {}),
    volumes,
    steps: describeSteps(deps, request.mode, volumes),
    warnings: await pendingWarnings(deps, targets),
  };
  return {
    request,
    targets,
    plan,
    fingerprint: await fingerprintOf(deps, targets, context.signal),
    summary: summaryText(plan),
  };
}

/** What a file restore did, e.g. "Restored 1 path (data/f7.bin) from containers-manual-...". */
function describeRestore(journal: Journal): string {
  return journal.items
    .map((item) => {
      const shown = item.paths.slice(0, 10).join(', ') + (item.paths.length > 10 ? ', ...' : '');
      const removed = item.removeOnly?.length
        ? ` and removed ${item.removeOnly.length} entr${item.removeOnly.length === 1 ? 'y' : 'ies'} absent from it (${item.removeOnly.join(', ')})`
        : '';
      return `Restored ${item.paths.length} path${item.paths.length === 1 ? '' : 's'} (${shown}) from ${item.target}${removed}`;
    })
    .join('; ');
}

/** The warning of a recovery whose history entry could not be written. */
function historyWarning(journal: Journal, error: unknown): string {
  return (
    `the recovery could not be recorded in backup-history.json (${(error as Error).message}); ` +
    `the volumes are as reported here and the recovery journal was closed. Free space in contextDir; ` +
    `the safety snapshot${journal.items.length > 1 ? 's' : ''} ${journal.items.map((i) => i.safety).join(', ')} ` +
    "stay on disk and are listed with the volume's snapshots (list_snapshots over MCP, snapguard snapshot list on the command line)."
  );
}

function newRecoveryId(now: Date): string {
  return `rec-${formatTimestamp(now)}-${randomBytes(3).toString('hex')}`;
}

/** The volumes a request touches, known before planning (an unknown id is refused by planning). */
async function volumeIdsOf(deps: Deps, request: RecoverRequest): Promise<string[]> {
  if (request.operationId !== undefined) {
    const { history } = await deps.history.read();
    return operationEntries(history, request.operationId)
      .map(({ entry }) => entry.subvolume)
      .filter((id) => deps.config.volumes[id] !== undefined);
  }
  return request.volume !== undefined && deps.config.volumes[request.volume] ? [request.volume] : [];
}

type Planned = Awaited<ReturnType<typeof planRecovery>>;
type Run = Awaited<ReturnType<typeof runJournal>>;

/**
 * Plans under the volume locks (briefly): a plan never sees a volume in the middle of another
 * recovery's swap. The locks are released while the user decides.
 */
async function planLocked(
  deps: Deps,
  input: unknown,
  raw: RecoverRequest,
  context: RecoverContext & { withChanges: boolean },
): Promise<Planned> {
  const release = await lockVolumes(deps, await volumeIdsOf(deps, raw), 'recover: planning', context.signal);
  try {
    return await planRecovery(deps, input, context);
  } finally {
    await release();
  }
}

/**
 * The names shown in the plan: this call's plan (asked directly, or no gate), or the plan the
 * confirmation token was issued for.
 */
async function plannedSafetyNames(
  deps: Deps,
  raw: RecoverRequest,
  planned: Planned,
): Promise<Record<string, string>> {
  if (raw.confirmationToken !== undefined) return takePlannedNames(deps, raw.confirmationToken);
  return Object.fromEntries(planned.plan.volumes.map((v) => [v.volume, v.safetyBackup]));
}

/** Refuses to act when the volumes are no longer in the state the plan was confirmed for. */
async function requireUnchanged(deps: Deps, planned: Planned, signal?: AbortSignal): Promise<void> {
  if ((await fingerprintOf(deps, planned.targets, signal, true)) === planned.fingerprint) return;
  throw new SnapguardError(
    'CONFIRMATION_INVALID',
    'The volume changed while this recovery waited (another recovery, a new snapshot, or a change to the paths the restore touches); the confirmed plan no longer applies. Nothing was changed.',
    {
      mcp: 'Look at the current state (list_snapshots, history) and ask for a fresh plan.',
      cli: 'Look at the current state (`snapguard snapshot list`, `snapguard history`) and run recover again for a fresh plan.',
    },
    { details: { reason: 'state-changed' } },
  );
}

/** The journal of a confirmed recovery, one item per volume, with the safety names it makes. */
async function newJournal(
  deps: Deps,
  planned: Planned,
  plannedNames: Record<string, string>,
  now: Date,
  signal?: AbortSignal,
): Promise<Journal> {
  const journal: Journal = {
    version: 1,
    recoveryId: newRecoveryId(now),
    mode: planned.request.mode,
    startedAt: now.toISOString(),
    pid: process.pid,
    procStart: processStart(process.pid),
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
      safety: await safetyName(deps, target.volume, now, signal, plannedNames[target.volume.id]),
      paths: target.paths ?? [],
      ...(target.removeOnly?.length ? { removeOnly: target.removeOnly } : {}),
      units: servicesOf(target.volume).units,
      done: [],
    });
  }
  return journal;
}

/**
 * Records the run in the history. The volumes are in their final state either way: a history that
 * cannot be written (a full contextDir) is returned as a warning, and the journal, which only guards
 * the swap, is closed.
 */
async function recordRun(deps: Deps, journal: Journal, run: Run, durationSeconds: number): Promise<string[]> {
  const first = journal.items[0] as JournalItem;
  try {
    await step(deps, journal, first, 'record', () =>
      recordHistory(deps, journal, run.outcomes, run.checks, durationSeconds, run.error?.message),
    );
    return [];
  } catch (error) {
    deps.logger.error(
      {
        recoveryId: journal.recoveryId,
        outcomes: Object.fromEntries(run.outcomes),
        error: (error as Error).message,
      },
      'the recovery could not be recorded in the history',
    );
    return [historyWarning(journal, error)];
  }
}

/** The sentence a finished recovery is reported with. */
function resultMessage(journal: Journal, run: Run, failed: boolean): string {
  const safeties = journal.items.map((i) => i.safety).join(', ');
  if (failed) {
    const firstFail = run.checks.find((c) => !c.ok);
    return `${journal.mode === 'files' ? describeRestore(journal) : 'Recovered'}, but validation failed (${firstFail?.check}: ${firstFail?.detail ?? 'not ok'}). Nothing was deleted: the previous state is kept in ${safeties}; recover that snapshot to undo.`;
  }
  return journal.mode === 'files'
    ? `${describeRestore(journal)}; the replaced state is kept in ${safeties} (recover it to undo).`
    : `Recovered ${journal.items.map((i) => `${i.volume} to ${i.target}`).join(', ')}; the previous state is kept in ${safeties} (recover it to undo).`;
}

/** What `recover` returns once the journal ran to its end. */
function resultOf(journal: Journal, run: Run, durationSeconds: number, warnings: string[]): RecoverResult {
  const failed = [...run.outcomes.values()].some((o) => o !== 'success');
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
    message: [resultMessage(journal, run, failed), ...warnings.map((w) => `Warning: ${w}`)].join(' '),
    ...(warnings.length ? { warnings } : {}),
  };
}

/**
 * The confirmed recovery, under the volume locks: the state is checked against the plan, then the
 * journal is written, run and recorded, and closed.
 */
async function runConfirmed(
  deps: Deps,
  planned: Planned,
  plannedNames: Record<string, string>,
  context: RecoverContext,
  started: number,
): Promise<RecoverResult> {
  const release = await lockVolumes(
    deps,
    planned.targets.map((t) => t.volume.id),
    `recover ${planned.plan.volumes.map((v) => `${v.volume}<-${v.snapshot}`).join(', ')}`,
    context.signal,
  );
  try {
    const now = deps.clock();
    await requireUnchanged(deps, planned, context.signal);
    const journal = await newJournal(deps, planned, plannedNames, now, context.signal);
    await writeJournal(deps.config.stateDir, journal, { first: true });
    const run = await runJournal(deps, journal, context);
    const durationSeconds = Math.round((performance.now() - started) / 10) / 100;
    const warnings = await recordRun(deps, journal, run, durationSeconds);
    await removeJournal(deps.config.stateDir, journal.recoveryId);
    if (run.error) {
      if (warnings.length) run.error.message += ` Warning: ${warnings.join(' ')}`;
      throw run.error;
    }
    return resultOf(journal, run, durationSeconds, warnings);
  } finally {
    await release();
  }
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
  // Only new names are written: no services, no safety snapshot, no confirmation.
  if (raw.destination === 'beside') return recoverBeside(deps, raw, context);
  const resolved = raw.dryRun ? [] : await resolveUnfinishedRecoveries(deps, { context });
  const extra = resolved.length ? { resolved } : {};
  const needsGate = !raw.dryRun && raw.confirmationToken === undefined && deps.config.confirm !== 'never';
  const planned = await planLocked(deps, input, raw, {
    ...context,
    withChanges: (raw.dryRun || needsGate) && !context.skipChanges,
  });
  if (raw.dryRun) return { status: 'planned', plan: planned.plan, ...extra };
  if (context.confirm) {
    const answer = await context.confirm({
      plan: planned.plan,
      fingerprint: planned.fingerprint,
      summary: planned.summary,
    });
    if (answer !== true) {
      if (answer.status === 'confirmation_required' && answer.confirmationToken)
        await rememberPlannedNames(deps, answer.confirmationToken, planned.plan).catch(() => undefined);
      return { ...answer, ...extra };
    }
  }
  const plannedNames = await plannedSafetyNames(deps, raw, planned);
  return { ...(await runConfirmed(deps, planned, plannedNames, context, started)), ...extra };
}
