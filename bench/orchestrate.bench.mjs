// Orchestrator overhead: one stage of 20 parallel jobs that each take 2 s, as command jobs and as
// oneshot units in real systemd 252 (systemd-nspawn, reached through nsenter like any prefix).
// Makespan (target <= 2.5 s) and per-job overhead (job duration - 2 s). Needs root; the systemd
// part needs systemd-nspawn and the rootfs cache the integration tests build under $TMPDIR.
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildConfig } from '../dist/core/config.js';
import { createDeps } from '../dist/core/deps.js';
import { silentLogger } from '../dist/core/logger.js';
import { orchestrate } from '../dist/core/orchestrate/index.js';
import { createExec } from '../dist/system/exec.js';
import { median, targetMark } from './stats.mjs';

const JOBS = 20;
const JOB_SECONDS = 2;
const RUNS = 3;
const exec = createExec({ defaultTimeoutMs: 60_000 });
const work = mkdtempSync(join(tmpdir(), 'snapguard-bench-orch-'));

function depsFor(jobs, extra = {}) {
  return createDeps(
    buildConfig(
      {
        contextDir: join(work, 'context'),
        stateDir: join(work, 'state'),
        orchestrate: { ...extra, stages: [{ name: 'bench', timeout: '1m', jobs }] },
      },
      work,
    ),
    { logger: silentLogger(), exec },
  );
}

async function measure(label, deps) {
  const makespans = [];
  const overheads = [];
  const outside = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    const result = await orchestrate(deps, {});
    makespans.push((performance.now() - started) / 1000);
    if (result.exitCode !== 0)
      throw new Error(`${label}: exit ${result.exitCode}: ${JSON.stringify(result.failures)}`);
    const jobs = result.stages[0].jobs;
    overheads.push(jobs.reduce((sum, job) => sum + job.durationSeconds - JOB_SECONDS, 0) / jobs.length);
    outside.push(makespans.at(-1) - Math.max(...jobs.map((job) => job.durationSeconds)));
  }
  return {
    label,
    makespan: median(makespans),
    overhead: median(overheads),
    outside: median(outside),
    makespans,
  };
}

