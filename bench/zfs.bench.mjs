// zfs backend on zfs-fuse (file-backed pool): listing N snapshots and reverting a tree.
// Needs root and zfs-fuse; starts the daemon like test/helpers/zfs.ts when none answers.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createZfsBackend } from '../dist/backends/zfs.js';
import { isOwnedSnapshotName } from '../dist/core/naming.js';
import { revertZfsDataset } from '../dist/backends/zfs-recover.js';
import { buildConfig } from '../dist/core/config.js';
import { createExec } from '../dist/system/exec.js';

const SNAPSHOTS = Number(process.env.ZFS_BENCH_SNAPSHOTS ?? 200);
const FILES = Number(process.env.ZFS_BENCH_FILES ?? 2000);
const RUNS = 5;

const run = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const answers = () => {
  try {
    run('zpool', ['list', '-H']);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function median(fn) {
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await fn(i);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

if (!answers()) {
  const dir = join(tmpdir(), 'snapguard-zfs-fuse');
  mkdirSync(dir, { recursive: true });
  const pidfile = join(dir, 'zfs-fuse.pid');
  if (existsSync(pidfile)) rmSync(pidfile);
  run('zfs-fuse', ['--pidfile', pidfile, '--no-kstat-mount']);
  for (let i = 0; i < 100 && !answers(); i++) await sleep(100);
}

const dir = mkdtempSync(join(tmpdir(), 'snapguard-bench-zfs-'));
const pool = `sgbench${process.pid}`;
const mnt = join(dir, 'mnt');
const exec = createExec();
const lines = [];
try {
  run('truncate', ['-s', '256M', join(dir, 'pool.img')]);
  run('zpool', ['create', '-m', mnt, pool, join(dir, 'pool.img')]);
  const dataset = `${pool}/data`;
  run('zfs', ['create', dataset]);
  const path = join(mnt, 'data');
  for (let i = 0; i < FILES; i++) {
    const sub = join(path, `d${i % 20}`);
    if (i < 20) mkdirSync(sub);
    writeFileSync(join(sub, `f${i}`), `file ${i}\n`.repeat(8));
  }
  for (let i = 0; i < SNAPSHOTS; i++) {
    const stamp = `20260101-${String(Math.floor(i / 3600)).padStart(2, '0')}${String(Math.floor(i / 60) % 60).padStart(2, '0')}${String(i % 60).padStart(2, '0')}`;
    run('zfs', ['snapshot', `${dataset}@data-manual-${stamp}`]);
  }
  const volume = buildConfig({ volumes: { data: { backend: 'zfs', dataset, path } } }, dir).volumes.data;
  const backend = createZfsBackend(exec, isOwnedSnapshotName);
  await backend.list(volume); // capability probes, once

  const listMs = await median(() => backend.list(volume));
  const rawMs = await median(() =>
    run('zfs', [
      'get',
      '-H',
      '-p',
      '-d',
      '1',
      '-o',
      'name,property,value',
      'creation,guid,used,userrefs',
      dataset,
    ]),
  );
  const names = (await backend.list(volume)).map((raw) => raw.name);
  const perSnapshotMs = await median(() => {
    for (const name of names)
      run('zfs', ['get', '-H', '-p', '-o', 'value', 'creation', `${dataset}@${name}`]);
  });

  // Revert: the first snapshot's tree (FILES files) back over a changed live tree.
  const target = names[0];
  const revertMs = await median(async (i) => {
    writeFileSync(join(path, 'd0', 'f0'), `changed ${i}\n`);
    await revertZfsDataset(
      backend,
      exec,
      volume,
      target,
      `data-pre-recover-20260202-0000${String(i).padStart(2, '0')}`,
    );
  });
  const scratch = join(dir, 'copy');
  const cpMs = await median(() => {
    rmSync(scratch, { recursive: true, force: true });
    run('cp', ['-a', '--', `${path}/.`, `${scratch}/`]);
  });

  lines.push(
    '## zfs backend (zfs-fuse 0.7, file-backed pool, pool version 23)',
    '',
    `Median of ${RUNS} runs.`,
    '',
    '| what | snapguard | raw | ratio |',
    '| --- | --- | --- | --- |',
    `| list ${SNAPSHOTS} snapshots (backend.list, 2 zfs processes) vs the single raw \`zfs get -p -d 1\` | ${listMs.toFixed(0)} ms | ${rawMs.toFixed(0)} ms | ${(listMs / rawMs).toFixed(2)}x |`,
    `| list ${SNAPSHOTS} snapshots vs one \`zfs get creation\` per snapshot | ${listMs.toFixed(0)} ms | ${perSnapshotMs.toFixed(0)} ms | ${(listMs / perSnapshotMs).toFixed(3)}x |`,
    `| revert a ${FILES}-file tree (safety snapshot + clone + rm + cp -a) vs a plain \`cp -a\` of the tree | ${revertMs.toFixed(0)} ms | ${cpMs.toFixed(0)} ms | ${(revertMs / cpMs).toFixed(2)}x |`,
  );
} finally {
  for (let i = 0; i < 180; i++) {
    try {
      run('zpool', ['destroy', '-f', pool]);
      break;
    } catch {
      await sleep(500);
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${lines.join('\n')}\n`);
