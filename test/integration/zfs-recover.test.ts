import { chmod, chown, lstat, mkdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { createZfsBackend } from '../../src/backends/zfs.js';
import { isOwnedSnapshotName } from '../../src/core/naming.js';
import { planZfsRevert, restoreZfsPaths, revertZfsDataset } from '../../src/backends/zfs-recover.js';
import type { VolumeConfig } from '../../src/core/config.js';
import { SnapguardError } from '../../src/core/errors.js';
import { requireComponents } from '../helpers/env.js';
import { createZfsSandbox, exec, retryBusy, type ZfsSandbox } from '../helpers/zfs.js';

const run = requireComponents(['zfs-fuse', 'zfs', 'zpool', 'cp', 'rm']);

/** name -> guid of every snapshot of the dataset: proves snapshots were neither destroyed nor recreated. */
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

/** Every snapshot of `before` is in `after` with the same guid; `before` is not empty, so this cannot pass idly. */
function expectEverySnapshotKept(before: Record<string, string>, after: Record<string, string>): void {
  expect(Object.keys(before).length).toBeGreaterThan(0);
  expect(after).toMatchObject(before);
}

/** A tree summary a user would compare: content, mode, owner, symlink targets. */
async function describeTree(root: string, paths: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const path of paths) {
    const full = join(root, path);
    const stats = await lstat(full).catch(() => undefined);
    if (!stats) {
      out[path] = 'missing';
      continue;
    }
    const meta = `${(stats.mode & 0o7777).toString(8)} ${stats.uid}:${stats.gid}`;
    if (stats.isSymbolicLink()) out[path] = `link->${await readlink(full)}`;
    else if (stats.isDirectory()) out[path] = `dir ${meta}`;
    else out[path] = `${await readFile(full, 'utf8')} ${meta}`;
  }
  return out;
}

const TREE = ['app.conf', 'secret.key', 'data', 'data/db.txt', 'current', 'new-in-v3.txt'];

