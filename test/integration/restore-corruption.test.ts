import { randomBytes } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { healthCheck } from '../../src/core/health/index.js';
import { runRestoreTest } from '../../src/core/restore-test/index.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents([
  'btrfs',
  'mkfs.btrfs',
  'filefrag',
  'btrfs-map-logical',
  'getfattr',
  'setfattr',
]);

/** Where the first data block of `file` lies inside the image: filefrag gives the btrfs logical address, btrfs-map-logical the device offset. */
async function physicalOffset(file: string, image: string): Promise<number> {
  const frag = await exec('filefrag', ['-v', '-b4096', file]);
  const match = /^\s*0:\s+0\.\.\s*\d+:\s+(\d+)\.\./m.exec(frag.stdout);
  if (!match) throw new Error(`no extent in filefrag output:\n${frag.stdout}`);
  const logical = Number(match[1]) * 4096;
  const mapped = await exec('btrfs-map-logical', ['-l', String(logical), image]);
  const physical = /physical (\d+)/.exec(mapped.stdout)?.[1];
  if (!physical) throw new Error(`btrfs-map-logical gave no offset:\n${mapped.stdout}`);
  return Number(physical);
}

describe.runIf(run)('a snapshot with a corrupted data block', () => {
  let sandbox: BtrfsSandbox;
  let deps: Deps;

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(512, 'corrupt');
    const volume = await sandbox.subvolume('data');
    for (let i = 0; i < 6; i++) await writeFile(join(volume, `intact-${i}.txt`), `intact ${i}\n`.repeat(100));
    // Large enough not to be inlined in the metadata: its data lives in a data extent.
    await writeFile(join(volume, 'victim.bin'), randomBytes(256 * 1024));
    await exec('sync', []);
    deps = sandbox.deps({ volumes: { data: { backend: 'btrfs', path: volume, tier: 'critical' } } });
    await createSnapshots(deps, { volumes: ['data'], type: 'manual' });
    await exec('sync', []);

    const offset = await physicalOffset(join(volume, 'victim.bin'), sandbox.pool.image);
    const image = await open(sandbox.pool.image, 'r+');
    try {
      await image.write(randomBytes(4096), 0, 4096, offset);
      await image.sync();
    } finally {
      await image.close();
    }
    // Drop the cached (good) pages so the next read goes to the damaged block and btrfs checks its csum.
    await writeFile('/proc/sys/vm/drop_caches', '3\n');
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('fails the restore test with read-error naming the damaged file', async () => {
    const result = await runRestoreTest(deps, { volume: 'data', sampleSize: 50, seed: 1 });
    expect(result.overall).toBe('FAIL');
    const failures = result.results[0]?.failures ?? [];
    expect(failures).toContainEqual(
      expect.objectContaining({
        path: 'victim.bin',
        check: 'read-error',
        actual: expect.stringContaining('EIO'),
      }),
    );
    // The intact files still verify: only the damaged one fails.
    expect(failures.map((f) => f.path)).toEqual(['victim.bin']);
    expect(result.results[0]?.filesChecked).toBe(6);
    // The history records the failure with the file and the check.
    const history = JSON.parse(await readFile(deps.history.file, 'utf8'));
    expect(history.restore_tests.at(-1)).toMatchObject({
      outcome: 'fail',
      failures: [expect.objectContaining({ path: 'victim.bin', check: 'read-error' })],
    });
  });

  it('the full drill fails too: btrfs send cannot read the damaged extent, and the scratch subvolume is gone', async () => {
    const result = await runRestoreTest(deps, { volume: 'data', mode: 'full', seed: 1 });
    expect(result.overall).toBe('FAIL');
    expect(result.results[0]?.failures).toEqual([
      expect.objectContaining({
        path: '.',
        check: 'read-error',
        actual: expect.stringMatching(/Input\/output error|EIO/i),
      }),
    ]);
    const { stdout } = await exec('btrfs', ['subvolume', 'list', sandbox.pool.mountPoint]);
    expect(stdout).not.toContain('.snapguard-restore-test-');
  });

  it('health_check is CRITICAL: btrfs device stats count the corruption', async () => {
    const result = await healthCheck(deps, { volume: 'data' });
    expect(result.overall).toBe('CRITICAL');
    expect(result.findings).toContainEqual(
      expect.objectContaining({
        code: 'DEVICE_ERRORS',
        severity: 'critical',
        message: expect.stringContaining('corruption_errs'),
      }),
    );
    // The failed restore test of the first case is reported too.
    expect(result.findings).toContainEqual(expect.objectContaining({ code: 'RESTORE_TEST_FAILED' }));
  });
});
