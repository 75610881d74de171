import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackendResolver } from '../../src/backends/index.js';
import { createBtrfsBackend } from '../../src/backends/btrfs.js';
import { createDirBackend } from '../../src/backends/dir.js';
import { createZfsBackend } from '../../src/backends/zfs.js';
import type { SnapshotBackend } from '../../src/backends/types.js';
import type { ConfigInput } from '../../src/core/config.js';
import { isOwnedSnapshotName } from '../../src/core/naming.js';
import { pruneSnapshots } from '../../src/core/retention/prune.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const DAY = 86_400_000;

describe('what core asks a backend instead of comparing its name', () => {
  it('btrfs and zfs keep change times and need root; dir copies need neither; btrfs deletes 200 per command', () => {
    const btrfs = createBtrfsBackend(exec);
    const zfs = createZfsBackend(exec, isOwnedSnapshotName);
    const dir = createDirBackend(exec);
    expect({ ctime: btrfs.ctimeTrusted, root: btrfs.needsRoot, batch: btrfs.deleteBatch }).toEqual({
      ctime: true,
      root: true,
      batch: 200,
    });
    expect({ ctime: zfs.ctimeTrusted, root: zfs.needsRoot, pool: zfs.volumeInPool }).toEqual({
      ctime: true,
      root: true,
      pool: true,
    });
    expect({ ctime: dir.ctimeTrusted, root: dir.needsRoot, pool: dir.volumeInPool }).toEqual({
      ctime: undefined,
      root: undefined,
      pool: undefined,
    });
  });
});

describe.runIf(requireComponents(['btrfs', 'mount', 'umount']))(
  'prune deletes in batches of the backend',
  () => {
    let sandbox: BtrfsSandbox;
    let configInput: ConfigInput;
    const made: string[] = [];

    beforeAll(async () => {
      sandbox = await createBtrfsSandbox(256, 'batch');
      const data = await sandbox.subvolume('data');
      await writeFile(join(data, 'hello.txt'), 'hello');
      configInput = {
        volumes: {
          data: {
            backend: 'btrfs',
            path: data,
            snapshotDir: join(sandbox.pool.mountPoint, '.snapshots/data'),
            retention: { preserveMin: 'latest', preserve: 'no' },
          },
        },
      };
      const dayStart = Math.floor(Date.now() / DAY) * DAY;
      for (let d = 7; d >= 1; d--) {
        const past = sandbox.deps(configInput, { clock: () => new Date(dayStart - d * DAY) });
        const result = await createSnapshots(past, { volumes: ['data'], type: 'scheduled' });
        made.push(result.created[0]!.path);
      }
    }, 120_000);

    afterAll(async () => {
      await sandbox?.cleanup();
    });

    it('real btrfs, its backend wrapped to say 4 per command: 6 deletions go as 4 then 2, progress after each', async () => {
      const resolve = createBackendResolver(exec, isOwnedSnapshotName);
      const batches: number[] = [];
      const backendFor = (volume: Parameters<typeof resolve>[0]): SnapshotBackend => {
        const real = resolve(volume);
        return {
          ...real,
          deleteBatch: 4,
          deleteMany: async (v, names, options) => {
            batches.push(names.length);
            return real.deleteMany!(v, names, options);
          },
        };
      };
      const deps = sandbox.deps(configInput, { backendFor });
      const progress: number[] = [];
      const result = await pruneSnapshots(
        deps,
        { volume: 'data' },
        { gate: async () => true, onProgress: (p) => progress.push(p.progress) },
      );
      expect(result.status).toBe('pruned');
      expect(batches).toEqual([4, 2]);
      expect(progress).toEqual([4, 6]);
      expect(made.map((path) => existsSync(path))).toEqual([false, false, false, false, false, false, true]);
    });
  },
);
