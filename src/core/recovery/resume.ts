import { PREVIEW_PREFIX, type RawSnapshot } from '../../backends/types.js';
import type { Deps } from '../deps.js';
import { processStart } from '../lock.js';
import { lockVolumes } from '../volume-locks.js';
import { assertPrivateDirs } from '../private-dirs.js';
import { journalProblems } from './journal-check.js';
import { readJournals, removeJournal, type Journal } from './journal.js';
import type { ResolvedRecovery, ValidationCheck } from './schemas.js';
import type { ServiceDriver } from './services.js';
import {
  backendOfItem,
  driverFor,
  recordHistory,
  revertJournal,
  runJournal,
  type RecoverContext,
} from './engine.js';
import { exists } from './paths.js';
import { recoversInPlace, snapshotThere, volumeOf } from './storage.js';

// Crash recovery (guardrail 6): finishing or undoing recoveries a dead process left behind.

/** Whether the process that wrote a journal still runs: its pid is alive and, when recorded, with its start time. */
function ownerAlive(journal: Journal): boolean {
  try {
    process.kill(journal.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (journal.procStart === undefined) return true;
  const start = processStart(journal.pid);
  return start === undefined || start === journal.procStart;
}

type FoundJournal = Awaited<ReturnType<typeof readJournals>>[number];
type ResolveOptions = { volumes?: string[]; context?: RecoverContext };

const touchesAsked = (options: ResolveOptions, volumes: string[]) =>
  !options.volumes || volumes.some((v) => options.volumes?.includes(v));

/** A journal that cannot be read: reported whatever volumes were asked about, and kept. */
const unreadableReport = (found: FoundJournal): ResolvedRecovery => ({
  recoveryId: found.file,
  volumes: [],
  action: 'unreadable',
  detail: `cannot read ${found.file}: ${found.error}; inspect and remove it by hand`,
});

/**
 * A journal that is not a recovery of this configuration: refused and kept, nothing changed;
 * undefined when it names none of the volumes asked about.
 */
function refusedReport(
  deps: Deps,
  found: FoundJournal,
  journal: Journal,
  problems: string[],
  options: ResolveOptions,
): ResolvedRecovery | undefined {
  const named = Array.isArray(journal.items)
    ? journal.items.map((i) => String(i?.volume)).filter((v) => v in deps.config.volumes)
    : [];
  if (!touchesAsked(options, named)) return undefined;
  return {
    recoveryId: found.file,
    volumes: named,
    action: 'refused',
    detail: `${found.file} does not match the configuration (${problems.join('; ')}); it was not replayed and nothing was changed. Inspect it and remove it by hand`,
  };
}

/**
 * Under the volume locks (held by a recovery for its whole run): a journal still there belongs to a
 * recovery that is not running any more, so it is read and checked again, then brought to an end.
 */
async function resolveLocked(
  deps: Deps,
  found: FoundJournal,
  volumes: string[],
  context: RecoverContext,
): Promise<ResolvedRecovery | undefined> {
  const again = (await readJournals(deps.config.stateDir)).find((j) => j.file === found.file)?.journal;
  if (!again) return undefined;
  if (journalProblems(deps.config, again, found.file).length > 0) {
    return {
      recoveryId: found.file,
      volumes,
      action: 'refused',
      detail: `${found.file} changed and no longer matches the configuration; it was not replayed`,
    };
  }
  return resolveOne(deps, again, context);
}

/** One journal found in stateDir: its report, or undefined when it is not about the volumes asked. */
async function resolveFound(
  deps: Deps,
  found: FoundJournal,
  options: ResolveOptions,
): Promise<ResolvedRecovery | undefined> {
  const journal = found.journal;
  if (!journal) return unreadableReport(found);
  const problems = journalProblems(deps.config, journal, found.file);
  if (problems.length > 0) return refusedReport(deps, found, journal, problems, options);
  const volumes = journal.items.map((i) => i.volume);
  if (!touchesAsked(options, volumes)) return undefined;
  const inProgress = (detail: string): ResolvedRecovery => ({
    recoveryId: journal.recoveryId,
    volumes,
    action: 'in-progress',
    detail,
  });
  if (journal.pid !== process.pid && ownerAlive(journal)) {
    return inProgress(`pid ${journal.pid} is still running it`);
  }
  let release: () => Promise<void>;
  try {
    release = await lockVolumes(
      deps,
      volumes,
      `doctor: finish ${journal.recoveryId}`,
      options.context?.signal,
    );
  } catch (error) {
    return inProgress((error as Error).message);
  }
  try {
    return await resolveLocked(deps, found, volumes, options.context ?? {});
  } finally {
    await release();
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
  options: ResolveOptions = {},
): Promise<ResolvedRecovery[]> {
  // A journal is replayed as whoever runs snapguard (root): it must come from a folder only that
  // user can write, and describe a recovery of this configuration.
  await assertPrivateDirs(deps.config);
  const reports: ResolvedRecovery[] = [];
  for (const found of await readJournals(deps.config.stateDir)) {
    const report = await resolveFound(deps, found, options);
    if (report) reports.push(report);
  }
  return reports;
}

/**
 * Before an interrupted swap is continued: which of its steps happened is read from the filesystem,
 * not only from the journal (a step's completion is written with the next step's intent).
 */
async function doneStepsFromDisk(deps: Deps, journal: Journal): Promise<void> {
  for (const item of journal.items) {
    const safetyThere = await snapshotThere(deps, item, item.safety);
    const pathThere = await exists(item.path);
    const backend = backendOfItem(deps, item);
    if (recoversInPlace(backend)) {
      // A zfs copy is redone from the start: it is idempotent, the safety snapshot is reused.
      if (safetyThere && !item.done.includes('safety-snapshot')) item.done.push('safety-snapshot');
      item.done = item.done.filter((s) => s !== 'copy');
    } else if (journal.mode === 'rollback') {
      if (safetyThere && !item.done.includes('move-aside')) item.done.push('move-aside');
      if (safetyThere && pathThere && !item.done.includes('restore')) {
        // A dir-backend copy is renamed into place only when complete, a btrfs snapshot is atomic.
        item.done.push('restore');
      }
      if (!pathThere)
        item.done = item.done.filter(
          (s) => s !== 'restore' && s !== 'carry-nested' && s !== 'protect-safety',
        );
      await backend.discardPartialTree?.(item.path);
    } else {
      if (safetyThere && !item.done.includes('safety-snapshot')) item.done.push('safety-snapshot');
    }
    if (!item.done.includes('stop-services') && item.current !== 'stop-services' && item.units.length === 0)
      item.done.push('stop-services');
  }
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
    await doneStepsFromDisk(deps, journal);
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
  try {
    await recordHistory(
      deps,
      journal,
      outcomes,
      checks,
      durationSeconds,
      `interrupted; ${action} by doctor: ${detail}`,
    );
  } catch (error) {
    // The volumes are consistent now: a history that cannot be written does not keep the journal open.
    detail += `; warning: it could not be recorded in backup-history.json (${(error as Error).message})`;
  }
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
    const backend = deps.backendFor(volume);
    // Only a backend's changeDump takes preview snapshots.
    if (!backend.changeDump) continue;
    let raws: RawSnapshot[];
    try {
      raws = await backend.list(volume);
    } catch {
      continue;
    }
    for (const raw of raws) {
      if (!raw.name.startsWith(PREVIEW_PREFIX)) continue;
      await backend.delete(volume, raw.name).catch(() => undefined);
      removed.push(raw.path);
    }
  }
  return removed;
}
