import { lstat } from 'node:fs/promises';
import type { Deps } from './deps.js';
import {
  cleanPreviewLeftovers,
  resolveUnfinishedRecoveries,
  type RecoverContext,
} from './recovery/recover.js';
import type { ResolvedRecovery } from './recovery/schemas.js';

export interface DoctorReport {
  /** Interrupted recoveries found, and whether each was completed or reverted. */
  recoveries: ResolvedRecovery[];
  /** Temporary preview snapshots left by an interrupted preview, removed. */
  previewLeftovers: string[];
  /** Volumes whose path does not exist (after resolving recoveries). */
  missingVolumes: { volume: string; path: string }[];
  /**
   * Local snapshots the history lists as present that are gone from disk (e.g. a prune killed
   * between its deletions and its history write); with repair they are marked deleted_at.
   */
  historyGone: { volume: string; snapshots: string[]; marked: boolean }[];
  ok: boolean;
}

/**
 * Compares the history's local snapshot entries of this host with the backend's listing. A volume
 * whose snapshots cannot be listed (snapshotDir missing, pool not imported) is left alone: an
 * unmounted disk is not a deletion.
 */
export async function reconcileHistory(
  deps: Deps,
  options: { repair?: boolean } = {},
): Promise<DoctorReport['historyGone']> {
  const { history } = await deps.history.read();
  const gone: DoctorReport['historyGone'] = [];
  for (const volume of Object.values(deps.config.volumes)) {
    const entries = history.snapshots.filter(
      (s) =>
        s.subvolume === volume.id &&
        s.host === deps.config.host &&
        (s.location ?? 'local') === 'local' &&
        s.deleted_at === undefined,
    );
    if (entries.length === 0) continue;
    const backend = deps.backendFor(volume);
    if (
      !backend.volumeInPool &&
      !(await lstat(volume.snapshotDir).then(
        () => true,
        () => false,
      ))
    )
      continue;
    let names: Set<string>;
    try {
      names = new Set((await backend.list(volume)).map((raw) => raw.name));
    } catch {
      continue;
    }
    const missing = entries.filter((s) => !names.has(s.snapshot_name)).map((s) => s.snapshot_name);
    if (missing.length) gone.push({ volume: volume.id, snapshots: [...new Set(missing)], marked: false });
  }
  if (gone.length && options.repair !== false) {
    const at = deps.clock().toISOString();
    const written = await deps.history
      .update((current) => {
        for (const { volume, snapshots } of gone)
          for (const entry of current.snapshots)
            if (
              entry.subvolume === volume &&
              entry.host === deps.config.host &&
              (entry.location ?? 'local') === 'local' &&
              entry.deleted_at === undefined &&
              snapshots.includes(entry.snapshot_name)
            ) {
              entry.deleted_at = at;
              entry.notes = [entry.notes, 'marked deleted by doctor: the snapshot was no longer on disk']
                .filter(Boolean)
                .join('; ');
            }
      })
      .then(
        () => true,
        (error: unknown) => {
          deps.logger.warn(
            { error: (error as Error).message },
            'doctor could not mark gone snapshots in the history',
          );
          return false;
        },
      );
    for (const item of gone) item.marked = written;
  }
  return gone;
}

/** `snapguard doctor`: finds what an interrupted snapguard left behind and puts it right. */
export async function runDoctor(
  deps: Deps,
  context: RecoverContext = {},
  options: { repair?: boolean } = {},
): Promise<DoctorReport> {
  const recoveries = await resolveUnfinishedRecoveries(deps, { context });
  const previewLeftovers = await cleanPreviewLeftovers(deps);
  const missingVolumes: DoctorReport['missingVolumes'] = [];
  for (const volume of Object.values(deps.config.volumes)) {
    // A dataset's mountpoint is checked by the storage (doctor's volume check), not here.
    if (deps.backendFor(volume).volumeInPool) continue;
    try {
      await lstat(volume.path);
    } catch {
      missingVolumes.push({ volume: volume.id, path: volume.path });
    }
  }
  const historyGone = await reconcileHistory(deps, { repair: options.repair ?? true });
  const ok =
    missingVolumes.length === 0 &&
    historyGone.length === 0 &&
    recoveries.every((r) => r.action === 'completed' || r.action === 'reverted') &&
    recoveries.every((r) => r.outcome !== 'failed');
  return { recoveries, previewLeftovers, missingVolumes, historyGone, ok };
}
