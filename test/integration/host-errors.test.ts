import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { HistoryStore } from '../../src/core/history/store.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { cliPath, runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs', 'runuser']);

/** The built CLI as the unprivileged user nobody. */
const asNobody = (args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn('runuser', ['-u', 'nobody', '--', process.execPath, cliPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });

describe.runIf(enabled)('errors of the host reach the user as what to do, not as a bug (built CLI)', () => {
  let box: BtrfsSandbox;
  let configFile: string;
  let data: string;
  let history: HistoryStore;

  beforeAll(async () => {
    box = await createBtrfsSandbox(256, 'host-errors');
    // nobody must reach the config and the CLI, as on a host where /etc/snapguard is world-readable.
    await chmod(box.dir, 0o755);
    data = await box.subvolume('data');
    const files = join(box.dir, 'files');
    await mkdir(files);
    await writeFile(join(files, 'public.txt'), 'anyone may read this\n');
    await writeFile(join(files, 'secret.key'), 'only root may read this\n', { mode: 0o600 });
    configFile = await box.writeConfig({
      volumes: {
        data: { backend: 'btrfs', path: data },
        gone: { backend: 'btrfs', path: join(box.pool.mountPoint, 'not-there') },
        files: { backend: 'dir', path: files, snapshotDir: join(box.dir, 'files-snapshots') },
      },
    });
    history = new HistoryStore({ contextDir: join(box.dir, 'context') });
    const created = await runBuiltCli(['snapshot', 'create', 'data', 'files', '--config', configFile]);
    expect(created.code, created.stderr).toBe(0);
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('a volume path that does not exist: PATH_MISSING with the path and what to check', async () => {
    const text = await runBuiltCli(['snapshot', 'create', 'gone', '--config', configFile]);
    expect(text.code).toBe(2);
    expect(text.stderr).toContain(join(box.pool.mountPoint, 'not-there'));
    expect(text.stderr).toMatch(/what to do: Check that the path exists .*snapguard doctor/);
    expect(text.stderr).not.toMatch(/bug/i);
    const json = await runBuiltCli(['snapshot', 'create', 'gone', '--json', '--config', configFile]);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'PATH_MISSING' } });
  });

  it('snapshot create as an ordinary user: NOT_ROOT, says to run as root', async () => {
    const text = await asNobody(['snapshot', 'create', 'data', '--config', configFile]);
    expect(text.code).toBe(2);
    expect(text.stderr).toMatch(/what to do: Run snapguard as root/);
    expect(text.stderr).not.toMatch(/bug/i);
    const json = await asNobody(['snapshot', 'create', 'data', '--json', '--config', configFile]);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'NOT_ROOT' } });
  });

  it('a restore test as an ordinary user says it needs root instead of recording a false FAIL', async () => {
    // nobody gets state and history folders of its own (private folders of another user are
    // refused), so that only the snapshot's files stand in the way.
    const own = { context: join(box.dir, 'nobody-context'), state: join(box.dir, 'nobody-state') };
    for (const folder of Object.values(own)) {
      await mkdir(folder, { recursive: true, mode: 0o700 });
      await chown(folder, 65534, 65534);
    }
    const nobodyConfig = join(box.dir, 'nobody.yaml');
    await writeFile(
      nobodyConfig,
      stringify({
        ...parse(await readFile(configFile, 'utf8')),
        contextDir: own.context,
        stateDir: own.state,
      }),
    );
    await chmod(nobodyConfig, 0o644);
    const nobodyHistory = new HistoryStore({ contextDir: own.context });
    const before = (await history.read()).history.restore_tests.length;
    const text = await asNobody(['restore-test', 'files', '--json', '--config', nobodyConfig]);
    expect(text.code, text.stdout + text.stderr).toBe(2);
    expect(JSON.parse(text.stdout)).toMatchObject({
      error: { code: 'NOT_ROOT', message: expect.stringContaining('secret.key') },
    });
    expect((await nobodyHistory.read()).history.restore_tests).toHaveLength(0);
    expect((await history.read()).history.restore_tests).toHaveLength(before);
    // As root the same test passes: the snapshot is fine.
    const root = await runBuiltCli(['restore-test', 'files', '--json', '--config', configFile]);
    expect(root.code, root.stdout + root.stderr).toBe(0);
  });
  it('a filesystem mounted read-only: READ_ONLY_FS from the output of btrfs, with what to do', async () => {
    await exec('mount', ['-o', 'remount,ro', box.pool.mountPoint]);
    try {
      const json = await runBuiltCli(['snapshot', 'create', 'data', '--json', '--config', configFile]);
      expect(json.code).toBe(2);
      const { error } = JSON.parse(json.stdout) as { error: { code: string; message: string; hint: string } };
      expect(error).toMatchObject({
        code: 'READ_ONLY_FS',
        message: expect.stringMatching(/read-only file system/i),
      });
      expect(error.hint).toMatch(/remount it read-write/);
    } finally {
      await exec('mount', ['-o', 'remount,rw', box.pool.mountPoint]);
    }
  });

  it('a reader that closes after the first line (history | head -1): quiet exit 0, no stack trace', async () => {
    await history.update((h) => {
      for (let i = 0; i < 2000; i++)
        h.snapshots.push({
          ...h.snapshots[0]!,
          id: `snap-pipe-${i}`,
          snapshot_name: `data-manual-pipe-${i}`,
        });
    });
    // The output (several hundred KB) is far bigger than a pipe buffer: the CLI is still writing
    // when the reader goes away, as with head -1.
    const child = spawn(
      process.execPath,
      [cliPath, 'history', '--json', '--limit', '5000', '--config', configFile],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    let first = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        first += chunk.toString();
        if (first.includes('\n')) {
          child.stdout.destroy();
          resolve();
        }
      });
    });
    expect(first.split('\n')[0]).toBe('{');
    expect(await ended).toEqual({ code: 0, signal: null });
    expect(stderr).toBe('');
  });
});
