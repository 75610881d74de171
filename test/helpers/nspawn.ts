import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, closeSync, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireLock, isOwnerAlive, type LockOwner } from '../../src/core/lock.js';
import { createExec, type Exec } from '../../src/system/exec.js';

/**
 * Real systemd 252 in a systemd-nspawn container (docs/systemd.md, "Tests: systemd 252 in systemd-nspawn"): one debootstrapped Debian tree
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
/** Shared by all test files; SNAPGUARD_NSPAWN_CACHE moves it (e.g. to a persistent CI cache). */
const cacheDir = process.env['SNAPGUARD_NSPAWN_CACHE'] ?? join(tmpdir(), 'snapguard-nspawn-cache');
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

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process is gone or a zombie (our own child not yet reaped counts as gone). */
async function pidGone(pid: number): Promise<boolean> {
  if (!pidAlive(pid)) return true;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat === '' || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!(await pidGone(pid))) {
    if (performance.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** What is needed to tear a container down, also from another process after a crash. */
interface ContainerRecord {
  name: string;
  dir: string;
  rootfs: string;
  nspawnPid: number;
  leaderPid: number;
  /** The test process that booted it; when it is dead the container is stale. */
  owner: LockOwner;
}

const recordFile = 'container.json';

/** Powers off (or kills) the container, removes its cgroups, unmounts and deletes its copy. */
async function teardown(record: ContainerRecord): Promise<void> {
  const { nspawnPid, leaderPid, rootfs, dir, name } = record;
  if (nspawnPid > 0 && !(await pidGone(nspawnPid))) {
    if (leaderPid > 0 && !(await pidGone(leaderPid))) {
      await exec('nsenter', ['-t', String(leaderPid), '-a', 'systemctl', 'poweroff'], {
        timeoutMs: 10_000,
        okExitCodes: allExitCodes,
      }).catch(() => undefined);
    }
    if (!(await waitGone(nspawnPid, 15_000))) {
      // A container that does not power off: kill nspawn's process group (it runs under setsid).
      try {
        process.kill(-nspawnPid, 'SIGKILL');
      } catch {
        // already gone
      }
      await waitGone(nspawnPid, 5_000);
    }
  }
  for (const root of cgroupRoots) await removeCgroup(join(root, name)).catch(() => undefined);
  for (let attempt = 0; attempt < 20 && (await isMounted(rootfs)); attempt++) {
    await exec('umount', [rootfs], { okExitCodes: allExitCodes }).catch(() => undefined);
    if (await isMounted(rootfs)) await sleep(100);
  }
  if (await isMounted(rootfs)) await exec('umount', ['-l', rootfs]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}

/** Tears down containers left behind by test processes that died before their afterAll. */
export async function sweepStaleContainers(): Promise<string[]> {
  const swept: string[] = [];
  const entries = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const entry of entries) {
    if (!entry.startsWith('snapguard-nspawn-') || entry === 'snapguard-nspawn-cache') continue;
    const dir = join(tmpdir(), entry);
    let record: ContainerRecord;
    try {
      record = JSON.parse(await readFile(join(dir, recordFile), 'utf8')) as ContainerRecord;
    } catch {
      continue; // being set up right now, or not ours
    }
    if (record.dir !== dir || isOwnerAlive(record.owner)) continue;
    await teardown(record).catch(() => undefined);
    swept.push(record.name);
  }
  return swept;
}

export async function bootContainer(options: BootOptions = {}): Promise<Container> {
  const lower = await cachedRootfs();
  await sweepStaleContainers();
  const name = validateName(options.name ?? `sg-${randomBytes(4).toString('hex')}`);
  const binds = (options.bind ?? []).map(bindArg);
  const dir = await mkdtemp(join(tmpdir(), `snapguard-nspawn-${name}-`));
  const rootfs = join(dir, 'root');
  for (const sub of ['upper', 'work', 'root']) await mkdir(join(dir, sub));
  const cgroups = cgroupRoots.map((root) => join(root, name));
  if (existsSync(cgroups[0]!)) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`a container named ${name} is already running (cgroup ${cgroups[0]} exists)`);
  }
  const record: ContainerRecord = {
    name,
    dir,
    rootfs,
    nspawnPid: 0,
    leaderPid: 0,
    owner: {
      pid: process.pid,
      host: hostname(),
      procStart: await readFile(`/proc/${process.pid}/stat`, 'utf8').then(
        (stat) => stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19],
      ),
      purpose: 'nspawn test container',
      since: new Date().toISOString(),
    },
  };
  const saveRecord = () => writeFile(join(dir, recordFile), JSON.stringify(record));
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= teardown(record));

  try {
    await saveRecord();
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
    let child: ChildProcess;
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
    // Reap it when it exits; the container must not keep the test process alive.
    child.unref();
    let exitedEarly = false;
    child.once('exit', () => (exitedEarly = true));
    if (child.pid === undefined) throw new Error('systemd-nspawn could not be spawned');
    record.nspawnPid = child.pid;
    await saveRecord();

    const deadline = performance.now() + 60_000;
    let leaderPid = 0;
    while (leaderPid === 0) {
      if (exitedEarly || performance.now() > deadline)
        throw new Error('systemd-nspawn did not start systemd');
      leaderPid = (await findLeader(record.nspawnPid)) ?? 0;
      if (leaderPid === 0) await sleep(20);
    }
    record.leaderPid = leaderPid;
    await saveRecord();
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
