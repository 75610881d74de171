import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { orchestrate } from '../../src/core/orchestrate/index.js';
import { requireBuiltCli, runBuiltCli } from '../helpers/cli.js';

// This host's PID 1: the first suite runs where it is not systemd (containers, CI sandboxes).
const pid1 = readFileSync('/proc/1/comm', 'utf8').trim();
const withoutSystemd = !existsSync('/run/systemd/system');
if (!withoutSystemd)
  console.warn(`skipping the real no-systemd dry run: PID 1 is ${pid1} (systemd); the injected one runs`);

describe('orchestrate --dry-run on a host without systemd as PID 1', () => {
  let dir: string;
  let config: string;
  const volumes = () => ({ app: { backend: 'dir', path: join(dir, 'data', 'app') } });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sg-orch-nosd-'));
    await mkdir(join(dir, 'data', 'app'), { recursive: true });
    config = join(dir, 'snapguard.yaml');
    await writeFile(config, stringify({ contextDir: 'context', stateDir: 'state', volumes: volumes() }));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.runIf(withoutSystemd)(
    `shows the stages, with discovery unavailable because PID 1 is not systemd (here: real, PID 1 ${pid1})`,
    async () => {
      requireBuiltCli();
      const text = await runBuiltCli(['orchestrate', '--dry-run', '--config', config]);
      expect(text.stderr).toBe('');
      expect(text.code).toBe(1);
      expect(text.stdout).toContain(
        'Stages: 1 snapshots (critical, 1 job), 2 replication (0 jobs), 3 backups (0 jobs)',
      );
      expect(text.stdout).toMatch(/snapshots\s+snapshot:app\s+snapshot\s+planned/);
      expect(text.stdout).toContain(`systemd is not PID 1 on this host (PID 1 is ${pid1})`);
      expect(text.stdout).toContain(
        'replication: Discovery unavailable: the units syncoid-*.service could not be listed',
      );
      expect(text.stdout).toContain('Pre-flight (a real run would stop here):');
      // The raw systemctl complaint is replaced by the reason.
      expect(text.stdout).not.toContain('Failed to connect to bus');

      const json = await runBuiltCli(['orchestrate', '--dry-run', '--json', '--config', config]);
      const result = JSON.parse(json.stdout);
      expect(json.code).toBe(1);
      expect(result).toMatchObject({ dryRun: true, exitCode: 1, status: 'preflight-failed' });
      expect(result.stages.map((s: { name: string }) => s.name)).toEqual([
        'snapshots',
        'replication',
        'backups',
      ]);
      const discovery = result.preflight.find((c: { check: string }) => c.check === 'discovery');
      expect(discovery.ok).toBe(false);
      expect(discovery.detail).toContain('systemd is not PID 1 on this host');
      expect(discovery.detail).toContain('syncoid-*.service');

      // A real run still stops at pre-flight, with nothing started.
      const real = await runBuiltCli(['orchestrate', '--config', config]);
      expect(real.code).toBe(2);
    },
  );

  it('the same with the PID-1 check injected and systemctl replaced by a command that answers as it does without systemd', async () => {
    const deps = createDeps(
      buildConfig(
        {
          contextDir: join(dir, 'context2'),
          stateDir: join(dir, 'state2'),
          volumes: volumes(),
          orchestrate: {
            systemctl: [
              'sh',
              '-c',
              'echo "System has not been booted with systemd as init system (PID 1). Can\'t operate." >&2; echo "Failed to connect to bus: Host is down" >&2; exit 1',
              'systemctl',
            ],
          },
        },
        dir,
      ),
      { logger: silentLogger() },
    );
    const result = await orchestrate(
      deps,
      { dryRun: true },
      { initSystem: () => ({ systemd: false, pid1: 'tini' }) },
    );
    expect(result).toMatchObject({ exitCode: 1, status: 'preflight-failed' });
    expect(result.stages.map((s) => [s.name, s.jobs.map((j) => j.id)])).toEqual([
      ['snapshots', ['snapshot:app']],
      ['replication', []],
      ['backups', []],
    ]);
    expect(result.preflight.find((c) => c.check === 'discovery')?.detail).toContain(
      'systemd is not PID 1 on this host (PID 1 is tini)',
    );
    expect(result.stages[0]!.notes.join(' ')).toContain('sanoid.service could not be looked up');
  });
});
