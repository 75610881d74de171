import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { lowestTrafficWindow, parseActivitySamples } from '../../src/core/planner/activity.js';
import { classifyVolume } from '../../src/core/planner/classify.js';
import { planStrategy, type PlanStrategyResult } from '../../src/core/planner/plan.js';
import { layoutJobs, overlappingJobs } from '../../src/core/planner/units.js';

const FIXTURES = join(process.cwd(), 'test/fixtures/planner');
let dir: string;
let deps: Deps;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapguard-planner-'));
  deps = createDeps(
    buildConfig({ contextDir: join(dir, 'ctx'), stateDir: join(dir, 'state'), host: 'h' }, dir),
    {
      logger: silentLogger(),
    },
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function plan(fixture: string, extra: Record<string, unknown> = {}): Promise<PlanStrategyResult> {
  const input = parseYaml(await readFile(join(FIXTURES, `${fixture}.yaml`), 'utf8')) as Record<
    string,
    unknown
  >;
  return planStrategy(
    deps,
    { ...input, verifyUnits: false, ...extra },
    { verbs: ['snapshot', 'prune', 'pin', 'history', 'orchestrate', 'restore-test', 'recover'] },
  );
}

const byId = (result: PlanStrategyResult, id: string) => {
  const volume = result.volumes.find((v) => v.id === id);
  if (!volume) throw new Error(`no volume ${id}`);
  return volume;
};

describe('volume classification by path', () => {
  it.each([
    ['/var/lib/postgresql', 'critical', 'postgresql'],
    ['/var/lib/mysql', 'critical', 'mysql'],
    ['/home', 'critical', undefined],
    ['/etc', 'critical', undefined],
    ['/srv/containers', 'important', undefined],
    ['/var/lib/immich', 'important', undefined],
    ['/var/log', 'standard', undefined],
    ['/var/cache', 'standard', undefined],
    ['/tmp', 'temporary', undefined],
    ['/swap', 'temporary', undefined],
  ])('%s is %s', (path, tier, database) => {
    const result = classifyVolume(path);
    expect(result.tier).toBe(tier);
    expect(result.database).toBe(database);
  });

  it('an explicit tier overrides the path and says what the path suggested', () => {
    const result = classifyVolume('/var/log', 'critical');
    expect(result).toMatchObject({ tier: 'critical', overridden: true });
    expect(result.reason).toMatch(/suggests standard/);
  });
});

describe('planner fixtures produce the documented policies', () => {
  it('laptop: local first with longer local retention, heavy jobs only on AC power', async () => {
    const result = await plan('laptop');
    expect(byId(result, 'home')).toMatchObject({
      tier: 'critical',
      frequency: 'hourly',
      retention: {
        local: { preserveMin: 'latest', preserve: '168h 60d 26w 12m' },
        remote: { preserve: '30d 13w 12m' },
      },
      methods: { local: 'btrfs-snapshot', remote: 'btrfs-send-receive' },
    });
    expect(byId(result, 'etc').retention.local?.preserve).toBe('168h 60d 26w 12m');
    expect(byId(result, 'cache')).toMatchObject({
      tier: 'standard',
      frequency: 'daily',
      retention: { local: { preserve: '14d 5w' } },
    });
    expect(byId(result, 'swap')).toMatchObject({ tier: 'temporary', frequency: 'none', estimatedBytes: 0 });
    expect(result.space.fits).toBe(true);
    expect(result.space.fitFactor).toBe(1);
    const prune = result.units.find((u) => u.name === 'snapguard-prune.service')?.content ?? '';
    expect(prune).toContain('ConditionACPower=true');
    const hourly = result.units.find((u) => u.name === 'snapguard-snapshot-hourly.service')?.content ?? '';
    expect(hourly).not.toContain('ConditionACPower');
    expect(result.units.find((u) => u.name === 'snapguard-prune.timer')?.content).toContain(
      'Persistent=true',
    );
    const config = parseYaml(result.config) as {
      volumes: Record<string, { external?: { path: string }[]; retention?: unknown }>;
    };
    expect(config.volumes.home?.external?.[0]?.path).toBe('/run/media/backup/.snapshots/home');
    expect(config.volumes.swap).toBeUndefined();
    // The fragment is a valid snapguard config.
    expect(() => buildConfig(config, dir)).not.toThrow();
  });

  it('server: design tables locally, longer remote history, database-native method for PostgreSQL', async () => {
    const result = await plan('server');
    expect(byId(result, 'postgresql')).toMatchObject({
      tier: 'critical',
      database: 'postgresql',
      rtoSeconds: 7200,
      retention: { local: { preserve: '168h 30d 13w' }, remote: { preserve: '30d 13w 12m 2y' } },
    });
    expect(byId(result, 'postgresql').methods.database?.tool).toMatch(/pgbackrest/);
    expect(byId(result, 'containers')).toMatchObject({
      tier: 'important',
      frequency: 'daily',
      retention: { local: { preserve: '14d 9w' } },
    });
    expect(byId(result, 'log').retention.local?.preserve).toBe('7d 5w');
    expect(byId(result, 'media')).toMatchObject({
      tier: 'standard',
      classification: expect.stringMatching(/set explicitly/),
    });
    expect(byId(result, 'tmp').frequency).toBe('none');
    expect(result.schedule.map((j) => j.job)).toEqual([
      'snapshot-hourly',
      'snapshot-daily',
      'backup',
      'prune',
      'restore-test',
    ]);
    expect(result.units.every((u) => !u.content.includes('ConditionACPower'))).toBe(true);
    const runbooks = result.runbooks.map((r) => r.id);
    expect(runbooks).toEqual(['DR-001', 'DR-002', 'DR-003', 'DR-004']);
    const dr003 = result.runbooks[2]?.markdown ?? '';
    expect(dr003).toContain('snapguard recover postgresql SNAPSHOT');
    expect(dr003).toContain('/srv/.snapshots/containers/');
    expect(result.runbooks[0]?.markdown).toContain('pgbackrest --stanza=main --delta restore');
    expect(() => buildConfig(parseYaml(result.config), dir)).not.toThrow();
  });

  it('vps: short local retention, remote first with restic', async () => {
    const result = await plan('vps');
    expect(byId(result, 'mysql')).toMatchObject({
      tier: 'critical',
      database: 'mysql',
      retention: { local: { preserve: '48h 7d' }, remote: { preserve: '30d 13w 12m' } },
      methods: { remote: 'restic' },
    });
    expect(byId(result, 'www')).toMatchObject({
      tier: 'important',
      retention: { local: { preserve: '7d' } },
    });
    expect(byId(result, 'log').retention.local?.preserve).toBe('3d');
    const config = parseYaml(result.config) as {
      volumes: Record<string, { external?: { kind: string; repository?: string }[] }>;
    };
    expect(config.volumes.www?.external).toEqual([
      {
        kind: 'restic',
        repository: 'sftp:backup@storage-box:/restic/vps-fra1',
        passwordFile: '/etc/snapguard/restic.password',
      },
    ]);
    expect(result.runbooks[3]?.markdown).toContain(
      'restic -r "$RESTIC_REPOSITORY" restore latest --path /var/www',
    );
  });

  it('over budget: warns, and scales the local retention to a policy that fits', async () => {
    const result = await plan('server', { snapshotBudget: '40G' });
    expect(result.space.unscaledEstimateBytes).toBeGreaterThan(40 * 1024 ** 3);
    expect(result.space.fitFactor).toBeLessThan(1);
    expect(result.space.fits).toBe(true);
    expect(result.space.estimatedBytes).toBeLessThanOrEqual(40 * 1024 ** 3);
    expect(result.warnings.join('\n')).toMatch(
      /over the budget of 40\.0 GiB; the local retention was scaled to \d+% to fit: postgresql "/,
    );
    expect(byId(result, 'postgresql').retention.local?.preserve).not.toBe('168h 30d 13w');
    const impossible = await plan('server', { snapshotBudget: '1M' });
    expect(impossible.space.fits).toBe(false);
    expect(impossible.warnings.join('\n')).toMatch(/add disk space/);
  });

  it('names only CLI verbs the build has: without recover, DR-003 restores with cp from the snapshot', async () => {
    const input = parseYaml(await readFile(join(FIXTURES, 'server.yaml'), 'utf8')) as Record<string, unknown>;
    const result = await planStrategy(
      deps,
      { ...input, verifyUnits: false },
      { verbs: ['snapshot', 'prune', 'history'] },
    );
    const all = result.runbooks.map((r) => r.markdown).join('\n');
    expect(all).not.toMatch(/snapguard (recover|restore-test|health|orchestrate|pin)\b/);
    expect(all).toContain(
      'cp -a --reflink=auto /srv/.snapshots/containers/SNAPSHOT/RELATIVE/PATH /srv/containers/RELATIVE/PATH',
    );
    expect(result.schedule.map((j) => j.job)).not.toContain('backup');
  });
});

describe('runbooks and restore drills', () => {
  it('each runbook states the RTO measured by the latest passing restore drill of a volume', async () => {
    await deps.history.update((history) => {
      for (const [timestamp, duration, outcome] of [
        ['2026-11-01T03:00:00.000Z', 300, 'pass'],
        ['2026-11-15T03:00:00.000Z', 754, 'pass'],
        ['2026-11-20T03:00:00.000Z', 90, 'fail'],
      ] as const)
        history.restore_tests.push({
          id: `rt-${timestamp}`,
          timestamp,
          subvolume: 'postgresql',
          snapshot: 'postgresql-scheduled-20261101-020000',
          source: 'local',
          mode: 'full',
          files_checked: 10,
          bytes: 1000,
          duration_seconds: duration,
          outcome,
          failures: [],
        });
    });
    const result = await plan('server');
    for (const runbook of result.runbooks) {
      expect(runbook.markdown).toContain('| postgresql | critical | 2h | 13m (drill of 2026-11-15) |');
      expect(runbook.markdown).toContain('| containers | important | 8h | no drill recorded yet: run one |');
    }
  });
});

describe('schedule and activity window', () => {
  it('jobs never overlap, also when the window wraps past midnight', () => {
    for (const start of [0, 2, 22, 23]) {
      const jobs = layoutJobs(
        { hourlyVolumes: ['a'], dailyVolumes: ['b'], prune: true, backup: true, restoreTest: true },
        start,
        ['snapguard'],
      );
      expect(overlappingJobs(jobs)).toEqual([]);
    }
  });

  it('the overlap check does find a clash', () => {
    const jobs = layoutJobs(
      { hourlyVolumes: ['a'], dailyVolumes: ['b'], prune: true, backup: false, restoreTest: false },
      2,
      ['s'],
    );
    const clashing = jobs.map((job) => (job.job === 'prune' ? { ...job, startsAt: [3 * 60 + 3] } : job));
    expect(overlappingJobs(clashing)).toEqual([['snapshot-hourly', 'prune']]);
  });

  it('finds the quietest two hours in a CSV and in a Prometheus range query', () => {
    const lines = ['timestamp,value'];
    const values: [number, string][] = [];
    for (let day = 0; day < 3; day++)
      for (let hour = 0; hour < 24; hour++) {
        const time = Date.UTC(2026, 10, 10 + day, hour, 30) / 1000;
        const value = hour === 4 || hour === 5 ? 3 : hour === 3 ? 10 : 50 + hour;
        lines.push(`${new Date(time * 1000).toISOString()},${value}`);
        values.push([time, String(value)]);
      }
    const fromCsv = lowestTrafficWindow(parseActivitySamples(lines.join('\n')));
    expect(fromCsv).toMatchObject({ startHour: 4, hours: 2, meanInWindow: 3, samples: 72 });
    const json = JSON.stringify({
      status: 'success',
      data: { resultType: 'matrix', result: [{ metric: {}, values }] },
    });
    expect(lowestTrafficWindow(parseActivitySamples(json)).startHour).toBe(4);
    expect(() => parseActivitySamples('timestamp,value\nyesterday,abc\n')).toThrow(/line 2/);
  });
});

describe('docs/planning.md', () => {
  it('documents the --input format with an example that is a valid plan input, every key known', async () => {
    const { PlanStrategyInput } = await import('../../src/core/planner/plan.js');
    const doc = await readFile(join(process.cwd(), 'docs', 'planning.md'), 'utf8');
    const section = doc.split('### The input file (`--input`)')[1] ?? '';
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(example).toBeDefined();
    const input = parseYaml(example as string) as Record<string, unknown>;
    for (const key of Object.keys(input)) expect(Object.keys(PlanStrategyInput.shape)).toContain(key);
    const parsed = PlanStrategyInput.safeParse(input);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
  });
});
