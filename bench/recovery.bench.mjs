// Recovery: rollback of a 100k-file volume vs the raw `mv` + `btrfs subvolume snapshot` + read-only
// flag it performs, and the preview's change summary for 100k files with 1% changed. Needs root and btrfs-progs.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { buildConfig } from '../dist/core/config.js';
import { createDeps } from '../dist/core/deps.js';
import { silentLogger } from '../dist/core/logger.js';
import { planRecovery, recover } from '../dist/core/recovery/recover.js';
import { createSnapshots } from '../dist/core/snapshots.js';
import { createExec } from '../dist/system/exec.js';
import { createLoopBtrfs } from '../dist/system/loop.js';
import { median, targetMark } from './stats.mjs';

const FILES = 100_000;
const RUNS = 7;
const exec = createExec();
const ms = (x) => `${x.toFixed(1)} ms`;

const dir = await mkdtemp(join(tmpdir(), 'snapguard-bench-recovery-'));
const pool = await createLoopBtrfs(exec, dir, 3 * 1024 ** 3);
try {
  const vol = join(pool.mountPoint, 'vol');
  await exec('btrfs', ['subvolume', 'create', vol]);
  for (let d = 0; d < FILES / 1000; d++) {
    await mkdir(join(vol, `d${d}`));
    await Promise.all(
      Array.from({ length: 1000 }, (_, f) => writeFile(join(vol, `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`)),
    );
  }
  const deps = createDeps(
    buildConfig(
      {
        contextDir: join(dir, 'context'),
        stateDir: join(dir, 'state'),
        confirm: 'never',
        volumes: { vol: { backend: 'btrfs', path: vol } },
      },
      dir,
    ),
    { exec, logger: silentLogger() },
  );
  const target = (await createSnapshots(deps, { volumes: ['vol'], type: 'manual' })).created[0];
  const snapDir = deps.config.volumes.vol.snapshotDir;

  // 1% of the files changed since the snapshot.
  for (let i = 0; i < FILES / 100; i++)
    await writeFile(join(vol, `d${i % 100}`, `f${Math.floor(i / 100)}.txt`), `changed ${i}\n`);
  const previews = [];
  let summary;
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    const planned = await planRecovery(deps, { volume: 'vol', snapshot: target.name }, { withChanges: true });
    previews.push(performance.now() - started);
    summary = planned.plan.volumes[0].changes;
  }

  const ours = [];
  const raw = [];
  const loadAtStart = loadavg()[0].toFixed(1);
  for (let i = 0; i < RUNS; i++) {
    let started = performance.now();
    const result = await recover(deps, { volume: 'vol', snapshot: target.name }, { skipChanges: true });
    ours.push(performance.now() - started);
    if (result.status !== 'recovered') throw new Error(JSON.stringify(result));
    started = performance.now();
    await exec('mv', [vol, join(snapDir, `raw-${i}`)]);
    await exec('btrfs', ['subvolume', 'snapshot', target.path, vol]);
    // What the rollback does to the old tree as well: kept, read-only.
    await exec('btrfs', ['property', 'set', '-ts', join(snapDir, `raw-${i}`), 'ro', 'true']);
    raw.push(performance.now() - started);
  }
  // The same rollback with stateDir and the history on tmpfs: what the durable (fsynced) journal and
  // history writes cost on this machine, where they share one ext4 disk with the loop image.
  const shm = await mkdtemp(join('/dev/shm', 'snapguard-bench-'));
  const volatileDeps = createDeps(
    buildConfig(
      {
        contextDir: join(shm, 'context'),
        stateDir: join(shm, 'state'),
        confirm: 'never',
        volumes: { vol: { backend: 'btrfs', path: vol } },
      },
      dir,
    ),
    { exec, logger: silentLogger() },
  );
  const onTmpfs = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const started = performance.now();
      await recover(volatileDeps, { volume: 'vol', snapshot: target.name }, { skipChanges: true });
      onTmpfs.push(performance.now() - started);
    }
  } finally {
    await rm(shm, { recursive: true, force: true });
  }
  const ratio = median(ours) / median(raw);
  const loadAtEnd = loadavg()[0].toFixed(1);
  process.stdout.write(
    [
      '## Recovery',
      '',
      `Volume of ${FILES.toLocaleString('en')} files on a loop-mounted btrfs image, ${RUNS} runs each, medians; load average (1 min) ${loadAtStart} -> ${loadAtEnd} over the rollback runs.`,
      '',
      '| measurement | median | target |',
      '| --- | --- | --- |',
      `| rollback (\`recover\`, services excluded: journal, lock, move aside, writable snapshot, read-only safety, history) | ${ms(median(ours))} | ≤ 1.5 × raw |`,
      `| raw \`mv\` + \`btrfs subvolume snapshot\` + read-only flag on the old tree | ${ms(median(raw))} | |`,
      `| ratio | ${ratio.toFixed(2)} × | ≤ 1.5 × |`,
      `| rollback with stateDir and history on tmpfs (no fsync cost) | ${ms(median(onTmpfs))} (${(median(onTmpfs) / median(raw)).toFixed(2)} ×) | |`,
      `| preview change summary, 1% changed (\`send --no-data\` + \`receive --dump\`) | ${ms(median(previews))} | < 2 s |`,
      '',
      targetMark('rollback / raw mv + snapshot + read-only flag', ratio, 1.5),
      `The summary found ${summary.modified.count} modified, ${summary.added.count} added, ${summary.removed.count} removed, ${summary.metadataOnly.count} metadata-only paths (lists truncated: ${summary.truncated}).`,
      '',
    ].join('\n'),
  );
} finally {
  await pool.cleanup();
  await rm(dir, { recursive: true, force: true });
}
