import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requireComponents } from '../helpers/env.js';
import { bootContainer, sweepStaleContainers, type Container } from '../helpers/nspawn.js';

const run = requireComponents(['systemd-nspawn', 'nsenter', 'debootstrap']);

function mounted(path: string): boolean {
  return readFileSyncSafe('/proc/self/mountinfo')
    .split('\n')
    .some((line) => line.split(' ')[4] === path);
}

function readFileSyncSafe(path: string): string {
  try {
    return execFileSync('cat', [path], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

/** Everything a container leaves on the host while it runs. */
function traces(container: Container): string[] {
  const left: string[] = [];
  if (existsSync(`/sys/fs/cgroup/unified/${container.name}`)) left.push('unified cgroup');
  if (existsSync(`/sys/fs/cgroup/systemd/${container.name}`)) left.push('systemd cgroup');
  if (mounted(container.rootfs)) left.push('overlay mount');
  if (existsSync(container.dir)) left.push('container folder');
  // A zombie is dead; it waits for the host's init to reap it.
  const stat = readFileSyncSafe(`/proc/${container.leaderPid}/stat`);
  if (stat !== '' && !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) left.push('container systemd');
  return left;
}

describe.skipIf(!run)('nspawn test harness', () => {
  const containers: Container[] = [];
  let hostDir: string | undefined;

  afterAll(async () => {
    for (const container of containers) await container.stop();
    if (hostDir) await rm(hostDir, { recursive: true, force: true });
  });

  it('boots two containers side by side and removes every trace on stop', async () => {
    const [a, b] = await Promise.all([bootContainer(), bootContainer()]);
    containers.push(a!, b!);
    expect(a!.name).not.toBe(b!.name);
    for (const container of [a!, b!]) {
      expect((await container.run(['systemctl', 'is-system-running'])).stdout.trim()).toMatch(
        /^(running|degraded)$/,
      );
      expect(traces(container)).toContain('overlay mount');
    }
    // Each has its own copy of the tree: a file written in one is not in the other.
    await a!.run(['sh', '-c', 'echo a > /etc/only-in-a']);
    expect((await b!.run(['test', '-e', '/etc/only-in-a'])).exitCode).toBe(1);
    await a!.stop();
    await a!.stop(); // twice is harmless
    expect(traces(a!)).toEqual([]);
    expect(traces(b!)).toContain('container systemd');
  });

  it('cleans up after a container whose nspawn was killed (a test that crashed mid-way)', async () => {
    const container = await bootContainer();
    containers.push(container);
    const nspawnPid = Number(
      execFileSync('ps', ['-o', 'ppid=', '-p', String(container.leaderPid)], { encoding: 'utf8' }).trim(),
    );
    process.kill(nspawnPid, 'SIGKILL');
    await container.stop();
    expect(traces(container)).toEqual([]);
  });

  it('binds host folders, read-only when asked', async () => {
    hostDir = await mkdtemp(join(tmpdir(), 'snapguard-nspawn-harness-test-'));
    await writeFile(join(hostDir, 'input.txt'), 'from host\n');
    const rw = join(hostDir, 'rw');
    execFileSync('mkdir', [rw]);
    const container = await bootContainer({
      bind: [
        { host: hostDir, container: '/mnt/ro', readOnly: true },
        { host: rw, container: '/mnt/rw' },
      ],
    });
    containers.push(container);
    expect((await container.run(['cat', '/mnt/ro/input.txt'])).stdout).toBe('from host\n');
    expect((await container.run(['sh', '-c', 'echo x > /mnt/ro/new'])).exitCode).not.toBe(0);
    expect(existsSync(join(hostDir, 'new'))).toBe(false);
    expect((await container.run(['sh', '-c', 'echo written > /mnt/rw/out'])).exitCode).toBe(0);
    expect(await readFile(join(rw, 'out'), 'utf8')).toBe('written\n');
    await container.stop();
    // The host folders survive the teardown of the container's copy.
    expect(await readFile(join(hostDir, 'input.txt'), 'utf8')).toBe('from host\n');
  });

  it('sweeps a container whose test process is gone (owner pid faked as a dead one)', async () => {
    const container = await bootContainer();
    containers.push(container);
    // A real pid that has exited: the shape of a test process killed before its afterAll.
    const deadPid = Number(execFileSync('sh', ['-c', 'sh -c "echo \\$\\$" '], { encoding: 'utf8' }).trim());
    const recordPath = join(container.dir, 'container.json');
    const record = JSON.parse(await readFile(recordPath, 'utf8')) as { owner: { pid: number } };
    record.owner.pid = deadPid;
    await writeFile(recordPath, JSON.stringify(record));
    expect(await sweepStaleContainers()).toContain(container.name);
    expect(traces(container)).toEqual([]);
  });

  it('refuses a name that is already running', async () => {
    const container = await bootContainer();
    containers.push(container);
    await expect(bootContainer({ name: container.name })).rejects.toThrow(/already running/);
    expect((await container.run(['true'])).exitCode).toBe(0);
  });
});
