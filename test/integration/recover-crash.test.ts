import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recover } from '../../src/core/recovery/recover.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';
import { crashCases, expectedAction } from '../helpers/crash-cases.js';
import { afterFilesRecovery, expectedAfterFilesRecovery, treeState } from '../helpers/tree.js';
import { runBuiltCli } from '../helpers/cli.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'getfattr']);

const runCli = (args: string[], env: Record<string, string> = {}) =>
  runBuiltCli(args, { env, timeoutMs: 60_000 });

describe.runIf(run)('crash safety: SIGKILL at every step boundary, then doctor', () => {
  let box: BtrfsSandbox;
  let counter = 0;

  beforeAll(async () => {
    box = await createBtrfsSandbox(768, 'crash');
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  async function scenario(mode: 'rollback' | 'files') {
    const id = `v${++counter}`;
    const path = await box.subvolume(id);
    await mkdir(join(path, 'keep/deep'), { recursive: true });
    await writeFile(join(path, 'keep/deep/a.txt'), 'original a\n');
    await writeFile(join(path, 'conf.yml'), 'good: true\n');
    await mkdir(join(path, 'dir'), { recursive: true });
    await writeFile(join(path, 'dir/x'), 'x1\n');
    const { configFile, deps } = await box.cliVolume(id, path);
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'pre-change' })).created[0]!;
    const target = await treeState(path);
    await writeFile(join(path, 'conf.yml'), 'good: false\n');
    await writeFile(join(path, 'new-after-snapshot'), 'must survive somewhere\n');
    await rm(join(path, 'dir'), { recursive: true });
    await writeFile(join(path, 'keep/deep/a.txt'), 'edited a\n');
    const before = await treeState(path);
    const args = ['recover', id, snap.name, '--yes', '--json', '--config', configFile];
    if (mode === 'files') args.push('--files', 'conf.yml', '--files', 'dir');
    return { id, path, deps, snap, target, before, args, configFile };
  }

  it.each(crashCases)(
    '%s killed %s %s: no file of either state lost, doctor resolves it',
    async (mode, when, step) => {
      const s = await scenario(mode);
      const killed = await runCli(s.args, { SNAPGUARD_TEST_FAULT: `${when}:${step}` });
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      const journals = (await readdir(join(box.dir, 'state', 'recovery'))).filter((n) => n.endsWith('.json'));
      expect(journals.length).toBe(1);

      const doctor = await runCli(['doctor', '--json', '--config', s.configFile]);
      const report = JSON.parse(doctor.stdout) as {
        recoveries: { action: string; outcome: string; detail: string }[];
        ok: boolean;
      };
      expect(report.recoveries, doctor.stderr).toHaveLength(1);
      const resolved = report.recoveries[0]!;
      expect(resolved.action, resolved.detail).toBe(expectedAction(mode, when, step));
      expect(report.ok).toBe(true);
      expect(doctor.code).toBe(1); // something was found and fixed
      expect(existsSync(s.path)).toBe(true);
      expect((await readdir(join(box.dir, 'state', 'recovery'))).filter((n) => n.endsWith('.json'))).toEqual(
        [],
      );

      const now = await treeState(s.path);
      const { history } = await s.deps.history.read();
      const entry = history.recoveries.find((r) => r.subvolume === s.id)!;
      expect(entry.outcome).toBe(resolved.action === 'completed' ? 'success' : 'reverted');
      if (resolved.action === 'reverted') {
        expect(now).toEqual(s.before);
      } else {
        const safety = join(s.deps.config.volumes[s.id]!.snapshotDir, entry.safety_backup!);
        expect(await treeState(safety)).toEqual(s.before);
        if (mode === 'rollback') {
          expect(now).toEqual(s.target);
        } else {
          expect(afterFilesRecovery(now)).toEqual(expectedAfterFilesRecovery(s.before, s.target));
        }
      }
      // Doctor has nothing more to do.
      const again = await runCli(['doctor', '--json', '--config', s.configFile]);
      expect(again.code).toBe(0);
    },
  );

  it.each(['after:move-aside', 'after:restore'])(
    'killed %s and the target snapshot deleted meanwhile: doctor puts the volume back and loses nothing',
    async (fault) => {
      const s = await scenario('rollback');
      const killed = await runCli(s.args, { SNAPGUARD_TEST_FAULT: fault });
      expect(killed.signal).toBe('SIGKILL');
      const restoredState = fault === 'after:restore' ? await treeState(s.path) : undefined;
      await exec('btrfs', ['subvolume', 'delete', s.snap.path]);
      const doctor = await runCli(['doctor', '--json', '--config', s.configFile]);
      const report = JSON.parse(doctor.stdout) as { recoveries: { action: string; detail: string }[] };
      expect(report.recoveries[0]?.action, report.recoveries[0]?.detail).toBe('reverted');
      expect(await treeState(s.path)).toEqual(s.before);
      if (restoredState) {
        // The restored copy was the only copy of the deleted target: it is kept, not deleted.
        const kept = report.recoveries[0]!.detail.match(/kept at (\S+?)(?:;|$)/)?.[1];
        expect(kept).toBeDefined();
        expect(await treeState(kept!)).toEqual(restoredState);
        // One truthful note: the copy is kept, so nothing says it was removed.
        expect(report.recoveries[0]!.detail).not.toMatch(/restored copy was removed/);
      }
    },
  );

  /** A volume with a nested subvolume data/docker (not in any snapshot) whose files change after the snapshot. */
  async function nestedScenario(mode: 'rollback' | 'files') {
    const id = `n${++counter}`;
    const path = await box.subvolume(id);
    await mkdir(join(path, 'data'), { recursive: true });
    await writeFile(join(path, 'data/notes.txt'), 'notes v1\n');
    await writeFile(join(path, 'top.txt'), 'top v1\n');
    await exec('btrfs', ['subvolume', 'create', join(path, 'data/docker')]);
    await writeFile(join(path, 'data/docker/layer'), 'layer v1\n');
    const { configFile, deps } = await box.cliVolume(id, path);
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'pre-change' })).created[0]!;
    const target = await treeState(path);
    await writeFile(join(path, 'data/notes.txt'), 'notes v2\n');
    await writeFile(join(path, 'top.txt'), 'top v2\n');
    await writeFile(join(path, 'data/docker/layer'), 'layer v2, only in the nested subvolume\n');
    await mkdir(join(path, 'data/docker/images'));
    await writeFile(join(path, 'data/docker/images/img'), 'image written after the snapshot\n');
    const before = await treeState(path);
    const args = ['recover', id, snap.name, '--yes', '--json', '--config', configFile];
    if (mode === 'files') args.push('--files', 'data');
    return { id, path, deps, snap, target, before, args, configFile };
  }

  const inNested = (p: string) => p.startsWith('data/docker/');
  const nestedPart = (state: Record<string, string>) =>
    Object.fromEntries(Object.entries(state).filter(([p]) => inNested(p)));
  const withoutNested = (state: Record<string, string>) =>
    Object.fromEntries(Object.entries(state).filter(([p]) => !inNested(p) && p !== 'data/docker'));

  async function expectNestedLive(path: string, before: Record<string, string>) {
    const info = await lstat(join(path, 'data/docker'));
    expect(info.ino).toBe(256); // still a subvolume, in the live tree
    expect(nestedPart(await treeState(path))).toEqual(nestedPart(before));
    const listed = await exec('btrfs', ['subvolume', 'list', '-o', path]);
    expect(listed.stdout.trim().split('\n')).toHaveLength(1);
    expect((await readdir(join(path, 'data'))).filter((n) => n.includes('snapguard'))).toEqual([]);
  }

  const nestedCases = [...crashCases, ['files', 'during', 'copy'] as const];

  it.each(nestedCases)(
    'nested subvolume: %s killed %s %s: its files stay in the live tree, nothing of either state lost',
    async (mode, when, step) => {
      const s = await nestedScenario(mode);
      const killed = await runCli(s.args, { SNAPGUARD_TEST_FAULT: `${when}:${step}` });
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      const doctor = await runCli(['doctor', '--json', '--config', s.configFile]);
      const report = JSON.parse(doctor.stdout) as { recoveries: { action: string; detail: string }[] };
      const resolved = report.recoveries[0]!;
      // Killed in the middle of the copy, the safety snapshot already holds the state before.
      expect(resolved.action, `${resolved.detail}\n${doctor.stderr}`).toBe(
        when === 'during' ? 'completed' : expectedAction(mode, when, step),
      );
      await expectNestedLive(s.path, s.before);
      const now = await treeState(s.path);
      if (resolved.action === 'reverted') {
        expect(now).toEqual(s.before);
      } else {
        const { history } = await s.deps.history.read();
        const entry = history.recoveries.find((r) => r.subvolume === s.id)!;
        const safety = join(s.deps.config.volumes[s.id]!.snapshotDir, entry.safety_backup!);
        expect(withoutNested(await treeState(safety))).toEqual(withoutNested(s.before));
        expect(now['data/notes.txt']).toBe(s.target['data/notes.txt']);
        expect(now['top.txt']).toBe(mode === 'rollback' ? s.target['top.txt'] : s.before['top.txt']);
      }
      const again = await runCli(['doctor', '--json', '--config', s.configFile]);
      expect(again.code).toBe(0);
    },
  );

  it.each(['after:restore', 'after:carry-nested'])(
    'nested subvolume: killed %s and the target snapshot deleted meanwhile: doctor puts the volume back with it',
    async (fault) => {
      const s = await nestedScenario('rollback');
      const killed = await runCli(s.args, { SNAPGUARD_TEST_FAULT: fault });
      expect(killed.signal).toBe('SIGKILL');
      await exec('btrfs', ['subvolume', 'delete', s.snap.path]);
      const doctor = await runCli(['doctor', '--json', '--config', s.configFile]);
      const report = JSON.parse(doctor.stdout) as { recoveries: { action: string; detail: string }[] };
      expect(report.recoveries[0]?.action, report.recoveries[0]?.detail).toBe('reverted');
      expect(await treeState(s.path)).toEqual(s.before);
      await expectNestedLive(s.path, s.before);
    },
  );

  it('the next recover call finds an interrupted recovery and resolves it first', async () => {
    const s = await scenario('rollback');
    const killed = await runCli(s.args, { SNAPGUARD_TEST_FAULT: 'after:move-aside' });
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(s.path)).toBe(false); // the volume path is gone until the journal is replayed
    const result = await recover(s.deps, {
      volume: s.id,
      snapshot: s.snap.name,
      dryRun: false,
      reason: 'again',
    });
    expect(result.resolved?.[0]?.action).toBe('completed');
    expect(result.status).toBe('recovered');
    expect(await treeState(s.path)).toEqual(s.target);
  });

  it('a journal whose pid now belongs to another process (a recycled pid) is resolved, not left in progress', async () => {
    const s = await scenario('rollback');
    const killed = await runCli(s.args, { SNAPGUARD_TEST_FAULT: 'after:move-aside' });
    expect(killed.signal).toBe('SIGKILL');
    const dir = join(s.deps.config.stateDir, 'recovery');
    const [name] = (await readdir(dir)).filter((f) => f.endsWith('.json'));
    const file = join(dir, name!);
    const journal = JSON.parse(await readFile(file, 'utf8')) as { pid: number; procStart?: string };
    expect(journal.procStart).toBeDefined();
    // A live process that is not the recovery takes over the dead one's pid, as a recycled pid would.
    const other = spawn('sleep', ['300'], { stdio: 'ignore' });
    try {
      await writeFile(file, JSON.stringify({ ...journal, pid: other.pid }));
      const result = await recover(s.deps, {
        volume: s.id,
        snapshot: s.snap.name,
        dryRun: false,
        reason: 'again',
      });
      expect(result.resolved?.[0]?.action).toBe('completed');
      expect(await treeState(s.path)).toEqual(s.target);
    } finally {
      other.kill('SIGKILL');
    }
  });
});
