import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { runRestoreTest } from '../../src/core/restore-test/index.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'restic', 'getfattr']);

async function packFiles(repo: string): Promise<Map<string, number>> {
  const packs = new Map<string, number>();
  for (const sub of await readdir(join(repo, 'data'))) {
    for (const name of await readdir(join(repo, 'data', sub))) {
      const file = join(repo, 'data', sub, name);
      packs.set(file, (await stat(file)).size);
    }
  }
  return packs;
}

describe.runIf(run)('run_restore_test from a real restic repository', () => {
  let sandbox: BtrfsSandbox;
  let deps: Deps;
  let volume: string;
  let resticEnv: Record<string, string>;

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'restic');
    volume = await sandbox.subvolume('data');
    await mkdir(join(volume, 'docs'));
    await mkdir(join(volume, 'media'));
    for (let i = 0; i < 5; i++)
      await writeFile(join(volume, 'docs', `note-${i}.md`), `# note ${i}\n`.repeat(50));
    await writeFile(join(volume, 'media', 'clip.bin'), randomBytes(100_000));
    const passwordFile = join(sandbox.dir, 'restic.pass');
    await writeFile(passwordFile, 'correct horse battery staple\n', { mode: 0o600 });
    const repository = join(sandbox.dir, 'repo');
    resticEnv = {
      RESTIC_REPOSITORY: repository,
      RESTIC_PASSWORD_FILE: passwordFile,
      RESTIC_CACHE_DIR: join(sandbox.dir, 'cache'),
    };
    await exec('restic', ['init'], { env: resticEnv });
    await exec('restic', ['backup', '--no-scan', volume], { env: resticEnv }).catch(() =>
      exec('restic', ['backup', volume], { env: resticEnv }),
    );
    deps = sandbox.deps({
      volumes: {
        data: { backend: 'btrfs', path: volume, external: [{ kind: 'restic', repository, passwordFile }] },
      },
    });
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('passes: restores the sample with restic restore --include and verifies it against the live files', async () => {
    const result = await runRestoreTest(deps, { volume: 'data', source: 'restic', sampleSize: 50, seed: 2 });
    const [only] = result.results;
    expect(only?.failures).toEqual([]);
    expect(result.overall).toBe('PASS');
    expect(only?.population).toBe(6);
    expect(only?.filesChecked).toBe(6);
    expect(only?.bytesRestored).toBeGreaterThan(100_000);
    const history = JSON.parse(await readFile(deps.history.file, 'utf8'));
    expect(history.restore_tests.at(-1)).toMatchObject({
      source: 'restic',
      outcome: 'pass',
      files_checked: 6,
    });
    // The password never appears in results or history.
    expect(JSON.stringify(result)).not.toContain('correct horse');
    expect(JSON.stringify(history)).not.toContain('correct horse');
  });

  it('full mode restores the whole restic snapshot and measures throughput and RTO', async () => {
    const result = await runRestoreTest(deps, { volume: 'data', source: 'restic', mode: 'full', seed: 1 });
    const [only] = result.results;
    expect(only?.failures).toEqual([]);
    expect(only).toMatchObject({ mode: 'full', source: 'restic', filesChecked: 6, outcome: 'PASS' });
    expect(only?.throughputBytesPerSecond).toBeGreaterThan(0);
    expect(only?.rtoEstimateSeconds).toEqual(expect.any(Number));
  });

  it('fails naming the file whose data is missing from the repository', async () => {
    const before = await packFiles(resticEnv.RESTIC_REPOSITORY as string);
    await writeFile(join(volume, 'media', 'new-video.bin'), randomBytes(600_000));
    await exec('restic', ['backup', volume], { env: resticEnv });
    const added = [...(await packFiles(resticEnv.RESTIC_REPOSITORY as string))].filter(
      ([file]) => !before.has(file),
    );
    // The largest new pack holds the new file's data (trees go to their own, small packs).
    const dataPack = added.sort((a, b) => b[1] - a[1])[0]?.[0] as string;
    await rm(dataPack);
    const result = await runRestoreTest(deps, { volume: 'data', source: 'restic', sampleSize: 50, seed: 2 });
    expect(result.overall).toBe('FAIL');
    const failures = result.results[0]?.failures ?? [];
    expect(failures).toContainEqual(expect.objectContaining({ path: 'media/new-video.bin' }));
    expect(failures.find((f) => f.path === 'media/new-video.bin')?.check).toMatch(/missing|sha256|size/);
    expect(failures.filter((f) => f.path !== 'media/new-video.bin')).toEqual([]);
    expect(result.warnings.join('\n')).toContain('restic restore reported errors');
    // restic retries the missing pack with backoff before giving up (about 45 s here).
  }, 180_000);
});
