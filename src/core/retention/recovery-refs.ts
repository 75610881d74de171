import type { VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError } from '../errors.js';
import { readJournals } from '../recovery/journal.js';

/**
 * Names of snapshots of `volume` that an unfinished recovery still needs (the snapshot being
 * restored and the safety snapshot of the current state). Prune never deletes them. A journal
 * that cannot be read makes this fail rather than answer "none": prune then deletes nothing.
 */
export async function snapshotsInUnfinishedRecoveries(deps: Deps, volume: VolumeConfig): Promise<string[]> {
  const names = new Set<string>();
  for (const { file, journal, error } of await readJournals(deps.config.stateDir)) {
    if (!journal) {
      throw new SnapguardError(
        'PRECONDITION_FAILED',
        `The recovery journal ${file} cannot be read (${error ?? 'empty'}), so it is unknown which snapshots an interrupted recovery needs. Nothing was pruned.`,
        {
          mcp: `Inspect ${file} on the host and remove it once the volume is in order (health_check lists it under UNFINISHED_RECOVERY); then call prune_snapshots again.`,
          cli: `Inspect ${file} on the host and remove it by hand once the volume is in order (a journal that does not parse cannot be replayed, not by \`snapguard doctor\` either; \`snapguard health\` lists it); then run \`snapguard prune\` again.`,
        },
      );
    }
    for (const item of journal.items) {
      if (item.volume !== volume.id) continue;
      names.add(item.target);
      names.add(item.safety);
    }
  }
  return [...names];
}
