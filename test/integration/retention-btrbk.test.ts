import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { formatSnapshotName } from '../../src/core/naming.js';
import { pruneSnapshots } from '../../src/core/retention/prune.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

/**
 * Cross-check with btrbk, the reference implementation of the preserve language: the same
 * timestamps exist twice on one real btrfs pool, once named as btrbk names them
 * (data.YYYYMMDDTHHMM) and once as snapguard names them. btrbk's own schedule (`btrbk -n -S
 * --format=raw prune`, TZ=UTC) must delete exactly the timestamps that snapguard's plan deletes.
 * The only intended difference (docs/retention.md) is that snapguard never deletes the newest
 * snapshot; every policy below keeps the newest in btrbk too, and one case checks the difference.
 */
const run = requireComponents(['btrfs', 'btrbk']);

interface Policy {
  min: string;
  preserve: string;
  hod: number;
  dow: string;
}

const POLICIES: Policy[] = [
  { min: 'latest', preserve: '24h 7d 4w 12m 2y', hod: 0, dow: 'sunday' },
  { min: '2d', preserve: '14d 8w', hod: 0, dow: 'sunday' },
  { min: 'latest', preserve: '*d', hod: 0, dow: 'sunday' },
  { min: 'latest', preserve: '48h 10d 6w *m', hod: 6, dow: 'monday' },
  { min: '1w', preserve: '3d 2w 3m 1y', hod: 23, dow: 'saturday' },
  { min: 'latest', preserve: '6h 2d *w 2m *y', hod: 12, dow: 'wednesday' },
  { min: '36h', preserve: '12h', hod: 3, dow: 'friday' },
  { min: '1m', preserve: '*h', hod: 0, dow: 'thursday' },
  { min: 'latest', preserve: '0d 0w 0m 0y', hod: 0, dow: 'sunday' },
  { min: 'all', preserve: '1d', hod: 0, dow: 'sunday' },
];

/** A fixed-seed spread of minutes back from now: dense in the last days, sparse over two years. */
function offsetsMinutes(): number[] {
  let seed = 20261121;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const minutes = new Set<number>();
  // The newest is 150+ minutes old, so preserve_min 1h alone does not cover it (last test).
  while (minutes.size < 40) minutes.add(150 + Math.floor(next() * 3 * 24 * 60));
  while (minutes.size < 100) minutes.add(Math.floor(next() * 70 * 24 * 60));
  while (minutes.size < 160) minutes.add(Math.floor(next() * 800 * 24 * 60));
  return [...minutes];
}

function btrbkStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').slice(0, 13);
}

