import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, closeSync, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireLock } from '../../src/core/lock.js';
import { createExec, type Exec } from '../../src/system/exec.js';

/**
 * Real systemd 252 in a systemd-nspawn container (TESTING.md): one debootstrapped Debian tree
 * cached for all test files, an overlay per container so each one boots from a private copy in
 * well under a second, and nsenter as the way in (machinectl and systemctl -M do not work here).
 */

export interface Container {
  name: string;
  leaderPid: number;
  rootfs: string;
  /** The nsenter prefix: ['nsenter', '-t', PID, '-a', 'systemctl']. */
  systemctl: string[];
  writeUnit(name: string, content: string): Promise<void>;
  daemonReload(): Promise<void>;
  run(argv: string[]): Promise<{ stdout: string; exitCode: number }>;
  stop(): Promise<void>;
  /** Wall time from spawning systemd-nspawn to `is-system-running` answering. */
  readonly bootMs: number;
  /** The container's private folder (overlay layers, nspawn log). */
  readonly dir: string;
}

export interface BootOptions {
  name?: string;
  bind?: { host: string; container: string; readOnly?: boolean }[];
}

const exec: Exec = createExec({ defaultTimeoutMs: 60_000 });
const cacheDir = join(tmpdir(), 'snapguard-nspawn-cache');
const cachedRoot = join(cacheDir, 'bookworm-minbase');
const cgroupRoots = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'];
const allExitCodes = Array.from({ length: 255 }, (_, index) => index + 1);

/** The Debian tree all containers boot from; debootstrapped once, under a lock, reused when complete. */
export async function cachedRootfs(): Promise<string> {
  // The tree is renamed into place only once debootstrap finished: existing means complete.
  if (existsSync(join(cachedRoot, 'usr/lib/systemd/systemd'))) return cachedRoot;
  await mkdir(cacheDir, { recursive: true });
  const lock = await acquireLock(join(cacheDir, 'debootstrap.lock'), {
    purpose: 'debootstrap of the nspawn test tree',
    waitMs: 600_000,
    what: 'the nspawn rootfs cache',
  });
  try {
    if (existsSync(join(cachedRoot, 'usr/lib/systemd/systemd'))) return cachedRoot;
    const partial = `${cachedRoot}.partial-${process.pid}-${randomBytes(3).toString('hex')}`;
    try {
      await exec(
        'debootstrap',
        ['--variant=minbase', '--include=systemd,dbus', 'bookworm', partial, 'http://deb.debian.org/debian'],
        { timeoutMs: 900_000 },
      );
      await rm(cachedRoot, { recursive: true, force: true });
      await rename(partial, cachedRoot);
    } finally {
      await rm(partial, { recursive: true, force: true });
    }
    return cachedRoot;
  } finally {
    await lock.release();
  }
}

function validateName(name: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(name)) {
    throw new Error(`container name ${JSON.stringify(name)}: use 1-41 lowercase letters, digits and '-'`);
  }
  return name;
}

/** nspawn splits --bind on ':'; a literal colon is written '\:'. */
function bindArg(bind: { host: string; container: string; readOnly?: boolean }): string {
  for (const path of [bind.host, bind.container]) {
    if (!path.startsWith('/') || path.includes('\0') || path.includes(',')) {
      throw new Error(`bind path ${JSON.stringify(path)} must be absolute, without NUL or ','`);
    }
  }
  const escape = (path: string) => path.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
  return `${bind.readOnly ? '--bind-ro' : '--bind'}=${escape(bind.host)}:${escape(bind.container)}`;
}

async function findLeader(nspawnPid: number): Promise<number | undefined> {
  try {
    const children = (await readFile(`/proc/${nspawnPid}/task/${nspawnPid}/children`, 'utf8')).trim();
    for (const child of children.split(/\s+/).filter(Boolean)) {
      const comm = (await readFile(`/proc/${child}/comm`, 'utf8').catch(() => '')).trim();
      if (comm === 'systemd') return Number(child);
    }
  } catch {
    // nspawn not up yet or already gone
  }
  return undefined;
}

/** Removes a cgroup tree bottom-up; kills what is left in it first (cgroup v2 cgroup.kill). */
async function removeCgroup(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (path.startsWith('/sys/fs/cgroup/unified/')) {
    await writeFile(join(path, 'cgroup.kill'), '1').catch(() => undefined);
  }
  const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (entry.isDirectory()) await removeCgroup(join(path, entry.name));
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await rmdir(path);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw error;
      await sleep(100);
    }
  }
  await rmdir(path);
}

