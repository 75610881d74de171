import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processStart } from '../../src/core/lock.js';
import { resolveUnfinishedRecoveries } from '../../src/core/recovery/resume.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireBuiltCli, runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';
import { treeState } from '../helpers/tree.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs']);

/** The branches of crash resolution that neither complete nor revert: a journal it cannot read, and one whose owner still runs. */
describe.runIf(run)('resolving unfinished recoveries: unreadable journal, owner still running', () => {
  let box: BtrfsSandbox;
  let counter = 0;

  beforeAll(async () => {
    requireBuiltCli();
    box = await createBtrfsSandbox(256, 'resume');
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  async function volume() {
    const id = `r${++counter}`;
    const path = await box.subvolume(id);
    await writeFile(join(path, 'conf.yml'), 'good: true\n');
    const { configFile, deps } = await box.cliVolume(id, path);
    return { id, path, configFile, deps };
  }

  const journals = async (stateDir: string) =>
    (await readdir(join(stateDir, 'recovery'))).filter((n) => n.endsWith('.json'));

  it('a journal that does not parse is reported unreadable, named, kept, and nothing is changed', async () => {
    const v = await volume();
    await createSnapshots(v.deps, { volumes: [v.id], type: 'pre-change' });
    // A torn write leaves half a journal in the private recovery folder.
    await mkdir(join(v.deps.config.stateDir, 'recovery'), { recursive: true, mode: 0o700 });
    const file = join(v.deps.config.stateDir, 'recovery', 'rec-torn.json');
    await writeFile(file, '{"recoveryId": "rec-torn", "items": [', { mode: 0o600 });
    const before = await treeState(v.path);
    const reports = await resolveUnfinishedRecoveries(v.deps);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ action: 'unreadable', volumes: [] });
    expect(reports[0]?.detail).toContain('rec-torn.json');
    expect(reports[0]?.detail).toMatch(/inspect and remove it by hand/);
    expect(await readFile(file, 'utf8')).toBe('{"recoveryId": "rec-torn", "items": [');
    expect(await treeState(v.path)).toEqual(before);
    const { history } = await v.deps.history.read();
    expect(history.recoveries).toEqual([]);
    // doctor says the same and fails, since it could not resolve it.
    const doctor = await runBuiltCli(['doctor', '--json', '--config', v.configFile], { timeoutMs: 60_000 });
    const report = JSON.parse(doctor.stdout) as { recoveries: { action: string }[]; ok: boolean };
    expect(report.recoveries.map((r) => r.action)).toEqual(['unreadable']);
    expect(report.ok).toBe(false);
    await rm(file);
  });

  it('a journal whose owner still runs (same pid, same start time) is left alone as in progress; once the owner is gone it is completed', async () => {
    const v = await volume();
    const snap = (await createSnapshots(v.deps, { volumes: [v.id], type: 'pre-change' })).created[0]!;
    const target = await treeState(v.path);
    await writeFile(join(v.path, 'conf.yml'), 'good: false\n');
    const killed = await runBuiltCli(
      ['recover', v.id, snap.name, '--yes', '--json', '--config', v.configFile],
      {
        env: { SNAPGUARD_TEST_FAULT: 'after:move-aside' },
        timeoutMs: 60_000,
      },
    );
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const [name] = await journals(v.deps.config.stateDir);
    const file = join(v.deps.config.stateDir, 'recovery', name!);
    const journal = JSON.parse(await readFile(file, 'utf8')) as { pid: number; procStart?: string };
    // A running process with its own start time stands for a recovery that is still at work.
    const owner = spawn('sleep', ['300'], { stdio: 'ignore' });
    try {
      const start = processStart(owner.pid!);
      expect(start).toBeDefined();
      await writeFile(file, JSON.stringify({ ...journal, pid: owner.pid, procStart: start }));
      const reports = await resolveUnfinishedRecoveries(v.deps);
      expect(reports).toEqual([
        expect.objectContaining({
          action: 'in-progress',
          volumes: [v.id],
          detail: `pid ${owner.pid} is still running it`,
        }),
      ]);
      // Untouched: the volume is still moved aside, the journal is still there, no history entry.
      expect(existsSync(v.path)).toBe(false);
      expect(await journals(v.deps.config.stateDir)).toEqual([name]);
      expect((await v.deps.history.read()).history.recoveries).toEqual([]);
    } finally {
      owner.kill('SIGKILL');
      await new Promise((resolve) => owner.once('exit', resolve));
    }
    const after = await resolveUnfinishedRecoveries(v.deps);
    expect(after.map((r) => r.action)).toEqual(['completed']);
    expect(await treeState(v.path)).toEqual(target);
    expect(await journals(v.deps.config.stateDir)).toEqual([]);
  });
});