// ---- a container, only for the systemd rows --------------------------------------------------
async function bootContainer() {
  const lower = join(tmpdir(), 'snapguard-nspawn-cache', 'bookworm-minbase');
  if (!existsSync(join(lower, 'usr/lib/systemd/systemd'))) return undefined;
  const name = `sg-orchbench-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'snapguard-bench-orch-nspawn-'));
  const root = join(dir, 'root');
  for (const sub of ['upper', 'work', 'root']) mkdirSync(join(dir, sub));
  const cgroups = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'].map((base) => join(base, name));
  await exec('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lower},upperdir=${dir}/upper,workdir=${dir}/work`,
    root,
  ]);
  for (const cgroup of cgroups) mkdirSync(cgroup, { recursive: true });
  const log = openSync(join(dir, 'nspawn.log'), 'a');
  const child = spawn(
    'bash',
    [
      '-c',
      'echo $$ > "$1"; shift; exec "$@"',
      'bash',
      join(cgroups[0], 'cgroup.procs'),
      'systemd-nspawn',
      '-D',
      root,
      '-M',
      name,
      '--register=no',
      '--keep-unit',
      '-b',
      '--console=passive',
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  child.unref();
  let leader = 0;
  for (let i = 0; leader === 0 && i < 3000; i++) {
    const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    leader = Number(kids.find((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd') ?? 0);
    if (leader === 0) await sleep(10);
  }
  const prefix = ['nsenter', '-t', String(leader), '-a'];
  for (;;) {
    const state = await exec(prefix[0], [...prefix.slice(1), 'systemctl', 'is-system-running', '--wait'], {
      okExitCodes: [1, 2, 3, 4, 5],
    }).catch(() => ({ stdout: '' }));
    if (/running|degraded/.test(state.stdout)) break;
    await sleep(50);
  }
  const removeCgroup = (path) => {
    if (!existsSync(path)) return;
    try {
      if (path.startsWith('/sys/fs/cgroup/unified/')) writeFileSync(join(path, 'cgroup.kill'), '1');
    } catch {
      // already empty
    }
    for (const entry of readdirSync(path, { withFileTypes: true }))
      if (entry.isDirectory()) removeCgroup(join(path, entry.name));
    for (let i = 0; i < 50; i++) {
      try {
        rmdirSync(path);
        return;
      } catch {
        // busy for a moment after poweroff
      }
    }
  };
  return {
    root,
    systemctl: [...prefix, 'systemctl'],
    async stop() {
      await exec(prefix[0], [...prefix.slice(1), 'systemctl', 'poweroff'], { okExitCodes: [1, 255] }).catch(
        () => undefined,
      );
      for (let i = 0; i < 150 && child.exitCode === null && child.signalCode === null; i++) await sleep(100);
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      for (const cgroup of cgroups) removeCgroup(cgroup);
      await exec('umount', [root]).catch(() => exec('umount', ['-l', root]));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const rows = [];
try {
  const commands = Array.from({ length: JOBS }, (_, i) => ({
    kind: 'command',
    name: `sleep-${i}`,
    argv: ['sleep', String(JOB_SECONDS)],
  }));
  rows.push(await measure('command jobs (`sleep 2`)', depsFor(commands)));

  const container = process.getuid?.() === 0 ? await bootContainer().catch(() => undefined) : undefined;
  if (container) {
    try {
      for (let i = 0; i < JOBS; i++)
        writeFileSync(
          join(container.root, 'etc/systemd/system', `bench-job-${i}.service`),
          `[Service]\nType=oneshot\nExecStart=/bin/sleep ${JOB_SECONDS}\n`,
        );
      await exec(container.systemctl[0], [...container.systemctl.slice(1), 'daemon-reload']);
      // Baseline: the same 20 starts as bare parallel `systemctl start` calls, no orchestrator.
      const raw = [];
      for (let i = 0; i < RUNS; i++) {
        const started = performance.now();
        await Promise.all(
          Array.from({ length: JOBS }, (_, j) =>
            exec(container.systemctl[0], [
              ...container.systemctl.slice(1),
              'start',
              `bench-job-${j}.service`,
            ]),
          ),
        );
        raw.push((performance.now() - started) / 1000);
      }
      rows.push({
        label: 'baseline: 20 bare parallel `systemctl start` via nsenter',
        makespan: median(raw),
        makespans: raw,
      });
      rows.push(
        await measure(
          'systemd oneshot units via nsenter (glob `bench-job-*.service`)',
          depsFor([{ kind: 'systemd', units: ['bench-job-*.service'] }], { systemctl: container.systemctl }),
        ),
      );
    } finally {
      await container.stop();
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const lines = [
  '## Orchestration: 20 parallel jobs of 2 s in one stage',
  '',
  `Median of ${RUNS} runs. Makespan is the whole orchestrate() call (lock, discovery, pre-flight, jobs, history`,
  'write); per-job overhead is the mean of (job duration - 2 s). Target: makespan <= 2.5 s (the polling',
  'shell design added up to 5 s per job).',
  '',
  '| jobs | makespan (median) | per-job overhead (median of means) | outside the jobs: lock, discovery, pre-flight, history (median) | all runs |',
  '| --- | --- | --- | --- | --- |',
  ...rows.map((r) =>
    [
      '',
      r.label,
      `${r.makespan.toFixed(2)} s`,
      r.overhead === undefined ? '-' : `${(r.overhead * 1000).toFixed(0)} ms`,
      r.outside === undefined ? '-' : `${(r.outside * 1000).toFixed(0)} ms`,
      `${r.makespans.map((m) => m.toFixed(2)).join(', ')} s`,
      '',
    ]
      .join(' | ')
      .trim(),
  ),
  ...rows
    .filter((r) => r.overhead !== undefined)
    .map((r) => targetMark(`orchestrate makespan, ${r.label}`, r.makespan, 2.5, 's')),
  '',
  `Load average while measuring: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on ${cpus().length} cores (a shared machine).`,
];
if (rows.length < 2)
  lines.push('', 'systemd rows skipped: no root or no nspawn rootfs cache (run the integration tests once).');
process.stdout.write(`${lines.join('\n')}\n`);
