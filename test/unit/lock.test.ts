import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/core/lock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapguard-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

describe('locks (guardrail 4)', () => {
  it('lets one holder in at a time and names the holder to the one refused', async () => {
    const file = join(dir, 'v.lock');
    const lock = await acquireLock(file, { purpose: 'recover containers' });
    await expect(
      acquireLock(file, { purpose: 'snapshot', waitMs: 100, what: 'Volume "containers"' }),
    ).rejects.toMatchObject({
      code: 'LOCKED',
      message: expect.stringContaining(`pid ${process.pid}`),
    });
    await lock.release();
    const again = await acquireLock(file, { purpose: 'snapshot' });
    await again.release();
  });

  it('makes its folder when missing, also when it was removed after an earlier lock; leaves only the lock file, removed on release', async () => {
    const file = join(dir, 'locks', 'v.lock');
    const first = await acquireLock(file, { purpose: 'first' });
    expect(await readdir(join(dir, 'locks'))).toEqual(['v.lock']);
    await first.release();
    await rm(join(dir, 'locks'), { recursive: true });
    const second = await acquireLock(file, { purpose: 'second' });
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ pid: process.pid, purpose: 'second' });
    await second.release();
    expect(await readdir(join(dir, 'locks'))).toEqual([]);
  });

  it('release leaves a lock that another holder owns by now', async () => {
    const file = join(dir, 'v.lock');
    const lock = await acquireLock(file, { purpose: 'mine' });
    const theirs = JSON.stringify({
      pid: 1,
      host: hostname(),
      procStart: undefined,
      purpose: 'theirs',
      since: 'x',
    });
    await writeFile(file, theirs);
    await lock.release();
    expect(await readFile(file, 'utf8')).toBe(theirs);
  });

  it('waits for a holder that releases within the wait time', async () => {
    const file = join(dir, 'v.lock');
    const lock = await acquireLock(file, { purpose: 'first' });
    setTimeout(() => void lock.release(), 150);
    const second = await acquireLock(file, { purpose: 'second', waitMs: 5000 });
    expect(JSON.parse(await readFile(file, 'utf8')).purpose).toBe('second');
    await second.release();
  });

  it('takes over a stale lock of a dead process and says so in the log', async () => {
    const file = join(dir, 'v.lock');
    const pid = await deadPid();
    await writeFile(
      file,
      JSON.stringify({
        pid,
        host: hostname(),
        procStart: '1',
        purpose: 'crashed recover',
        since: '2026-01-01T00:00:00Z',
      }),
    );
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }),
    );
    const lock = await acquireLock(file, { purpose: 'new', logger });
    expect(JSON.parse(await readFile(file, 'utf8')).pid).toBe(process.pid);
    expect(lines.join('')).toContain(`took over a stale lock from pid ${pid}`);
    await lock.release();
  });

  it('takes over a lock whose pid is alive but started at another time (the pid was recycled)', async () => {
    const file = join(dir, 'v.lock');
    // Our own pid with a start time that is not ours: the original owner is gone, the pid reused.
    await writeFile(
      file,
      JSON.stringify({
        pid: process.pid,
        host: hostname(),
        procStart: '0',
        purpose: 'old',
        since: '2026-01-01T00:00:00Z',
      }),
    );
    const lock = await acquireLock(file, { purpose: 'new', waitMs: 0 });
    const owner = JSON.parse(await readFile(file, 'utf8'));
    expect(owner).toMatchObject({ pid: process.pid, purpose: 'new' });
    expect(owner.procStart).toMatch(/^\d+$/);
    expect(owner.procStart).not.toBe('0');
    await lock.release();
  });

  it('does not take over a lock whose pid is alive with the same start time', async () => {
    const file = join(dir, 'v.lock');
    // The start time this process really has, as acquireLock records it.
    const probe = await acquireLock(join(dir, 'probe.lock'), { purpose: 'probe' });
    const procStart = JSON.parse(await readFile(probe.file, 'utf8')).procStart as string;
    await probe.release();
    const held = {
      pid: process.pid,
      host: hostname(),
      procStart,
      purpose: 'old',
      since: '2026-01-01T00:00:00Z',
    };
    await writeFile(file, JSON.stringify(held));
    await expect(acquireLock(file, { purpose: 'new', waitMs: 0 })).rejects.toMatchObject({ code: 'LOCKED' });
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(held);
  });
});