describe.skipIf(!run)('recovery on a zfs dataset keeps the current state and every newer snapshot', () => {
  let sandbox: ZfsSandbox;
  let backend: ReturnType<typeof createZfsBackend>;

  beforeAll(async () => {
    sandbox = await createZfsSandbox('recover');
    backend = createZfsBackend(exec, isOwnedSnapshotName);
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  let counter = 0;
  let volume: VolumeConfig;
  let dataset: string;
  let mountPoint: string;

  /** v1 -> snapshot target, v2 -> owned newer snapshot + a foreign newer snapshot, then v3 live. */
  beforeEach(async () => {
    counter++;
    ({ dataset, mountPoint } = await sandbox.dataset(`vol${counter}`));
    volume = sandbox.config({ volumes: { data: { backend: 'zfs', dataset, path: mountPoint } } }).volumes
      .data as VolumeConfig;
    await writeFile(join(mountPoint, 'app.conf'), 'v1');
    await writeFile(join(mountPoint, 'secret.key'), 'k1');
    await chmod(join(mountPoint, 'secret.key'), 0o600);
    await chown(join(mountPoint, 'secret.key'), 1234, 5678);
    await mkdir(join(mountPoint, 'data'));
    await writeFile(join(mountPoint, 'data', 'db.txt'), 'rows v1');
    await symlink('app.conf', join(mountPoint, 'current'));
    await exec('zfs', ['snapshot', `${dataset}@data-pre-deploy-app-20261101-100000`]);

    await writeFile(join(mountPoint, 'app.conf'), 'v2');
    await writeFile(join(mountPoint, 'data', 'db.txt'), 'rows v2');
    await exec('zfs', ['snapshot', `${dataset}@data-pre-update-app-20261102-100000`]);
    await exec('zfs', ['snapshot', `${dataset}@autosnap_2026-11-02_11:00:00_hourly`]);

    await writeFile(join(mountPoint, 'app.conf'), 'v3 broken');
    await chmod(join(mountPoint, 'secret.key'), 0o644);
    await rm(join(mountPoint, 'data', 'db.txt'));
    await writeFile(join(mountPoint, 'new-in-v3.txt'), 'only in v3');
  });

  it('the plan says that newer snapshots stay, and changes nothing', async () => {
    const before = await snapshotGuids(dataset);
    const plan = await planZfsRevert(
      backend,
      volume,
      'data-pre-deploy-app-20261101-100000',
      'data-pre-recover-20261121-120000',
    );
    expect(plan.newerSnapshots.map((s) => [s.name, s.producer, s.effect])).toEqual([
      ['data-pre-update-app-20261102-100000', 'snapguard', 'kept unchanged'],
      ['autosnap_2026-11-02_11:00:00_hourly', 'sanoid', 'kept unchanged'],
    ]);
    expect(plan.newerSnapshotsEffect).toMatch(
      /All 2 newer snapshots .* stay on .* unchanged: no zfs rollback/,
    );
    expect(await snapshotGuids(dataset)).toEqual(before);
    expect(await readFile(join(mountPoint, 'app.conf'), 'utf8')).toBe('v3 broken');
  });

  it('rollback restores the exact tree, keeps every snapshot, and undo brings the replaced state back', async () => {
    const v3 = await describeTree(mountPoint, TREE);
    const before = await snapshotGuids(dataset);
    const result = await revertZfsDataset(
      backend,
      exec,
      volume,
      'data-pre-deploy-app-20261101-100000',
      'data-pre-recover-20261121-120000',
    );
    expect(result.via).toBe('clone');
    expect(await describeTree(mountPoint, TREE)).toEqual({
      'app.conf': 'v1 644 0:0',
      'secret.key': 'k1 600 1234:5678',
      data: 'dir 755 0:0',
      'data/db.txt': 'rows v1 644 0:0',
      current: 'link->app.conf',
      'new-in-v3.txt': 'missing',
    });
    // Every snapshot that existed is still there with the same guid; the safety snapshot is new.
    const after = await snapshotGuids(dataset);
    expect(Object.keys(after)).toEqual([...Object.keys(before), 'data-pre-recover-20261121-120000']);
    expectEverySnapshotKept(before, after);
    // The newer snapshot still has its own contents.
    const newer = await backend.openSnapshot(volume, 'data-pre-update-app-20261102-100000');
    try {
      expect(await readFile(join(newer.path, 'app.conf'), 'utf8')).toBe('v2');
    } finally {
      await newer.close();
    }

    // Undo: the safety snapshot is an ordinary target.
    await revertZfsDataset(
      backend,
      exec,
      volume,
      'data-pre-recover-20261121-120000',
      'data-pre-recover-20261121-120100',
    );
    expect(await describeTree(mountPoint, TREE)).toEqual(v3);
    const afterUndo = await snapshotGuids(dataset);
    for (const [name, guid] of Object.entries(after)) expect(afterUndo[name]).toBe(guid);
  });

  it('a revert interrupted after the safety snapshot finishes on the next call without retaking it', async () => {
    // The state a crash leaves: safety snapshot taken, live files half removed.
    await exec('zfs', ['snapshot', `${dataset}@data-pre-recover-20261121-130000`]);
    const safetyGuid = (await snapshotGuids(dataset))['data-pre-recover-20261121-130000'];
    await rm(join(mountPoint, 'app.conf'));
    await rm(join(mountPoint, 'data'), { recursive: true });

    const result = await revertZfsDataset(
      backend,
      exec,
      volume,
      'data-pre-deploy-app-20261101-100000',
      'data-pre-recover-20261121-130000',
    );
    expect(result.plan.safetyExists).toBe(true);
    expect((await snapshotGuids(dataset))['data-pre-recover-20261121-130000']).toBe(safetyGuid);
    expect(await readFile(join(mountPoint, 'app.conf'), 'utf8')).toBe('v1');
    expect(await readFile(join(mountPoint, 'data', 'db.txt'), 'utf8')).toBe('rows v1');
  });

  it('files mode restores one file and one directory and leaves the rest untouched', async () => {
    const before = await snapshotGuids(dataset);
    const result = await restoreZfsPaths(
      backend,
      exec,
      volume,
      'data-pre-deploy-app-20261101-100000',
      ['secret.key', 'data/'],
      'data-pre-recover-20261121-140000',
    );
    expect(result.restored).toEqual(['secret.key', 'data']);
    expect(await describeTree(mountPoint, TREE)).toEqual({
      'app.conf': 'v3 broken 644 0:0',
      'secret.key': 'k1 600 1234:5678',
      data: 'dir 755 0:0',
      'data/db.txt': 'rows v1 644 0:0',
      current: 'link->app.conf',
      'new-in-v3.txt': 'only in v3 644 0:0',
    });
    const after = await snapshotGuids(dataset);
    expectEverySnapshotKept(before, after);
    // The safety snapshot holds what files mode replaced.
    const safety = await backend.openSnapshot(volume, 'data-pre-recover-20261121-140000');
    try {
      expect((await lstat(join(safety.path, 'secret.key'))).mode & 0o777).toBe(0o644);
    } finally {
      await safety.close();
    }
  });

  it('files mode with "." restores the whole tree, as a file restore of "." does on every backend, and keeps every snapshot', async () => {
    const before = await snapshotGuids(dataset);
    const result = await restoreZfsPaths(
      backend,
      exec,
      volume,
      'data-pre-deploy-app-20261101-100000',
      ['.'],
      'data-pre-recover-20261121-145000',
    );
    expect(result.restored).toEqual(['.']);
    expect(await describeTree(mountPoint, TREE)).toEqual({
      'app.conf': 'v1 644 0:0',
      'secret.key': 'k1 600 1234:5678',
      data: 'dir 755 0:0',
      'data/db.txt': 'rows v1 644 0:0',
      current: 'link->app.conf',
      'new-in-v3.txt': 'missing',
    });
    const after = await snapshotGuids(dataset);
    expectEverySnapshotKept(before, after);
    // What was replaced is in the safety snapshot.
    const safety = await backend.openSnapshot(volume, 'data-pre-recover-20261121-145000');
    try {
      expect(await readFile(join(safety.path, 'new-in-v3.txt'), 'utf8')).toBe('only in v3');
    } finally {
      await safety.close();
    }
  });

  it('files mode refuses paths that leave the snapshot or the volume, and writes nothing', async () => {
    // A symlink inside the snapshot that points out of it.
    await symlink('/etc', join(mountPoint, 'escape'));
    // A real folder in the snapshot that is a symlink out of the volume in the live state.
    await mkdir(join(mountPoint, 'out'));
    await writeFile(join(mountPoint, 'out', 'app.conf'), 'in snapshot');
    await exec('zfs', ['snapshot', `${dataset}@data-manual-20261103-100000`]);
    await rm(join(mountPoint, 'out'), { recursive: true });
    await symlink(sandbox.dir, join(mountPoint, 'out'));
    const before = await snapshotGuids(dataset);

    for (const bad of ['../x', '/etc/passwd', 'a\0b', '..', 'escape/passwd', 'out/app.conf']) {
      const error = await restoreZfsPaths(
        backend,
        exec,
        volume,
        'data-manual-20261103-100000',
        [bad],
        'data-pre-recover-20261121-150000',
      ).catch((e: unknown) => e);
      expect(error, bad).toBeInstanceOf(SnapguardError);
      expect((error as SnapguardError).code, bad).toBe('BAD_INPUT');
    }
    await expect(lstat(join(sandbox.dir, 'app.conf'))).rejects.toThrow(/ENOENT/);
    expect(await readFile('/etc/passwd', 'utf8')).toMatch(/^root:/);
    const after = await snapshotGuids(dataset);
    expect(after['data-pre-recover-20261121-150000']).toBeUndefined();
    expect(after).toEqual(before);
  });

  it('refuses a rollback when a child dataset is mounted inside, and changes nothing', async () => {
    await exec('zfs', ['create', `${dataset}/child`]);
    onTestFinished(() => retryBusy(() => exec('zfs', ['destroy', `${dataset}/child`])).then(() => undefined));
    const before = await snapshotGuids(dataset);
    const error = await revertZfsDataset(
      backend,
      exec,
      volume,
      'data-pre-deploy-app-20261101-100000',
      'data-pre-recover-20261121-160000',
    ).catch((e: unknown) => e);
    expect((error as SnapguardError).code).toBe('NOT_SUPPORTED');
    expect((error as SnapguardError).message).toMatch(/other filesystems are mounted inside it/);
    expect(await snapshotGuids(dataset)).toEqual(before);
    expect(await readFile(join(mountPoint, 'app.conf'), 'utf8')).toBe('v3 broken');
  });

  it('refuses when the configured path is not where the dataset is mounted', async () => {
    const wrong = sandbox.config({
      volumes: { data: { backend: 'zfs', dataset, path: join(sandbox.dir, 'elsewhere') } },
    }).volumes.data as VolumeConfig;
    const error = await revertZfsDataset(
      backend,
      exec,
      wrong,
      'data-pre-deploy-app-20261101-100000',
      'data-pre-recover-20261121-170000',
    ).catch((e: unknown) => e);
    expect((error as SnapguardError).code).toBe('CONFIG_INVALID');
    expect((error as SnapguardError).hint).toContain(mountPoint);
  });
});
