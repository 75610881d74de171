import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { completeOperation, createSnapshots, listSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.runIf(enabled)('snapshots on real btrfs', () => {
  let sandbox: BtrfsSandbox;
  let deps: Deps;
  let volumePath: string;
  let clockTime = Date.UTC(2026, 10, 21, 14, 30, 0);

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'snap');
    volumePath = await sandbox.subvolume('containers');
    await writeFile(join(volumePath, 'compose.yml'), 'image: v1\n');
    deps = sandbox.deps(
      { volumes: { containers: { backend: 'btrfs', path: volumePath, minInterval: '1h' } } },
      { clock: () => new Date(clockTime) },
    );
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('creates, lists and completes: a read-only snapshot, a history entry, an outcome', async () => {
    const created = await createSnapshots(deps, {
      volumes: ['containers'],
      type: 'pre-deploy',
      operation: 'deploy-immich',
    });
    expect(created.created).toHaveLength(1);
    const snap = created.created[0]!;
    expect(snap.name).toBe('containers-pre-deploy-deploy-immich-20261121-143000');
    expect(snap.path).toBe(join(sandbox.pool.mountPoint, '.snapshots', 'containers', snap.name));
    // Really read-only, really a snapshot of the data at that moment.
    expect((await exec('btrfs', ['property', 'get', '-ts', snap.path, 'ro'])).stdout.trim()).toBe('ro=true');
    await expect(writeFile(join(snap.path, 'x'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    await writeFile(join(volumePath, 'compose.yml'), 'image: v2\n');
    expect(await readFile(join(snap.path, 'compose.yml'), 'utf8')).toBe('image: v1\n');

    const listed = await listSnapshots(deps, { volume: 'containers' });
    expect(listed.total).toBe(1);
    expect(listed.snapshots[0]).toMatchObject({
      name: snap.name,
      type: 'pre-deploy',
      operation: 'deploy-immich',
      owned: true,
      readOnly: true,
      outcome: 'pending',
      operationId: created.operationId,
      location: 'local',
    });

    const completed = await completeOperation(deps, {
      operationId: created.operationId,
      outcome: 'success',
      notes: 'validated',
    });
    expect(completed.snapshots.map((s) => s.outcome)).toEqual(['success']);
    const history = JSON.parse(await readFile(deps.history.file, 'utf8'));
    expect(history.snapshots).toHaveLength(1);
    expect(history.snapshots[0]).toMatchObject({
      subvolume: 'containers',
      type: 'pre-deploy',
      operation: 'deploy-immich',
      operation_id: created.operationId,
      snapshot_name: snap.name,
      path: snap.path,
      outcome: 'success',
      notes: 'validated',
      host: 'test-host',
    });
  });

  it('skips a pre-change snapshot within minInterval and returns the existing one; force takes a new one', async () => {
    clockTime += 10 * 60_000;
    const skipped = await createSnapshots(deps, {
      volumes: ['containers'],
      type: 'pre-change',
      operation: 'edit-traefik',
    });
    expect(skipped.created).toEqual([]);
    expect(skipped.skipped).toEqual([
      expect.objectContaining({
        volume: 'containers',
        existing: expect.objectContaining({ name: 'containers-pre-deploy-deploy-immich-20261121-143000' }),
      }),
    ]);
    expect(skipped.skipped[0]!.reason).toContain('minInterval 1h');
    // manual snapshots are not pre-change snapshots: minInterval does not apply
    const manual = await createSnapshots(deps, { volumes: ['containers'], type: 'manual' });
    expect(manual.created).toHaveLength(1);
    const forced = await createSnapshots(deps, {
      volumes: ['containers'],
      type: 'pre-change',
      operation: 'edit-traefik',
      force: true,
    });
    expect(forced.created).toHaveLength(1);
  });

  it('gives a second snapshot in the same second the -2 suffix', async () => {
    clockTime += 3 * 3600_000;
    const first = await createSnapshots(deps, { volumes: ['containers'], type: 'manual' });
    const second = await createSnapshots(deps, { volumes: ['containers'], type: 'manual' });
    expect(second.created[0]!.name).toBe(`${first.created[0]!.name}-2`);
    const listed = await listSnapshots(deps, { volume: 'containers', type: 'manual', limit: 1 });
    expect(listed.snapshots[0]!.name).toBe(`${first.created[0]!.name}-2`);
  });

  it('lists snapshots of other tools only when asked, as foreign, and never counts them as owned', async () => {
    const snapshotDir = deps.config.volumes.containers!.snapshotDir;
    for (const name of ['containers.20261120T0200', 'autosnap_2026-11-21_14:00:00_hourly']) {
      await exec('btrfs', ['subvolume', 'snapshot', '-r', volumePath, join(snapshotDir, name)]);
    }
    // a plain folder is not a snapshot and is not listed
    await mkdir(join(snapshotDir, 'notes'));
    const ownedOnly = await listSnapshots(deps, { volume: 'containers' });
    expect(ownedOnly.snapshots.every((s) => s.owned)).toBe(true);
    const withForeign = await listSnapshots(deps, { volume: 'containers', includeForeign: true });
    const foreign = withForeign.snapshots.filter((s) => !s.owned);
    expect(foreign.map((s) => s.name).sort()).toEqual([
      'autosnap_2026-11-21_14:00:00_hourly',
      'containers.20261120T0200',
    ]);
    expect(foreign.every((s) => s.type === undefined && s.readOnly)).toBe(true);
    expect(withForeign.total).toBe(ownedOnly.total + 2);
  });

  it('dry run reports the names it would create and changes nothing', async () => {
    const before = await listSnapshots(deps, { volume: 'containers', includeForeign: true });
    const historyBefore = await readFile(deps.history.file, 'utf8');
    const dry = await createSnapshots(deps, { volumes: ['containers'], type: 'manual', dryRun: true });
    expect(dry.planned).toHaveLength(1);
    expect(dry.created).toEqual([]);
    expect((await listSnapshots(deps, { volume: 'containers', includeForeign: true })).total).toBe(
      before.total,
    );
    expect(await readFile(deps.history.file, 'utf8')).toBe(historyBefore);
  });

  it('lists received copies under an external target (btrfs send | receive) as location external', async () => {
    const external = join(sandbox.pool.mountPoint, 'backup', 'containers');
    await mkdir(external, { recursive: true });
    const [newest] = (await listSnapshots(deps, { volume: 'containers', limit: 1 })).snapshots;
    // The pipe stands in for a replication job; snapguard itself never runs a shell.
    await exec('sh', ['-c', 'btrfs send -q "$1" | btrfs receive "$2"', 'sh', newest!.path, external]);
    const withExternal = sandbox.deps(
      {
        volumes: {
          containers: { backend: 'btrfs', path: volumePath, external: [{ kind: 'btrfs', path: external }] },
        },
      },
      { clock: () => new Date(clockTime) },
    );
    const listed = await listSnapshots(withExternal, { volume: 'containers', location: 'external' });
    expect(listed.snapshots).toEqual([
      expect.objectContaining({
        name: newest!.name,
        location: 'external',
        owned: true,
        readOnly: true,
        createdAt: newest!.createdAt,
      }),
    ]);
    const all = await listSnapshots(withExternal, { volume: 'containers', location: 'all' });
    expect(
      all.snapshots
        .filter((s) => s.name === newest!.name)
        .map((s) => s.location)
        .sort(),
    ).toEqual(['external', 'local']);
  });

  it('filters by since, operation and type', async () => {
    const recent = await listSnapshots(deps, { volume: 'containers', since: '2h' });
    expect(recent.snapshots.every((s) => s.ageSeconds <= 7200)).toBe(true);
    expect(recent.total).toBeGreaterThan(0);
    const byOperation = await listSnapshots(deps, { operation: 'edit-traefik' });
    expect(byOperation.snapshots.map((s) => s.type)).toEqual(['pre-change']);
  });
});
