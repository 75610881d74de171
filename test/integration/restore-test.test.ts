import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import type { Deps } from '../../src/core/deps.js';
import { runRestoreTest } from '../../src/core/restore-test/index.js';
import { sampleTree } from '../../src/core/restore-test/sampler.js';
import { toSnapguardError } from '../../src/core/errors.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'getfattr', 'setfattr', 'mkfifo']);

/** A small tree: 3 top-level folders, root files, a symlink, owners, modes and xattrs. Returns its file+symlink count. */
async function populate(root: string): Promise<number> {
  let count = 0;
  for (const dir of ['alpha', 'beta', 'gamma/deep/er']) {
    await mkdir(join(root, dir), { recursive: true });
    for (let i = 0; i < 7; i++) {
      await writeFile(join(root, dir, `file-${i}.txt`), `${dir} ${i} ${'x'.repeat(i * 300)}\n`);
      count++;
    }
  }
  await writeFile(join(root, 'root.bin'), randomBytes(200_000));
  await writeFile(join(root, 'owned.conf'), 'secret=1\n');
  await chown(join(root, 'owned.conf'), 1234, 5678);
  await chmod(join(root, 'owned.conf'), 0o640);
  await writeFile(join(root, 'labelled.txt'), 'selinux label\n');
  execFileSync('setfattr', [
    '-n',
    'security.selinux',
    '-v',
    'system_u:object_r:container_file_t:s0',
    join(root, 'labelled.txt'),
  ]);
  execFileSync('setfattr', ['-n', 'user.note', '-v', 'keep me', join(root, 'labelled.txt')]);
  await symlink('alpha/file-1.txt', join(root, 'link-to-alpha'));
  await utimes(
    join(root, 'alpha', 'file-3.txt'),
    new Date('2020-01-02T03:04:05.678Z'),
    new Date('2020-01-02T03:04:05.678Z'),
  );
  count += 4;
  return count;
}

async function scratchLeftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.startsWith('.snapguard-restore-test-'));
}

