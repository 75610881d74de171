import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { recover } from '../../src/core/recovery/recover.js';
import { runRestoreTest } from '../../src/core/restore-test/index.js';
import { createSnapshots, listSnapshots, ownedSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs']);

// Names that parse as snapshots of volume "app", planted in its snapshot folder as things that
// are not snapguard snapshots: a symlink to another volume's snapshot, a plain folder, a
// writable subvolume.
const LINK = 'app-manual-20300101-000000';
const FOLDER = 'app-manual-20300101-000001';
const WRITABLE = 'app-manual-20300101-000002';
// A writable subvolume bind-mounted read-only under an owned name: writes there fail as they do in
// a read-only snapshot, yet it is not one.
const MOUNTED = 'app-manual-20300101-000003';

describe.runIf(run)('only read-only subvolumes directly in snapshotDir are owned (real btrfs)', () => {
  let box: BtrfsSandbox;
  let deps: Deps;
  let app: string;
  let snapshotDir: string;

  async function state(): Promise<string> {
    return JSON.stringify({
      app: await readFile(join(app, 'file'), 'utf8'),
      subvolumes: (await exec('btrfs', ['subvolume', 'list', box.pool.mountPoint])).stdout,
      history: await readFile(deps.history.file, 'utf8').catch(() => ''),
    });
  }

  beforeAll(async () => {
    box = await createBtrfsSandbox(256, 'owned');
    app = await box.subvolume('app');
    const conf = await box.subvolume('conf');
    await writeFile(join(app, 'file'), 'app v1\n');
    await writeFile(join(conf, 'file'), 'conf secret\n');
    deps = box.deps({ confirm: 'never', volumes: { app: { backend: 'btrfs', path: app } } });
    snapshotDir = deps.config.volumes.app!.snapshotDir;
    await mkdir(snapshotDir, { recursive: true });
    const confSnapshot = join(box.pool.mountPoint, 'conf-ro');
    await exec('btrfs', ['subvolume', 'snapshot', '-r', conf, confSnapshot]);
    await symlink(confSnapshot, join(snapshotDir, LINK));
    await mkdir(join(snapshotDir, FOLDER));
    await writeFile(join(snapshotDir, FOLDER, 'file'), 'planted folder\n');
    await exec('btrfs', ['subvolume', 'create', join(snapshotDir, WRITABLE)]);
    await writeFile(join(snapshotDir, WRITABLE, 'file'), 'planted writable\n');
    const other = await box.subvolume('other');
    await writeFile(join(other, 'file'), 'planted mounted\n');
    await mkdir(join(snapshotDir, MOUNTED));
    await exec('mount', ['--bind', '-o', 'ro', other, join(snapshotDir, MOUNTED)]);
  });
  afterAll(async () => {
    if (snapshotDir) await exec('umount', [join(snapshotDir, MOUNTED)]).catch(() => undefined);
    await box?.cleanup();
  });

  for (const [what, name] of [
    ['a symlink to another subvolume', LINK],
    ['a plain folder', FOLDER],
    ['a writable subvolume', WRITABLE],
    ['a writable subvolume mounted read-only', MOUNTED],
  ] as const) {
    it(`recover (rollback) refuses ${what} with an owned name and changes nothing`, async () => {
      const before = await state();
      await expect(recover(deps, { volume: 'app', snapshot: name, mode: 'rollback' })).rejects.toMatchObject({
        code: 'NOT_OWNED',
        message: expect.stringContaining(name),
      });
      expect(await state()).toBe(before);
      expect(await readFile(join(app, 'file'), 'utf8')).toBe('app v1\n');
    });

    it(`recover (files) refuses ${what} with an owned name and changes nothing`, async () => {
      const before = await state();
      await expect(
        recover(deps, { volume: 'app', snapshot: name, mode: 'files', paths: ['file'] }),
      ).rejects.toMatchObject({ code: 'NOT_OWNED' });
      expect(await state()).toBe(before);
    });

    it(`a restore test of ${what} with an owned name is refused and records no PASS`, async () => {
      await expect(runRestoreTest(deps, { volume: 'app', snapshot: name })).rejects.toMatchObject({
        code: 'NOT_OWNED',
      });
      const { history } = await deps.history.read();
      expect(history.restore_tests.filter((t) => t.snapshot === name)).toEqual([]);
    });
  }

  it('none of them is listed as owned, and a restore test without a name does not pick one', async () => {
    expect((await ownedSnapshots(deps, deps.config.volumes.app!)).map((s) => s.raw.name)).toEqual([]);
    const listed = await listSnapshots(deps, { volume: 'app', includeForeign: true });
    for (const name of [LINK, FOLDER, WRITABLE])
      expect(listed.snapshots.find((s) => s.name === name)?.owned ?? false).toBe(false);
    // Only planted names: the newest "snapshot" would be one of them; none may pass.
    const result = await runRestoreTest(deps, { volume: 'app' });
    expect(result.overall).toBe('FAIL');
    expect(result.results[0]?.snapshot ?? '').not.toMatch(/^app-manual-2030/);
  });

  it('a real snapshot is still recovered while the planted names are newer', async () => {
    const created = (await createSnapshots(deps, { volumes: ['app'], type: 'manual' })).created[0]!;
    await writeFile(join(app, 'file'), 'app v2 broken\n');
    const tested = await runRestoreTest(deps, { volume: 'app' });
    expect(tested.overall).toBe('PASS');
    expect(tested.results[0]?.snapshot).toBe(created.name);
    const done = await recover(deps, { volume: 'app', snapshot: created.name, mode: 'rollback' });
    expect(done.status).toBe('recovered');
    expect(await readFile(join(app, 'file'), 'utf8')).toBe('app v1\n');
  });
});

describe.runIf(run)(
  'volume ids that prefix one another in one snapshot folder (real btrfs, built CLI)',
  () => {
    let box: BtrfsSandbox;

    beforeAll(async () => {
      box = await createBtrfsSandbox(256, 'prefix');
    });
    afterAll(async () => {
      await box?.cleanup();
    });

    it('`prune app` is refused at config load and the only snapshot of app-manual survives', async () => {
      const shared = join(box.pool.mountPoint, '.snapshots', 'shared');
      const app = await box.subvolume('app');
      const appManual = await box.subvolume('app-manual');
      await writeFile(join(appManual, 'file'), 'app-manual data\n');
      // Its only snapshot, taken while app-manual was the only volume in the folder.
      const alone = box.deps({
        volumes: { 'app-manual': { backend: 'btrfs', path: appManual, snapshotDir: shared } },
      });
      const only = (await createSnapshots(alone, { volumes: ['app-manual'], type: 'manual' })).created[0]!;
      expect(only.name).toMatch(/^app-manual-manual-\d{8}-\d{6}$/);

      const file = join(box.dir, 'snapguard.yaml');
      await writeFile(
        file,
        [
          `contextDir: ${join(box.dir, 'context')}`,
          `stateDir: ${join(box.dir, 'state')}`,
          'confirm: never',
          'volumes:',
          `  app: { backend: btrfs, path: ${app}, snapshotDir: ${shared}, retention: "1h" }`,
          `  app-manual: { backend: btrfs, path: ${appManual}, snapshotDir: ${shared}/ }`,
          '',
        ].join('\n'),
      );
      const pruned = await runBuiltCli(['prune', 'app', '--yes', '--config', file]);
      expect(pruned.code).toBe(3);
      expect(pruned.stderr).toContain('"app"');
      expect(pruned.stderr).toContain('"app-manual"');
      expect(pruned.stderr).toContain('snapshotDir');
      const listed = (await exec('btrfs', ['subvolume', 'list', '-o', shared])).stdout;
      expect(listed).toContain(only.name);
    });
  },
);

describe.runIf(run)('a volume path that becomes a symlink after the config was loaded (real btrfs)', () => {
  let box: BtrfsSandbox;

  beforeAll(async () => {
    box = await createBtrfsSandbox(256, 'linkvol');
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('recover refuses it and leaves the real subvolume writable and in place', async () => {
    const real = await box.subvolume('real');
    await writeFile(join(real, 'file'), 'real v1\n');
    const link = join(box.pool.mountPoint, 'linked');
    const deps = box.deps({ confirm: 'never', volumes: { linked: { backend: 'btrfs', path: link } } });
    await symlink(real, link);
    const snap = (await createSnapshots(deps, { volumes: ['linked'], type: 'manual' })).created[0]!;
    await writeFile(join(real, 'file'), 'real v2\n');
    await expect(
      recover(deps, { volume: 'linked', snapshot: snap.name, mode: 'rollback' }),
    ).rejects.toMatchObject({
      code: 'PRECONDITION_FAILED',
      message: expect.stringContaining('is a symlink'),
    });
    expect(await readFile(join(real, 'file'), 'utf8')).toBe('real v2\n');
    const ro = await exec('btrfs', ['property', 'get', '-ts', real, 'ro']);
    expect(ro.stdout.trim()).toBe('ro=false');
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
  });
});

describe('dir backend: a symlink with an owned name is not a snapshot', () => {
  it('recover, restore test and listing refuse or skip it; a real copy is used', async () => {
    const root = await mkdtemp(join(tmpdir(), 'snapguard-owned-dir-'));
    try {
      const data = join(root, 'data');
      const elsewhere = join(root, 'elsewhere');
      await mkdir(data);
      await mkdir(elsewhere);
      await writeFile(join(data, 'file'), 'data v1\n');
      await writeFile(join(elsewhere, 'file'), 'not this volume\n');
      const deps = createDeps(
        buildConfig(
          {
            contextDir: join(root, 'context'),
            stateDir: join(root, 'state'),
            confirm: 'never',
            volumes: { data: { backend: 'dir', path: data } },
          },
          root,
        ),
        { logger: silentLogger() },
      );
      const snapshotDir = deps.config.volumes.data!.snapshotDir;
      await mkdir(snapshotDir, { recursive: true });
      const planted = 'data-manual-20300101-000000';
      await symlink(elsewhere, join(snapshotDir, planted));
      await expect(
        recover(deps, { volume: 'data', snapshot: planted, mode: 'rollback' }),
      ).rejects.toMatchObject({
        code: 'NOT_OWNED',
        message: expect.stringContaining('a symlink'),
      });
      await expect(runRestoreTest(deps, { volume: 'data', snapshot: planted })).rejects.toMatchObject({
        code: 'NOT_OWNED',
      });
      expect(await readFile(join(data, 'file'), 'utf8')).toBe('data v1\n');
      const listed = await listSnapshots(deps, { volume: 'data', includeForeign: true });
      expect(listed.snapshots.filter((s) => s.owned).map((s) => s.name)).toEqual([]);
      const created = (await createSnapshots(deps, { volumes: ['data'], type: 'manual' })).created[0]!;
      const tested = await runRestoreTest(deps, { volume: 'data' });
      expect(tested.results[0]?.snapshot).toBe(created.name);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
