import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExec } from '../../src/system/exec.js';

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