describe.runIf(run)('run_restore_test on real btrfs', () => {
  let sandbox: BtrfsSandbox;
  let deps: Deps;
  let population: number;
  let volumePath: string;
  let scratchBase: string;
  let configInput: ConfigInput;

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(512, 'restore');
    volumePath = await sandbox.subvolume('data');
    scratchBase = join(sandbox.dir, 'scratch');
    await mkdir(scratchBase);
    population = await populate(volumePath);
    configInput = {
      volumes: { data: { backend: 'btrfs', path: volumePath, tier: 'critical' } },
      restoreTest: { scratchDir: scratchBase },
    };
    deps = sandbox.deps(configInput);
    await createSnapshots(deps, { volumes: ['data'], type: 'manual' });
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('passes on a clean snapshot, counts the population and records the test in history', async () => {
    const result = await runRestoreTest(deps, { volume: 'data', sampleSize: 50, seed: 7 });
    const [only] = result.results;
    expect(only?.failures).toEqual([]);
    expect(result.overall).toBe('PASS');
    expect(only?.population).toBe(population);
    expect(only?.filesChecked).toBe(population);
    expect(only?.bytesRestored).toBeGreaterThan(200_000);
    expect(await scratchLeftovers(scratchBase)).toEqual([]);
    const history = JSON.parse(await readFile(deps.history.file, 'utf8'));
    const entry = history.restore_tests.at(-1);
    expect(entry).toMatchObject({
      subvolume: 'data',
      source: 'local',
      mode: 'sample',
      outcome: 'pass',
      files_checked: population,
      seed: 7,
    });
  });

  it('picks the same sample for the same seed, a different one for another seed', async () => {
    const a = await runRestoreTest(deps, { volume: 'data', sampleSize: 5, seed: 42 });
    const b = await runRestoreTest(deps, { volume: 'data', sampleSize: 5, seed: 42 });
    const c = await runRestoreTest(deps, { volume: 'data', sampleSize: 5, seed: 4242 });
    expect(a.results[0]?.checkedPaths).toHaveLength(5);
    expect(b.results[0]?.checkedPaths).toEqual(a.results[0]?.checkedPaths);
    expect(c.results[0]?.checkedPaths).not.toEqual(a.results[0]?.checkedPaths);
  });

  it('spreads the sample across top-level folders when asked', async () => {
    const snapshotPath = join(sandbox.dir, 'pool', '.snapshots', 'data');
    const [name] = await readdir(snapshotPath);
    const spread = await sampleTree(join(snapshotPath, name as string), 4, { seed: 1, spread: true });
    const groups = new Set(spread.paths.map((p) => (p.includes('/') ? p.split('/')[0] : '')));
    expect(groups).toEqual(new Set(['', 'alpha', 'beta', 'gamma']));
    expect(spread.population).toBe(population);
  });

  it('reports files changed on the live volume as drift, not failures', async () => {
    await writeFile(join(volumePath, 'alpha', 'file-2.txt'), 'changed after the snapshot\n');
    const result = await runRestoreTest(deps, { volume: 'data', sampleSize: 100, seed: 3 });
    expect(result.overall).toBe('PASS');
    expect(result.results[0]?.drift).toContainEqual(
      expect.objectContaining({ path: 'alpha/file-2.txt', change: 'modified' }),
    );
  });

  it('removes the scratch folder when cancelled', async () => {
    const controller = new AbortController();
    const attempt = runRestoreTest(
      deps,
      { volume: 'data', sampleSize: 100, seed: 5 },
      { signal: controller.signal, onProgress: () => controller.abort() },
    );
    // A cancellation, as the CLI and MCP edges report it: not a failure of the drill or a crash.
    await expect(attempt.catch((error: unknown) => toSnapguardError(error).code)).resolves.toBe('CANCELLED');
    expect(await scratchLeftovers(scratchBase)).toEqual([]);
  });

  it('refuses snapshot names it does not own, paths and unknown volumes (guardrail 1)', async () => {
    await expect(runRestoreTest(deps, { volume: 'data', snapshot: '../../etc' })).rejects.toMatchObject({
      code: 'BAD_INPUT',
    });
    await expect(
      runRestoreTest(deps, { volume: 'data', snapshot: 'timeshift-2026-01-01' }),
    ).rejects.toMatchObject({
      code: 'NOT_OWNED',
    });
    await expect(
      runRestoreTest(deps, { volume: 'data', snapshot: 'data-manual-20200101-000000' }),
    ).rejects.toMatchObject({
      code: 'SNAPSHOT_NOT_FOUND',
    });
    await expect(runRestoreTest(deps, { volume: '../data' })).rejects.toMatchObject({ code: 'BAD_INPUT' });
    await expect(runRestoreTest(deps, { volume: 'other' })).rejects.toMatchObject({ code: 'UNKNOWN_VOLUME' });
  });

  it('full mode: send | receive into scratch on the pool, verifies the tree, records timing and an RTO estimate', async () => {
    const result = await runRestoreTest(deps, { volume: 'data', mode: 'full', sampleSize: 10, seed: 9 });
    const [only] = result.results;
    expect(only?.failures).toEqual([]);
    expect(result.overall).toBe('PASS');
    expect(only?.filesChecked).toBe(population);
    expect(only?.durationSeconds).toBeGreaterThan(0);
    expect(only?.throughputBytesPerSecond).toBeGreaterThan(0);
    expect(only?.rtoEstimateSeconds).toEqual(expect.any(Number));
    // The received subvolume and its scratch folder are gone.
    expect(await scratchLeftovers(join(sandbox.dir, 'pool', '.snapshots'))).toEqual([]);
    const { stdout } = await exec('btrfs', ['subvolume', 'list', sandbox.pool.mountPoint]);
    expect(stdout).not.toContain('.snapguard-restore-test-');
    const history = JSON.parse(await readFile(deps.history.file, 'utf8'));
    expect(history.restore_tests.at(-1)).toMatchObject({ mode: 'full', outcome: 'pass' });
    expect(history.restore_tests.at(-1).rto_estimate_seconds).toEqual(expect.any(Number));
  });

  it('a cancelled full drill stops send and receive and removes the received subvolume', async () => {
    const controller = new AbortController();
    const attempt = runRestoreTest(
      deps,
      { volume: 'data', mode: 'full', seed: 4 },
      { signal: controller.signal, onProgress: () => setTimeout(() => controller.abort(), 5) },
    );
    await expect(attempt.catch((error: unknown) => toSnapguardError(error).code)).resolves.toBe('CANCELLED');
    expect(await scratchLeftovers(join(sandbox.dir, 'pool', '.snapshots'))).toEqual([]);
    const { stdout } = await exec('btrfs', ['subvolume', 'list', sandbox.pool.mountPoint]);
    expect(stdout).not.toContain('.snapguard-restore-test-');
  });

  describe('external source (a received copy on a second pool)', () => {
    let external: Awaited<ReturnType<typeof createBtrfsSandbox>>;
    let copy: string;

    beforeAll(async () => {
      external = await createBtrfsSandbox(256, 'restore-ext');
      const target = join(external.pool.mountPoint, '.snapshots', 'data');
      await mkdir(target, { recursive: true });
      const snapshots = join(sandbox.pool.mountPoint, '.snapshots', 'data');
      const [name] = await readdir(snapshots);
      execFileSync(
        'sh',
        ['-c', 'btrfs send -q "$1" | btrfs receive "$2"', 'sh', join(snapshots, name as string), target],
        {
          stdio: 'ignore',
        },
      );
      copy = join(target, name as string);
      deps = sandbox.deps({
        ...configInput,
        volumes: {
          data: {
            backend: 'btrfs',
            path: volumePath,
            tier: 'critical',
            external: [{ kind: 'btrfs', path: target }],
          },
        },
      });
    });

    afterAll(async () => {
      await external?.cleanup();
    });

    it('passes on an untouched received copy', async () => {
      const result = await runRestoreTest(deps, {
        volume: 'data',
        source: 'external',
        sampleSize: 100,
        seed: 1,
      });
      expect(result.results[0]?.failures).toEqual([]);
      expect(result.overall).toBe('PASS');
      expect(result.warnings).toEqual([]);
    });

    it('full mode from the received copy: send | receive back into the pool, verified against the local snapshot', async () => {
      const result = await runRestoreTest(deps, {
        volume: 'data',
        source: 'external',
        mode: 'full',
        sampleSize: 20,
        seed: 2,
      });
      expect(result.results[0]?.failures).toEqual([]);
      expect(result.results[0]?.rtoEstimateSeconds).toEqual(expect.any(Number));
    });

    it('fails naming the check when mode, owner, an xattr or the selinux label changed on the copy', async () => {
      // Received snapshots are read-only; make it writable to damage it the way a careless copy would.
      execFileSync('btrfs', ['property', 'set', '-f', '-ts', copy, 'ro', 'false'], { stdio: 'ignore' });
      await chmod(join(copy, 'alpha', 'file-0.txt'), 0o600);
      await chown(join(copy, 'beta', 'file-1.txt'), 4321, 0);
      execFileSync('setfattr', ['-n', 'user.note', '-v', 'changed', join(copy, 'labelled.txt')]);
      execFileSync('setfattr', [
        '-n',
        'security.selinux',
        '-v',
        'system_u:object_r:user_home_t:s0',
        join(copy, 'labelled.txt'),
      ]);
      execFileSync('btrfs', ['property', 'set', '-f', '-ts', copy, 'ro', 'true'], { stdio: 'ignore' });
      const result = await runRestoreTest(deps, {
        volume: 'data',
        source: 'external',
        sampleSize: 100,
        seed: 1,
      });
      expect(result.overall).toBe('FAIL');
      const failures = result.results[0]?.failures ?? [];
      expect(failures).toContainEqual(
        expect.objectContaining({
          path: 'alpha/file-0.txt',
          check: 'mode',
          expected: '0644',
          actual: '0600',
        }),
      );
      expect(failures).toContainEqual(
        expect.objectContaining({ path: 'beta/file-1.txt', check: 'uid', expected: '0', actual: '4321' }),
      );
      expect(failures).toContainEqual(
        expect.objectContaining({ path: 'labelled.txt', check: 'xattr:user.note' }),
      );
      expect(failures).toContainEqual(
        expect.objectContaining({ path: 'labelled.txt', check: 'xattr:security.selinux' }),
      );
      const history = JSON.parse(await readFile(deps.history.file, 'utf8'));
      expect(history.restore_tests.at(-1)).toMatchObject({ source: 'external', outcome: 'fail' });
    });
  });
});
