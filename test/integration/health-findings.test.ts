import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import { healthCheck } from '../../src/core/health/index.js';
import { formatSnapshotName } from '../../src/core/naming.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'restic']);

const DAY = 86_400_000;

/** Each health finding that is about storage, produced by the storage it describes (a loop-mounted btrfs pool). */
describe.runIf(run)('health findings on real btrfs', () => {
  let sandbox: BtrfsSandbox;
  let data: string;
  const now = new Date();

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'health-findings');
    data = await sandbox.subvolume('data');
    await writeFile(join(data, 'a.txt'), 'a\n');
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  const volume = (extra: Partial<NonNullable<ConfigInput['volumes']>[string]> = {}) => ({
    backend: 'btrfs' as const,
    path: data,
    tier: 'critical' as const,
    ...extra,
  });

  it('no volumes configured: NO_VOLUMES warning', async () => {
    const result = await healthCheck(sandbox.deps({ volumes: {} }), {});
    expect(result.volumes).toEqual([]);
    expect(result.findings).toContainEqual(
      expect.objectContaining({ code: 'NO_VOLUMES', severity: 'warning' }),
    );
    expect(result.overall).toBe('WARNING');
  });

  it('a snapshotDir that is not on btrfs cannot be listed: SNAPSHOTS_UNLISTABLE (critical), not NO_SNAPSHOTS alone', async () => {
    const plain = join(sandbox.dir, 'plain-snapshots');
    await mkdir(plain, { recursive: true });
    const result = await healthCheck(sandbox.deps({ volumes: { data: volume({ snapshotDir: plain }) } }), {});
    const finding = result.findings.find((f) => f.code === 'SNAPSHOTS_UNLISTABLE');
    expect(finding).toMatchObject({ severity: 'critical', volume: 'data' });
    expect(finding?.message).toMatch(/not on a btrfs filesystem/);
    expect(result.overall).toBe('CRITICAL');
  });

  it('two snapshots five days apart within the last 30 days: SNAPSHOT_GAPS for the critical tier', async () => {
    const snapshotDir = join(sandbox.pool.mountPoint, 'snaps-gaps');
    const input: ConfigInput = { volumes: { data: volume({ snapshotDir }) } };
    const fiveDaysAgo = new Date(now.getTime() - 5 * DAY);
    await createSnapshots(sandbox.deps(input, { clock: () => fiveDaysAgo }), {
      volumes: ['data'],
      type: 'scheduled',
    });
    await createSnapshots(sandbox.deps(input, { clock: () => now }), {
      volumes: ['data'],
      type: 'scheduled',
    });
    const result = await healthCheck(sandbox.deps(input, { clock: () => now }), {});
    const gaps = result.findings.find((f) => f.code === 'SNAPSHOT_GAPS');
    expect(gaps).toMatchObject({ severity: 'warning', volume: 'data' });
    expect(gaps?.message).toMatch(/^1 gap\(s\) longer than/);
    // The standard tier allows 15 days between snapshots: no gap there.
    const standard = await healthCheck(
      sandbox.deps({ volumes: { data: volume({ snapshotDir, tier: 'standard' }) } }, { clock: () => now }),
      {},
    );
    expect(standard.findings.map((f) => f.code)).not.toContain('SNAPSHOT_GAPS');
  });

  it('pool usage at maxPoolUsage is POOL_USAGE critical, within 10 points below it a warning, further below nothing', async () => {
    const snapshotDir = join(sandbox.pool.mountPoint, 'snaps-gaps');
    const measured = await healthCheck(sandbox.deps({ volumes: { data: volume({ snapshotDir }) } }), {});
    const ratio = measured.volumes[0]?.poolUsageRatio as number;
    expect(ratio).toBeGreaterThan(0);
    expect(measured.findings.map((f) => f.code)).not.toContain('POOL_USAGE');
    const at = (maxPoolUsage: number) =>
      healthCheck(
        sandbox.deps({ volumes: { data: volume({ snapshotDir }) }, health: { maxPoolUsage } }),
        {},
      ).then((r) => r.findings.filter((f) => f.code === 'POOL_USAGE'));
    // The pool is already fuller than a limit just under its usage.
    const critical = await at(Math.max(0.001, ratio - 0.001));
    expect(critical).toEqual([expect.objectContaining({ severity: 'critical', volume: 'data' })]);
    expect(critical[0]?.message).toMatch(/new snapshots are refused/);
    expect(critical[0]?.remedy).toMatch(/snapguard prune data/);
    const warning = await at(Math.min(1, ratio + 0.05));
    expect(warning).toEqual([expect.objectContaining({ severity: 'warning', volume: 'data' })]);
    expect(await at(Math.min(1, ratio + 0.2))).toEqual([]);
  });

  it('snapshots holding more than maxSnapshotShare of the pool exclusively (btrfs qgroups): SNAPSHOT_SHARE', async () => {
    const shareVolume = await sandbox.subvolume('share');
    const snapshotDir = join(sandbox.pool.mountPoint, 'snaps-share');
    const big = join(shareVolume, 'big.bin');
    await exec('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=24', 'status=none']);
    const input: ConfigInput = {
      volumes: { share: { backend: 'btrfs', path: shareVolume, snapshotDir, tier: 'standard' } },
      health: { maxSnapshotShare: 0.05 },
    };
    await createSnapshots(sandbox.deps(input), { volumes: ['share'], type: 'scheduled' });
    // The live file is rewritten: its old extents are referenced by the snapshot alone.
    await exec('dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=24', 'status=none', 'conv=fsync']);
    await exec('btrfs', ['quota', 'enable', sandbox.pool.mountPoint]);
    try {
      await exec('btrfs', ['filesystem', 'sync', sandbox.pool.mountPoint]);
      await exec('btrfs', ['quota', 'rescan', '-w', sandbox.pool.mountPoint]);
      const result = await healthCheck(sandbox.deps(input), { volume: 'share' });
      const share = result.findings.find((f) => f.code === 'SNAPSHOT_SHARE');
      expect(share).toMatchObject({ severity: 'warning', volume: 'share' });
      expect(result.volumes[0]?.snapshotExclusiveBytes).toBeGreaterThanOrEqual(20 * 1024 * 1024);
      expect(result.volumes[0]?.snapshotShare).toBeGreaterThanOrEqual(0.05);
      // Under a generous limit the same reading is no finding.
      const relaxed = await healthCheck(sandbox.deps({ ...input, health: { maxSnapshotShare: 0.9 } }), {
        volume: 'share',
      });
      expect(relaxed.findings.map((f) => f.code)).not.toContain('SNAPSHOT_SHARE');
    } finally {
      await exec('btrfs', ['quota', 'disable', sandbox.pool.mountPoint]);
    }
  });

  it('an external folder that holds no copy: EXTERNAL_MISSING', async () => {
    const target = join(sandbox.pool.mountPoint, 'backup-empty');
    await mkdir(target, { recursive: true });
    const result = await healthCheck(
      sandbox.deps({ volumes: { data: volume({ external: [{ kind: 'btrfs', path: target }] }) } }),
      {},
    );
    const codes = result.findings.map((f) => f.code);
    expect(result.findings).toContainEqual(
      expect.objectContaining({ code: 'EXTERNAL_MISSING', severity: 'warning', volume: 'data' }),
    );
    expect(codes).not.toContain('EXTERNAL_NONE');
    expect(result.volumes[0]?.newestExternalAgeSeconds).toBeNull();
  });

  it('an external copy older than seven critical intervals: EXTERNAL_STALE with its age', async () => {
    const target = join(sandbox.pool.mountPoint, 'backup-old');
    await mkdir(target, { recursive: true });
    const old = new Date(now.getTime() - 30 * DAY);
    await exec('btrfs', [
      'subvolume',
      'snapshot',
      '-r',
      data,
      join(target, formatSnapshotName('data', 'scheduled', undefined, old)),
    ]);
    const input: ConfigInput = { volumes: { data: volume({ external: [{ kind: 'btrfs', path: target }] }) } };
    const result = await healthCheck(sandbox.deps(input, { clock: () => now }), {});
    expect(result.findings).toContainEqual(
      expect.objectContaining({ code: 'EXTERNAL_STALE', severity: 'warning', volume: 'data' }),
    );
    expect(result.findings.map((f) => f.code)).not.toContain('EXTERNAL_MISSING');
    const age = result.volumes[0]?.newestExternalAgeSeconds as number;
    expect(Math.abs(age - 30 * 86_400)).toBeLessThan(2);
    // 13 days after it was made the same copy is not stale yet: the critical tier allows 7 x 48 h.
    const fresh = await healthCheck(
      sandbox.deps(input, { clock: () => new Date(old.getTime() + 13 * DAY) }),
      {},
    );
    expect(fresh.findings.map((f) => f.code)).not.toContain('EXTERNAL_STALE');
  });

  it('an external folder that is not there (drive not mounted) and a restic repository that cannot be opened: EXTERNAL_UNAVAILABLE each', async () => {
    const missing = join(sandbox.dir, 'unmounted-drive', 'data');
    const passwordFile = join(sandbox.dir, 'restic.pass');
    await writeFile(passwordFile, 'secret\n');
    const repository = join(sandbox.dir, 'no-such-repository');
    const result = await healthCheck(
      sandbox.deps({
        volumes: {
          data: volume({
            external: [
              { kind: 'btrfs', path: missing },
              { kind: 'restic', repository, passwordFile },
            ],
          }),
        },
      }),
      {},
    );
    const unavailable = result.findings.filter((f) => f.code === 'EXTERNAL_UNAVAILABLE');
    expect(unavailable).toHaveLength(2);
    expect(unavailable[0]).toMatchObject({ severity: 'warning', volume: 'data' });
    expect(unavailable[0]?.message).toContain(missing);
    expect(unavailable[1]?.message).toMatch(/Could not list the external copies \(restic /);
    // Nothing could be listed, so no copy was found either.
    expect(result.findings.map((f) => f.code)).toContain('EXTERNAL_MISSING');
  });
});
