import type { VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';

/**
 * Names of snapshots of `volume` that an unfinished recovery still needs (the snapshot being
 * restored and the safety snapshot of the current state). Prune never deletes them.
 *
 * The recovery journal (stateDir, guardrail 6) is not part of this module: until it lands this
 * returns no names, and the hook is the one place to connect it.
 */
export async function snapshotsInUnfinishedRecoveries(deps: Deps, volume: VolumeConfig): Promise<string[]> {
  void deps;
  void volume;
  return [];
}
