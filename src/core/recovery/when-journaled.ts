import type { Deps } from '../deps.js';
import { assertPrivateDirs } from '../private-dirs.js';
import { readJournals } from './journal.js';
import type { resolveUnfinishedRecoveries } from './resume.js';
import type { ResolvedRecovery } from './schemas.js';

/**
 * resolveUnfinishedRecoveries for the paths that only need it after a crash (snapshot create):
 * the resolver and everything it replays with are loaded only when a journal is there, so a
 * command that finds none stays small. The private-folder check runs either way.
 */
export async function resolveJournaledRecoveries(
  deps: Deps,
  options: Parameters<typeof resolveUnfinishedRecoveries>[1] = {},
): Promise<ResolvedRecovery[]> {
  await assertPrivateDirs(deps.config);
  if ((await readJournals(deps.config.stateDir)).length === 0) return [];
  const resume = await import('./resume.js');
  return resume.resolveUnfinishedRecoveries(deps, options);
}
