// Plan and prune 2,000 snapshots: snapguard vs btrbk on the same btrfs filesystem (loop image).
// Each tool gets its own 2,000 read-only snapshots with the same hourly timestamps and the same
// policy (preserve_min latest, preserve "24h 7d 4w 12m"). Needs root, btrfs-progs and btrbk.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { median, targetMark } from './stats.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', 'dist', 'cli', 'index.js');
const COUNT = Number(process.env.RETENTION_BENCH_COUNT ?? 2000);
const RUNS = 5;
const POLICY = { min: 'latest', preserve: '24h 7d 4w 12m' };

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
if (process.getuid?.() !== 0 || !has('btrfs') || !has('btrbk')) {
  console.log('## Retention: plan and prune\n\nSkipped: needs root, btrfs-progs and btrbk.');
  process.exit(0);
}

const run = (cmd, args, env = {}) => {
  const started = performance.now();
  const result = spawnSync(cmd, args, {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 256 << 20,
  });
  const ms = performance.now() - started;
  if (result.status !== 0 && result.status !== 1)
    throw new Error(`${cmd} ${args.join(' ')}: ${result.stderr}`);
  return { ms, stdout: result.stdout, status: result.status };
};
const pad = (n) => String(n).padStart(2, '0');
const stamp = (d) => `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`;
const hm = (d) => `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}`;

