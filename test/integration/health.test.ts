import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import { forecastDays, healthCheck } from '../../src/core/health/index.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';
import { runBuiltCli } from '../helpers/cli.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'getfattr', 'setfattr']);

const snapguard = (args: string[]) => runBuiltCli(args);

const DAY = 86_400_000;

describe.runIf(run)('health_check on real btrfs', () => {
  let sandbox: BtrfsSandbox;
  let input: ConfigInput;
  let configFile: string;

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(512, 'health');
    const volumes: NonNullable<ConfigInput['volumes']> = {};
    for (const [id, tier] of [
      ['empty', 'critical'],
      ['fresh', 'critical'],
      ['weekly', 'standard'],
    ] as const) {
      const path = await sandbox.subvolume(id);
      await writeFile(join(path, 'data.txt'), `${id}\n`);
      volumes[id] = { backend: 'btrfs', path, tier };
    }
    input = { volumes, metrics: { textfile: join(sandbox.dir, 'textfile', 'snapguard.prom') } };
    const deps = sandbox.deps(input);
    await createSnapshots(deps, { volumes: ['fresh', 'weekly'], type: 'scheduled' });
    configFile = join(sandbox.dir, 'snapguard.yaml');
    await writeFile(
      configFile,
      stringify({
        ...input,
        contextDir: join(sandbox.dir, 'context'),
        stateDir: join(sandbox.dir, 'state'),
        host: 'test-host',
      }),
    );
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('a volume without snapshots is CRITICAL (NO_SNAPSHOTS) and the CLI exits 2', async () => {
    const result = await healthCheck(sandbox.deps(input), { volume: 'empty' });
    expect(result.overall).toBe('CRITICAL');
    expect(result.findings).toContainEqual(
      expect.objectContaining({ code: 'NO_SNAPSHOTS', severity: 'critical', volume: 'empty' }),
    );
    const cliRun = await snapguard(['health', 'empty', '--config', configFile]);
    expect(cliRun.code).toBe(2);
    expect(cliRun.stdout).toContain('CRITICAL NO_SNAPSHOTS');
    expect(cliRun.stdout).toContain('remedy:');
  });

  it('a stale snapshot is CRITICAL for the critical tier and fine for the standard tier at 3 days', async () => {
    const later = new Date(Date.now() + 3 * DAY);
    const result = await healthCheck(sandbox.deps(input, { clock: () => later }), {});
    const stale = result.findings.filter((f) => f.code === 'SNAPSHOT_STALE');
    expect(stale).toEqual([expect.objectContaining({ volume: 'fresh', severity: 'critical' })]);
  });

  it('the standard tier warns after 9 days and is critical after 16', async () => {
    const at9 = new Date(Date.now() + 9 * DAY);
    const warn = await healthCheck(sandbox.deps(input, { clock: () => at9 }), { volume: 'weekly' });
    expect(warn.findings).toContainEqual(
      expect.objectContaining({ code: 'SNAPSHOT_STALE', severity: 'warning' }),
    );
    const at16 = new Date(Date.now() + 16 * DAY);
    const crit = await healthCheck(sandbox.deps(input, { clock: () => at16 }), { volume: 'weekly' });
    expect(crit.findings).toContainEqual(
      expect.objectContaining({ code: 'SNAPSHOT_STALE', severity: 'critical' }),
    );
  });

  it('a fresh volume without a restore test is WARNING (exit 1); a recent passing one clears RESTORE_TEST_NEVER (EXTERNAL_NONE keeps it WARNING)', async () => {
    const before = await snapguard(['health', 'fresh', '--config', configFile, '--json']);
    expect(before.code).toBe(1);
    expect(JSON.parse(before.stdout).findings).toContainEqual(
      expect.objectContaining({ code: 'RESTORE_TEST_NEVER' }),
    );
    const test = await snapguard(['restore-test', 'fresh', '--config', configFile, '--json', '--seed', '5']);
    expect(test.code).toBe(0);
    expect(JSON.parse(test.stdout)).toMatchObject({
      overall: 'PASS',
      results: [{ volume: 'fresh', seed: 5 }],
    });
    const after = await snapguard(['health', 'fresh', '--config', configFile, '--json']);
    const report = JSON.parse(after.stdout);
    // The restore test clears RESTORE_TEST_NEVER; what is left is that this critical volume has no
    // external copy at all (see the next test), so it stays WARNING.
    expect(report.findings.map((f: { code: string }) => f.code)).not.toContain('RESTORE_TEST_NEVER');
    expect(
      report.findings
        .filter((f: { severity: string }) => f.severity !== 'info')
        .map((f: { code: string }) => f.code),
    ).toEqual(['EXTERNAL_NONE']);
    expect(report.overall).toBe('WARNING');
    expect(after.code).toBe(1);
    expect(report.volumes[0]).toMatchObject({
      volume: 'fresh',
      status: 'WARNING',
      snapshots: 1,
      lastRestoreTest: { outcome: 'pass', source: 'local', mode: 'sample' },
      // quotas are off on this pool: sizes are unknown, not guessed
      snapshotExclusiveBytes: null,
      snapshotShare: null,
    });
    expect(report.findings).toContainEqual(
      expect.objectContaining({ code: 'SNAPSHOT_SHARE_UNKNOWN', severity: 'info' }),
    );
  });

  it('a critical volume with no external copy at all is at least WARNING, with a remedy; a standard one is not', async () => {
    const result = await healthCheck(sandbox.deps(input), {});
    const none = result.findings.filter((f) => f.code === 'EXTERNAL_NONE');
    expect(none.map((f) => [f.volume, f.severity])).toEqual([
      ['empty', 'warning'],
      ['fresh', 'warning'],
    ]);
    expect(none[0]?.message).toMatch(/no external copy .*disk failure loses/);
    expect(none[0]?.remedy).toMatch(/volumes\.empty\.external/);
    expect(result.volumes.find((v) => v.volume === 'fresh')?.status).not.toBe('GOOD');
  });

  it('a restore test older than restoreTestMaxAge is overdue', async () => {
    const later = new Date(Date.now() + 40 * DAY);
    const result = await healthCheck(sandbox.deps(input, { clock: () => later }), { volume: 'fresh' });
    expect(result.findings).toContainEqual(
      expect.objectContaining({ code: 'RESTORE_TEST_OVERDUE', severity: 'warning' }),
    );
  });

  it('reads exclusive snapshot sizes from qgroups once quotas are on', async () => {
    await sandbox.deps(input).exec('btrfs', ['quota', 'enable', sandbox.pool.mountPoint]);
    await sandbox.deps(input).exec('btrfs', ['quota', 'rescan', '-w', sandbox.pool.mountPoint]);
    const result = await healthCheck(sandbox.deps(input), { volume: 'fresh' });
    expect(result.volumes[0]?.snapshotExclusiveBytes).toEqual(expect.any(Number));
    expect(result.findings.map((f) => f.code)).not.toContain('SNAPSHOT_SHARE_UNKNOWN');
    await sandbox.deps(input).exec('btrfs', ['quota', 'disable', sandbox.pool.mountPoint]);
  });

  it('forecasts the days until maxPoolUsage from the readings recorded by earlier checks', async () => {
    const deps = sandbox.deps(input);
    // The CLI records a reading on every run (the hourly timer builds the series).
    await snapguard(['health', 'fresh', '--config', configFile]);
    const { history } = await deps.history.read();
    const recorded = history.health_samples?.filter((s) => s.subvolume === 'fresh') ?? [];
    expect(recorded.length).toBeGreaterThan(0);
    const current = recorded.at(-1)?.pool_usage_ratio as number;
    // Ten days of history growing 1 point per day up to today's reading.
    await deps.history.update((h) => {
      h.health_samples = [
        ...(h.health_samples ?? []),
        ...[10, 5, 1].map((daysAgo) => ({
          id: `hs-test-${daysAgo}`,
          timestamp: new Date(Date.now() - daysAgo * DAY).toISOString(),
          subvolume: 'fresh',
          status: 'GOOD' as const,
          pool_usage_ratio: current - daysAgo * 0.01,
          pool_used_bytes: 0,
          pool_total_bytes: 0,
        })),
      ];
    });
    const result = await healthCheck(deps, { volume: 'fresh' });
    const days = result.volumes[0]?.forecastDaysToMaxUsage as number;
    const expected = (0.9 - current) / 0.01;
    expect(days).toBeGreaterThan(expected * 0.9);
    expect(days).toBeLessThan(expected * 1.1);
    expect(result.findings).toContainEqual(expect.objectContaining({ code: 'POOL_FORECAST' }));
  });

  it('forecast math: flat or shrinking usage gives no date', () => {
    const flat = [0, 1, 2].map((d) => ({ time: d * DAY, ratio: 0.5 }));
    expect(forecastDays(flat, 0.9)).toBeNull();
    const grow = [0, 1, 2].map((d) => ({ time: d * DAY, ratio: 0.5 + d * 0.1 }));
    expect(forecastDays(grow, 0.9)).toBeCloseTo(2, 5);
  });

  it('reports history-based rates: deployments with a pre-deploy snapshot, recoveries', async () => {
    const deps = sandbox.deps(input);
    await createSnapshots(deps, {
      volumes: ['fresh'],
      type: 'pre-deploy',
      operation: 'deploy-immich',
      force: true,
    });
    await deps.history.update((h) => {
      h.recoveries.push(
        {
          id: 'r1',
          timestamp: new Date().toISOString(),
          subvolume: 'fresh',
          restored_snapshot: 'x',
          mode: 'rollback',
          paths: [],
          reason: null,
          duration_seconds: 30,
          outcome: 'success',
          safety_backup: null,
        },
        {
          id: 'r2',
          timestamp: new Date().toISOString(),
          subvolume: 'fresh',
          restored_snapshot: 'x',
          mode: 'files',
          paths: ['a'],
          reason: null,
          duration_seconds: 90,
          outcome: 'failed',
          safety_backup: null,
        },
      );
      h.orchestrations.push({
        id: 'o1',
        timestamp: new Date().toISOString(),
        exit_code: 0,
        stages: [{ name: 'deploy', status: 'ok' }],
        duration_seconds: 5,
      });
    });
    const result = await healthCheck(deps, { volume: 'fresh' });
    expect(result.summary).toEqual({
      deployments: 2,
      deploymentsWithSnapshotShare: 0.5,
      recoveries: 2,
      recoverySuccessRate: 0.5,
      meanRecoverySeconds: 30,
    });
  });

  it('counts a deployment whose volume was unchanged since a recent snapshot (reused, no new one) among the deployments with a snapshot', async () => {
    const deps = sandbox.deps({
      ...input,
      volumes: { ...input.volumes, fresh: { ...input.volumes!.fresh!, minInterval: '1h' } },
    });
    const before = (await healthCheck(deps, { volume: 'fresh' })).summary;
    const first = await createSnapshots(deps, {
      volumes: ['fresh'],
      type: 'pre-deploy',
      operation: 'deploy-paperless',
      force: true,
    });
    const second = await createSnapshots(deps, {
      volumes: ['fresh'],
      type: 'pre-deploy',
      operation: 'deploy-paperless-fix',
    });
    expect(second.created).toEqual([]);
    expect(second.skipped[0]!.existing!.name).toBe(first.created[0]!.name);
    const after = (await healthCheck(deps, { volume: 'fresh' })).summary;
    expect(after.deployments).toBe(before.deployments + 2);
    const withSnapshot = (before.deploymentsWithSnapshotShare ?? 0) * before.deployments;
    expect(after.deploymentsWithSnapshotShare).toBeCloseTo((withSnapshot + 2) / after.deployments, 5);
  });

  it('a history file that does not parse is reported CRITICAL', async () => {
    const deps = sandbox.deps(input);
    await writeFile(deps.history.file, '{ not json');
    const result = await healthCheck(deps, { volume: 'fresh' });
    expect(result.overall).toBe('CRITICAL');
    expect(result.findings).toContainEqual(
      expect.objectContaining({ code: 'HISTORY_CORRUPT', severity: 'critical' }),
    );
  });
});
