import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { recover } from '../../src/core/recovery/recover.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { requireBuiltCli, runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';
import { crashCases, expectedAction } from '../helpers/crash-cases.js';
import { afterFilesRecovery, expectedAfterFilesRecovery, treeState } from '../helpers/tree.js';

const run = requireComponents(['getfattr']);

const runCli = (args: string[], env: Record<string, string> = {}) =>
  runBuiltCli(args, { env, timeoutMs: 60_000 });

/** Recovery on the dir backend (copies in plain folders): a file restore, and a crash at every step. */
describe.runIf(run)('dir backend recovery', () => {
  let dir: string;
  let counter = 0;

  beforeAll(async () => {
    requireBuiltCli();
    dir = await mkdtemp(join(tmpdir(), 'snapguard-dir-recover-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function scenario(mode: 'rollback' | 'files') {
    const id = `d${++counter}`;
    const path = join(dir, 'pool', id);
    await mkdir(join(path, 'keep/deep'), { recursive: true });
    await writeFile(join(path, 'keep/deep/a.txt'), 'original a\n');
    await writeFile(join(path, 'conf.yml'), 'good: true\n');
    await mkdir(join(path, 'dir'), { recursive: true });
    await writeFile(join(path, 'dir/x'), 'x1\n');
    const input = {
      contextDir: join(dir, 'context'),
      stateDir: join(dir, 'state'),
      host: 'test-host',
      confirm: 'never' as const,
      volumes: { [id]: { backend: 'dir' as const, path } },
    };
    const configFile = join(dir, `${id}.yaml`);
    await writeFile(configFile, stringify(input));
    const deps = createDeps(buildConfig(input, dir), { logger: silentLogger() });
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

  it('files mode puts the named paths back, keeps every other change, and keeps the state before as a safety copy', async () => {
    const s = await scenario('files');
    const result = await recover(s.deps, {
      volume: s.id,
      snapshot: s.snap.name,
      mode: 'files',
      paths: ['conf.yml', 'dir'],
      reason: 'bad config',
    });
    expect(result.status).toBe('recovered');
    const now = await treeState(s.path);
    expect(afterFilesRecovery(now)).toEqual(expectedAfterFilesRecovery(s.before, s.target));
    const { history } = await s.deps.history.read();
    const entry = history.recoveries.find((r) => r.subvolume === s.id)!;
    expect(entry).toMatchObject({ mode: 'files', outcome: 'success', paths: ['conf.yml', 'dir'] });
    const safety = join(s.deps.config.volumes[s.id]!.snapshotDir, entry.safety_backup!);
    expect(await treeState(safety)).toEqual(s.before);
    // A dir copy is a plain folder without a read-only flag: its history entry says it is writable.
    const recorded = history.snapshots.find((snap) => snap.snapshot_name === entry.safety_backup);
    expect(recorded).toMatchObject({ type: 'pre-recover', backend: 'dir', read_only: false });
  });

  it.each(crashCases)(
    '%s killed %s %s: doctor resolves it and no file of either state is lost',
    async (mode, when, step) => {
      const s = await scenario(mode);
      const killed = await runCli(s.args, { SNAPGUARD_TEST_FAULT: `${when}:${step}` });
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      const doctor = await runCli(['doctor', '--json', '--config', s.configFile]);
      const report = JSON.parse(doctor.stdout) as {
        recoveries: { action: string; outcome: string; detail: string }[];
        ok: boolean;
      };
      expect(report.recoveries, doctor.stderr).toHaveLength(1);
      const resolved = report.recoveries[0]!;
      expect(resolved.action, resolved.detail).toBe(expectedAction(mode, when, step));
      expect(report.ok).toBe(true);
      expect(existsSync(s.path)).toBe(true);
      expect((await readdir(join(dir, 'state', 'recovery'))).filter((n) => n.endsWith('.json'))).toEqual([]);
      // No half-made copy is left next to the volume.
      expect((await readdir(join(dir, 'pool'))).filter((n) => n.includes('snapguard'))).toEqual([]);

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
      const again = await runCli(['doctor', '--json', '--config', s.configFile]);
      expect(again.code).toBe(0);
    },
  );
});
