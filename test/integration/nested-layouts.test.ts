import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { SnapguardError } from '../../src/core/errors.js';
import { recover } from '../../src/core/recovery/recover.js';
import { runRestoreTest } from '../../src/core/restore-test/index.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';
import { treeState } from '../helpers/tree.js';
import { runBuiltCli } from '../helpers/cli.js';
import { createZfsSandbox, type ZfsSandbox } from '../helpers/zfs.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'getfattr', 'setfattr']);
const runZfs = requireComponents(['zfs-fuse', 'zfs', 'zpool']);

/** A subvolume root has inode 256 on btrfs; the empty folder a snapshot holds in its place has inode 2. */
async function isSubvolume(path: string): Promise<boolean> {
  const info = await lstat(path).catch(() => undefined);
  return Boolean(info?.isDirectory() && info.ino === 256);
}

describe.runIf(run)('nested subvolumes and mount points inside a volume (real btrfs)', () => {
  let box: BtrfsSandbox;
  let counter = 0;

  beforeAll(async () => {
    box = await createBtrfsSandbox(512, 'nested');
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  /** A volume with data/notes.txt, app/conf.yml and (optionally now) a nested subvolume data/docker. */
  async function volume(options: { nestedBeforeSnapshot: boolean }): Promise<{
    id: string;
    path: string;
    deps: Deps;
    snap: string;
  }> {
    const id = `v${++counter}`;
    const path = await box.subvolume(id);
    const deps = box.deps({ confirm: 'never', volumes: { [id]: { backend: 'btrfs', path } } });
    await mkdir(join(path, 'data'), { recursive: true });
    await mkdir(join(path, 'app'), { recursive: true });
    await writeFile(join(path, 'data/notes.txt'), 'notes v1\n');
    await writeFile(join(path, 'app/conf.yml'), 'good: true\n');
    if (options.nestedBeforeSnapshot) {
      await exec('btrfs', ['subvolume', 'create', join(path, 'data/docker')]);
      await writeFile(join(path, 'data/docker/layer.tar'), 'layer before the snapshot\n');
    }
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'pre-change' })).created[0]!.name;
    if (!options.nestedBeforeSnapshot)
      await exec('btrfs', ['subvolume', 'create', join(path, 'data/docker')]);
    await writeFile(join(path, 'data/docker/layer.tar'), 'layer written after the snapshot\n');
    await mkdir(join(path, 'data/docker/images'), { recursive: true });
    await writeFile(join(path, 'data/docker/images/img'), 'image\n');
    await writeFile(join(path, 'data/notes.txt'), 'notes v2 (broken)\n');
    await writeFile(join(path, 'app/conf.yml'), 'good: false\n');
    return { id, path, deps, snap };
  }

  async function expectNestedIntact(path: string): Promise<void> {
    expect(await isSubvolume(join(path, 'data/docker'))).toBe(true);
    expect(await readFile(join(path, 'data/docker/layer.tar'), 'utf8')).toBe(
      'layer written after the snapshot\n',
    );
    expect(await readFile(join(path, 'data/docker/images/img'), 'utf8')).toBe('image\n');
  }

  for (const nestedBeforeSnapshot of [true, false]) {
    const when = nestedBeforeSnapshot ? 'created before the snapshot' : 'created after the snapshot';

    it(`files mode restore of a folder keeps a nested subvolume inside it (${when}), and the plan lists it`, async () => {
      const v = await volume({ nestedBeforeSnapshot });
      const planned = await recover(v.deps, {
        volume: v.id,
        snapshot: v.snap,
        mode: 'files',
        paths: ['data'],
        dryRun: true,
      });
      expect(planned.plan?.volumes[0]?.nestedSubvolumes).toEqual(['data/docker']);
      expect(planned.plan?.steps.join('\n')).toMatch(/data\/docker/);
      const result = await recover(v.deps, {
        volume: v.id,
        snapshot: v.snap,
        mode: 'files',
        paths: ['data'],
      });
      expect(result.status).toBe('recovered');
      expect(await readFile(join(v.path, 'data/notes.txt'), 'utf8')).toBe('notes v1\n');
      expect(await readFile(join(v.path, 'app/conf.yml'), 'utf8')).toBe('good: false\n');
      await expectNestedIntact(v.path);
      // Nothing was left behind by the restore.
      expect((await readdir(v.path)).filter((n) => n.startsWith('.snapguard'))).toEqual([]);
    });

    it(`files mode over "." keeps a nested subvolume (${when})`, async () => {
      const v = await volume({ nestedBeforeSnapshot });
      const result = await recover(v.deps, { volume: v.id, snapshot: v.snap, mode: 'files', paths: ['.'] });
      expect(result.status).toBe('recovered');
      expect(await readFile(join(v.path, 'data/notes.txt'), 'utf8')).toBe('notes v1\n');
      expect(await readFile(join(v.path, 'app/conf.yml'), 'utf8')).toBe('good: true\n');
      await expectNestedIntact(v.path);
    });

    it(`rollback carries a nested subvolume (${when}) into the new live tree, and undo keeps it`, async () => {
      const v = await volume({ nestedBeforeSnapshot });
      const planned = await recover(v.deps, { volume: v.id, snapshot: v.snap, dryRun: true });
      expect(planned.plan?.volumes[0]?.nestedSubvolumes).toEqual(['data/docker']);
      expect(planned.plan?.steps.join('\n')).toMatch(/move the nested subvolume.*data\/docker/);
      const result = await recover(v.deps, { volume: v.id, snapshot: v.snap });
      expect(result.status).toBe('recovered');
      expect(await readFile(join(v.path, 'data/notes.txt'), 'utf8')).toBe('notes v1\n');
      expect(await readFile(join(v.path, 'app/conf.yml'), 'utf8')).toBe('good: true\n');
      await expectNestedIntact(v.path);
      // The safety snapshot is read-only and holds the rest of the replaced state.
      const safety = join(v.deps.config.volumes[v.id]!.snapshotDir, result.safetyBackup!);
      expect(await readFile(join(safety, 'data/notes.txt'), 'utf8')).toBe('notes v2 (broken)\n');
      const ro = await exec('btrfs', ['property', 'get', '-ts', safety, 'ro']);
      expect(ro.stdout.trim()).toBe('ro=true');
      // Undo: recover the safety snapshot; the nested subvolume is carried again.
      const undo = await recover(v.deps, { volume: v.id, snapshot: result.safetyBackup! });
      expect(undo.status).toBe('recovered');
      expect(await readFile(join(v.path, 'data/notes.txt'), 'utf8')).toBe('notes v2 (broken)\n');
      await expectNestedIntact(v.path);
      // Every subvolume left on the pool is accounted for: no nested subvolume stranded anywhere else.
      const list = await exec('btrfs', ['subvolume', 'list', '-o', v.path]);
      expect(list.stdout.trim().split('\n')).toHaveLength(1);
    });
  }

  it('rollback is refused before anything changes when the snapshot holds files where a nested subvolume now is', async () => {
    const id = `v${++counter}`;
    const path = await box.subvolume(id);
    const deps = box.deps({ confirm: 'never', volumes: { [id]: { backend: 'btrfs', path } } });
    await mkdir(join(path, 'cache'), { recursive: true });
    await writeFile(join(path, 'cache/old'), 'plain folder then\n');
    await writeFile(join(path, 'top.txt'), 'v1\n');
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'pre-change' })).created[0]!.name;
    // The folder became a subvolume after the snapshot.
    await exec('mv', [join(path, 'cache'), join(path, 'cache.old')]);
    await exec('btrfs', ['subvolume', 'create', join(path, 'cache')]);
    await writeFile(join(path, 'cache/new'), 'subvolume now\n');
    await writeFile(join(path, 'top.txt'), 'v2\n');
    const before = await treeState(path);
    const names = await readdir(deps.config.volumes[id]!.snapshotDir);
    const error = (await recover(deps, { volume: id, snapshot: snap }).catch(
      (e: unknown) => e,
    )) as SnapguardError;
    expect(error).toBeInstanceOf(SnapguardError);
    expect(error.code).toBe('PRECONDITION_FAILED');
    expect(error.message).toMatch(/cache/);
    expect(error.message).toMatch(/Nothing was changed/);
    expect(error.hint.length).toBeGreaterThan(0);
    // Each interface names its own way to restore the other paths.
    expect(error.hintFor('mcp')).toContain('with mode: files');
    expect(error.hintFor('cli')).toContain(`\`snapguard recover ${id} ${snap} --files PATH...\``);
    expect(error.hintFor('cli')).not.toContain('mode: files');
    expect(await treeState(path)).toEqual(before);
    expect(await isSubvolume(join(path, 'cache'))).toBe(true);
    expect(await readdir(deps.config.volumes[id]!.snapshotDir)).toEqual(names);
  });

  it('files mode naming a nested subvolume itself is refused: the snapshot does not hold its files', async () => {
    const v = await volume({ nestedBeforeSnapshot: true });
    const before = await treeState(v.path);
    const error = (await recover(v.deps, {
      volume: v.id,
      snapshot: v.snap,
      mode: 'files',
      paths: ['data/docker'],
    }).catch((e: unknown) => e)) as SnapguardError;
    expect(error).toBeInstanceOf(SnapguardError);
    expect(error.message).toMatch(/data\/docker/);
    expect(error.message).toMatch(/subvolume/);
    expect(error.message).toMatch(/Nothing was changed/);
    expect(await treeState(v.path)).toEqual(before);
  });

  it('a mount point under the restored paths is refused before anything changes, naming it (files and rollback)', async () => {
    const id = `v${++counter}`;
    const path = await box.subvolume(id);
    const deps = box.deps({ confirm: 'never', volumes: { [id]: { backend: 'btrfs', path } } });
    await mkdir(join(path, 'data/cache'), { recursive: true });
    await writeFile(join(path, 'data/notes.txt'), 'v1\n');
    await writeFile(join(path, 'other.txt'), 'v1\n');
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'pre-change' })).created[0]!.name;
    await writeFile(join(path, 'data/notes.txt'), 'v2\n');
    await writeFile(join(path, 'other.txt'), 'v2\n');
    const mnt = join(path, 'data/cache');
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
    try {
      await writeFile(join(mnt, 'in-tmpfs'), 'mounted\n');
      const names = await readdir(deps.config.volumes[id]!.snapshotDir);
      for (const input of [
        { volume: id, snapshot: snap, mode: 'files', paths: ['data'] },
        { volume: id, snapshot: snap, mode: 'files', paths: ['.'] },
        { volume: id, snapshot: snap },
      ]) {
        const error = (await recover(deps, input).catch((e: unknown) => e)) as SnapguardError;
        expect(error, JSON.stringify(input)).toBeInstanceOf(SnapguardError);
        expect(error.code).toBe('PRECONDITION_FAILED');
        expect(error.message).toContain(mnt);
        expect(error.message).toMatch(/Nothing was changed/);
        expect(error.hint).toMatch(/[Uu]nmount/);
        expect(await readFile(join(path, 'data/notes.txt'), 'utf8')).toBe('v2\n');
        expect(await readFile(join(mnt, 'in-tmpfs'), 'utf8')).toBe('mounted\n');
        expect(await readdir(deps.config.volumes[id]!.snapshotDir)).toEqual(names);
      }
      // Paths that do not contain the mount point are restored as usual.
      const other = await recover(deps, { volume: id, snapshot: snap, mode: 'files', paths: ['other.txt'] });
      expect(other.status).toBe('recovered');
      expect(await readFile(join(path, 'other.txt'), 'utf8')).toBe('v1\n');
    } finally {
      if ((await readFile('/proc/self/mounts', 'utf8')).includes(` ${mnt} `))
        await exec('umount', [mnt]).catch(() => exec('umount', ['-l', mnt]));
    }
  });

  it('restore tests report a nested subvolume as not covered, neither a pass about it nor a failure (sample and full drill)', async () => {
    const v = await volume({ nestedBeforeSnapshot: true });
    for (const mode of ['sample', 'full'] as const) {
      const result = await runRestoreTest(v.deps, { volume: v.id, snapshot: v.snap, mode, seed: 7 });
      const r = result.results[0]!;
      expect(r.failures, mode).toEqual([]);
      expect(r.outcome, mode).toBe('PASS');
      expect(r.notCovered, mode).toEqual([
        expect.objectContaining({ path: 'data/docker', kind: 'nested-subvolume' }),
      ]);
      expect(r.checkedPaths.some((p) => p.startsWith('data/docker'))).toBe(false);
    }
    // A nested subvolume created after the snapshot is also named.
    const w = await volume({ nestedBeforeSnapshot: false });
    const result = await runRestoreTest(w.deps, { volume: w.id, snapshot: w.snap, mode: 'full', seed: 7 });
    expect(result.results[0]!.outcome).toBe('PASS');
    expect(result.results[0]!.notCovered).toEqual([
      expect.objectContaining({ path: 'data/docker', kind: 'nested-subvolume' }),
    ]);
  });

  it('restore tests name a mount point inside the volume as not covered; the CLI says so and history keeps it', async () => {
    const id = `v${++counter}`;
    const path = await box.subvolume(id);
    const { configFile, deps } = await box.cliVolume(id, path);
    await mkdir(join(path, 'data/cache'), { recursive: true });
    await writeFile(join(path, 'data/notes.txt'), 'v1\n');
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'pre-change' })).created[0]!.name;
    const mnt = join(path, 'data/cache');
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
    try {
      await writeFile(join(mnt, 'in-tmpfs'), 'mounted\n');
      const result = await runRestoreTest(deps, { volume: id, snapshot: snap, seed: 3 });
      const r = result.results[0]!;
      expect(r.outcome).toBe('PASS');
      expect(r.notCovered).toEqual([expect.objectContaining({ path: 'data/cache', kind: 'mount-point' })]);
      expect(r.notCovered![0]!.detail).toMatch(/tmpfs/);
      const { history } = await deps.history.read();
      const entry = history.restore_tests.filter((t) => t.subvolume === id).at(-1)!;
      expect(entry.not_covered).toEqual([{ path: 'data/cache', kind: 'mount-point' }]);
      const cli = await runBuiltCli(['restore-test', id, '--snapshot', snap, '--config', configFile]);
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stdout).toMatch(/not covered .*data\/cache \(mount-point\)/);
    } finally {
      if ((await readFile('/proc/self/mounts', 'utf8')).includes(` ${mnt} `))
        await exec('umount', [mnt]).catch(() => exec('umount', ['-l', mnt]));
    }
  });
});

