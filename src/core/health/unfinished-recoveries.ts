import type { Deps } from '../deps.js';
import { readJournals } from '../recovery/journal.js';

export interface UnfinishedRecovery {
  recoveryId: string;
  volume: string;
  step: string;
  startedAt: string;
}

/**
 * Recoveries whose journal (in stateDir) says they did not finish: one entry per volume of each
 * journal, with the step it stopped at. A journal that does not parse is reported too (volume
 * "unknown"), since it means a recovery was interrupted and cannot be read back automatically.
 */
export async function listUnfinishedRecoveries(deps: Deps): Promise<UnfinishedRecovery[]> {
  const unfinished: UnfinishedRecovery[] = [];
  for (const { file, journal, error } of await readJournals(deps.config.stateDir)) {
    if (!journal) {
      unfinished.push({
        recoveryId: file,
        volume: 'unknown',
        step: `journal unreadable: ${error ?? 'no content'}`,
        startedAt: '',
      });
      continue;
    }
    for (const item of journal.items) {
      unfinished.push({
        recoveryId: journal.recoveryId,
        volume: item.volume,
        step: item.current ?? item.done.at(-1) ?? 'not started',
        startedAt: journal.startedAt,
      });
    }
  }
  return unfinished;
}
