import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, type Config, type ConfigInput } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { createExec, type Exec } from '../../src/system/exec.js';
import { createLoopBtrfs, type LoopBtrfs } from '../../src/system/loop.js';

export const exec: Exec = createExec();

export interface BtrfsSandbox {
  dir: string;
  pool: LoopBtrfs;
  /** Creates a subvolume (a volume's path) on the pool. */
  subvolume(name: string): Promise<string>;
  /** A config with contextDir/stateDir in the sandbox; volumes as given. */
  config(input: ConfigInput): Config;
  deps(input: ConfigInput, overrides?: Partial<Omit<Deps, 'config'>>): Deps;
  cleanup(): Promise<void>;
}

/** One loop-mounted btrfs image per test file; always call cleanup in afterAll. */
export async function createBtrfsSandbox(sizeMb = 256, label = 'sg'): Promise<BtrfsSandbox> {
  const dir = await mkdtemp(join(tmpdir(), `snapguard-test-${label}-`));
  const pool = await createLoopBtrfs(exec, dir, sizeMb * 1024 * 1024);
  const config = (input: ConfigInput) =>
    buildConfig(
      { contextDir: join(dir, 'context'), stateDir: join(dir, 'state'), host: 'test-host', ...input },
      dir,
    );
  return {
    dir,
    pool,
    async subvolume(name: string) {
      const path = join(pool.mountPoint, name);
      await exec('btrfs', ['subvolume', 'create', path]);
      return path;
    },
    config,
    deps: (input, overrides = {}) =>
      createDeps(config(input), { logger: silentLogger(), exec, ...overrides }),
    async cleanup() {
      await pool.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
