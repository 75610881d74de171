import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig, loadConfig } from '../../src/core/config.js';
import { parse as parseYaml } from 'yaml';
import { createDeps } from '../../src/core/deps.js';
import { proposeConfig, writeProposal } from '../../src/core/init.js';
import { silentLogger } from '../../src/core/logger.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireBuiltCli, runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';
import { createZfsSandbox, type ZfsSandbox } from '../helpers/zfs.js';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.runIf(enabled)('snapguard init on a real btrfs pool', () => {
  let sandbox: BtrfsSandbox;
  let pool: string;
  let work: string;
  const dirs = () => ['--state-dir', join(sandbox.dir, 'state'), '--context-dir', join(sandbox.dir, 'ctx')];

  beforeAll(async () => {
    requireBuiltCli();
    sandbox = await createBtrfsSandbox(256, 'init');
    pool = sandbox.pool.mountPoint;
    work = join(sandbox.dir, 'work');
    await mkdir(work);
    // Live volumes: two top-level ones, one with a nested subvolume, a database, two with one name.
    for (const name of ['containers', 'app', 'app/db', 'postgresql', 'site-a', 'site-b', 'tmp'])
      await sandbox.subvolume(name);
    await sandbox.subvolume('site-a/data');
    await sandbox.subvolume('site-b/data');
    await writeFile(join(pool, 'app', 'compose.yml'), 'services: {}\n');
    // What is not a volume: a snapper-style .snapshots folder with a read-only and a writable
    // snapshot, a read-only snapshot outside any snapshot folder, btrbk's folder.
    await mkdir(join(pool, '.snapshots', '1'), { recursive: true });
    await exec('btrfs', [
      'subvolume',
      'snapshot',
      '-r',
      join(pool, 'app'),
      join(pool, '.snapshots/1/snapshot'),
    ]);
    await exec('btrfs', ['subvolume', 'snapshot', join(pool, 'app'), join(pool, '.snapshots/app-writable')]);
    await exec('btrfs', [
      'subvolume',
      'snapshot',
      '-r',
      join(pool, 'containers'),
      join(pool, 'containers-ro'),
    ]);
    await mkdir(join(pool, '_btrbk_snap'));
    await exec('btrfs', [
      'subvolume',
      'snapshot',
      join(pool, 'containers'),
      join(pool, '_btrbk_snap/containers.20261120'),
    ]);
  }, 120_000);

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('proposes the live subvolumes (nested ones too) and leaves out snapshots', async () => {
    const proposal = await proposeConfig({
      exec,
      configFile: join(work, 'snapguard.yaml'),
      under: [pool],
      stateDir: join(sandbox.dir, 'state'),
      contextDir: join(sandbox.dir, 'ctx'),
    });
    const byPath = Object.fromEntries(proposal.volumes.map((v) => [v.path.slice(pool.length + 1), v]));
    expect(Object.keys(byPath).sort()).toEqual([
      'app',
      'app/db',
      'containers',
      'postgresql',
      'site-a',
      'site-a/data',
      'site-b',
      'site-b/data',
    ]);
    // Ids are valid and unique; two subvolumes named data get distinct ids.
    const ids = proposal.volumes.map((v) => v.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(byPath['site-a/data']!.id).not.toBe(byPath['site-b/data']!.id);
    for (const id of ids) expect(id).toMatch(/^[a-z0-9][a-z0-9._-]{0,63}$/);
    // Tiers come from the planner's classifier.
    expect(byPath['postgresql']).toMatchObject({ tier: 'critical', minInterval: '15m' });
    expect(byPath['containers']).toMatchObject({ tier: 'important', minInterval: '30m' });
    // A nested volume's snapshots live outside its parent volume, on the same filesystem.
    expect(byPath['app/db']!.snapshotDir).toBe(join(pool, '.snapshots', byPath['app/db']!.id));
    const left = Object.fromEntries(proposal.skipped.map((s) => [s.path.slice(pool.length + 1), s.reason]));
    expect(left['.snapshots/1/snapshot']).toMatch(/snapshot folder \(\.snapshots\)/);
    expect(left['.snapshots/app-writable']).toMatch(/snapshot folder/);
    expect(left['_btrbk_snap/containers.20261120']).toMatch(/snapshot folder \(_btrbk_snap\)/);
    expect(left['containers-ro']).toMatch(/read-only subvolume/);
    expect(left['tmp']).toMatch(/temporary/);
  });

  it('writes a file that the config loader loads, and a snapshot of a nested volume works', async () => {
    const file = join(work, 'etc', 'snapguard', 'written.yaml'); // a folder that does not exist yet
    const result = await runBuiltCli(['init', '--config', file, '--under', pool, ...dirs()], { cwd: work });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Wrote ${file}.`);
    expect(result.stdout).toMatch(/doctor: all \d+ checks passed/);
    expect(result.stdout).toContain(`snapguard --config ${file} snapshot create`);
    const config = await loadConfig({ explicit: file });
    const db = Object.values(config.volumes).find((v) => v.path === join(pool, 'app', 'db'))!;
    expect(db).toMatchObject({ backend: 'btrfs', snapshotDir: join(pool, '.snapshots', db.id) });
    expect(Object.values(config.volumes).map((v) => v.path)).not.toContain(join(pool, 'containers-ro'));
    const text = await readFile(file, 'utf8');
    expect(text).toMatch(/# Found and left out:/);
    expect(text).toMatch(/containers-ro: read-only subvolume/);
    const deps = createDeps(config, { exec, logger: silentLogger() });
    const created = await createSnapshots(deps, {
      volumes: [db.id, 'app'],
      type: 'manual',
      operation: 'first',
    });
    expect(created.created).toHaveLength(2);
    // A second init sees the new snapshots and leaves them out as well.
    const again = await proposeConfig({ exec, configFile: join(work, 'x.yaml'), under: [pool] });
    expect(again.volumes.map((v) => v.id).sort()).toEqual(Object.keys(config.volumes).sort());
  });

  it('a subvolume mounted on its own (subvol=) gets its snapshot folder at the top-level mount of its filesystem', async () => {
    const device = (await readFile('/proc/self/mountinfo', 'utf8'))
      .split('\n')
      .find((line) => line.split(' ')[4] === pool)!
      .split(' - ')[1]!
      .split(' ')[1]!;
    const srv = join(sandbox.dir, 'srv', 'site-a');
    await mkdir(srv, { recursive: true });
    await exec('mount', ['-o', 'subvol=site-a', device, srv]);
    try {
      const proposal = await proposeConfig({
        exec,
        configFile: join(work, 'subvol.yaml'),
        under: [pool, join(sandbox.dir, 'srv')],
        stateDir: join(sandbox.dir, 'state'),
        contextDir: join(sandbox.dir, 'ctx'),
      });
      const siteA = proposal.volumes.find((v) => v.path === srv)!;
      // Next to the mount point would be another filesystem: the top level's .snapshots instead.
      expect(siteA.snapshotDir).toBe(join(pool, '.snapshots', siteA.id));
      expect(proposal.volumes.find((v) => v.path === join(srv, 'data'))).toBeDefined();
      expect(proposal.volumes.map((v) => v.path)).not.toContain(join(pool, 'site-a'));
      const config = buildConfig(parseYaml(proposal.yaml), work, proposal.configFile);
      const deps = createDeps(config, { exec, logger: silentLogger() });
      const created = await createSnapshots(deps, {
        volumes: [siteA.id],
        type: 'manual',
        operation: 'subvol',
      });
      expect(created.created[0]!.path.startsWith(join(pool, '.snapshots'))).toBe(true);
    } finally {
      await exec('umount', [srv]);
    }
  });

  it('--dry-run prints the file and writes nothing; --json prints the proposal', async () => {
    const before = await readdir(work);
    const dry = await runBuiltCli(['init', '--dry-run', '--under', pool, ...dirs()], { cwd: work });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^volumes:$/m);
    expect(dry.stdout).toContain(`path: ${join(pool, 'app', 'db')}`);
    expect(dry.stderr).toContain('Dry run: nothing written');
    expect(await readdir(work)).toEqual(before);
    expect(existsSync(join(work, 'snapguard.yaml'))).toBe(false);
    const json = await runBuiltCli(['init', '--dry-run', '--json', '--under', pool, ...dirs()], {
      cwd: work,
    });
    expect(json.code).toBe(0);
    const proposal = JSON.parse(json.stdout) as { written: boolean; volumes: { path: string }[] };
    expect(proposal.written).toBe(false);
    expect(proposal.volumes.map((v) => v.path)).toContain(join(pool, 'postgresql'));
    expect(await readdir(work)).toEqual(before);
  });

  it('refuses an existing file without --force and replaces it with --force', async () => {
    const file = join(work, 'snapguard.yaml');
    await writeFile(file, 'volumes: {}\n# mine\n');
    const refused = await runBuiltCli(['init', '--under', pool, ...dirs()], { cwd: work });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`${file} already exists`);
    expect(refused.stderr).toContain('--force');
    expect(await readFile(file, 'utf8')).toBe('volumes: {}\n# mine\n');
    const forced = await runBuiltCli(['init', '--force', '--under', pool, ...dirs()], { cwd: work });
    expect(forced.code).toBe(0);
    // Written as ./snapguard.yaml: the next steps need no --config.
    expect(forced.stdout).toContain('\n  snapguard snapshot create ');
    const config = await loadConfig({ cwd: work });
    expect(config.sourceFile).toBe(file);
    expect(Object.keys(config.volumes).length).toBe(8);
  });
});

const zfsEnabled = requireComponents(['zfs-fuse', 'zfs', 'zpool']);

describe.runIf(zfsEnabled)('snapguard init on a zfs-fuse pool', () => {
  let sandbox: ZfsSandbox;
  beforeAll(async () => {
    sandbox = await createZfsSandbox('init');
  }, 180_000);
  afterAll(async () => {
    await sandbox?.cleanup();
  }, 180_000);

  // zfs-fuse mounts every dataset read-write and reports readonly=off ("temporary") even after
  // `zfs set readonly=on`, so the read-only rule for datasets cannot be shown here.
  it('proposes the mounted datasets, not the pool root holding them', async () => {
    const postgres = await sandbox.dataset('postgresql');
    const apps = await sandbox.dataset('apps');
    const proposal = await proposeConfig({
      exec,
      configFile: join(sandbox.dir, 'snapguard.yaml'),
      under: [sandbox.pool.mountPoint],
      stateDir: join(sandbox.dir, 'state'),
      contextDir: join(sandbox.dir, 'ctx'),
    });
    expect(proposal.volumes.map((v) => [v.backend, v.dataset, v.path, v.tier])).toEqual([
      ['zfs', apps.dataset, apps.mountPoint, 'important'],
      ['zfs', postgres.dataset, postgres.mountPoint, 'critical'],
    ]);
    expect(proposal.volumes.every((v) => v.snapshotDir === undefined)).toBe(true);
    const left = Object.fromEntries(proposal.skipped.map((s) => [s.dataset, s.reason]));
    expect(left[sandbox.pool.name]).toMatch(/root dataset of a pool/);
    const file = join(sandbox.dir, 'snapguard.yaml');
    await writeProposal(proposal, false);
    const config = await loadConfig({ explicit: file });
    expect(config.volumes.postgresql).toMatchObject({ backend: 'zfs', dataset: postgres.dataset });
  }, 120_000);
});

describe.runIf(enabled)('snapguard init when only a subvolume is mounted', () => {
  let sandbox: BtrfsSandbox;
  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'init-sub');
    await sandbox.subvolume('data');
  }, 120_000);
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('leaves it out and says to mount the top level: no folder for snapshots on its filesystem', async () => {
    const pool = sandbox.pool.mountPoint;
    const device = (await readFile('/proc/self/mountinfo', 'utf8'))
      .split('\n')
      .find((line) => line.split(' ')[4] === pool)!
      .split(' - ')[1]!
      .split(' ')[1]!;
    const srv = join(sandbox.dir, 'srv', 'data');
    await mkdir(srv, { recursive: true });
    await exec('mount', ['-o', 'subvol=data', device, srv]);
    await exec('umount', [pool]);
    try {
      const proposal = await proposeConfig({
        exec,
        configFile: join(sandbox.dir, 'snapguard.yaml'),
        under: [join(sandbox.dir, 'srv')],
      });
      expect(proposal.volumes).toEqual([]);
      expect(proposal.skipped).toEqual([
        expect.objectContaining({
          path: srv,
          reason: expect.stringContaining('mount the top level of the filesystem (subvolid=5)'),
        }),
      ]);
      expect(proposal.yaml).toContain('volumes: {}');
    } finally {
      await exec('mount', ['-o', 'subvolid=5', device, pool]);
      await exec('umount', [srv]);
    }
  });
});
