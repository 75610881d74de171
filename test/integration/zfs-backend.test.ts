import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createZfsBackend, PIN_HOLD_TAG, READ_CLONE_PREFIX } from '../../src/backends/zfs.js';
import { isOwnedSnapshotName } from '../../src/core/naming.js';
import type { ConfigInput } from '../../src/core/config.js';
import { SnapguardError } from '../../src/core/errors.js';
import { createSnapshots, listSnapshots } from '../../src/core/snapshots.js';
import type { Exec } from '../../src/system/exec.js';
import { requireComponents } from '../helpers/env.js';
import { createZfsSandbox, exec, type ZfsSandbox } from '../helpers/zfs.js';

const run = requireComponents(['zfs-fuse', 'zfs', 'zpool', 'sanoid', 'syncoid']);

async function zfsNames(root: string): Promise<string[]> {
  const result = await exec('zfs', ['list', '-H', '-t', 'all', '-o', 'name', '-r', root]);
  return result.stdout.split('\n').filter(Boolean);
}

describe.skipIf(!run)('zfs backend on zfs-fuse pools', () => {
  let sandbox: ZfsSandbox;
  let dataset: string;
  let mountPoint: string;
  let input: ConfigInput;

  beforeAll(async () => {
    sandbox = await createZfsSandbox('backend');
    ({ dataset, mountPoint } = await sandbox.dataset('data'));
    input = { volumes: { data: { backend: 'zfs', dataset, path: mountPoint } } };
    await writeFile(join(mountPoint, 'hello.txt'), 'v1\n');
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('creates dataset@<snapguard name> and lists it as owned with its creation time', async () => {
    const deps = sandbox.deps(input);
    const created = await createSnapshots(deps, {
      volumes: ['data'],
      type: 'pre-deploy',
      operation: 'immich',
    });
    const name = created.created[0]?.name as string;
    expect(name).toMatch(/^data-pre-deploy-immich-\d{8}-\d{6}$/);
    expect(await zfsNames(dataset)).toContain(`${dataset}@${name}`);
    // zfs-fuse has no .zfs/snapshot: the path names the snapshot instead of a folder that is not there.
    expect(created.created[0]?.path).toBe(`${dataset}@${name}`);

    const listed = await listSnapshots(deps, { volume: 'data' });
    expect(listed.snapshots.map((s) => [s.name, s.owned, s.type])).toEqual([[name, true, 'pre-deploy']]);
    const history = JSON.parse(await readFile(join(sandbox.dir, 'context', 'backup-history.json'), 'utf8'));
    expect(history.snapshots.at(-1)).toMatchObject({
      snapshot_name: name,
      backend: 'zfs',
      subvolume: 'data',
    });
  });

  it('tells its own snapshots from real sanoid and syncoid snapshots and never deletes a foreign one', async () => {
    const deps = sandbox.deps(input);
    const backend = createZfsBackend(exec, isOwnedSnapshotName);
    const volume = deps.config.volumes.data!;

    // Real sanoid takes an hourly autosnap of the dataset.
    const confDir = join(sandbox.dir, 'sanoid-conf');
    await mkdir(confDir, { recursive: true });
    await writeFile(
      join(confDir, 'sanoid.defaults.conf'),
      await readFile('/usr/share/sanoid/sanoid.defaults.conf'),
    );
    await writeFile(
      join(confDir, 'sanoid.conf'),
      `[${dataset}]\n\tuse_template = t\n\n[template_t]\n\tfrequently = 0\n\thourly = 2\n\tdaily = 0\n\tmonthly = 0\n\tyearly = 0\n\tautosnap = yes\n\tautoprune = no\n`,
    );
    const shim = await sandbox.sanoidPath();
    await exec(
      'sanoid',
      [
        '--configdir',
        confDir,
        '--cache-dir',
        join(sandbox.dir, 'sanoid-cache'),
        '--run-dir',
        join(sandbox.dir, 'sanoid-run'),
        '--take-snapshots',
      ],
      { env: { PATH: `${shim}:${process.env.PATH ?? ''}` } },
    );

    // Real syncoid replicates to a second pool and leaves its sync snapshot on the source.
    const target = await sandbox.addPool('b');
    await exec('syncoid', ['--no-privilege-elevation', dataset, `${target.name}/copy`], {
      timeoutMs: 120_000,
    });
    // And one made by hand with a name snapguard does not own.
    await exec('zfs', ['snapshot', `${dataset}@before-upgrade`]);

    const raws = await backend.list(volume);
    const producers = Object.fromEntries(raws.map((raw) => [raw.producer, raw.name]));
    expect(producers.sanoid).toMatch(/^autosnap_.*_hourly$/);
    expect(producers.syncoid).toMatch(/^syncoid_/);
    expect(producers.foreign).toBe('before-upgrade');
    expect(producers.snapguard).toMatch(/^data-pre-deploy-immich-/);
    for (const raw of raws) expect(raw.createdAt.getTime()).toBeGreaterThan(Date.parse('2020-01-01'));

    const ownedOnly = await listSnapshots(deps, { volume: 'data' });
    expect(ownedOnly.snapshots.every((s) => s.owned)).toBe(true);
    const all = await listSnapshots(deps, { volume: 'data', includeForeign: true });
    expect(
      all.snapshots
        .filter((s) => !s.owned)
        .map((s) => s.name)
        .sort(),
    ).toEqual([producers.sanoid, producers.syncoid, 'before-upgrade'].sort());

    for (const foreign of [producers.sanoid, producers.syncoid, 'before-upgrade'] as string[]) {
      const error = await backend.delete(volume, foreign).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SnapguardError);
      expect((error as SnapguardError).code).toBe('NOT_OWNED');
    }
    const names = await zfsNames(dataset);
    expect(names).toContain(`${dataset}@${producers.sanoid}`);
    expect(names).toContain(`${dataset}@${producers.syncoid}`);
    expect(names).toContain(`${dataset}@before-upgrade`);
    // The syncoid copy holds the replicated snapshots too.
    expect((await zfsNames(`${target.name}/copy`)).some((n) => n.includes('@syncoid_'))).toBe(true);

    // The syncoid target, configured as an external zfs copy, lists the replicated owned snapshot.
    const withExternal = sandbox.deps({
      volumes: {
        data: {
          backend: 'zfs',
          dataset,
          path: mountPoint,
          external: [{ kind: 'zfs', dataset: `${target.name}/copy` }],
        },
      },
    });
    const external = await listSnapshots(withExternal, { volume: 'data', location: 'external' });
    expect(external.snapshots.map((s) => `${s.name} ${s.location}`)).toEqual([
      `${producers.snapguard} external`,
    ]);

    // The owned one is deleted; nothing else goes with it.
    await backend.delete(volume, producers.snapguard as string);
    const after = await zfsNames(dataset);
    expect(after).not.toContain(`${dataset}@${producers.snapguard}`);
    expect(after.length).toBe(names.length - 1);
  });

  it('lists the whole dataset with at most two zfs processes, however many snapshots', async () => {
    const backend = createZfsBackend(exec, isOwnedSnapshotName);
    const volume = sandbox.config(input).volumes.data!;
    for (let i = 0; i < 15; i++)
      await exec('zfs', ['snapshot', `${dataset}@data-manual-20260101-0000${String(i).padStart(2, '0')}`]);
    await backend.list(volume); // probes capabilities once
    const calls: string[] = [];
    const counting: Exec = (file, args, options) => {
      calls.push([file, ...args].join(' '));
      return exec(file, args, options);
    };
    const countingBackend = createZfsBackend(counting, isOwnedSnapshotName);
    await countingBackend.list(volume);
    calls.length = 0;
    const raws = await countingBackend.list(volume);
    expect(raws.filter((raw) => raw.producer === 'snapguard').length).toBeGreaterThanOrEqual(15);
    expect(calls.length).toBeLessThanOrEqual(2);
  });

  it('detects what zfs-fuse lacks once and says so', async () => {
    const backend = createZfsBackend(exec, isOwnedSnapshotName);
    const volume = sandbox.config(input).volumes.data!;
    const caps = await backend.capabilities(volume);
    expect(caps).toEqual({
      listParsable: false,
      getByType: false,
      listHolds: false,
      bookmarks: false,
      snapdir: false,
      xattrs: false,
    });
  });

  it('reports pool usage from the pool root dataset', async () => {
    const backend = createZfsBackend(exec, isOwnedSnapshotName);
    const usage = await backend.poolUsage(sandbox.config(input).volumes.data!);
    // A 128M file vdev: ZFS reserves some of it, so the usable total is below that.
    expect(usage.totalBytes).toBeGreaterThan(50 * 1024 * 1024);
    expect(usage.totalBytes).toBeLessThanOrEqual(128 * 1024 * 1024);
    expect(usage.ratio).toBeGreaterThan(0);
    expect(usage.ratio).toBeLessThan(1);
    expect(usage.usedBytes + usage.availableBytes).toBe(usage.totalBytes);
  });

  it('refuses a snapshot when the pool is at maxPoolUsage, unless forced', async () => {
    const deps = sandbox.deps({ ...input, health: { maxPoolUsage: 0.0001 } });
    const before = (await zfsNames(dataset)).length;
    const error = await createSnapshots(deps, { volumes: ['data'], type: 'manual' }).catch((e: unknown) => e);
    expect((error as SnapguardError).code).toBe('POOL_FULL');
    expect((await zfsNames(dataset)).length).toBe(before);
    const forced = await createSnapshots(deps, { volumes: ['data'], type: 'manual', force: true });
    expect(forced.created).toHaveLength(1);
    expect(forced.warnings.join(' ')).toMatch(/at or above maxPoolUsage/);
  });

  it('a pinned (held) snapshot cannot be destroyed until the hold is released', async () => {
    const backend = createZfsBackend(exec, isOwnedSnapshotName);
    const volume = sandbox.config(input).volumes.data!;
    const name = 'data-manual-20260202-020202';
    await exec('zfs', ['snapshot', `${dataset}@${name}`]);
    await backend.hold(volume, name);
    await backend.hold(volume, name); // a second pin is not an error
    expect((await backend.holds(volume, name)).count).toBe(1);
    expect((await backend.show(volume, name))?.holds).toBe(1);

    const error = await backend.delete(volume, name).catch((e: unknown) => e);
    expect((error as SnapguardError).code).toBe('PRECONDITION_FAILED');
    expect((error as SnapguardError).hint).toMatch(/Unpin/);
    // Not only snapguard refuses: zfs itself will not destroy it.
    await expect(exec('zfs', ['destroy', `${dataset}@${name}`])).rejects.toThrow(/busy/);
    expect(await zfsNames(dataset)).toContain(`${dataset}@${name}`);

    await backend.release(volume, name, PIN_HOLD_TAG);
    await backend.release(volume, name, PIN_HOLD_TAG); // unpinning twice is not an error
    expect((await backend.holds(volume, name)).count).toBe(0);
    await backend.delete(volume, name);
    expect(await zfsNames(dataset)).not.toContain(`${dataset}@${name}`);
  });

  it('opens a snapshot for reading through a temporary clone and removes the clone afterwards', async () => {
    const backend = createZfsBackend(exec, isOwnedSnapshotName);
    const volume = sandbox.config(input).volumes.data!;
    const name = 'data-manual-20260303-030303';
    await writeFile(join(mountPoint, 'hello.txt'), 'in snapshot\n');
    await exec('zfs', ['snapshot', `${dataset}@${name}`]);
    await writeFile(join(mountPoint, 'hello.txt'), 'changed later\n');

    const reader = await backend.openSnapshot(volume, name);
    expect(reader.via).toBe('clone');
    expect(await readFile(join(reader.path, 'hello.txt'), 'utf8')).toBe('in snapshot\n');
    await expect(writeFile(join(reader.path, 'hello.txt'), 'x')).rejects.toThrow(/read-only/i);
    await reader.close();
    const pool = dataset.split('/')[0] as string;
    expect((await zfsNames(pool)).some((n) => n.includes(READ_CLONE_PREFIX))).toBe(false);
    // The snapshot can be destroyed again: no clone depends on it.
    await backend.delete(volume, name);
  });

  it('zfs-fuse has no written@ property: the volume counts as changed, so a pre-change snapshot within minInterval is taken anew', async () => {
    const deps = sandbox.deps({
      volumes: { data: { backend: 'zfs', dataset, path: mountPoint, minInterval: '1h' } },
    });
    const volume = deps.config.volumes.data!;
    const backend = deps.backendFor(volume);
    const first = await createSnapshots(deps, {
      volumes: ['data'],
      type: 'pre-change',
      operation: 'edit-one',
      force: true,
    });
    await writeFile(join(mountPoint, 'hello.txt'), 'latest work\n');
    const raw = (await backend.show(volume, first.created[0]!.name))!;
    expect(await backend.unchangedSince!(volume, raw)).toBe(false);
    const second = await createSnapshots(deps, {
      volumes: ['data'],
      type: 'pre-change',
      operation: 'edit-two',
    });
    expect(second.skipped).toEqual([]);
    expect(second.created.map((s) => s.operation)).toEqual(['edit-two']);
  });

  it('refuses to show or delete names that are not snapshot names', async () => {
    const backend = createZfsBackend(exec, isOwnedSnapshotName);
    const volume = sandbox.config(input).volumes.data!;
    expect(await backend.show(volume, 'data-manual-20990101-000000')).toBeUndefined();
    expect(await backend.show(volume, '../x')).toBeUndefined();
    await expect(backend.delete(volume, `x@y`)).rejects.toMatchObject({ code: 'BAD_INPUT' });
    await expect(backend.delete(volume, '')).rejects.toMatchObject({ code: 'BAD_INPUT' });
    expect(await zfsNames(dataset)).toContain(dataset);
  });
});
