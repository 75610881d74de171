import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createZfsBackend } from '../../src/backends/zfs.js';
import { isOwnedSnapshotName } from '../../src/core/naming.js';
import type { Deps } from '../../src/core/deps.js';
import { pinSnapshot } from '../../src/core/retention/pins.js';
import { pruneSnapshots } from '../../src/core/retention/prune.js';
import { requireComponents } from '../helpers/env.js';
import { createZfsSandbox, exec, type ZfsSandbox } from '../helpers/zfs.js';

const run = requireComponents(['zfs-fuse', 'zfs', 'zpool']);

async function snapshotNames(dataset: string): Promise<string[]> {
  const result = await exec('zfs', ['list', '-H', '-t', 'snapshot', '-o', 'name', '-r', dataset]);
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map((name) => name.slice(name.indexOf('@') + 1));
}

describe.runIf(run)('pins as zfs holds, and prune on a zfs volume', () => {
  let sandbox: ZfsSandbox;
  let deps: Deps;
  let dataset: string;
  const old = ['data-manual-20260101-000000', 'data-manual-20260102-000000', 'data-manual-20260103-000000'];
  const newest = 'data-manual-20260104-000000';
  const foreign = 'autosnap_2026-01-01_00:00:00_daily';

  beforeAll(async () => {
    sandbox = await createZfsSandbox('pin');
    const created = await sandbox.dataset('data');
    dataset = created.dataset;
    for (const name of [foreign, ...old, newest]) await exec('zfs', ['snapshot', `${dataset}@${name}`]);
    // A policy that keeps nothing but the newest: everything old is a prune candidate.
    deps = sandbox.deps({
      confirm: 'never',
      volumes: { data: { backend: 'zfs', dataset, path: created.mountPoint, retention: '1h' } },
    });
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('pinning puts a snapguard-pin hold on the snapshot, so not even zfs destroy removes it', async () => {
    const result = await pinSnapshot(deps, { volume: 'data', snapshot: old[0], reason: 'before migration' });
    expect(result.changed).toBe(true);
    const backend = createZfsBackend(exec, isOwnedSnapshotName);
    const volume = deps.config.volumes.data!;
    expect((await backend.holds(volume, old[0] as string)).count).toBe(1);
    await expect(exec('zfs', ['destroy', `${dataset}@${old[0]}`])).rejects.toThrow(/busy/);
    expect(await snapshotNames(dataset)).toContain(old[0]);
  });

  it('prune keeps the pinned, the newest and the foreign snapshot; a hold set by someone else fails alone', async () => {
    // Another tool's hold, unknown to snapguard's pin file: zfs refuses the destroy, prune reports it.
    await exec('zfs', ['hold', 'backup-job', `${dataset}@${old[1]}`]);
    const result = await pruneSnapshots(deps, { volume: 'data' }, { gate: async () => true });
    const byName = new Map([...result.keep, ...result.delete].map((v) => [v.name, v]));
    expect(byName.get(old[0] as string)).toMatchObject({ action: 'keep', protectedBy: ['pinned'] });
    expect(byName.get(newest)).toMatchObject({ action: 'keep' });
    expect(byName.get(old[1] as string)).toMatchObject({ action: 'delete', result: 'failed' });
    expect(byName.get(old[1] as string)?.error).toMatch(/hold/);
    expect(byName.get(old[2] as string)).toMatchObject({ action: 'delete', result: 'deleted' });
    const names = await snapshotNames(dataset);
    expect(names).toEqual([foreign, old[0], old[1], newest]);
    await exec('zfs', ['release', 'backup-job', `${dataset}@${old[1]}`]);
  });

  it('unpinning releases the hold, and the snapshot can be destroyed again', async () => {
    const result = await pinSnapshot(deps, { volume: 'data', snapshot: old[0], pinned: false });
    expect(result.changed).toBe(true);
    const volume = deps.config.volumes.data!;
    expect((await createZfsBackend(exec, isOwnedSnapshotName).holds(volume, old[0] as string)).count).toBe(0);
    await exec('zfs', ['destroy', `${dataset}@${old[0]}`]);
    expect(await snapshotNames(dataset)).not.toContain(old[0]);
  });
});