async function isMounted(path: string): Promise<boolean> {
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  return mounts.split('\n').some((line) => line.split(' ')[4] === path);
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export async function bootContainer(options: BootOptions = {}): Promise<Container> {
  const lower = await cachedRootfs();
  const name = validateName(options.name ?? `sg-${randomBytes(4).toString('hex')}`);
  const binds = (options.bind ?? []).map(bindArg);
  const dir = await mkdtemp(join(tmpdir(), `snapguard-nspawn-${name}-`));
  const rootfs = join(dir, 'root');
  for (const sub of ['upper', 'work', 'root']) await mkdir(join(dir, sub));
  let child: ChildProcess | undefined;
  let leaderPid = 0;
  let stopped = false;
  const cgroups = cgroupRoots.map((root) => join(root, name));

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    if (child && child.exitCode === null && child.signalCode === null) {
      if (leaderPid > 0) {
        await exec('nsenter', ['-t', String(leaderPid), '-a', 'systemctl', 'poweroff'], {
          timeoutMs: 10_000,
          okExitCodes: allExitCodes,
        }).catch(() => undefined);
      }
      if (!(await waitForExit(child, 15_000))) {
        // A container that does not power off: kill nspawn's process group (it runs under setsid).
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
        await waitForExit(child, 5_000);
      }
    }
    for (const cgroup of cgroups) await removeCgroup(cgroup).catch(() => undefined);
    for (let attempt = 0; attempt < 20 && (await isMounted(rootfs)); attempt++) {
      await exec('umount', [rootfs], { okExitCodes: allExitCodes }).catch(() => undefined);
      if (await isMounted(rootfs)) await sleep(100);
    }
    if (await isMounted(rootfs)) await exec('umount', ['-l', rootfs]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }

  try {
    await exec('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${lower},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`,
      rootfs,
    ]);
    for (const cgroup of cgroups) await mkdir(cgroup, { recursive: true }).catch(() => undefined);

    const started = performance.now();
    const log = openSync(join(dir, 'nspawn.log'), 'a');
    try {
      // nspawn must start inside its own cgroup (no systemd as PID 1 here to create one): the
      // shell moves itself there, then execs nspawn. Arguments are positional, never interpolated.
      child = spawn(
        'bash',
        [
          '-c',
          'echo $$ > "$1" 2>/dev/null; shift; exec "$@"',
          'bash',
          join(cgroups[0]!, 'cgroup.procs'),
          'systemd-nspawn',
          '-D',
          rootfs,
          '-M',
          name,
          '--register=no',
          '--keep-unit',
          '-b',
          '--console=passive',
          ...binds,
        ],
        { detached: true, stdio: ['ignore', log, log] },
      );
    } finally {
      closeSync(log);
    }
    child.unref();
    const nspawn = child;
    const exited = new Promise<void>((resolve) => nspawn.once('exit', () => resolve()));
    let exitedEarly = false;
    void exited.then(() => (exitedEarly = true));

    const deadline = performance.now() + 60_000;
    while (leaderPid === 0) {
      if (exitedEarly || performance.now() > deadline)
        throw new Error('systemd-nspawn did not start systemd');
      leaderPid = (await findLeader(nspawn.pid!)) ?? 0;
      if (leaderPid === 0) await sleep(20);
    }
    // The first calls may fail to reach the bus: retry until the manager answers.
    for (;;) {
      const result = await exec(
        'nsenter',
        ['-t', String(leaderPid), '-a', 'systemctl', 'is-system-running', '--wait'],
        { timeoutMs: 30_000, okExitCodes: allExitCodes },
      ).catch((error: unknown) => ({ stdout: '', exitCode: -1, error }));
      const state = result.stdout.trim();
      if (state === 'running' || state === 'degraded') break;
      if (exitedEarly || performance.now() > deadline) {
        throw new Error(`container ${name} did not come up (last state ${JSON.stringify(state)})`);
      }
      await sleep(100);
    }
    const bootMs = performance.now() - started;
    const prefix = ['nsenter', '-t', String(leaderPid), '-a'];

    const run = async (argv: string[]) => {
      const result = await exec(prefix[0]!, [...prefix.slice(1), ...argv], { okExitCodes: allExitCodes });
      return { stdout: result.stdout, exitCode: result.exitCode };
    };

    return {
      name,
      leaderPid,
      rootfs,
      systemctl: [...prefix, 'systemctl'],
      bootMs,
      dir,
      async writeUnit(unit: string, content: string) {
        if (!/^[A-Za-z0-9@:._-]+$/.test(unit)) throw new Error(`unit file name ${JSON.stringify(unit)}`);
        await writeFile(join(rootfs, 'etc/systemd/system', unit), content);
      },
      async daemonReload() {
        await exec(prefix[0]!, [...prefix.slice(1), 'systemctl', 'daemon-reload']);
      },
      run,
      stop,
    };
  } catch (error) {
    const log = await readFile(join(dir, 'nspawn.log'), 'utf8').catch(() => '');
    await stop();
    throw new Error(`booting container ${name} failed: ${String(error)}\n${log.slice(-2000)}`, {
      cause: error,
    });
  }
}
