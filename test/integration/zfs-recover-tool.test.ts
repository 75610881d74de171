import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createZfsBackend } from '../../src/backends/zfs.js';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { recover } from '../../src/core/recovery/recover.js';
import { formatSnapshotName, isOwnedSnapshotName } from '../../src/core/naming.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { requireComponents } from '../helpers/env.js';
import { afterFilesRecovery, expectedAfterFilesRecovery, treeState } from '../helpers/tree.js';
import { createZfsSandbox, exec, type ZfsSandbox } from '../helpers/zfs.js';
import { runBuiltCli } from '../helpers/cli.js';

const run = requireComponents(['zfs-fuse', 'zfs', 'zpool', 'getfattr']);

const runCli = (args: string[], env: Record<string, string> = {}) =>
  runBuiltCli(args, { env, timeoutMs: 60_000 });

async function snapshotGuids(dataset: string): Promise<Record<string, string>> {
  const result = await exec('zfs', ['get', '-H', '-p', '-d', '1', '-o', 'name,value', 'guid', dataset]);
  return Object.fromEntries(
    result.stdout
      .split('\n')
      .filter((line) => line.includes('@'))
      .map((line) => {
        const [name, guid] = line.split('\t') as [string, string];
        return [name.slice(name.indexOf('@') + 1), guid];
      }),
  );
}

