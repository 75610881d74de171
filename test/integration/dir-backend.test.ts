import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile, lstat, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { createSnapshots, listSnapshots } from '../../src/core/snapshots.js';

describe('dir backend (copy-based snapshots)', () => {
  let dir: string;
  let deps: Deps;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-dir-'));
    const volume = join(dir, 'pool', 'data');
    await mkdir(join(volume, 'sub'), { recursive: true });
    await writeFile(join(volume, 'sub', 'a.txt'), 'alpha');
    await symlink('sub/a.txt', join(volume, 'link'));
    deps = createDeps(
      buildConfig(
        { contextDir: 'ctx', stateDir: 'state', volumes: { data: { backend: 'dir', path: 'pool/data' } } },
        dir,
      ),
      { logger: silentLogger() },
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('copies the tree with its symlinks into the snapshot folder and lists it as owned', async () => {
    const result = await createSnapshots(deps, { volumes: ['data'], type: 'pre-change', operation: 'edit' });
    const snap = result.created[0]!;
    expect(snap.readOnly).toBe(false);
    expect(await readFile(join(snap.path, 'sub', 'a.txt'), 'utf8')).toBe('alpha');
    expect((await lstat(join(snap.path, 'link'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(snap.path, 'link'))).toBe('sub/a.txt');
    const listed = await listSnapshots(deps, { volume: 'data' });
    expect(listed.snapshots.map((s) => s.name)).toEqual([snap.name]);
  });

  it('never shows a half-made copy as a snapshot', async () => {
    const snapshotDir = deps.config.volumes.data!.snapshotDir;
    await mkdir(join(snapshotDir, '.snapguard-partial-data-manual-20261121-000000'));
    const listed = await listSnapshots(deps, { volume: 'data', includeForeign: true });
    expect(listed.snapshots.some((s) => s.name.includes('partial'))).toBe(false);
    expect((await readdir(snapshotDir)).length).toBe(2);
  });

  it('never skips a pre-change snapshot within minInterval: a copy cannot tell whether the volume changed', async () => {
    const withInterval = createDeps(
      buildConfig(
        {
          contextDir: 'ctx',
          stateDir: 'state',
          volumes: { data: { backend: 'dir', path: 'pool/data', minInterval: '1h' } },
        },
        dir,
      ),
      { logger: silentLogger() },
    );
    await createSnapshots(withInterval, { volumes: ['data'], type: 'pre-change', operation: 'one' });
    await writeFile(join(dir, 'pool', 'data', 'sub', 'a.txt'), 'latest work');
    const second = await createSnapshots(withInterval, {
      volumes: ['data'],
      type: 'pre-change',
      operation: 'two',
    });
    expect(second.skipped).toEqual([]);
    expect(await readFile(join(second.created[0]!.path, 'sub', 'a.txt'), 'utf8')).toBe('latest work');
  });
});
