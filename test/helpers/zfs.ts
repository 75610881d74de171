import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, type Config, type ConfigInput } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { acquireLock } from '../../src/core/lock.js';
import { silentLogger } from '../../src/core/logger.js';
import { createExec, type Exec } from '../../src/system/exec.js';
import { writeSandboxConfig } from './btrfs.js';

export const exec: Exec = createExec();

/** Shared by every test file (and other suites) on this host: zfs-fuse runs once per host. */
const daemonDir = join(tmpdir(), 'snapguard-zfs-fuse');
const daemonLock = join(tmpdir(), 'snapguard-zfs-fuse.lock');
export const daemonPidFile = join(daemonDir, 'zfs-fuse.pid');

async function daemonAnswers(): Promise<boolean> {
  try {
    await exec('zpool', ['list', '-H', '-o', 'name'], { timeoutMs: 15_000 });
    return true;
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A daemon that exited but was not reaped (no init reaping here) is a zombie: dead for our purpose.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Starts zfs-fuse unless one already answers (started by another test file or suite). The start is
 * serialised by a lock file so concurrent test files never start two daemons; the daemon keeps
 * running after the tests (one per host), pools are what each test file cleans up.
 */
export async function ensureZfsDaemon(): Promise<void> {
  if (await daemonAnswers()) return;
  const lock = await acquireLock(daemonLock, {
    purpose: 'start zfs-fuse',
    waitMs: 60_000,
    what: 'zfs-fuse start',
  });
  try {
    if (await daemonAnswers()) return;
    await mkdir(daemonDir, { recursive: true });
    if (existsSync(daemonPidFile)) {
      const pid = Number((await readFile(daemonPidFile, 'utf8')).trim());
      // A live daemon that does not answer yet may still be starting: give it time before replacing it.
      if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) {
        for (let i = 0; i < 50 && !(await daemonAnswers()); i++) await sleep(200);
        if (await daemonAnswers()) return;
        throw new Error(`zfs-fuse (pid ${pid}) runs but does not answer zpool list`);
      }
      await rm(daemonPidFile, { force: true });
    }
    await exec('zfs-fuse', ['--pidfile', daemonPidFile, '--no-kstat-mount'], { timeoutMs: 30_000 });
    for (let i = 0; i < 100; i++) {
      if (await daemonAnswers()) return;
      await sleep(100);
    }
    throw new Error('zfs-fuse was started but zpool list does not answer after 10 s');
  } finally {
    await lock.release();
  }
}

/**
 * zfs-fuse reports a freshly mounted nested dataset (and so its pool) as busy for a while after
 * its mount (seen: 10-40 s); retries a destroy for up to 90 s before giving up.
 */
export async function retryBusy<T>(action: () => Promise<T>, deadlineMs = 90_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    try {
      return await action();
    } catch (error) {
      if (!/busy/i.test((error as Error).message) || Date.now() - started > deadlineMs) throw error;
      await sleep(500);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface ZfsPool {
  name: string;
  image: string;
  mountPoint: string;
}

export interface ZfsSandbox {
  dir: string;
  /** The first pool of this test file. */
  pool: ZfsPool;
  /** Another pool (e.g. a syncoid target), destroyed with the sandbox. */
  addPool(suffix: string, sizeMb?: number): Promise<ZfsPool>;
  /** Creates `<pool>/<name>` and returns its dataset name and mountpoint. */
  dataset(name: string, pool?: ZfsPool): Promise<{ dataset: string; mountPoint: string }>;
  /** A folder with a `zfs` wrapper that gives sanoid the `get -Hrpt snapshot` zfs-fuse lacks. */
  sanoidPath(): Promise<string>;
  config(input: ConfigInput): Config;
  deps(input: ConfigInput, overrides?: Partial<Omit<Deps, 'config'>>): Deps;
  /** A config file DIR/`name` for the CLI, contextDir/stateDir in the sandbox; returns its path. */
  writeConfig(input: ConfigInput, name?: string): Promise<string>;
  cleanup(): Promise<void>;
}

/** File-backed zfs-fuse pools, unique per test file; always call cleanup in afterAll. */
export async function createZfsSandbox(label: string, sizeMb = 128): Promise<ZfsSandbox> {
  await ensureZfsDaemon();
  const dir = await mkdtemp(join(tmpdir(), `snapguard-test-zfs-${label}-`));
  const base = `sg${label.replace(/[^a-z0-9]/g, '')}${randomBytes(3).toString('hex')}`;
  const pools: ZfsPool[] = [];
  const addPool = async (suffix: string, size = sizeMb): Promise<ZfsPool> => {
    const name = `${base}${suffix}`;
    const image = join(dir, `${name}.img`);
    const mountPoint = join(dir, 'mnt', name);
    await mkdir(mountPoint, { recursive: true });
    await exec('truncate', ['-s', `${size}M`, image]);
    await exec('zpool', ['create', '-m', mountPoint, name, image], { timeoutMs: 60_000 });
    const pool = { name, image, mountPoint };
    pools.push(pool);
    return pool;
  };
  const config = (input: ConfigInput) =>
    buildConfig(
      { contextDir: join(dir, 'context'), stateDir: join(dir, 'state'), host: 'test-host', ...input },
      dir,
    );
  let pool: ZfsPool;
  try {
    pool = await addPool('a');
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    pool,
    addPool,
    async dataset(name, target = pool) {
      const dataset = `${target.name}/${name}`;
      await exec('zfs', ['create', dataset]);
      return { dataset, mountPoint: join(target.mountPoint, name) };
    },
    async sanoidPath() {
      const bin = join(dir, 'sanoid-bin');
      await mkdir(bin, { recursive: true });
      // sanoid reads its snapshot cache with `zfs get -Hrpt snapshot creation`; zfs-fuse has no -t,
      // so this wrapper asks for every dataset and keeps the snapshot lines.
      const wrapper = [
        '#!/bin/sh',
        'if [ "$1" = get ] && [ "$2" = -Hrpt ] && [ "$3" = snapshot ]; then',
        '  shift 3',
        '  /usr/sbin/zfs get -Hrp "$@" | grep "@"',
        '  exit 0',
        'fi',
        'exec /usr/sbin/zfs "$@"',
        '',
      ].join('\n');
      await writeFile(join(bin, 'zfs'), wrapper);
      await chmod(join(bin, 'zfs'), 0o755);
      return bin;
    },
    config,
    deps: (input, overrides = {}) =>
      createDeps(config(input), { logger: silentLogger(), exec, ...overrides }),
    writeConfig: (input, name) => writeSandboxConfig(dir, input, name),
    async cleanup() {
      const failures: string[] = [];
      for (const created of pools.reverse()) {
        try {
          await retryBusy(() => exec('zpool', ['destroy', '-f', created.name], { timeoutMs: 60_000 }));
        } catch (error) {
          failures.push(`${created.name}: ${(error as Error).message}`);
        }
      }
      await rm(dir, { recursive: true, force: true });
      if (failures.length) throw new Error(`could not destroy test pools: ${failures.join('; ')}`);
    },
  };
}
