import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HistoryStore } from '../../src/core/history/store.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';
import { pidFromFile, processGone } from '../helpers/process.js';
import { cliPath, runBuiltCli } from '../helpers/cli.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs']);

const runCli = (args: string[]) => runBuiltCli(args, { timeoutMs: 60_000 });

describe.runIf(run)('snapguard wrap (built CLI, real btrfs)', () => {
  let box: BtrfsSandbox;
  let page: string;
  let configFile: string;
  let history: HistoryStore;
  let sitePath: string;

  beforeAll(async () => {
    box = await createBtrfsSandbox(384, 'wrap');
    const web = await box.subvolume('web');
    page = join(web, 'index.html');
    configFile = await box.writeConfig({
      confirm: 'elicit-or-token',
      volumes: {
        web: { backend: 'btrfs', path: web },
        site: { backend: 'btrfs', path: (sitePath = await box.subvolume('site')), minInterval: '1h' },
      },
    });
    history = new HistoryStore({ contextDir: join(box.dir, 'context') });
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  const wrap = (extra: string[], command: string) =>
    runCli(['wrap', '--config', configFile, '--volume', 'web', ...extra, '--', '/bin/sh', '-c', command]);

  async function snapshotOf(operation: string) {
    return (await history.read()).history.snapshots.filter((s) => s.operation === operation);
  }

  it('success: snapshots, runs, validates and marks the snapshot success', async () => {
    await writeFile(page, 'good v1\n');
    const out = await wrap(
      ['--operation', 'deploy-ok', '--deploy', '--validate', `grep -q "good v2" ${page}`],
      `echo "good v2" > ${page}`,
    );
    expect(out.code, out.stderr).toBe(0);
    expect(await readFile(page, 'utf8')).toBe('good v2\n');
    const snaps = await snapshotOf('deploy-ok');
    expect(snaps).toHaveLength(1);
    expect(snaps[0]).toMatchObject({ type: 'pre-deploy', outcome: 'success' });
    expect((await history.read()).history.recoveries).toHaveLength(0);
  });

  it('a failing command without --auto-rollback: exit code of the command, snapshot failed, nothing rolled back', async () => {
    await writeFile(page, 'good v2\n');
    const out = await wrap(['--operation', 'change-fails'], `echo broken > ${page}; exit 3`);
    expect(out.code).toBe(3);
    expect(await readFile(page, 'utf8')).toBe('broken\n');
    expect((await snapshotOf('change-fails'))[0]).toMatchObject({ type: 'pre-change', outcome: 'failed' });
    expect(out.stderr).toMatch(/snapguard recover --operation-id op-/);
    expect((await history.read()).history.recoveries).toHaveLength(0);
  });

  it('a failing command with --auto-rollback: rolled back without asking, recorded', async () => {
    await writeFile(page, 'good v3\n');
    const out = await wrap(
      ['--operation', 'change-rb', '--auto-rollback', '--json'],
      `echo broken > ${page}; exit 4`,
    );
    expect(out.code).toBe(4);
    expect(await readFile(page, 'utf8')).toBe('good v3\n');
    const result = JSON.parse(out.stdout) as { failure: string; rollback: { status: string } };
    expect(result.failure).toBe('command-failed');
    expect(result.rollback.status).toBe('recovered');
    const snap = (await snapshotOf('change-rb'))[0]!;
    expect(snap.outcome).toBe('failed');
    const rec = (await history.read()).history.recoveries.find(
      (r) => r.restored_snapshot === snap.snapshot_name,
    );
    expect(rec).toMatchObject({
      outcome: 'success',
      reason: 'command-failed',
      mode: 'rollback',
      operation_id: snap.operation_id,
    });
  });

  it('failing validation with --auto-rollback: restored, recovery reason validation-failed, exit code of the validation', async () => {
    await writeFile(page, 'good v4\n');
    const out = await wrap(
      ['--operation', 'deploy-bad', '--auto-rollback', '--validate', `grep -q good ${page}`],
      `echo "500 error" > ${page}`,
    );
    expect(out.code).toBe(1);
    expect(await readFile(page, 'utf8')).toBe('good v4\n');
    expect(out.stderr).toMatch(/validation failed/);
    expect(out.stderr).toMatch(/rolled back/);
    const snap = (await snapshotOf('deploy-bad'))[0]!;
    expect(snap.outcome).toBe('failed');
    const rec = (await history.read()).history.recoveries.find(
      (r) => r.restored_snapshot === snap.snapshot_name,
    );
    expect(rec).toMatchObject({ outcome: 'success', reason: 'validation-failed' });
  });

  it('--auto-rollback within minInterval after a file restore goes back to the state just before the command, not to the pre-recover snapshot', async () => {
    const file = join(sitePath, 'index.html');
    await writeFile(file, 'good\n');
    const made = await runCli([
      'snapshot',
      'create',
      'site',
      '--type',
      'pre-change',
      '--config',
      configFile,
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const name = (JSON.parse(made.stdout) as { created: { name: string }[] }).created[0]!.name;
    await writeFile(file, 'broken\n');
    const restore = await runCli([
      'recover',
      'site',
      name,
      '--files',
      'index.html',
      '--yes',
      '--config',
      configFile,
    ]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(await readFile(file, 'utf8')).toBe('good\n');
    // The user's latest work, then a change that fails.
    await writeFile(join(sitePath, 'latest'), 'latest work\n');
    const out = await runCli([
      'wrap',
      '--config',
      configFile,
      '--volume',
      'site',
      '--operation',
      'edit-site',
      '--auto-rollback',
      '--json',
      '--',
      '/bin/sh',
      '-c',
      `echo "500" > ${file}; exit 5`,
    ]);
    expect(out.code, out.stderr).toBe(5);
    const result = JSON.parse(out.stdout) as {
      rollback: { status: string };
      snapshots: { reused: boolean }[];
    };
    expect(result.rollback.status).toBe('recovered');
    expect(result.snapshots).toEqual([expect.objectContaining({ reused: false })]);
    expect(await readFile(file, 'utf8')).toBe('good\n');
    expect(await readFile(join(sitePath, 'latest'), 'utf8')).toBe('latest work\n');
  });

  it('Ctrl-C during the command reaches the command (its own process group) and wrap records the failure', async () => {
    await writeFile(page, 'good v5\n');
    const marks = (name: string) => join(box.dir, `sigint-${name}`);
    // The command traps SIGINT and says so; its background sleep must not outlive it.
    const command = [
      `trap 'echo interrupted > ${marks('trap')}; exit 130' INT`,
      `sleep 30 & echo $! > ${marks('grandchild')}`,
      `echo $$ > ${marks('ready')}`,
      'wait',
    ].join('; ');
    const child = spawn(
      process.execPath,
      [
        cliPath,
        'wrap',
        '--config',
        configFile,
        '--volume',
        'web',
        '--operation',
        'interrupted',
        '--',
        '/bin/sh',
        '-c',
        command,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    try {
      for (let i = 0; i < 400 && !existsSync(marks('ready')); i++)
        await new Promise((r) => setTimeout(r, 50));
      // A terminal sends SIGINT to its foreground group: snapguard's, which the command is no longer in.
      child.kill('SIGINT');
      const end = await ended;
      expect(end, stderr).toEqual({ code: 130, signal: null });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    expect(await readFile(marks('trap'), 'utf8')).toBe('interrupted\n');
    expect(await processGone(await pidFromFile(marks('grandchild')))).toBe(true);
    expect((await snapshotOf('interrupted'))[0]).toMatchObject({ outcome: 'failed' });
  });
});
