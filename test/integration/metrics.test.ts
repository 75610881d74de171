import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { writeMetricsFile } from '../../src/core/metrics.js';
import { runRestoreTest } from '../../src/core/restore-test/index.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'getfattr', 'promtool', 'prometheus-node-exporter']);
const monitoring = resolve('docs/monitoring');

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

describe.runIf(run)('Prometheus textfile metrics', () => {
  let sandbox: BtrfsSandbox;
  let deps: Deps;
  let textfile: string;
  let exporter: ChildProcess | undefined;

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'metrics');
    const path = await sandbox.subvolume('data');
    await writeFile(join(path, 'a.txt'), 'a\n');
    textfile = join(sandbox.dir, 'textfile', 'snapguard.prom');
    deps = sandbox.deps({
      volumes: { data: { backend: 'btrfs', path, tier: 'critical' } },
      metrics: { textfile },
    });
    await createSnapshots(deps, { volumes: ['data'] });
    await runRestoreTest(
      deps,
      { volume: 'data' },
      { afterRecord: async () => void (await writeMetricsFile(deps)) },
    );
  });

  afterAll(async () => {
    if (exporter?.pid && exporter.exitCode === null) {
      process.kill(exporter.pid, 'SIGTERM');
      await new Promise((done) => exporter?.once('exit', done));
    }
    await sandbox?.cleanup();
  });

  it('writes the textfile atomically (no temp file left) with the documented metrics', async () => {
    const text = await readFile(textfile, 'utf8');
    expect(await readdir(join(sandbox.dir, 'textfile'))).toEqual(['snapguard.prom']);
    expect(text).toMatch(
      /^snapguard_snapshot_last_success_timestamp_seconds\{volume="data",location="local"\} \d+$/m,
    );
    expect(text).toContain('snapguard_snapshots{volume="data",location="local"} 1');
    expect(text).toContain('snapguard_restore_test_success{volume="data",source="local",mode="sample"} 1');
    expect(text).toContain(
      'snapguard_restore_test_files_verified{volume="data",source="local",mode="sample"} 1',
    );
    expect(text).toMatch(
      /^snapguard_restore_test_duration_seconds\{volume="data",source="local",mode="sample"\} [\d.]+$/m,
    );
    expect(text).toMatch(/^snapguard_restore_test_last_run_timestamp_seconds\{.*\} \d+$/m);
    expect(text).toMatch(/^snapguard_health_status\{volume="data"\} [012]$/m);
    expect(text).toMatch(/^snapguard_pool_usage_ratio\{volume="data"\} 0\.\d+$/m);
  });

  it('passes promtool check metrics without lint complaints', async () => {
    const text = await readFile(textfile, 'utf8');
    const result = await exec('promtool', ['check', 'metrics'], { input: text, okExitCodes: [1, 3] });
    expect(`${result.stdout}${result.stderr}`.trim()).toBe('');
    expect(result.exitCode).toBe(0);
  });

  it("is served by node-exporter's textfile collector on loopback", async () => {
    const port = await freePort();
    exporter = spawn(
      'prometheus-node-exporter',
      [
        '--collector.disable-defaults',
        '--collector.textfile',
        `--collector.textfile.directory=${join(sandbox.dir, 'textfile')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    let body = '';
    for (let attempt = 0; attempt < 50 && !body; attempt++) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/metrics`);
        body = await response.text();
      } catch {
        await new Promise((done) => setTimeout(done, 100));
      }
    }
    expect(body).toContain('snapguard_restore_test_success{mode="sample",source="local",volume="data"} 1');
    expect(body).toContain('snapguard_snapshots{location="local",volume="data"} 1');
    expect(body).toMatch(/node_textfile_scrape_error 0/);
  });

  it('the alert rules are valid and their promtool unit tests pass', async () => {
    const check = await exec('promtool', ['check', 'rules', join(monitoring, 'snapguard-alerts.yml')]);
    expect(check.stdout).toContain('SUCCESS: 7 rules found');
    const test = await exec('promtool', ['test', 'rules', 'snapguard-alerts.test.yml'], { cwd: monitoring });
    expect(test.stdout).toContain('SUCCESS');
  });

  it('the Grafana dashboard only queries metrics snapguard writes', async () => {
    const dashboard = JSON.parse(await readFile(join(monitoring, 'grafana-dashboard.json'), 'utf8'));
    const written = new Set(
      [...(await readFile(textfile, 'utf8')).matchAll(/^# HELP (\S+)/gm)].map((m) => m[1]),
    );
    const documented = [
      'snapguard_rto_estimate_seconds',
      'snapguard_pool_forecast_days',
      'snapguard_snapshot_exclusive_bytes',
      'snapguard_restore_test_throughput_bytes_per_second',
    ];
    const queried = new Set<string>();
    for (const panel of dashboard.panels)
      for (const target of panel.targets ?? [])
        for (const m of target.expr.matchAll(/snapguard_\w+/g)) queried.add(m[0]);
    expect(queried.size).toBeGreaterThan(8);
    for (const name of queried) expect(written.has(name) || documented.includes(name), name).toBe(true);
  });
});
