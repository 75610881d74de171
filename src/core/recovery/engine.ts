import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createSystemdDriver } from '../../system/systemd.js';
import type { VolumeConfig } from '../config.js';
import type { SnapshotBackend } from '../../backends/types.js';
import type { Deps } from '../deps.js';
import { SnapguardError, hintOf, toSnapguardError } from '../errors.js';
import type { RecoveryEntry, SnapshotEntry } from '../history/schema.js';
import { faultPoint, writeJournal, type Journal, type JournalItem, type RecoveryStep } from './journal.js';
import { exists, recheckRestorePath } from './paths.js';
import { carryNested, nestedSubvolumesOf, placeSubvolume, rescueStaged } from './nested.js';
import type { RecoverResult, RecoveryPlan, ValidationCheck } from './schemas.js';
import {
  servicesOf,
  startUnits,
  stopUnits,
  validateVolume,
  type ServiceDriver,
  type ServiceDriverFactory,
} from './services.js';
import { recoveryKind, swapOrder, swapStepsOf } from './steps.js';
import {
  copyInPlace,
  hasNestedTrees,
  putBackInPlace,
  recoversInPlace,
  snapshotThere,
  volumeOf,
} from './storage.js';

// The steps of a recovery and the journal-driven runner shared by `recover` and the crash
// recovery (resume.ts): every step is announced in the journal before it is taken.

/** Options of one recovery call. */
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

export function driverFor(
  deps: Deps,
  volume: VolumeConfig,
  context: RecoverContext,
): ServiceDriver | undefined {
  const services = servicesOf(volume);
  if (services.units.length === 0) return undefined;
  const factory: ServiceDriverFactory =
    context.services ?? ((target) => createSystemdDriver(deps.exec, target));
  return factory({ systemctl: services.systemctl, scope: services.scope });
}

export const safetyPathOf = (item: { snapshotDir: string; safety: string }) =>
  join(item.snapshotDir, item.safety);

