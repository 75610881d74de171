import { open, readdir, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READ_CLONE_PREFIX } from '../../src/backends/zfs.js';
import type { Deps } from '../../src/core/deps.js';
import { healthCheck } from '../../src/core/health/index.js';
import { runRestoreTest } from '../../src/core/restore-test/index.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { requireComponents } from '../helpers/env.js';
import { createZfsSandbox, exec, retryBusy, type ZfsSandbox } from '../helpers/zfs.js';

const run = requireComponents(['zfs-fuse', 'zfs', 'zpool']);

/** Byte offsets of every occurrence of `marker` in a file, read in chunks. */
async function findAll(file: string, marker: Buffer): Promise<number[]> {
  const handle = await open(file, 'r');
  const found: number[] = [];
  try {
    const chunk = Buffer.alloc(4 << 20);
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      let at = chunk.subarray(0, bytesRead).indexOf(marker);
      while (at !== -1) {
        found.push(position + at);
        at = chunk.subarray(0, bytesRead).indexOf(marker, at + 1);
      }
      if (bytesRead < chunk.length) break;
      position += bytesRead - marker.length;
    }
  } finally {
    await handle.close();
  }
  return [...new Set(found)];
}

describe.runIf(run)('run_restore_test on a zfs volume (zfs-fuse)', () => {
  let sandbox: ZfsSandbox;
  let deps: Deps;
  let dataset: string;
  let mountPoint: string;
  const marker = Buffer.from('SNAPGUARD-ZFS-RESTORE-TEST-MARKER-7f3a9c');

  beforeAll(async () => {
    sandbox = await createZfsSandbox('restore');
    ({ dataset, mountPoint } = await sandbox.dataset('data'));
    for (const dir of ['alpha', 'beta']) {
      await mkdir(join(mountPoint, dir));
      for (let i = 0; i < 5; i++) await writeFile(join(mountPoint, dir, `f${i}.txt`), `${dir} ${i}\n`);
    }
    // One full 128K record of a pattern found nowhere else, so its block can be found in the image.
    await writeFile(
      join(mountPoint, 'victim.bin'),
      Buffer.concat(Array(3277).fill(marker)).subarray(0, 131072),
    );
    deps = sandbox.deps({
      volumes: { data: { backend: 'zfs', dataset, path: mountPoint } },
      restoreTest: { scratchDir: join(sandbox.dir, 'scratch') },
    });
    await mkdir(join(sandbox.dir, 'scratch'));
    await createSnapshots(deps, { volumes: ['data'], type: 'manual' });
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('passes on a clean snapshot, read through a temporary clone that is removed afterwards', async () => {
    const result = await runRestoreTest(deps, { volume: 'data', sampleSize: 50, seed: 1 });
    expect(result.overall).toBe('PASS');
    expect(result.results[0]).toMatchObject({
      volume: 'data',
      source: 'local',
      mode: 'sample',
      filesChecked: 11,
    });
    expect(result.results[0]?.failures).toEqual([]);
    const pool = dataset.split('/')[0] as string;
    const names = (await exec('zfs', ['list', '-H', '-o', 'name', '-r', pool])).stdout;
    expect(names).not.toContain(READ_CLONE_PREFIX);
    const { history } = await deps.history.read();
    expect(history.restore_tests.at(-1)).toMatchObject({ subvolume: 'data', outcome: 'pass' });
  });

  it('health_check reads the newest zfs snapshot and knows its exclusive size', async () => {
    const report = await healthCheck(deps, { volume: 'data' });
    const codes = report.findings.map((f) => f.code);
    expect(codes).not.toContain('SNAPSHOT_UNREADABLE');
    expect(codes).not.toContain('SNAPSHOT_SHARE_UNKNOWN');
    expect(codes).not.toContain('POOL_USAGE_UNKNOWN');
    expect(typeof report.volumes[0]?.snapshotExclusiveBytes).toBe('number');
    const names = (await exec('zfs', ['list', '-H', '-o', 'name', '-r', dataset.split('/')[0] as string]))
      .stdout;
    expect(names).not.toContain(READ_CLONE_PREFIX);
  });

  it('fails with read-error on the file whose block was overwritten in the pool image', async () => {
    const pool = sandbox.pool;
    // Flush zfs-fuse's caches: export the pool, damage the block on disk, import it again.
    await retryBusy(() => exec('zpool', ['export', pool.name]));
    const offsets = await findAll(pool.image, marker);
    expect(offsets.length).toBeGreaterThan(0);
    const handle = await open(pool.image, 'r+');
    try {
      for (const offset of offsets)
        await handle.write(Buffer.alloc(marker.length, 0x55), 0, marker.length, offset);
    } finally {
      await handle.close();
    }
    await exec('zpool', ['import', '-d', sandbox.dir, pool.name], { timeoutMs: 120_000 });

    const result = await runRestoreTest(deps, { volume: 'data', sampleSize: 50, seed: 1 });
    expect(result.overall).toBe('FAIL');
    const failures = result.results[0]?.failures ?? [];
    expect(failures.map((f) => `${f.path} ${f.check}`)).toContain('victim.bin read-error');
    // Only the damaged file fails; the others still verify.
    expect(new Set(failures.map((f) => f.path))).toEqual(new Set(['victim.bin']));
    const leftovers = (await exec('zfs', ['list', '-H', '-o', 'name', '-r', pool.name])).stdout;
    expect(leftovers).not.toContain(READ_CLONE_PREFIX);
    expect(await readdir(join(sandbox.dir, 'scratch'))).toEqual([]);
  });

  it('says clearly that full mode is not available for zfs', async () => {
    await expect(runRestoreTest(deps, { volume: 'data', mode: 'full' })).rejects.toMatchObject({
      code: 'NOT_SUPPORTED',
    });
  });
});
