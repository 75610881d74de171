import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READ_CLONE_PREFIX } from '../../src/backends/zfs.js';
import type { Deps } from '../../src/core/deps.js';
import { findDeleted } from '../../src/core/file-history/deleted.js';
import { diffSnapshots } from '../../src/core/file-history/diff.js';
import { readSnapshotFile } from '../../src/core/file-history/read.js';
import { fileVersions } from '../../src/core/file-history/versions.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { requireComponents } from '../helpers/env.js';
import { createZfsSandbox, exec, type ZfsSandbox } from '../helpers/zfs.js';

const run = requireComponents(['zfs-fuse', 'zfs', 'zpool']);

describe.runIf(run)('file history on a zfs volume (zfs-fuse smoke)', () => {
  let sandbox: ZfsSandbox;
  let deps: Deps;
  let dataset: string;
  let mountPoint: string;
  let clockTime = Date.UTC(2026, 10, 23, 8, 0, 0);
  const names: string[] = [];

  async function snap(): Promise<void> {
    clockTime += 60_000;
    names.push((await createSnapshots(deps, { volumes: ['data'], type: 'manual' })).created[0]!.name);
  }

  beforeAll(async () => {
    sandbox = await createZfsSandbox('files');
    ({ dataset, mountPoint } = await sandbox.dataset('data'));
    deps = sandbox.deps(
      { volumes: { data: { backend: 'zfs', dataset, path: mountPoint } } },
      { clock: () => new Date(clockTime) },
    );
    await writeFile(join(mountPoint, 'app.conf'), 'v=1\n');
    await writeFile(join(mountPoint, 'old.log'), 'log\n');
    await snap();
    await writeFile(join(mountPoint, 'app.conf'), 'v=22\n');
    await rm(join(mountPoint, 'old.log'));
    await snap();
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('reads versions, deleted files, a diff and one file through the zfs reader, leaving no clone behind', async () => {
    const versions = await fileVersions(deps, { volume: 'data', path: 'app.conf' });
    expect(versions.versions.map((v) => v.snapshots)).toEqual([[names[1]], [names[0]]]);
    expect(versions.versions[0]!.live).toBe(true);
    const deleted = await findDeleted(deps, { volume: 'data' });
    expect(deleted.deleted.map((d) => [d.path, d.newestSnapshot])).toEqual([['old.log', names[0]]]);
    const diff = await diffSnapshots(deps, { volume: 'data', from: names[0]!, to: names[1]! });
    expect(diff.modified.paths).toEqual(['app.conf']);
    expect(diff.removed.paths).toEqual(['old.log']);
    const old = await readSnapshotFile(deps, { volume: 'data', snapshot: names[0]!, path: 'app.conf' });
    expect(old.content).toBe('v=1\n');
    const pool = dataset.split('/')[0] as string;
    const left = (await exec('zfs', ['list', '-H', '-o', 'name', '-r', pool])).stdout;
    expect(left).not.toContain(READ_CLONE_PREFIX);
  });
});
