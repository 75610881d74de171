import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
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
  /**
   * One btrfs volume at `path`, recovering without a gate: its config file DIR/ID.yaml (for the
   * CLI) and deps for the same config.
   */
  cliVolume(id: string, path: string): Promise<{ configFile: string; deps: Deps }>;
  /**
   * Writes a config file DIR/`name` (for the CLI) with contextDir/stateDir in the sandbox and the rest
   * as given; returns its path.
   */
  writeConfig(input: ConfigInput, name?: string): Promise<string>;
  cleanup(): Promise<void>;
}

/**
 * Writes a config file DIR/`name` (for the CLI) with contextDir/stateDir in DIR and the rest as given;
 * returns its path.
 */
export async function writeSandboxConfig(
  dir: string,
  input: ConfigInput,
  name = 'snapguard.yaml',
): Promise<string> {
  const configFile = join(dir, name);
  await writeFile(
    configFile,
    stringify({ contextDir: join(dir, 'context'), stateDir: join(dir, 'state'), ...input }),
  );
  return configFile;
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
    async cliVolume(id, path) {
      const input = {
        contextDir: join(dir, 'context'),
        stateDir: join(dir, 'state'),
        host: 'test-host',
        confirm: 'never' as const,
        volumes: { [id]: { backend: 'btrfs' as const, path } },
      };
      const configFile = join(dir, `${id}.yaml`);
      await writeFile(configFile, stringify(input));
      return { configFile, deps: createDeps(config(input), { logger: silentLogger(), exec }) };
    },
    writeConfig: (input, name) => writeSandboxConfig(dir, input, name),
    async cleanup() {
      await pool.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
