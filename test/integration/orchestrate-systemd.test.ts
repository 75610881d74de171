import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { CallToolResultSchema, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig, type ConfigInput } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { orchestrate } from '../../src/core/orchestrate/index.js';
import { createServer } from '../../src/mcp/server.js';
import { createExec } from '../../src/system/exec.js';
import { requireComponents } from '../helpers/env.js';
import { bootContainer, type Container } from '../helpers/nspawn.js';

const run = requireComponents(['systemd-nspawn', 'nsenter', 'debootstrap', 'restic']);
const exec = createExec();

/** A oneshot unit that logs its start and end (with a monotonic-enough clock) to /var/log/sg-order. */
function oneshot(name: string, body = 'true', extra = ''): string {
  return [
    '[Unit]',
    `Description=test unit ${name}`,
    '[Service]',
    'Type=oneshot',
    `ExecStart=/bin/sh -c 'echo "start ${name} $(date +%%s%%N)" >> /var/log/sg-order; ${body}; rc=$?; echo "end ${name} $(date +%%s%%N)" >> /var/log/sg-order; exit $rc'`,
    extra,
    '',
  ].join('\n');
}

describe.skipIf(!run)('orchestrate: real systemd 252 in a container', () => {
  let container: Container;
  let dir: string;
  const deps = (orchestrateSection: Partial<NonNullable<ConfigInput['orchestrate']>> = {}): Deps =>
    createDeps(
      buildConfig(
        {
          contextDir: join(dir, 'context'),
          stateDir: join(dir, 'state'),
          host: 'test-host',
          orchestrate: { systemctl: container.systemctl, ...orchestrateSection },
        },
        dir,
      ),
      { logger: silentLogger(), exec },
    );
  const order = async () => {
    const text = await readFile(join(container.rootfs, 'var/log/sg-order'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [what, unit, ns] = line.split(' ');
        return { what: what!, unit: unit!, time: BigInt(ns!) };
      });
  };
  const runsOf = async (unit: string) =>
    (await order()).filter((e) => e.unit === unit && e.what === 'start').length;
  const activeState = async (unit: string) =>
    (await container.run(['systemctl', 'show', '-p', 'ActiveState', '--value', unit])).stdout.trim();

  const designUnits = [
    'sanoid.service',
    'syncoid-tank-media.service',
    'syncoid-rpool-home.service',
    'restic-backup-plex.service',
    'restic-backup-sonarr.service',
    'pgbackrest-main-full-backup.service',
    'pgbackrest-main-incr-backup.service',
  ];
  const decoys = [
    'sanoid-prune.service',
    'syncoid-replication-info.service',
    'syncoid-target-reachability.service',
    'pgbackrest-main-stanza-create.service',
    'pgbackrest-metrics.service',
    'restic-backup-check.timer',
    'restic-backups-extra.service',
  ];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-test-orch-systemd-'));
    // restic (linked only against libc, which the container shares) and a work folder at the same
    // path inside, so a unit backs up with the real restic and snapguard verifies from the host.
    await chmod(dir, 0o755);
    container = await bootContainer({
      bind: [
        { host: '/usr/bin/restic', container: '/usr/local/bin/restic', readOnly: true },
        { host: dir, container: dir },
      ],
    });
    // The four backups meet at a barrier: none ends before all have started, when (and only when)
    // orchestrate starts them together; started one after another, the first would end alone after 60 s.
    const backups = designUnits.slice(3);
    const barrier = (unit: string) =>
      [
        `mkdir -p /run/sg-barrier; touch /run/sg-barrier/${unit}; i=0`,
        `while [ "$(ls /run/sg-barrier | wc -l)" -lt ${backups.length} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done`,
      ].join('; ');
    for (const unit of designUnits)
      await container.writeUnit(unit, oneshot(unit, backups.includes(unit) ? barrier(unit) : 'sleep 0.2'));
    for (const unit of decoys.filter((u) => u.endsWith('.service')))
      await container.writeUnit(unit, oneshot(unit));
    await container.writeUnit(
      'restic-backup-check.timer',
      '[Timer]\nOnCalendar=daily\nUnit=sanoid-prune.service\n',
    );
    await container.writeUnit('syncoid-@.service', oneshot('template'));
    await container.daemonReload();
    // Loaded (started once) and not loaded (only a unit file) units must both be discovered.
    await container.run(['systemctl', 'start', 'syncoid-rpool-home.service']);
    await container.run(['sh', '-c', ': > /var/log/sg-order']);
  });
  afterAll(async () => {
    await container?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('dryRun discovers exactly the design units per stage and starts nothing', async () => {
    const result = await orchestrate(deps(), { dryRun: true });
    expect(result.status).toBe('planned');
    expect(result.stages.map((s) => [s.name, s.critical, s.timeoutSeconds, s.jobs.map((j) => j.id)])).toEqual(
      [
        ['snapshots', true, 300, ['sanoid.service']],
        ['replication', false, 1800, ['syncoid-rpool-home.service', 'syncoid-tank-media.service']],
        [
          'backups',
          false,
          3600,
          [
            'restic-backup-plex.service',
            'restic-backup-sonarr.service',
            'pgbackrest-main-full-backup.service',
            'pgbackrest-main-incr-backup.service',
          ],
        ],
      ],
    );
    expect(await order()).toEqual([]);
    expect(existsSync(join(dir, 'context', 'backup-history.json'))).toBe(false);
  });

  it('runs all stages in order, each unit once, decoys never; exit 0', async () => {
    const events: string[] = [];
    const result = await orchestrate(deps(), {}, { onEvent: (e) => events.push(e.type) });
    expect(result.exitCode).toBe(0);
    expect(result.status).toBe('succeeded');
    const jobs = result.stages.flatMap((s) => s.jobs);
    expect(jobs.every((j) => j.result === 'succeeded-unverified' && j.started)).toBe(true);
    const log = await order();
    for (const unit of designUnits) expect(await runsOf(unit)).toBe(1);
    for (const decoy of [...decoys, 'template']) expect(log.some((e) => e.unit === decoy)).toBe(false);
    const stageOf = (unit: string) => result.stages.findIndex((s) => s.jobs.some((j) => j.id === unit));
    for (let stage = 0; stage < 2; stage++) {
      const ends = log.filter((e) => e.what === 'end' && stageOf(e.unit) === stage).map((e) => e.time);
      const starts = log
        .filter((e) => e.what === 'start' && stageOf(e.unit) === stage + 1)
        .map((e) => e.time);
      const lastEnd = ends.reduce((a, b) => (a > b ? a : b));
      expect(starts.every((start) => start > lastEnd)).toBe(true);
    }
    // Within a stage the jobs run in parallel: all four backups started before the first ended.
    const backups = log.filter((e) => stageOf(e.unit) === 2);
    const firstEnd = backups.filter((e) => e.what === 'end').reduce((a, b) => (a.time < b.time ? a : b));
    expect(backups.filter((e) => e.what === 'start').every((e) => e.time < firstEnd.time)).toBe(true);
    expect(events.filter((e) => e === 'job-start')).toHaveLength(7);
    const history = JSON.parse(await readFile(join(dir, 'context', 'backup-history.json'), 'utf8')) as {
      orchestrations: { exit_code: number; stages: { name: string; status: string }[] }[];
    };
    expect(history.orchestrations.at(-1)).toMatchObject({
      exit_code: 0,
      stages: [
        { name: 'snapshots', status: 'succeeded' },
        { name: 'replication', status: 'succeeded' },
        { name: 'backups', status: 'succeeded' },
      ],
    });
  });

  it('a failing stage-3 unit gives exit 1; the others still ran; the failure carries its journal', async () => {
    await container.writeUnit(
      'restic-backup-broken.service',
      oneshot(
        'restic-backup-broken.service',
        'echo "Fatal: repository is locked by another process" >&2; exit 3',
      ),
    );
    await container.daemonReload();
    try {
      const before = await runsOf('restic-backup-plex.service');
      const result = await orchestrate(deps(), { stages: ['3'] });
      expect(result.exitCode).toBe(1);
      expect(result.status).toBe('partial');
      expect(await runsOf('restic-backup-plex.service')).toBe(before + 1);
      const failure = result.failures.find((f) => f.unit === 'restic-backup-broken.service');
      expect(failure?.result).toBe('failed');
      expect(failure?.detail).toContain('ExecMainStatus=3');
      expect(failure?.journal.join('\n')).toContain('repository is locked by another process');
      const others = result.stages[0]!.jobs.filter((j) => j.id !== 'restic-backup-broken.service');
      expect(others.map((j) => j.result)).toEqual(others.map(() => 'succeeded-unverified'));
    } finally {
      await container.run(['rm', '-f', '/etc/systemd/system/restic-backup-broken.service']);
      await container.daemonReload();
    }
  });

  it('a failing critical stage 1 gives exit 2 and later stages never start', async () => {
    await container.writeUnit('sg-bad-snapshots.service', oneshot('sg-bad-snapshots.service', 'exit 1'));
    await container.daemonReload();
    const before = await runsOf('syncoid-tank-media.service');
    const result = await orchestrate(
      deps({
        stages: [
          {
            name: 'snapshots',
            timeout: '1m',
            critical: true,
            jobs: [{ kind: 'systemd', units: ['sg-bad-snapshots.service'] }],
          },
          { name: 'replication', timeout: '1m', jobs: [{ kind: 'systemd', units: ['syncoid-*.service'] }] },
        ],
      }),
      {},
    );
    expect(result.exitCode).toBe(2);
    expect(result.stages.map((s) => s.status)).toEqual(['failed', 'skipped']);
    expect(await runsOf('syncoid-tank-media.service')).toBe(before);
  });

  it('fails pre-flight when a named unit does not exist (exit 2, nothing started)', async () => {
    const before = (await order()).length;
    const result = await orchestrate(
      deps({
        stages: [
          {
            name: 'one',
            timeout: '1m',
            jobs: [{ kind: 'systemd', units: ['restic-backup-plex.service', 'no-such-backup.service'] }],
          },
        ],
      }),
      {},
    );
    expect(result).toMatchObject({ exitCode: 2, status: 'preflight-failed' });
    expect(result.failures.map((f) => f.job)).toEqual(['unit no-such-backup.service']);
    expect((await order()).length).toBe(before);
  });

  it('stops a hanging unit at its timeout and records timeout; the rest finish', async () => {
    await container.writeUnit('sg-hang.service', oneshot('sg-hang.service', 'sleep 600'));
    await container.writeUnit('sg-quick.service', oneshot('sg-quick.service', 'sleep 0.3'));
    await container.daemonReload();
    const result = await orchestrate(
      deps({
        stages: [
          {
            name: 'hang',
            timeout: '1m',
            jobs: [
              { kind: 'systemd', units: ['sg-hang.service'], timeout: '2s' },
              { kind: 'systemd', units: ['sg-quick.service'] },
            ],
          },
        ],
      }),
      {},
    );
    expect(result.exitCode).toBe(1);
    const jobs = Object.fromEntries(result.stages[0]!.jobs.map((j) => [j.id, j]));
    expect(jobs['sg-hang.service']).toMatchObject({ result: 'timeout', started: true });
    expect(jobs['sg-hang.service']!.detail).toContain('stopped sg-hang.service');
    expect(jobs['sg-quick.service']!.result).toBe('succeeded-unverified');
    expect(result.stoppedUnits).toEqual(['sg-hang.service']);
    expect(await activeState('sg-hang.service')).not.toMatch(/^(active|activating)$/);
    expect((await order()).some((e) => e.unit === 'sg-hang.service' && e.what === 'end')).toBe(false);
  });

  it('waits for a unit already running from its timer instead of starting it twice', async () => {
    await container.writeUnit('sg-timer-job.service', oneshot('sg-timer-job.service', 'sleep 3'));
    await container.daemonReload();
    await container.run(['systemctl', 'start', '--no-block', 'sg-timer-job.service']);
    for (let i = 0; i < 50 && (await activeState('sg-timer-job.service')) !== 'activating'; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await activeState('sg-timer-job.service')).toBe('activating');
    const result = await orchestrate(
      deps({
        stages: [
          { name: 'one', timeout: '1m', jobs: [{ kind: 'systemd', units: ['sg-timer-job.service'] }] },
        ],
      }),
      {},
    );
    expect(result.exitCode).toBe(0);
    expect(result.stages[0]!.jobs[0]).toMatchObject({
      alreadyRunning: true,
      started: false,
      result: 'succeeded-unverified',
    });
    expect(result.stages[0]!.jobs[0]!.detail).toContain('already running');
    expect(await runsOf('sg-timer-job.service')).toBe(1);
    expect((await order()).some((e) => e.unit === 'sg-timer-job.service' && e.what === 'end')).toBe(true);
  });

  it('MCP: sends progress per job and, when cancelled, stops the units it started and says so', async () => {
    await container.writeUnit('sg-long.service', oneshot('sg-long.service', 'sleep 120'));
    await container.writeUnit('sg-short.service', oneshot('sg-short.service', 'sleep 0.2'));
    await container.daemonReload();
    const mcpDeps = deps({
      stages: [
        {
          name: 'cancel-me',
          timeout: '5m',
          jobs: [{ kind: 'systemd', units: ['sg-long.service', 'sg-short.service'] }],
        },
        { name: 'never', timeout: '5m', jobs: [{ kind: 'systemd', units: ['sg-quick.service'] }] },
      ],
    });
    const { server, cleanup } = createServer(mcpDeps);
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
    await server.connect(serverTransport);
    const client = new Client({ name: 'test', version: '1.0.0' });
    await client.connect(clientTransport);
    const quickRuns = await runsOf('sg-quick.service');
    try {
      const progress: Progress[] = [];
      const controller = new AbortController();
      const call = client.callTool({ name: 'orchestrate', arguments: {} }, CallToolResultSchema, {
        signal: controller.signal,
        onprogress: (p) => {
          progress.push(p);
          if (p.message?.includes('sg-short.service succeeded')) controller.abort('user pressed stop');
        },
      });
      // Rejected by our own cancel (its reason), not by a tool error or a closed connection.
      await expect(call).rejects.toThrow(/user pressed stop/);
      // The server finishes its side after the cancel: wait for the history entry it writes.
      const historyFile = join(dir, 'context', 'backup-history.json');
      let entry: { status: string; exit_code: number; stopped_units: string[] } | undefined;
      for (let i = 0; i < 100 && entry?.status !== 'cancelled'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const history = JSON.parse(await readFile(historyFile, 'utf8')) as {
          orchestrations: (typeof entry)[];
        };
        entry = history.orchestrations.at(-1);
      }
      expect(entry).toMatchObject({ status: 'cancelled', exit_code: 2, stopped_units: ['sg-long.service'] });
      expect(await activeState('sg-long.service')).not.toMatch(/^(active|activating)$/);
      expect((await order()).some((e) => e.unit === 'sg-long.service' && e.what === 'end')).toBe(false);
      expect(await runsOf('sg-quick.service')).toBe(quickRuns);
      const messages = progress.map((p) => p.message);
      expect(messages).toContain('cancel-me: started sg-long.service');
      expect(messages).toContain('cancel-me: started sg-short.service');
      expect(
        messages.some((m) => /^cancel-me: sg-short.service succeeded-unverified after/.test(m ?? '')),
      ).toBe(true);
      const counters = progress.map((p) => p.progress);
      expect(counters).toEqual([...counters].sort((a, b) => a - b));
      expect(progress.every((p) => p.total === 6)).toBe(true);
    } finally {
      await client.close();
      await cleanup();
    }
  });

  it('verifies a restic unit by its new snapshot, and fails a unit whose restic exited 3 although it wrote one', async () => {
    const repo = join(dir, 'restic-repo');
    const src = join(dir, 'restic-src');
    const env = {
      RESTIC_PASSWORD: 'x',
      RESTIC_REPOSITORY: repo,
      RESTIC_CACHE_DIR: join(dir, 'restic-cache'),
    };
    for (const d of [repo, src, env.RESTIC_CACHE_DIR]) await mkdir(d, { recursive: true });
    await writeFile(join(src, 'doc.txt'), 'hello');
    await writeFile(join(src, 'private.txt'), 'root only');
    await chmod(join(src, 'private.txt'), 0o600);
    await exec('restic', ['init'], { env });
    await exec('chown', ['-R', '65534:65534', repo, env.RESTIC_CACHE_DIR]);
    const unit = (name: string, user: string) =>
      [
        '[Service]',
        'Type=oneshot',
        `User=${user}`,
        `Environment=RESTIC_PASSWORD=x RESTIC_REPOSITORY=${repo} RESTIC_CACHE_DIR=${env.RESTIC_CACHE_DIR}`,
        `ExecStart=/usr/local/bin/restic backup -q ${name === 'full' ? join(src, 'doc.txt') : src}`,
        '',
      ].join('\n');
    await container.writeUnit('restic-backup-docs.service', unit('full', 'nobody'));
    await container.writeUnit('restic-backup-partial.service', unit('partial', 'nobody'));
    await container.daemonReload();
    const count = async () =>
      (JSON.parse((await exec('restic', ['snapshots', '--json', '--no-lock'], { env })).stdout) as unknown[])
        .length;
    try {
      const result = await orchestrate(
        deps({
          stages: [
            {
              name: 'backups',
              timeout: '2m',
              jobs: [
                {
                  kind: 'systemd',
                  units: ['restic-backup-docs.service', 'restic-backup-partial.service'],
                  verify: { kind: 'restic', repository: repo, env: { RESTIC_PASSWORD: 'x' } },
                },
              ],
            },
          ],
        }),
        {},
      );
      // Both runs wrote a snapshot; only the clean one counts.
      expect(await count()).toBe(2);
      const jobs = Object.fromEntries(result.stages[0]!.jobs.map((j) => [j.id, j]));
      expect(jobs['restic-backup-docs.service']).toMatchObject({ result: 'verified' });
      expect(jobs['restic-backup-docs.service']!.verification).toMatch(/^restic snapshot [0-9a-f]{8} /);
      expect(jobs['restic-backup-partial.service']).toMatchObject({ result: 'failed', exitStatus: 3 });
      expect(jobs['restic-backup-partial.service']!.journal?.join('\n')).toContain('permission denied');
      expect(result.exitCode).toBe(1);
    } finally {
      await container.run([
        'rm',
        '-f',
        '/etc/systemd/system/restic-backup-docs.service',
        '/etc/systemd/system/restic-backup-partial.service',
      ]);
      await container.daemonReload();
    }
  });
});
