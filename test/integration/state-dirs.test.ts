import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs']);

/**
 * A journal another user wrote: it claims an interrupted rollback of volume "app" whose live path
 * is a folder of the attacker's choosing and whose snapshots lie in a folder the attacker filled.
 * Replaying it would copy the planted folder to that path.
 */
function forgedJournal(target: string, plantedDir: string) {
  return {
    version: 1,
    recoveryId: 'rec-20300101-000000-evil',
    mode: 'rollback',
    startedAt: '2030-01-01T00:00:00.000Z',
    pid: 2 ** 22 + 12345,
    reason: null,
    operationId: null,
    items: [
      {
        volume: 'app',
        backend: 'dir',
        path: target,
        snapshotDir: plantedDir,
        target: 'app-manual-20300101-000000',
        safety: 'app-pre-recover-20300101-000001',
        paths: [],
        units: [],
        done: ['stop-services'],
        current: 'move-aside',
      },
    ],
  };
}

describe.runIf(run)('state files cannot be turned against root (real btrfs, built CLI)', () => {
  let box: BtrfsSandbox;
  let app: string;
  let plantedDir: string;
  let counter = 0;

  beforeAll(async () => {
    box = await createBtrfsSandbox(256, 'state');
    app = await box.subvolume('app');
    await writeFile(join(app, 'file'), 'app v1\n');
    plantedDir = join(box.dir, 'planted');
    await mkdir(join(plantedDir, 'app-manual-20300101-000000'), { recursive: true });
    await writeFile(join(plantedDir, 'app-manual-20300101-000000', 'payload'), 'planted by another user\n');
    await mkdir(join(plantedDir, 'app-pre-recover-20300101-000001'));
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  /** A config whose stateDir holds the forged journal; returns the files to look at. */
  async function setup(stateMode: number) {
    const n = ++counter;
    const stateDir = join(box.dir, `state-${n}`);
    const victim = join(box.dir, `victim-${n}`);
    await mkdir(join(stateDir, 'recovery'), { recursive: true, mode: 0o700 });
    await chmod(stateDir, stateMode);
    const journal = join(stateDir, 'recovery', 'rec-20300101-000000-evil.json');
    await writeFile(journal, JSON.stringify(forgedJournal(victim, plantedDir)));
    const file = join(box.dir, `snapguard-${n}.yaml`);
    await writeFile(
      file,
      stringify({
        contextDir: join(box.dir, `context-${n}`),
        stateDir,
        confirm: 'never',
        volumes: { app: { backend: 'btrfs', path: app } },
      }),
    );
    return { file, stateDir, victim, journal };
  }

  async function untouched(victim: string, journal: string) {
    expect(existsSync(victim)).toBe(false);
    expect(existsSync(journal)).toBe(true);
    expect(await readFile(join(app, 'file'), 'utf8')).toBe('app v1\n');
    expect(await readdir(join(plantedDir))).toEqual([
      'app-manual-20300101-000000',
      'app-pre-recover-20300101-000001',
    ]);
  }

  it('doctor refuses a stateDir every user can write, says so, and touches nothing', async () => {
    const { file, victim, journal, stateDir } = await setup(0o777);
    const out = await runBuiltCli(['doctor', '--config', file]);
    expect(out.code).toBe(2);
    expect(out.stdout).toContain(stateDir);
    expect(out.stdout).toMatch(/writable by every user/);
    await untouched(victim, journal);
  });

  it('every verb refuses that stateDir with a clear error (exit 3)', async () => {
    const { file, victim, journal } = await setup(0o777);
    for (const args of [
      ['snapshot', 'create', 'app'],
      ['snapshot', 'list'],
      ['prune', 'app', '--yes'],
      ['recover', 'app', 'app-manual-20300101-000000', '--yes'],
      ['health'],
    ]) {
      const out = await runBuiltCli([...args, '--config', file]);
      expect(out.code, args.join(' ')).toBe(3);
      expect(out.stderr, args.join(' ')).toMatch(/stateDir .* writable by every user/);
      expect(out.stderr, args.join(' ')).toMatch(/chmod 700/);
    }
    await untouched(victim, journal);
    const snapshots = (await exec('btrfs', ['subvolume', 'list', '-o', box.pool.mountPoint])).stdout;
    expect(snapshots).not.toMatch(/app-manual-\d{8}/);
  });

  it('a stateDir owned by another user is refused too', async () => {
    const { file, victim, journal, stateDir } = await setup(0o700);
    await exec('chown', ['12345:12345', stateDir]);
    const out = await runBuiltCli(['doctor', '--config', file]);
    expect(out.code).toBe(2);
    expect(out.stdout).toMatch(/owned by uid 12345/);
    await untouched(victim, journal);
  });

  it('doctor does not replay a journal whose paths are not the configured volume, even from a private stateDir', async () => {
    const { file, victim, journal } = await setup(0o700);
    const out = await runBuiltCli(['doctor', '--config', file, '--json']);
    expect(out.code).toBe(2);
    const report = JSON.parse(out.stdout) as { recoveries: { action: string; detail: string }[] };
    expect(report.recoveries).toHaveLength(1);
    expect(report.recoveries[0]?.action).toBe('refused');
    expect(report.recoveries[0]?.detail).toContain(`path ${victim} is not the configured ${app}`);
    expect(report.recoveries[0]?.detail).toContain('snapshotDir');
    await untouched(victim, journal);
    // Nor does a recovery of the volume, which resolves interrupted ones first.
    const history = join(box.dir, `context-${counter}`, 'backup-history.json');
    const historyBefore = await readFile(history, 'utf8').catch(() => '');
    const listed = await runBuiltCli(['snapshot', 'create', 'app', '--config', file]);
    // The snapshot is taken; the refused journal is a warning (exit 1), not replayed.
    expect(listed.code).toBe(1);
    expect(listed.stdout + listed.stderr).toMatch(/refused, .* does not match the configuration/);
    await untouched(victim, journal);
    expect(await readFile(history, 'utf8')).not.toContain('rec-20300101-000000-evil');
    expect(historyBefore).not.toContain('rec-20300101-000000-evil');
  });
});