describe.runIf(run)('the recover tool on zfs volumes', () => {
  let sandbox: ZfsSandbox;
  let counter = 0;

  beforeAll(async () => {
    sandbox = await createZfsSandbox('rectool', 192);
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  /** An owned target, then an owned and a sanoid snapshot newer than it, then a broken live state. */
  async function scenario() {
    const id = `z${++counter}`;
    const { dataset, mountPoint: path } = await sandbox.dataset(id);
    await mkdir(join(path, 'keep/deep'), { recursive: true });
    await writeFile(join(path, 'keep/deep/a.txt'), 'original a\n');
    await writeFile(join(path, 'conf.yml'), 'good: true\n');
    await mkdir(join(path, 'dir'));
    await writeFile(join(path, 'dir/x'), 'x1\n');
    const input = {
      contextDir: join(sandbox.dir, 'context'),
      stateDir: join(sandbox.dir, 'state'),
      host: 'test-host',
      confirm: 'never' as const,
      volumes: { [id]: { backend: 'zfs' as const, dataset, path } },
    };
    const configFile = join(sandbox.dir, `${id}.yaml`);
    await writeFile(configFile, stringify(input));
    const deps = createDeps(buildConfig(input, sandbox.dir), { logger: silentLogger() });
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'pre-change' })).created[0]!;
    const target = await treeState(path);
    await writeFile(join(path, 'conf.yml'), 'good: maybe\n');
    await exec('zfs', ['snapshot', `${dataset}@${id}-manual-20991231-000000`]);
    await exec('zfs', ['snapshot', `${dataset}@autosnap_2099-12-31_00:00:00_hourly`]);
    await writeFile(join(path, 'conf.yml'), 'good: false\n');
    await writeFile(join(path, 'new-after-snapshot'), 'must survive somewhere\n');
    await rm(join(path, 'dir'), { recursive: true });
    await writeFile(join(path, 'keep/deep/a.txt'), 'edited a\n');
    const before = await treeState(path);
    const guids = await snapshotGuids(dataset);
    return { id, dataset, path, deps, snap, target, before, guids, configFile };
  }

  it('the plan lists each newer snapshot as kept and promises no zfs rollback; a dry run changes nothing', async () => {
    const s = await scenario();
    const result = await recover(s.deps, { volume: s.id, snapshot: s.snap.name, dryRun: true });
    expect(result.status).toBe('planned');
    const item = result.plan!.volumes[0]!;
    expect(item.newerSnapshots?.map((n) => `${n.name} ${n.producer} ${n.effect}`)).toEqual([
      `${s.id}-manual-20991231-000000 snapguard kept unchanged`,
      'autosnap_2099-12-31_00:00:00_hourly sanoid kept unchanged',
    ]);
    expect(result.plan!.steps.join('\n')).toMatch(/no zfs rollback, nothing destroyed/);
    expect(result.plan!.steps.join('\n')).toMatch(/All 2 newer snapshots .* stay on .* unchanged/);
    expect(item.changes?.modified.first).toEqual(expect.arrayContaining(['conf.yml', 'keep/deep/a.txt']));
    expect(item.changes?.added.first).toEqual(expect.arrayContaining(['dir']));
    expect(item.changes?.removed.first).toEqual(['new-after-snapshot']);
    expect(await treeState(s.path)).toEqual(s.before);
    expect(await snapshotGuids(s.dataset)).toEqual(s.guids);
  });

  it('rollback brings back the exact tree, keeps every snapshot and the history entry; undo works', async () => {
    const s = await scenario();
    const result = await recover(s.deps, { volume: s.id, snapshot: s.snap.name, reason: 'bad deploy' });
    expect(result.status).toBe('recovered');
    expect(await treeState(s.path)).toEqual(s.target);
    const after = await snapshotGuids(s.dataset);
    for (const [name, guid] of Object.entries(s.guids)) expect(after[name]).toBe(guid);
    const safety = result.safetyBackup!;
    expect(Object.keys(after)).toEqual([...Object.keys(s.guids), safety]);
    const { history } = await s.deps.history.read();
    expect(history.recoveries.at(-1)).toMatchObject({
      subvolume: s.id,
      restored_snapshot: s.snap.name,
      safety_backup: safety,
      outcome: 'success',
    });
    // The safety snapshot holds the replaced state.
    const reader = await createZfsBackend(exec, isOwnedSnapshotName).openSnapshot(
      s.deps.config.volumes[s.id]!,
      safety,
    );
    try {
      expect(await treeState(reader.path)).toEqual(s.before);
    } finally {
      await reader.close();
    }

    const undo = await recover(s.deps, { volume: s.id, snapshot: safety, reason: 'undo' });
    expect(undo.status).toBe('recovered');
    expect(await treeState(s.path)).toEqual(s.before);
    const afterUndo = await snapshotGuids(s.dataset);
    for (const [name, guid] of Object.entries(after)) expect(afterUndo[name]).toBe(guid);
  });

  it('files mode restores one file and one directory with their metadata, the rest stays', async () => {
    const s = await scenario();
    const result = await recover(s.deps, {
      volume: s.id,
      snapshot: s.snap.name,
      mode: 'files',
      paths: ['conf.yml', 'dir'],
    });
    expect(result.status).toBe('recovered');
    const now = await treeState(s.path);
    expect(afterFilesRecovery(now)).toEqual(expectedAfterFilesRecovery(s.before, s.target));
    const after = await snapshotGuids(s.dataset);
    for (const [name, guid] of Object.entries(s.guids)) expect(after[name]).toBe(guid);
  });

  it('a snapshot taken while the plan waits at the gate (sanoid naming, no folder) voids the confirmation; nothing changes', async () => {
    const s = await scenario();
    let gateSeen = false;
    const error = await recover(
      s.deps,
      { volume: s.id, snapshot: s.snap.name },
      {
        confirm: async () => {
          gateSeen = true;
          await exec('zfs', ['snapshot', `${s.dataset}@autosnap_2099-12-31_12:00:00_daily`]);
          return true;
        },
      },
    ).catch((e: unknown) => e);
    expect(gateSeen).toBe(true);
    expect((error as { code?: string }).code).toBe('CONFIRMATION_INVALID');
    expect(await treeState(s.path)).toEqual(s.before);
    const after = await snapshotGuids(s.dataset);
    for (const [name, guid] of Object.entries(s.guids)) expect(after[name]).toBe(guid);
    expect(Object.keys(after).filter((name) => name.includes('pre-recover'))).toEqual([]);
  });

  it('the safety snapshot takes the next free name when the dataset already has one from the same second', async () => {
    const s = await scenario();
    const now = new Date();
    const taken = formatSnapshotName(s.id, 'pre-recover', undefined, now);
    await exec('zfs', ['snapshot', `${s.dataset}@${taken}`]);
    const guids = await snapshotGuids(s.dataset);
    const deps = createDeps(s.deps.config, { logger: silentLogger(), clock: () => now });
    const planned = await recover(deps, { volume: s.id, snapshot: s.snap.name, dryRun: true });
    expect(planned.plan!.volumes[0]!.safetyBackup).toBe(
      formatSnapshotName(s.id, 'pre-recover', undefined, now, 2),
    );
    const result = await recover(deps, { volume: s.id, snapshot: s.snap.name });
    expect(result.status).toBe('recovered');
    expect(result.safetyBackup).toBe(formatSnapshotName(s.id, 'pre-recover', undefined, now, 2));
    expect(await treeState(s.path)).toEqual(s.target);
    const after = await snapshotGuids(s.dataset);
    for (const [name, guid] of Object.entries(guids)) expect(after[name]).toBe(guid);
  });

  it('refuses files-mode paths that leave the snapshot, before anything changes', async () => {
    const s = await scenario();
    const error = await recover(s.deps, {
      volume: s.id,
      snapshot: s.snap.name,
      mode: 'files',
      paths: ['../outside'],
    }).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('BAD_INPUT');
    expect(await treeState(s.path)).toEqual(s.before);
    expect(await snapshotGuids(s.dataset)).toEqual(s.guids);
  });

  it.each([
    ['rollback', 'after', 'stop-services'],
    ['rollback', 'after', 'safety-snapshot'],
    ['rollback', 'before', 'copy'],
    ['rollback', 'after', 'copy'],
    ['files', 'after', 'safety-snapshot'],
    ['files', 'after', 'copy'],
  ] as const)(
    '%s killed %s %s: doctor completes or reverts, no state lost, every snapshot kept',
    async (mode, when, step) => {
      const s = await scenario();
      const args = ['recover', s.id, s.snap.name, '--yes', '--json', '--config', s.configFile];
      if (mode === 'files') args.push('--files', 'conf.yml', '--files', 'dir');
      const killed = await runCli(args, { SNAPGUARD_TEST_FAULT: `${when}:${step}` });
      expect(killed.signal, killed.stderr).toBe('SIGKILL');

      const doctor = await runCli(['doctor', '--json', '--config', s.configFile]);
      const report = JSON.parse(doctor.stdout) as { recoveries: { action: string }[]; ok: boolean };
      expect(report.recoveries, doctor.stderr).toHaveLength(1);
      const action = report.recoveries[0]!.action;
      expect(['completed', 'reverted']).toContain(action);
      expect(
        (await readdir(join(sandbox.dir, 'state', 'recovery'))).filter((n) => n.endsWith('.json')),
      ).toEqual([]);
      const now = await treeState(s.path);
      const { history } = await s.deps.history.read();
      const entry = history.recoveries.filter((r) => r.subvolume === s.id).at(-1)!;
      if (action === 'reverted') {
        expect(now).toEqual(s.before);
      } else {
        if (mode === 'rollback') expect(now).toEqual(s.target);
        else expect(now['conf.yml']).toBe(s.target['conf.yml']);
        const reader = await createZfsBackend(exec, isOwnedSnapshotName).openSnapshot(
          s.deps.config.volumes[s.id]!,
          entry.safety_backup!,
        );
        try {
          expect(await treeState(reader.path)).toEqual(s.before);
        } finally {
          await reader.close();
        }
      }
      const after = await snapshotGuids(s.dataset);
      for (const [name, guid] of Object.entries(s.guids)) expect(after[name]).toBe(guid);
      expect(await readFile(join(s.path, 'keep/deep/a.txt'), 'utf8')).toMatch(/a\n$/);
    },
  );
});
