import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { SnapguardError } from '../../src/core/errors.js';
import { renderOrchestrationMetrics } from '../../src/core/orchestrate/metrics.js';
import { defaultStages, globToRegExp, selectStages } from '../../src/core/orchestrate/plan.js';
import type { OrchestrateResult } from '../../src/core/orchestrate/schema.js';

const build = (orchestrate: unknown) =>
  buildConfig({ stateDir: '/tmp/x', contextDir: '/tmp/y', orchestrate }, '/etc/snapguard');

function configError(orchestrate: unknown): string {
  try {
    build(orchestrate);
  } catch (error) {
    expect(error).toBeInstanceOf(SnapguardError);
    expect((error as SnapguardError).code).toBe('CONFIG_INVALID');
    return (error as SnapguardError).message;
  }
  throw new Error('expected a CONFIG_INVALID error');
}

describe('orchestrate config', () => {
  it('parses stages with durations, critical flags and every job kind', () => {
    const config = build({
      systemctl: ['ssh', 'nas', 'systemctl'],
      stages: [
        {
          name: 'snapshots',
          timeout: '5m',
          critical: true,
          jobs: [{ kind: 'systemd', units: ['sanoid.service'] }],
        },
        {
          name: 'backups',
          timeout: '1h',
          jobs: [
            {
              kind: 'systemd',
              units: ['pgbackrest-*.service'],
              match: '(full|incr|diff)-backup',
              timeout: '2h',
            },
            {
              kind: 'command',
              name: 'restic-home',
              argv: ['restic', 'backup', '/home'],
              verify: { kind: 'restic', repository: 'repo' },
            },
            { kind: 'snapshot' },
            { kind: 'replicate', volumes: [] },
          ],
        },
      ],
      notify: { url: 'https://ntfy.example/backups', format: 'ntfy', on: 'failure' },
    });
    const stages = config.orchestrate!.stages!;
    expect(stages.map((s) => [s.name, s.timeout, s.critical])).toEqual([
      ['snapshots', 300, true],
      ['backups', 3600, false],
    ]);
    expect(stages[1]!.jobs[0]).toMatchObject({ kind: 'systemd', timeout: 7200, exclude: [] });
    expect(config.orchestrate!.scope).toBe('system');
    expect(config.orchestrate!.notify).toMatchObject({ format: 'ntfy', on: 'failure', timeout: 10 });
  });

  it('rejects unknown keys, bad durations, bad unit names and a non-http webhook, naming the key', () => {
    expect(
      configError({
        stages: [
          { name: 's', timeout: '5m', jobs: [{ kind: 'command', name: 'x', argv: ['true'], shell: true }] },
        ],
      }),
    ).toMatch(/orchestrate\.stages\.0\.jobs\.0: unknown key "shell"/);
    expect(configError({ stages: [{ name: 's', timeout: 'soon', jobs: [{ kind: 'snapshot' }] }] })).toMatch(
      /orchestrate\.stages\.0\.timeout: "soon" is not a duration/,
    );
    expect(
      configError({
        stages: [{ name: 's', timeout: '1m', jobs: [{ kind: 'systemd', units: ['a;rm -rf /'] }] }],
      }),
    ).toMatch(/orchestrate\.stages\.0\.jobs\.0\.units\.0: must be a systemd unit name or glob/);
    expect(configError({ stages: [{ name: 's', timeout: '1m', jobs: [] }] })).toMatch(
      /orchestrate\.stages\.0\.jobs/,
    );
    expect(configError({ notify: { url: 'file:///etc/passwd' } })).toMatch(/orchestrate\.notify\.url/);
    expect(
      configError({
        stages: [{ name: 's', timeout: '1m', jobs: [{ kind: 'systemd', units: ['x.service'], match: '(' }] }],
      }),
    ).toMatch(/must be a valid regular expression/);
  });
});

describe('default stages (the design)', () => {
  it('runs sanoid first when it exists, else snapguard snapshots of every volume', () => {
    const withSanoid = defaultStages({ sanoidExists: true, volumeIds: ['a'] });
    expect(withSanoid.map((s) => [s.name, s.timeout, s.critical])).toEqual([
      ['snapshots', 300, true],
      ['replication', 1800, false],
      ['backups', 3600, false],
    ]);
    expect(withSanoid[0]!.jobs).toEqual([{ kind: 'systemd', units: ['sanoid.service'], exclude: [] }]);
    expect(defaultStages({ sanoidExists: false, volumeIds: ['a', 'b'] })[0]!.jobs).toEqual([
      { kind: 'snapshot', volumes: ['a', 'b'], operation: 'orchestrate' },
    ]);
    expect(withSanoid[1]!.jobs[0]).toMatchObject({
      exclude: ['*replication-info*', '*target-reachability*'],
    });
    expect(withSanoid[2]!.jobs[1]).toMatchObject({
      units: ['pgbackrest-*.service'],
      match: '(full|incr|diff)-backup',
    });
  });

  it('selects stages by number or name and refuses unknown ones', () => {
    const stages = defaultStages({ sanoidExists: true, volumeIds: [] });
    expect(selectStages(stages, ['3']).map((s) => s.name)).toEqual(['backups']);
    expect(selectStages(stages, ['backups', 'snapshots']).map((s) => s.name)).toEqual([
      'snapshots',
      'backups',
    ]);
    expect(() => selectStages(stages, ['4'])).toThrow(/There is no stage "4"/);
  });

  it('matches unit globs like systemctl does, without regex surprises', () => {
    expect(globToRegExp('syncoid-*.service').test('syncoid-tank-media.service')).toBe(true);
    expect(globToRegExp('syncoid-*.service').test('syncoid-tank.timer')).toBe(false);
    expect(globToRegExp('a.service').test('aXservice')).toBe(false);
    expect(globToRegExp('*replication-info*').test('syncoid-replication-info.service')).toBe(true);
    expect(globToRegExp('unit-?.service').test('unit-1.service')).toBe(true);
  });
});

describe('orchestration metrics', () => {
  it('escapes label values and reports each job', () => {
    const result: OrchestrateResult = {
      id: 'orch-1',
      dryRun: false,
      exitCode: 1,
      status: 'partial',
      startedAt: '2026-11-21T12:00:00.000Z',
      durationSeconds: 10,
      preflight: [],
      stages: [
        {
          name: 'backups',
          status: 'partial',
          critical: false,
          timeoutSeconds: 60,
          notes: [],
          jobs: [
            {
              id: 'we"ird\\job',
              kind: 'command',
              result: 'failed',
              durationSeconds: 1.5,
              detail: '',
              started: true,
              timeoutSeconds: 60,
            },
          ],
        },
      ],
      failures: [],
      stoppedUnits: [],
      notes: [],
    };
    const text = renderOrchestrationMetrics(result, 'host', 1_700_000_000);
    expect(text).toContain('job="we\\"ird\\\\job"');
    expect(text).toContain(
      'snapguard_orchestration_last_success_timestamp_seconds{host="host"} 1700000000.000',
    );
    expect(text).toContain('snapguard_orchestration_last_run_timestamp_seconds{host="host"} 1795262410.000');
  });
});