describe.runIf(run)('retention decisions equal btrbk on real btrfs snapshots', () => {
  let sandbox: BtrfsSandbox;
  let deps: (policy: Policy, clock: () => Date) => Deps;
  const stamps: string[] = [];

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(1024, 'btrbk');
    const data = await sandbox.subvolume('data');
    await writeFile(join(data, 'file'), 'content');
    await exec('mkdir', [
      '-p',
      join(sandbox.pool.mountPoint, 'btrbk'),
      join(sandbox.pool.mountPoint, '.snapshots/data'),
    ]);
    const now = Date.now();
    for (const minutes of offsetsMinutes()) {
      const at = new Date(Math.floor((now - minutes * 60_000) / 60_000) * 60_000);
      stamps.push(btrbkStamp(at));
      await exec('btrfs', [
        'subvolume',
        'snapshot',
        '-r',
        data,
        join(sandbox.pool.mountPoint, 'btrbk', `data.${btrbkStamp(at)}`),
      ]);
      await exec('btrfs', [
        'subvolume',
        'snapshot',
        '-r',
        data,
        join(
          sandbox.pool.mountPoint,
          '.snapshots/data',
          formatSnapshotName('data', 'scheduled', undefined, at),
        ),
      ]);
    }
    deps = (policy, clock) =>
      sandbox.deps(
        {
          volumes: {
            data: {
              backend: 'btrfs',
              path: data,
              snapshotDir: join(sandbox.pool.mountPoint, '.snapshots/data'),
              retention: {
                preserveMin: policy.min,
                preserve: policy.preserve,
                preserveHourOfDay: policy.hod,
                preserveDayOfWeek: policy.dow as 'sunday',
              },
            },
          },
        },
        { clock },
      );
  }, 300_000);

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  async function btrbkDeletes(policy: Policy): Promise<{ deletes: Set<string>; at: Date }> {
    const confFile = join(sandbox.dir, 'btrbk.conf');
    await writeFile(
      confFile,
      [
        'timestamp_format long',
        `snapshot_preserve_min ${policy.min}`,
        `snapshot_preserve ${policy.preserve}`,
        `preserve_hour_of_day ${policy.hod}`,
        `preserve_day_of_week ${policy.dow}`,
        `lockfile ${join(sandbox.dir, 'btrbk.lock')}`,
        `volume ${sandbox.pool.mountPoint}`,
        '  snapshot_dir btrbk',
        '  subvolume data',
        '',
      ].join('\n'),
    );
    // btrbk reads the clock itself: retry when an hour boundary falls inside its run.
    for (;;) {
      const before = new Date();
      const result = await exec('btrbk', ['-c', confFile, '-n', '-S', '--format=raw', 'prune'], {
        env: { TZ: 'UTC' },
      });
      const after = new Date();
      if (Math.floor(before.getTime() / 3600_000) !== Math.floor(after.getTime() / 3600_000)) continue;
      const deletes = new Set<string>();
      let scheduled = 0;
      for (const line of result.stdout.split('\n')) {
        if (!line.startsWith('format="schedule"')) continue;
        scheduled++;
        const action = /action='([^']*)'/.exec(line)?.[1];
        const path = /path='([^']*)'/.exec(line)?.[1] ?? '';
        if (action === 'delete') deletes.add(/data\.(\d{8}T\d{4})$/.exec(path)?.[1] ?? path);
      }
      expect(scheduled).toBe(stamps.length);
      return { deletes, at: before };
    }
  }

  for (const policy of POLICIES) {
    it(`deletes what btrbk deletes for preserve_min ${policy.min}, preserve "${policy.preserve}", ${policy.dow} ${policy.hod}:00`, async () => {
      const { deletes, at } = await btrbkDeletes(policy);
      const plan = await pruneSnapshots(
        deps(policy, () => at),
        { volume: 'data', location: 'local', dryRun: true },
        {
          gate: async () => true,
        },
      );
      const ours = new Set(plan.delete.map((v) => btrbkStamp(new Date(v.createdAt))));
      expect(plan.keep.length + plan.delete.length).toBe(stamps.length);
      expect([...ours].sort()).toEqual([...deletes].sort());
    });
  }

  it('differs from btrbk only by never deleting the newest snapshot (intended, documented)', async () => {
    // preserve_min 1h and preserve no: btrbk deletes everything older than the last hour, newest included.
    const policy: Policy = { min: '1h', preserve: 'no', hod: 0, dow: 'sunday' };
    const { deletes, at } = await btrbkDeletes(policy);
    const plan = await pruneSnapshots(
      deps(policy, () => at),
      { volume: 'data', location: 'local', dryRun: true },
      {
        gate: async () => true,
      },
    );
    const newest = [...stamps].sort().at(-1) as string;
    const ours = new Set(plan.delete.map((v) => btrbkStamp(new Date(v.createdAt))));
    const newestVerdict = plan.keep.find((v) => btrbkStamp(new Date(v.createdAt)) === newest);
    expect(newestVerdict?.protectedBy).toContain('newest');
    const onlyBtrbk = [...deletes].filter((s) => !ours.has(s));
    const onlyOurs = [...ours].filter((s) => !deletes.has(s));
    expect(onlyOurs).toEqual([]);
    expect(onlyBtrbk).toEqual([newest]);
  });
});