describe.runIf(runZfs)('a zfs child dataset mounted inside a restored folder (zfs-fuse)', () => {
  let sandbox: ZfsSandbox;

  beforeAll(async () => {
    sandbox = await createZfsSandbox('nested');
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('files mode over the folder is refused before anything changes, naming the mount; restore tests name it as not covered', async () => {
    const { dataset, mountPoint } = await sandbox.dataset('vol');
    const deps = sandbox.deps({
      confirm: 'never',
      volumes: { z: { backend: 'zfs', dataset, path: mountPoint } },
    });
    await mkdir(join(mountPoint, 'data'), { recursive: true });
    await writeFile(join(mountPoint, 'data/notes.txt'), 'v1\n');
    await writeFile(join(mountPoint, 'other.txt'), 'v1\n');
    const snap = (await createSnapshots(deps, { volumes: ['z'], type: 'pre-change' })).created[0]!.name;
    const child = join(mountPoint, 'data/cache');
    await exec('zfs', ['create', '-o', `mountpoint=${child}`, `${dataset}/cache`]);
    await writeFile(join(child, 'in-child'), 'child dataset\n');
    await writeFile(join(mountPoint, 'data/notes.txt'), 'v2\n');
    await writeFile(join(mountPoint, 'other.txt'), 'v2\n');
    const snapshotsBefore = (await exec('zfs', ['list', '-H', '-r', '-t', 'snapshot', '-o', 'name', dataset]))
      .stdout;
    const error = (await recover(deps, { volume: 'z', snapshot: snap, mode: 'files', paths: ['data'] }).catch(
      (e: unknown) => e,
    )) as SnapguardError;
    expect(error).toBeInstanceOf(SnapguardError);
    expect(error.code).toBe('PRECONDITION_FAILED');
    expect(error.message).toContain(child);
    expect(error.message).toMatch(/Nothing was changed/);
    expect(await readFile(join(mountPoint, 'data/notes.txt'), 'utf8')).toBe('v2\n');
    expect(await readFile(join(child, 'in-child'), 'utf8')).toBe('child dataset\n');
    expect((await exec('zfs', ['list', '-H', '-r', '-t', 'snapshot', '-o', 'name', dataset])).stdout).toBe(
      snapshotsBefore,
    );
    const other = await recover(deps, { volume: 'z', snapshot: snap, mode: 'files', paths: ['other.txt'] });
    expect(other.status).toBe('recovered');
    expect(await readFile(join(mountPoint, 'other.txt'), 'utf8')).toBe('v1\n');
    const tested = await runRestoreTest(deps, { volume: 'z', snapshot: snap, seed: 1 });
    expect(tested.results[0]!.outcome).toBe('PASS');
    expect(tested.results[0]!.notCovered).toEqual([
      expect.objectContaining({ path: 'data/cache', kind: 'mount-point' }),
    ]);
  });
});
