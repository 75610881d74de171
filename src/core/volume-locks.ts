import { volumeLockFile, type Deps } from './deps.js';
import { acquireLock, type HeldLock } from './lock.js';

/** Volume locks, always taken in sorted order so two multi-volume calls cannot deadlock. */
export async function lockVolumes(
  deps: Deps,
  volumeIds: readonly string[],
  purpose: string,
  signal?: AbortSignal,
): Promise<() => Promise<void>> {
  const held: HeldLock[] = [];
  try {
    for (const id of [...new Set(volumeIds)].sort()) {
      held.push(
        await acquireLock(volumeLockFile(deps.config, id), {
          purpose,
          waitMs: 60_000,
          logger: deps.logger,
          signal,
          what: `Volume "${id}"`,
        }),
      );
    }
  } catch (error) {
    for (const lock of held.reverse()) await lock.release();
    throw error;
  }
  return async () => {
    for (const lock of held.reverse()) await lock.release();
  };
}