const dir = mkdtempSync(join(tmpdir(), 'snapguard-bench-retention-'));
const image = join(dir, 'pool.img');
const mnt = join(dir, 'pool');
mkdirSync(mnt);
let mounted = false;
try {
  execFileSync('truncate', ['-s', '4G', image]);
  execFileSync('mkfs.btrfs', ['-q', '-f', image], { stdio: 'ignore' });
  execFileSync('mount', ['-o', 'loop', image, mnt]);
  mounted = true;
  execFileSync('btrfs', ['subvolume', 'create', join(mnt, 'data')], { stdio: 'ignore' });
  writeFileSync(join(mnt, 'data', 'file'), 'x');
  const sgDir = join(mnt, '.snapshots', 'data');
  const bbDir = join(mnt, 'btrbk');
  mkdirSync(sgDir, { recursive: true });
  mkdirSync(bbDir, { recursive: true });

  const makeSnapshots = () => {
    const now = Date.now();
    for (let i = 1; i <= COUNT; i++) {
      const at = new Date(Math.floor(now / 3600_000) * 3600_000 - i * 3600_000 + 10 * 60_000);
      execFileSync(
        'btrfs',
        [
          'subvolume',
          'snapshot',
          '-r',
          join(mnt, 'data'),
          join(sgDir, `data-scheduled-${stamp(at)}-${hm(at)}00`),
        ],
        { stdio: 'ignore' },
      );
      execFileSync(
        'btrfs',
        ['subvolume', 'snapshot', '-r', join(mnt, 'data'), join(bbDir, `data.${stamp(at)}T${hm(at)}`)],
        { stdio: 'ignore' },
      );
    }
    execFileSync('btrfs', ['filesystem', 'sync', mnt]);
  };
  process.stderr.write(`retention bench: creating ${COUNT} + ${COUNT} snapshots\n`);
  makeSnapshots();

  const config = join(dir, 'snapguard.json');
  writeFileSync(
    config,
    JSON.stringify({
      contextDir: join(dir, 'context'),
      stateDir: join(dir, 'state'),
      confirm: 'never',
      volumes: {
        data: {
          backend: 'btrfs',
          path: join(mnt, 'data'),
          snapshotDir: sgDir,
          retention: { preserveMin: POLICY.min, preserve: POLICY.preserve },
        },
      },
    }),
  );
  const btrbkConf = join(dir, 'btrbk.conf');
  writeFileSync(
    btrbkConf,
    [
      'timestamp_format long',
      `snapshot_preserve_min ${POLICY.min}`,
      `snapshot_preserve ${POLICY.preserve}`,
      `lockfile ${join(dir, 'btrbk.lock')}`,
      `volume ${mnt}`,
      '  snapshot_dir btrbk',
      '  subvolume data',
      '',
    ].join('\n'),
  );

  // In-process plan (the core call the MCP tool makes).
  const { buildConfig } = await import('../dist/core/config.js');
  const { createDeps } = await import('../dist/core/deps.js');
  const { silentLogger } = await import('../dist/core/logger.js');
  const { pruneSnapshots } = await import('../dist/core/retention/prune.js');
  const { readFileSync } = await import('node:fs');
  const deps = createDeps(buildConfig(JSON.parse(readFileSync(config, 'utf8')), dir), {
    logger: silentLogger(),
  });
  const inProcess = [];
  let planned;
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    planned = await pruneSnapshots(
      deps,
      { volume: 'data', location: 'local', dryRun: true },
      { gate: async () => true },
    );
    inProcess.push(performance.now() - started);
  }

  const sgPlan = [];
  const bbPlan = [];
  let bbDeletes = 0;
  for (let i = 0; i < RUNS; i++) {
    sgPlan.push(run(process.execPath, [cli, 'prune', 'data', '--dry-run', '--json', '--config', config]).ms);
    const bb = run('btrbk', ['-c', btrbkConf, '-n', '--format=raw', '-S', 'prune'], { TZ: 'UTC' });
    bbPlan.push(bb.ms);
    bbDeletes = bb.stdout
      .split('\n')
      .filter((l) => l.startsWith('format="schedule"') && l.includes("action='delete'")).length;
  }

  const sgPrune = run(process.execPath, [cli, 'prune', 'data', '--yes', '--json', '--config', config]);
  const sgResult = JSON.parse(sgPrune.stdout);
  execFileSync('btrfs', ['filesystem', 'sync', mnt]);
  const bbPrune = run('btrbk', ['-c', btrbkConf, 'prune'], { TZ: 'UTC' });
  execFileSync('btrfs', ['filesystem', 'sync', mnt]);
  const left = (d) => execFileSync('ls', [d], { encoding: 'utf8' }).split('\n').filter(Boolean).length;

  const f = (ms) => `${(ms / 1000).toFixed(2)} s`;
  console.log(
    [
      '## Retention: plan and prune 2,000 snapshots',
      '',
      `${COUNT} hourly read-only snapshots per tool on one loop-mounted btrfs image, policy preserve_min ${POLICY.min}, preserve "${POLICY.preserve}". Plan = dry run (${RUNS} runs, median); prune = one real run each.`,
      '',
      '| step | snapguard | btrbk |',
      '| --- | --- | --- |',
      `| plan, CLI process (\`prune --dry-run\` / \`btrbk -n prune\`) | ${f(median(sgPlan))} | ${f(median(bbPlan))} |`,
      `| plan, in process (core call of the MCP tool) | ${f(median(inProcess))} | - |`,
      `| prune (real deletes) | ${f(sgPrune.ms)} (${sgResult.delete.filter((v) => v.result === 'deleted').length} deleted) | ${f(bbPrune.ms)} |`,
      `| snapshots left | ${left(sgDir)} | ${left(bbDir)} |`,
      `| planned deletions | ${planned.delete.length} | ${bbDeletes} |`,
      '',
      '',
      `Real prune, snapguard / btrbk: **${(sgPrune.ms / bbPrune.ms).toFixed(2)}x** (target <= 0.15x: ${sgPrune.ms / bbPrune.ms <= 0.15 ? 'met' : 'not met'}).`,
      targetMark('real prune of 2,000 snapshots / btrbk', sgPrune.ms / bbPrune.ms, 0.15),
      '',
      'btrbk was run with TZ=UTC so both compute the calendar in UTC.',
    ].join('\n'),
  );
} finally {
  if (mounted) spawnSync('umount', [mnt]);
  rmSync(dir, { recursive: true, force: true });
}