export async function step(
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

/** The backend of a journal item's volume (the journal check keeps both kinds equal). */
export const backendOfItem = (deps: Deps, item: JournalItem): SnapshotBackend =>
  deps.backendFor(volumeOf(deps, item));

export async function restoreInto(deps: Deps, item: JournalItem, signal?: AbortSignal): Promise<void> {
  const volume = volumeOf(deps, item);
  const backend = deps.backendFor(volume);
  if (!backend.restoreTree) {
    throw new SnapguardError(
      'INTERNAL',
      `The ${backend.kind} backend cannot put a snapshot's tree in place.`,
      'Report this.',
    );
  }
  await backend.restoreTree({ ...volume, snapshotDir: item.snapshotDir }, item.target, item.path, { signal });
}

/**
 * Rollback: nested subvolumes of the old tree (now the safety snapshot, still writable) move into
 * the new live tree at the same place. A snapshot does not contain them, so without this their
 * files would be left in the read-only safety snapshot. Redoing it moves what is still there.
 */
export async function carryIntoNewTree(
  deps: Deps,
  volume: VolumeConfig,
  item: JournalItem,
  tag: string,
  signal?: AbortSignal,
  listed?: readonly string[],
): Promise<void> {
  const safety = safetyPathOf(item);
  const carry = () => carryNested(deps, volume, safety, item.path, tag, { signal, listed });
  try {
    await carry();
  } catch (error) {
    const backend = deps.backendFor(volume);
    if ((error as NodeJS.ErrnoException).code !== 'EROFS' || !backend.setReadOnly) throw error;
    // Made read-only by an earlier run of this recovery: protect-safety sets it again next.
    await backend.setReadOnly(safety, false);
    await carry();
  }
}

export async function protectSafety(deps: Deps, item: JournalItem): Promise<void> {
  await backendOfItem(deps, item).setReadOnly?.(safetyPathOf(item), true);
}

export async function takeSafetySnapshot(
  deps: Deps,
  volume: VolumeConfig,
  item: JournalItem,
  signal?: AbortSignal,
): Promise<void> {
  // Every backend makes a snapshot appear under its name only when complete.
  if (await snapshotThere(deps, item, item.safety)) return;
  await deps.backendFor(volume).create(volume, item.safety, { signal });
}

export async function copyPaths(
  deps: Deps,
  item: JournalItem,
  recoveryId: string,
  removeOnly: string[],
  signal?: AbortSignal,
  volume: VolumeConfig = volumeOf(deps, item),
): Promise<void> {
  const staging = join(item.path, `.snapguard-restore-${recoveryId}`);
  const nestedTrees = hasNestedTrees(deps.backendFor(volume));
  // After a crash a nested subvolume may sit in the staging folder: it goes back before the redo.
  if (nestedTrees) await rescueStaged(deps, volume, item.path, basename(staging), recoveryId, signal);
  await rm(staging, { recursive: true, force: true });
  await mkdir(join(staging, 'new'), { recursive: true });
  await mkdir(join(staging, 'old'), { recursive: true });
  const source = join(item.snapshotDir, item.target);
  for (const rel of item.paths) {
    signal?.throwIfAborted();
    await recheckRestorePath(source, item.path, rel);
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
    await recheckRestorePath(source, item.path, rel);
    const live = join(item.path, rel);
    if (await exists(live)) await rename(live, join(staging, 'old', rel));
  }
  faultPoint('during', 'copy');
  // Nested subvolumes are not in any snapshot: they go back to their place in the restored tree.
  if (nestedTrees) await rescueStaged(deps, volume, item.path, basename(staging), recoveryId, signal);
  // What was there is in the safety snapshot; the staging copy of it is not needed.
  await rm(staging, { recursive: true, force: true });
}

/**
 * Undoes an interrupted files-mode copy path by path: a replaced path gets its previous version
 * back from the staging folder, a path the copy created (absent from the safety snapshot) is
 * removed. The staging folder is removed only when every path is back; otherwise it keeps what
 * could not be put back.
 */
/**
 * Before a files-mode copy is undone: a nested subvolume lying inside a restored path whose previous
 * version waits in the staging folder is moved into that previous version, at the same place.
 */
async function keepNestedForUndo(
  deps: Deps,
  volume: VolumeConfig,
  item: JournalItem,
  recoveryId: string,
): Promise<string[]> {
  const stagingName = `.snapguard-restore-${recoveryId}`;
  const old = join(item.path, stagingName, 'old');
  if (!(await exists(old))) return [];
  const notes: string[] = [];
  const touched = [...item.paths, ...(item.removeOnly ?? [])];
  for (const rel of await nestedSubvolumesOf(deps, volume, { path: item.path })) {
    if (rel === stagingName || rel.startsWith(`${stagingName}/`)) continue;
    const owner = touched.find((path) => path === '.' || rel.startsWith(`${path}/`));
    if (owner === undefined || !(await exists(owner === '.' ? old : join(old, owner)))) continue;
    const placed = await placeSubvolume(join(item.path, rel), old, rel, recoveryId);
    if (placed !== join(old, rel)) notes.push(`nested subvolume ${rel} was kept at ${placed}`);
  }
  return notes;
}

export async function undoCopy(
  item: JournalItem,
  recoveryId: string,
): Promise<{ restored: string[]; untouched: string[]; notRestored: { path: string; error: string }[] }> {
  const staging = join(item.path, `.snapguard-restore-${recoveryId}`);
  const safety = safetyPathOf(item);
  const safetyThere = await exists(safety);
  const restored: string[] = [];
  const untouched: string[] = [];
  const notRestored: { path: string; error: string }[] = [];
  for (const rel of [...item.paths, ...(item.removeOnly ?? [])]) {
    const old = join(staging, 'old', rel);
    const live = join(item.path, rel);
    try {
      if (await exists(old)) {
        await rm(live, { recursive: true, force: true });
        await rename(old, live);
        restored.push(rel);
      } else if (
        item.paths.includes(rel) &&
        safetyThere &&
        !(await exists(join(safety, rel))) &&
        (await exists(live))
      ) {
        await rm(live, { recursive: true, force: true });
        restored.push(rel);
      } else {
        untouched.push(rel);
      }
    } catch (error) {
      notRestored.push({ path: rel, error: (error as Error).message });
    }
  }
  if (notRestored.length === 0) await rm(staging, { recursive: true, force: true });
  return { restored, untouched, notRestored };
}

/**
 * Whether each volume's safety snapshot exists, where, and whether it is read-only, asked before the
 * history lock is taken (for some backends this runs a command).
 */
async function safetyStates(
  deps: Deps,
  journal: Journal,
): Promise<Map<string, { exists: boolean; path: string; readOnly: boolean }>> {
  const safetyByVolume = new Map<string, { exists: boolean; path: string; readOnly: boolean }>();
  for (const item of journal.items) {
    const volume = volumeOf(deps, item);
    const backend = deps.backendFor(volume);
    const readOnly = backend.writableSnapshots !== true;
    // A snapshot without a plain folder on every system (zfs) is asked of its backend.
    if (backend.openSnapshot) {
      const shown = await backend.show(volume, item.safety);
      safetyByVolume.set(item.volume, {
        exists: shown !== undefined,
        path: shown?.path ?? safetyPathOf(item),
        readOnly,
      });
    } else {
      safetyByVolume.set(item.volume, {
        exists: await exists(safetyPathOf(item)),
        path: safetyPathOf(item),
        readOnly,
      });
    }
  }
  return safetyByVolume;
}

export async function recordHistory(
  deps: Deps,
  journal: Journal,
  outcomes: Map<string, 'success' | 'failed' | 'reverted'>,
  checks: ValidationCheck[],
  durationSeconds: number,
  note?: string,
): Promise<void> {
  const multi = journal.items.length > 1;
  const safetyByVolume = await safetyStates(deps, journal);
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
          read_only: safetyByVolume.get(item.volume)?.readOnly ?? true,
          notes: `state before recovery ${journal.recoveryId} to ${item.target}; recover it to undo`,
        };
        history.snapshots.push(snap);
      }
    }
  });
}

