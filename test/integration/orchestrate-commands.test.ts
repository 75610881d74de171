import { execFileSync } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig, type ConfigInput } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { acquireLock } from '../../src/core/lock.js';
import { silentLogger } from '../../src/core/logger.js';
import { orchestrate, orchestrationLockFile } from '../../src/core/orchestrate/index.js';
import { createExec } from '../../src/system/exec.js';
import { requireComponents } from '../helpers/env.js';
import { pidFromFile, processGone } from '../helpers/process.js';

const run = requireComponents(['restic', 'runuser', 'promtool']);
const exec = createExec();

describe.skipIf(!run)('orchestrate: command jobs with real restic', () => {
  let dir: string;
  let repo: string;
  let src: string;
  const resticEnv = () => ({
    RESTIC_PASSWORD: 'x',
    RESTIC_REPOSITORY: repo,
    RESTIC_CACHE_DIR: join(dir, 'cache'),
  });
  const snapshotsInRepo = async () =>
    (
      JSON.parse(
        (await exec('restic', ['snapshots', '--json', '--no-lock'], { env: resticEnv() })).stdout,
      ) as unknown[]
    ).length;
  const deps = (orchestrateSection: ConfigInput['orchestrate'], extra: Partial<ConfigInput> = {}): Deps =>
    createDeps(
      buildConfig(
        {
          contextDir: join(dir, 'context'),
          stateDir: join(dir, 'state'),
          host: 'test-host',
          orchestrate: orchestrateSection,
          ...extra,
        },
        dir,
      ),
      { logger: silentLogger(), exec },
    );
  const history = async () =>
    JSON.parse(await readFile(join(dir, 'context', 'backup-history.json'), 'utf8')) as {
      orchestrations: { exit_code: number; status: string; stages: { name: string; status: string }[] }[];
    };
  const resticVerify = () => ({ kind: 'restic' as const, repository: repo, env: { RESTIC_PASSWORD: 'x' } });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-test-orch-cmd-'));
    await chmod(dir, 0o755);
    repo = join(dir, 'repo');
    src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'a.txt'), 'hello');
    // Owned by nobody, so a restic run as nobody can write the repository but not read src/secret.
    for (const d of [repo, join(dir, 'cache')]) {
      await mkdir(d);
      await chown(d, 65534, 65534);
    }
    await exec('runuser', ['-u', 'nobody', '--', 'restic', 'init'], { env: resticEnv() });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('verifies a real restic backup by a snapshot newer than the start', async () => {
    const before = await snapshotsInRepo();
    const result = await orchestrate(
      deps({
        stages: [
          {
            name: 'backups',
            timeout: '2m',
            jobs: [
              {
                kind: 'command',
                name: 'restic-src',
                argv: ['runuser', '-u', 'nobody', '--', 'restic', 'backup', '-q', src],
                env: resticEnv(),
                verify: resticVerify(),
              },
            ],
          },
        ],
      }),
      {},
    );
    expect(result.exitCode).toBe(0);
    expect(result.stages[0]?.jobs[0]).toMatchObject({ id: 'restic-src', result: 'verified' });
    expect(result.stages[0]?.jobs[0]?.verification).toMatch(/^restic snapshot [0-9a-f]{8} /);
    expect(await snapshotsInRepo()).toBe(before + 1);
  });

  it('does not count a restic run that exits 3 as success, although it wrote a snapshot', async () => {
    await writeFile(join(src, 'secret.txt'), 'root only');
    await chmod(join(src, 'secret.txt'), 0o600);
    const before = await snapshotsInRepo();
    try {
      const result = await orchestrate(
        deps({
          stages: [
            {
              name: 'backups',
              timeout: '2m',
              jobs: [
                {
                  kind: 'command',
                  name: 'restic-partial',
                  argv: ['runuser', '-u', 'nobody', '--', 'restic', 'backup', '-q', src],
                  env: resticEnv(),
                  verify: resticVerify(),
                },
              ],
            },
          ],
        }),
        {},
      );
      // restic really wrote a (partial) snapshot: a verification alone would have accepted it.
      expect(await snapshotsInRepo()).toBe(before + 1);
      expect(result.exitCode).toBe(1);
      const job = result.stages[0]?.jobs[0];
      expect(job).toMatchObject({ result: 'failed', exitStatus: 3 });
      expect(job?.detail).toContain('exited with 3');
      expect(result.failures[0]?.journal.join('\n')).toContain('permission denied');
    } finally {
      await rm(join(src, 'secret.txt'));
    }
  });

  it('fails a command that exits 0 but produced no snapshot', async () => {
    const result = await orchestrate(
      deps({
        stages: [
          {
            name: 'backups',
            timeout: '1m',
            jobs: [{ kind: 'command', name: 'liar', argv: ['true'], verify: resticVerify() }],
          },
        ],
      }),
      {},
    );
    expect(result.exitCode).toBe(1);
    expect(result.stages[0]?.jobs[0]?.result).toBe('failed');
    expect(result.stages[0]?.jobs[0]?.detail).toMatch(/no restic snapshot .* newer than/);
  });

  it('keeps running the other jobs after a non-critical failure and a timeout (exit 1)', async () => {
    const marker = join(dir, 'later-stage-ran');
    const result = await orchestrate(
      deps({
        stages: [
          {
            name: 'two',
            timeout: '30s',
            jobs: [
              { kind: 'command', name: 'fails', argv: ['sh', '-c', 'echo broken disk >&2; exit 4'] },
              { kind: 'command', name: 'hangs', argv: ['sleep', '60'], timeout: '1s' },
              { kind: 'command', name: 'fine', argv: ['true'] },
            ],
          },
          {
            name: 'three',
            timeout: '30s',
            jobs: [{ kind: 'command', name: 'touch', argv: ['touch', marker] }],
          },
        ],
      }),
      {},
    );
    expect(result.exitCode).toBe(1);
    expect(result.status).toBe('partial');
    const jobs = Object.fromEntries(result.stages[0]!.jobs.map((j) => [j.id, j.result]));
    expect(jobs).toEqual({ fails: 'failed', hangs: 'timeout', fine: 'succeeded-unverified' });
    expect(result.failures.find((f) => f.job === 'fails')?.journal).toEqual(['broken disk']);
    expect(existsSync(marker)).toBe(true);
    const last = (await history()).orchestrations.at(-1);
    expect(last).toMatchObject({ exit_code: 1, status: 'partial' });
  });

  it('a command job that forks is stopped whole at its timeout: the stage does not wait for the grandchild', async () => {
    const pidFile = join(dir, 'forking-job.pid');
    const started = Date.now();
    const result = await orchestrate(
      deps({
        stages: [
          {
            name: 'forks',
            timeout: '2m',
            jobs: [
              {
                kind: 'command',
                name: 'forks',
                argv: ['sh', '-c', `sleep 60 & echo $! > ${pidFile}; wait; echo done`],
                timeout: '1s',
              },
            ],
          },
        ],
      }),
      {},
    );
    expect(result.stages[0]?.jobs[0]?.result).toBe('timeout');
    // Generous bound: timeout + grace + slack, far below the 60 s the grandchild would run.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await processGone(await pidFromFile(pidFile))).toBe(true);
  });

  it('stops after a failed critical stage (exit 2): later stages never start', async () => {
    const marker = join(dir, 'must-not-exist');
    const result = await orchestrate(
      deps({
        stages: [
          {
            name: 'first',
            timeout: '30s',
            critical: true,
            jobs: [{ kind: 'command', name: 'bad', argv: ['false'] }],
          },
          {
            name: 'second',
            timeout: '30s',
            jobs: [{ kind: 'command', name: 'touch', argv: ['touch', marker] }],
          },
        ],
      }),
      {},
    );
    expect(result.exitCode).toBe(2);
    expect(result.status).toBe('critical');
    expect(result.stages.map((s) => s.status)).toEqual(['failed', 'skipped']);
    expect(existsSync(marker)).toBe(false);
  });

  it('dryRun shows the plan and changes nothing', async () => {
    const marker = join(dir, 'dry-marker');
    const fresh = await mkdtemp(join(dir, 'dry-'));
    const before = await snapshotsInRepo();
    const dryDeps = createDeps(
      buildConfig(
        {
          contextDir: join(fresh, 'context'),
          stateDir: join(fresh, 'state'),
          orchestrate: {
            stages: [
              {
                name: 'backups',
                timeout: '1h',
                jobs: [
                  { kind: 'command', name: 'touch', argv: ['touch', marker] },
                  {
                    kind: 'command',
                    name: 'restic',
                    argv: ['runuser', '-u', 'nobody', '--', 'restic', 'backup', src],
                    env: resticEnv(),
                    verify: resticVerify(),
                  },
                ],
              },
            ],
          },
        },
        fresh,
      ),
      { logger: silentLogger(), exec },
    );
    const result = await orchestrate(dryDeps, { dryRun: true });
    expect(result).toMatchObject({ dryRun: true, exitCode: 0, status: 'planned' });
    expect(result.stages[0]?.jobs.map((j) => [j.id, j.result, j.timeoutSeconds])).toEqual([
      ['touch', 'planned', 3600],
      ['restic', 'planned', 3600],
    ]);
    expect(result.stages[0]?.jobs[1]?.verification).toContain('restic snapshots --json');
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(fresh, 'context'))).toBe(false);
    expect(existsSync(join(fresh, 'state'))).toBe(false);
    expect(await snapshotsInRepo()).toBe(before);
  });

  it('writes Prometheus metrics that promtool accepts, with the last success kept after a failure', async () => {
    const textfile = join(dir, 'metrics', 'snapguard.prom');
    await mkdir(join(dir, 'metrics'), { recursive: true });
    const ok = await orchestrate(
      deps(
        { stages: [{ name: 's', timeout: '30s', jobs: [{ kind: 'command', name: 'ok', argv: ['true'] }] }] },
        { metrics: { textfile } },
      ),
      {},
    );
    expect(ok.exitCode).toBe(0);
    await orchestrate(
      deps(
        {
          stages: [{ name: 's', timeout: '30s', jobs: [{ kind: 'command', name: 'bad', argv: ['false'] }] }],
        },
        { metrics: { textfile } },
      ),
      {},
    );
    const file = join(dir, 'metrics', 'snapguard-orchestrate.prom');
    const text = await readFile(file, 'utf8');
    expect(existsSync(textfile)).toBe(false);
    execFileSync('promtool', ['check', 'metrics'], { input: text });
    const lastSuccess =
      /snapguard_orchestration_last_success_timestamp_seconds\{host="test-host"\} (\S+)/.exec(text);
    const expected = Date.parse(ok.startedAt) / 1000 + ok.durationSeconds;
    expect(Number(lastSuccess?.[1])).toBeCloseTo(expected, 0);
    expect(text).toContain('snapguard_orchestration_exit_code{host="test-host"} 1');
    expect(text).toMatch(
      /snapguard_orchestration_job_success\{host="test-host",stage="s",job="bad",kind="command",result="failed"\} 0/,
    );
    expect(text).toMatch(/snapguard_orchestration_job_duration_seconds\{[^}]*job="bad"[^}]*\} \d/);
  });

  it('POSTs the summary to a webhook on loopback', async () => {
    const received: { body: string; headers: IncomingMessage['headers'] }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push({ body, headers: req.headers });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const result = await orchestrate(
        deps({
          stages: [{ name: 's', timeout: '30s', jobs: [{ kind: 'command', name: 'bad', argv: ['false'] }] }],
          notify: { url: `http://127.0.0.1:${port}/hook/secret-token`, format: 'json' },
        }),
        {},
      );
      expect(received).toHaveLength(1);
      const payload = JSON.parse(received[0]!.body) as {
        host: string;
        summary: string;
        result: { exitCode: number };
      };
      expect(payload.host).toBe('test-host');
      expect(payload.result.exitCode).toBe(1);
      expect(payload.summary).toContain('FAILED bad');
      expect(result.notes.join('\n')).toContain(`webhook 127.0.0.1:${port} notified (HTTP 200)`);
      expect(result.notes.join('\n')).not.toContain('secret-token');

      await orchestrate(
        deps({
          stages: [{ name: 's', timeout: '30s', jobs: [{ kind: 'command', name: 'ok', argv: ['true'] }] }],
          notify: { url: `http://127.0.0.1:${port}/ntfy`, format: 'ntfy', on: 'always' },
        }),
        {},
      );
      expect(received).toHaveLength(2);
      expect(received[1]!.headers.title).toBe('snapguard test-host: succeeded');
      expect(received[1]!.body).toContain('s: succeeded (1 succeeded-unverified)');
    } finally {
      server.close();
    }
  });

  it('refuses to run while another orchestration holds the host lock (exit 2, nothing started)', async () => {
    const marker = join(dir, 'locked-marker');
    const lockedDeps = deps({
      stages: [
        { name: 's', timeout: '30s', jobs: [{ kind: 'command', name: 'touch', argv: ['touch', marker] }] },
      ],
    });
    const held = await acquireLock(orchestrationLockFile(lockedDeps.config.stateDir), {
      purpose: 'test holder',
    });
    try {
      const result = await orchestrate(lockedDeps, {});
      expect(result).toMatchObject({ exitCode: 2, status: 'preflight-failed' });
      expect(result.failures[0]?.detail).toContain('test holder');
      expect(existsSync(marker)).toBe(false);
    } finally {
      await held.release();
    }
  });

  it('takes over a stale host lock of a dead process and says so', async () => {
    const staleDeps = deps({
      stages: [{ name: 's', timeout: '30s', jobs: [{ kind: 'command', name: 'ok', argv: ['true'] }] }],
    });
    const lockFile = orchestrationLockFile(staleDeps.config.stateDir);
    await mkdir(join(staleDeps.config.stateDir, 'locks'), { recursive: true });
    // pid 2^22+1 is above the kernel's pid_max limit: no process can have it.
    await writeFile(
      lockFile,
      JSON.stringify({
        pid: 4194305,
        host: hostname(),
        procStart: '1',
        purpose: 'orchestrate crashed',
        since: '2026-01-01T00:00:00Z',
      }),
    );
    const result = await orchestrate(staleDeps, {});
    expect(result.exitCode).toBe(0);
    expect(result.notes.join('\n')).toContain('Took over the stale orchestration lock of pid 4194305');
    expect(existsSync(lockFile)).toBe(false);
  });

  it('passes argv to the program without a shell: shell syntax stays literal', async () => {
    const marker = join(dir, 'injected');
    const result = await orchestrate(
      deps({
        stages: [
          {
            name: 's',
            timeout: '30s',
            jobs: [{ kind: 'command', name: 'echo', argv: ['echo', `$(touch ${marker}); touch ${marker}`] }],
          },
        ],
      }),
      {},
    );
    expect(result.exitCode).toBe(0);
    expect(existsSync(marker)).toBe(false);
  });

  it('fails pre-flight when systemd cannot be reached (this host has no systemd as PID 1)', async () => {
    const marker = join(dir, 'unreachable-marker');
    const result = await orchestrate(
      deps({
        stages: [
          { name: 'a', timeout: '30s', jobs: [{ kind: 'command', name: 'touch', argv: ['touch', marker] }] },
          { name: 'b', timeout: '30s', jobs: [{ kind: 'systemd', units: ['restic-backup-*.service'] }] },
        ],
      }),
      {},
    );
    expect(result).toMatchObject({ exitCode: 2, status: 'preflight-failed' });
    expect(result.preflight.find((c) => c.check === 'discovery')?.detail).toMatch(/systemctl/);
    expect(existsSync(marker)).toBe(false);
  });

  it('fails pre-flight when a replication target is not a mounted disk (exit 2, nothing started)', async () => {
    const marker = join(dir, 'preflight-marker');
    const notMounted = join(dir, 'not-mounted');
    await mkdir(notMounted);
    const result = await orchestrate(
      deps(
        {
          stages: [
            {
              name: 's',
              timeout: '30s',
              jobs: [{ kind: 'command', name: 'touch', argv: ['touch', marker] }],
            },
            { name: 'r', timeout: '30s', jobs: [{ kind: 'replicate', volumes: ['data'] }] },
          ],
        },
        {
          volumes: {
            data: {
              backend: 'btrfs',
              path: join(dir, 'vol'),
              external: [{ kind: 'btrfs', path: notMounted }],
            },
          },
        },
      ),
      {},
    );
    expect(result).toMatchObject({ exitCode: 2, status: 'preflight-failed' });
    expect(result.failures.map((f) => f.detail).join('\n')).toContain('not on a mounted backup disk');
    expect(existsSync(marker)).toBe(false);
  });
});
