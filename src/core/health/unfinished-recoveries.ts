import type { Deps } from '../deps.js';

export interface UnfinishedRecovery {
  recoveryId: string;
  volume: string;
  step: string;
  startedAt: string;
}

/**
 * Recoveries whose journal (in stateDir) says they did not finish. The recovery journal is not
 * part of this build yet, so there is nothing to find and the list is empty; when the journal
 * lands, this is the one function health_check needs it to fill in.
 */
export async function listUnfinishedRecoveries(deps: Deps): Promise<UnfinishedRecovery[]> {
  void deps;
  return [];
}