type Outcome = 'success' | 'failed' | 'reverted';

/** What the steps of one run of a journal share. */
interface JournalRun {
  deps: Deps;
  journal: Journal;
  context: RecoverContext;
  drivers: Map<string, ServiceDriver | undefined>;
  /**
   * Rollback: the old tree's nested subvolumes, listed while the new tree is being made (the old
   * tree already lies at the safety name then); carry-nested moves them right after.
   */
  oldTreeNested: Map<string, Promise<string[] | undefined>>;
}

/** What one swap step does to one volume. */
async function swapStep(run: JournalRun, item: JournalItem, name: RecoveryStep): Promise<void> {
  const { deps, journal, context } = run;
  const signal = context.signal;
  const volume = volumeOf(deps, item);
  const driver = run.drivers.get(item.volume);
  switch (name) {
    case 'stop-services':
      if (driver) await stopUnits(driver, volume, signal);
      break;
    case 'move-aside':
      await mkdir(item.snapshotDir, { recursive: true });
      await rename(item.path, safetyPathOf(item));
      break;
    case 'restore':
      if (hasNestedTrees(deps.backendFor(volume)) && !item.done.includes('carry-nested'))
        run.oldTreeNested.set(
          item.volume,
          nestedSubvolumesOf(deps, volume, { path: safetyPathOf(item), signal }).catch(() => undefined),
        );
      await restoreInto(deps, item, signal);
      break;
    case 'carry-nested':
      await carryIntoNewTree(
        deps,
        volume,
        item,
        journal.recoveryId,
        signal,
        await run.oldTreeNested.get(item.volume),
      );
      break;
    case 'protect-safety':
      await protectSafety(deps, item);
      break;
    case 'safety-snapshot':
      await takeSafetySnapshot(deps, volume, item, signal);
      break;
    case 'copy':
      if (recoversInPlace(deps.backendFor(volume))) await copyInPlace(deps, journal, item, signal);
      else await copyPaths(deps, item, journal.recoveryId, item.removeOnly ?? [], signal, volume);
      break;
    default:
      break;
  }
}

/** A step with nothing to do for this volume (no units to stop, no nested trees to carry). */
const swapStepIsNoop = (run: JournalRun, item: JournalItem, name: RecoveryStep): boolean =>
  (name === 'stop-services' && !run.drivers.get(item.volume)) ||
  (name === 'carry-nested' && !hasNestedTrees(backendOfItem(run.deps, item)));

/**
 * The swap: each step for every volume that takes it, before the next step. Which steps each
 * volume takes, and in what order, comes from the step table the plan is told from.
 */
async function runSwapSteps(run: JournalRun): Promise<void> {
  const { deps, journal } = run;
  const stepsOf = (item: JournalItem) => swapStepsOf(recoveryKind(backendOfItem(deps, item), journal.mode));
  for (const name of swapOrder(journal.mode)) {
    for (const item of journal.items) {
      if (!stepsOf(item).includes(name)) continue;
      if (!item.done.includes(name)) run.context.onProgress?.(`${item.volume}: ${name}`);
      await step(deps, journal, item, name, () => swapStep(run, item, name), {
        noop: swapStepIsNoop(run, item, name),
      });
    }
  }
}

/** The error a failed swap is reported with: snapguard's own, a cancel, or anything else as INTERNAL. */
function swapFailure(error: unknown): SnapguardError {
  if (error instanceof SnapguardError) return error;
  if ((error as Error)?.name === 'AbortError') return toSnapguardError(error);
  return new SnapguardError('INTERNAL', (error as Error).message, 'Read the error and retry.', {
    cause: error,
  });
}

