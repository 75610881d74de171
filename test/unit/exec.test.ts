import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExec } from '../../src/system/exec.js';
import { pipeCommands } from '../../src/system/pipe.js';
import { pidFromFile, processGone } from '../helpers/process.js';

const exec = createExec();
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapguard-exec-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('exec (guardrail 2: no shell)', () => {
  it('passes shell metacharacters as literal arguments, never to a shell', async () => {
    const hostile = `x; touch ${join(dir, 'pwned')} $(touch ${join(dir, 'pwned2')}) | cat`;
    const result = await exec('printf', ['%s', hostile]);
    expect(result.stdout).toBe(hostile);
    expect(await readdir(dir)).toEqual([]);
  });

  it('kills a command at its timeout and says so', async () => {
    await expect(exec('sleep', ['5'], { timeoutMs: 200 })).rejects.toMatchObject({
      code: 'TIMEOUT',
      message: expect.stringContaining('did not finish within'),
    });
  });

  it('stops a command when the call is cancelled', async () => {
    const controller = new AbortController();
    const running = exec('sleep', ['5'], { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    await expect(running).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('names a missing command and how to install it', async () => {
    await expect(exec('btrfs-does-not-exist', [])).rejects.toMatchObject({ code: 'COMMAND_NOT_FOUND' });
  });

  it('brings the stderr of a failing command into the error', async () => {
    await expect(exec('ls', [join(dir, 'nope')])).rejects.toMatchObject({
      code: 'COMMAND_FAILED',
      message: expect.stringMatching(/exit code 2: .*No such file/),
    });
  });

  it('refuses NUL bytes in arguments', async () => {
    await expect(exec('echo', ['a\0b'])).rejects.toMatchObject({ code: 'BAD_INPUT' });
  });
});

describe('exec owns the whole process group of a command', () => {
  // `sh -c 'sleep 30 & ...; wait'`: the shell forks a grandchild that holds the output pipes.
  const forking = (pidFile: string, extra = '') =>
    ['-c', `${extra}sleep 30 & echo $! > ${pidFile}; wait; echo done`] as const;

  it('a timeout stops the forked grandchild too, and the call ends long before it would', async () => {
    const pidFile = join(dir, 'timeout.pid');
    const started = Date.now();
    await expect(exec('sh', [...forking(pidFile)], { timeoutMs: 500 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    // Generous bound: timeout + grace + slack, far below the 30 s the grandchild would run.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await processGone(await pidFromFile(pidFile))).toBe(true);
  });

  it('a cancel stops the forked grandchild too', async () => {
    const pidFile = join(dir, 'cancel.pid');
    const controller = new AbortController();
    const started = Date.now();
    const running = exec('sh', [...forking(pidFile)], { signal: controller.signal });
    const pid = await pidFromFile(pidFile);
    controller.abort();
    await expect(running).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await processGone(pid)).toBe(true);
  });

  it('a grandchild that ignores SIGTERM is killed after the grace period', async () => {
    const pidFile = join(dir, 'stubborn.pid');
    const started = Date.now();
    await expect(
      exec('sh', ['-c', `trap '' TERM; sh -c "trap '' TERM; sleep 30" & echo $! > ${pidFile}; wait`], {
        timeoutMs: 500,
      }),
    ).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(await processGone(await pidFromFile(pidFile))).toBe(true);
  });

  it('with inherited output the grandchild is stopped as well', async () => {
    const pidFile = join(dir, 'inherit.pid');
    await expect(
      exec('sh', ['-c', `sleep 30 > /dev/null & echo $! > ${pidFile}; wait`], {
        timeoutMs: 500,
        inheritOutput: true,
      }),
    ).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(await processGone(await pidFromFile(pidFile))).toBe(true);
  });
});

describe('pipeCommands (a | b without a shell) owns both sides', () => {
  it('a timeout stops what either side forked', async () => {
    const pidFile = join(dir, 'pipe.pid');
    const started = Date.now();
    await expect(
      pipeCommands(['sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`], ['cat'], { timeoutMs: 500 }),
    ).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await processGone(await pidFromFile(pidFile))).toBe(true);
  });

  it('reports the receiver that failed, not the sender it left with a broken pipe', async () => {
    await expect(
      pipeCommands(['yes'], ['sh', '-c', 'head -c 1 >/dev/null; echo "disk on fire" >&2; exit 3'], {
        timeoutMs: 10_000,
      }),
    ).rejects.toMatchObject({
      code: 'COMMAND_FAILED',
      message: expect.stringMatching(/receiver side \(exit code 3\): disk on fire/),
    });
  });
});
