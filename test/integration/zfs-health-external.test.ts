import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import { healthCheck } from '../../src/core/health/index.js';
import { createSnapshots, listSnapshots } from '../../src/core/snapshots.js';
import { pipeCommands } from '../../src/system/pipe.js';
import { requireComponents } from '../helpers/env.js';
import { createZfsSandbox, exec, type ZfsSandbox } from '../helpers/zfs.js';

const run = requireComponents(['zfs-fuse', 'zfs', 'zpool']);

describe.skipIf(!run)('a ZFS-dataset external copy, on zfs-fuse pools', () => {
  let sandbox: ZfsSandbox;
  let input: ConfigInput;
  let copyDataset: string;
  let snapshotName: string;

  beforeAll(async () => {
    sandbox = await createZfsSandbox('healthext');
    const { dataset, mountPoint } = await sandbox.dataset('data');
    await writeFile(join(mountPoint, 'hello.txt'), 'v1\n');
    const target = await sandbox.addPool('b');
    copyDataset = `${target.name}/copy`;
    input = {
      volumes: {
        data: {
          backend: 'zfs',
          dataset,
          path: mountPoint,
          tier: 'critical',
          external: [{ kind: 'zfs', dataset: copyDataset }],
        },
      },
    };
    const created = await createSnapshots(sandbox.deps(input), { volumes: ['data'], type: 'scheduled' });
    snapshotName = created.created[0]?.name as string;
    // The copy on the second pool is made by hand: zfs send | zfs receive into a new dataset.
    await pipeCommands(['zfs', 'send', `${dataset}@${snapshotName}`], ['zfs', 'receive', copyDataset], {
      timeoutMs: 120_000,
    });
    const received = await exec('zfs', ['list', '-H', '-t', 'snapshot', '-o', 'name', '-r', copyDataset]);
    expect(received.stdout).toContain(`${copyDataset}@${snapshotName}`);
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('health finds the copy list_snapshots shows: no EXTERNAL_MISSING', async () => {
    const deps = sandbox.deps(input);
    const listed = await listSnapshots(deps, { volume: 'data', location: 'external' });
    expect(listed.snapshots.map((s) => `${s.name} ${s.location}`)).toEqual([`${snapshotName} external`]);

    const result = await healthCheck(deps, { volume: 'data' });
    const codes = result.findings.map((finding) => finding.code);
    expect(codes).not.toContain('EXTERNAL_MISSING');
    expect(codes).not.toContain('EXTERNAL_UNAVAILABLE');
    expect(result.volumes[0]?.newestExternalAgeSeconds).not.toBeNull();
  });
});