/** The swap did not complete: every volume is put back as it was, and the error says how far that went. */
async function undoFailedSwap(
  run: JournalRun,
  error: unknown,
): Promise<{ outcomes: Map<string, Outcome>; checks: ValidationCheck[]; error: SnapguardError }> {
  const failure = swapFailure(error);
  const partly = new Set<string>();
  const notes = await revertJournal(run.deps, run.journal, run.drivers, partly);
  const outcomes = new Map<string, Outcome>();
  for (const item of run.journal.items)
    outcomes.set(item.volume, partly.has(item.volume) ? 'failed' : 'reverted');
  return {
    outcomes,
    checks: [],
    error: new SnapguardError(
      failure.code,
      `${failure.message} ${partly.size ? 'The recovery was only partly undone' : 'The recovery was undone'}: ${notes.join('; ')}.`,
      hintOf(failure),
      { cause: error },
    ),
  };
}

/** After the swap of every volume: their services start again, then each is validated. */
async function startAndValidate(
  run: JournalRun,
): Promise<{ outcomes: Map<string, Outcome>; checks: ValidationCheck[] }> {
  const { deps, journal, drivers } = run;
  const signal = run.context.signal;
  const outcomes = new Map<string, Outcome>();
  const checks: ValidationCheck[] = [];
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

/** Runs (or, after a crash, continues) a journaled recovery. Returns the outcome per volume. */
export async function runJournal(
  deps: Deps,
  journal: Journal,
  context: RecoverContext,
): Promise<{
  outcomes: Map<string, Outcome>;
  checks: ValidationCheck[];
  error?: SnapguardError;
}> {
  const drivers = new Map<string, ServiceDriver | undefined>();
  for (const item of journal.items) drivers.set(item.volume, driverFor(deps, volumeOf(deps, item), context));
  const run: JournalRun = { deps, journal, context, drivers, oldTreeNested: new Map() };
  try {
    await runSwapSteps(run);
  } catch (error) {
    return undoFailedSwap(run, error);
  }
  return startAndValidate(run);
}

/** In place: the files are put back from the safety snapshot once the copy began; before that nothing changed. */
async function revertInPlace(deps: Deps, item: JournalItem): Promise<string[]> {
  const copyBegan = item.done.includes('copy') || item.current === 'copy';
  if (copyBegan && (await snapshotThere(deps, item, item.safety))) {
    await putBackInPlace(deps, item);
    return [`${item.volume}: its files were put back from ${item.safety}, which is kept`];
  }
  return [`${item.volume}: nothing had changed`];
}

/**
 * Rollback where the swap went through for this volume: a fresh clone of the target holds no data
 * of its own except nested subvolumes carried into it, which go back into the old tree first; then
 * the old tree takes the volume's place again.
 */
async function swapBack(
  deps: Deps,
  journal: Journal,
  item: JournalItem,
  makeWritable: () => Promise<void>,
): Promise<string[]> {
  const notes: string[] = [];
  const safety = safetyPathOf(item);
  const backend = backendOfItem(deps, item);
  await makeWritable();
  if (hasNestedTrees(backend)) {
    notes.push(
      ...(await carryNested(deps, volumeOf(deps, item), item.path, safety, journal.recoveryId)).map(
        (note) => `${item.volume}: ${note}`,
      ),
    );
  }
  const aside = `${item.path}.snapguard-undone-${journal.recoveryId}`;
  await rename(item.path, aside);
  if (!(await exists(join(item.snapshotDir, item.target)))) {
    // The target is gone, so this copy is the only one of it: keep it next to the volume.
    await makeWritable();
    await rename(safety, item.path);
    notes.push(`${item.volume}: ${item.path} is back as it was; the restored copy is kept at ${aside}`);
    return notes;
  }
  await makeWritable();
  await rename(safety, item.path);
  // A copy that cannot be removed stays where it is, and the note below says so.
  await backend.removeTree?.(aside).catch(() => undefined);
  notes.push(
    (await exists(aside))
      ? `${item.volume}: ${item.path} is back as it was; the restored copy could not be removed and is at ${aside}`
      : `${item.volume}: the restored copy was removed and ${item.path} is back as it was`,
  );
  return notes;
}

/** Rollback: the safety snapshot (the old tree, moved aside) becomes the volume again. */
async function revertRollback(deps: Deps, journal: Journal, item: JournalItem): Promise<string[]> {
  const safety = safetyPathOf(item);
  const backend = backendOfItem(deps, item);
  // Errors are ignored: a tree that stays read-only makes the rename below fail, and that says why.
  const makeWritable = async () => {
    await backend.setReadOnly?.(safety, false).catch(() => undefined);
  };
  const pathThere = await exists(item.path);
  const safetyThere = await exists(safety);
  let notes: string[];
  if (safetyThere && !pathThere) {
    await makeWritable();
    await rename(safety, item.path);
    notes = [`${item.volume}: ${item.path} is back as it was`];
  } else if (safetyThere && pathThere) {
    notes = await swapBack(deps, journal, item, makeWritable);
  } else {
    notes = [`${item.volume}: nothing had changed`];
  }
  await backend.discardPartialTree?.(item.path);
  return notes;
}

/** Files mode after the copy began: each path gets its previous version back (see undoCopy). */
async function revertCopy(
  deps: Deps,
  journal: Journal,
  item: JournalItem,
  partly?: Set<string>,
): Promise<string[]> {
  const notes: string[] = [];
  // Nested subvolumes the copy already put back into a restored path go into that path's
  // previous version first: undoing the path then carries them along instead of deleting them.
  if (hasNestedTrees(backendOfItem(deps, item)))
    notes.push(
      ...(await keepNestedForUndo(deps, volumeOf(deps, item), item, journal.recoveryId)).map(
        (note) => `${item.volume}: ${note}`,
      ),
    );
  const undone = await undoCopy(item, journal.recoveryId);
  const list = (paths: string[]) => `${paths.length} path(s) (${paths.join(', ')})`;
  const parts = [
    undone.restored.length ? `${list(undone.restored)} put back as they were` : '',
    undone.untouched.length ? `${list(undone.untouched)} not touched` : '',
    ...undone.notRestored.map(
      (n) =>
        `${n.path} could NOT be put back (${n.error}); its previous version is in ${join(item.path, `.snapguard-restore-${journal.recoveryId}`, 'old', n.path)} and in ${item.safety}`,
    ),
  ].filter(Boolean);
  if (undone.notRestored.length) partly?.add(item.volume);
  notes.push(`${item.volume}: ${parts.join(', ') || 'nothing had changed'}`);
  return notes;
}

/** Files mode before the copy began: only the staging folder may be there (nested subvolumes go back first). */
async function discardStaging(deps: Deps, journal: Journal, item: JournalItem): Promise<string[]> {
  const notes: string[] = [];
  const stagingName = `.snapguard-restore-${journal.recoveryId}`;
  if (hasNestedTrees(backendOfItem(deps, item)))
    notes.push(
      ...(await rescueStaged(deps, volumeOf(deps, item), item.path, stagingName, journal.recoveryId)).map(
        (note) => `${item.volume}: ${note}`,
      ),
    );
  await rm(join(item.path, stagingName), { recursive: true, force: true });
  notes.push(`${item.volume}: nothing had changed`);
  return notes;
}

/** Units stopped by the recovery (or maybe stopped: the step was under way) are started again. */
async function restartStopped(
  deps: Deps,
  item: JournalItem,
  drivers?: Map<string, ServiceDriver | undefined>,
): Promise<string[]> {
  if (!item.done.includes('stop-services') && item.current !== 'stop-services') return [];
  const driver = drivers?.get(item.volume) ?? undefined;
  if (!driver) return [];
  const started = await startUnits(driver, volumeOf(deps, item));
  return started.map((c) => `${item.volume}: ${c.check} failed: ${c.detail ?? ''}`);
}

/** Puts one volume back, the way its kind of recovery is undone. */
function revertItem(
  deps: Deps,
  journal: Journal,
  item: JournalItem,
  partly?: Set<string>,
): Promise<string[]> {
  if (recoversInPlace(backendOfItem(deps, item))) return revertInPlace(deps, item);
  if (journal.mode === 'rollback') return revertRollback(deps, journal, item);
  if (item.done.includes('copy') || item.current === 'copy') return revertCopy(deps, journal, item, partly);
  return discardStaging(deps, journal, item);
}

/** Puts volumes back after a failed or interrupted swap: the safety snapshot becomes the volume again. */
export async function revertJournal(
  deps: Deps,
  journal: Journal,
  drivers?: Map<string, ServiceDriver | undefined>,
  /** Filled with the volumes that could not be put back completely. */
  partly?: Set<string>,
): Promise<string[]> {
  const notes: string[] = [];
  for (const item of [...journal.items].reverse()) {
    notes.push(...(await revertItem(deps, journal, item, partly)));
    notes.push(...(await restartStopped(deps, item, drivers)));
  }
  return notes;
}
