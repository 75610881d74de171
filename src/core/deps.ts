import { join } from 'node:path';
import { createBackendResolver, type BackendResolver } from '../backends/index.js';
import { createExec, type Exec } from '../system/exec.js';
import type { Config } from './config.js';
import { HistoryStore } from './history/store.js';
import { createLogger, type Logger } from './logger.js';
import { isOwnedSnapshotName } from './naming.js';

/** Everything the core needs from the outside, passed in so tests can give real images and a fixed clock. */
export interface Deps {
  config: Config;
  exec: Exec;
  clock: () => Date;
  logger: Logger;
  history: HistoryStore;
  backendFor: BackendResolver;
}

export function createDeps(config: Config, overrides: Partial<Omit<Deps, 'config'>> = {}): Deps {
  const logger = overrides.logger ?? createLogger({ file: config.logFile });
  const exec = overrides.exec ?? createExec();
  const clock = overrides.clock ?? (() => new Date());
  return {
    config,
    exec,
    clock,
    logger,
    history:
      overrides.history ??
      new HistoryStore({
        contextDir: config.contextDir,
        liveEntries: config.history.liveEntries,
        logger,
        clock,
      }),
    backendFor: overrides.backendFor ?? createBackendResolver(exec, isOwnedSnapshotName),
  };
}

export function volumeLockFile(config: Config, volumeId: string): string {
  return join(config.stateDir, 'locks', `volume-${volumeId}.lock`);
}
