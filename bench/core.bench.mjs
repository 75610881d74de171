// Core benchmarks: create_snapshot through a warm MCP server vs raw `btrfs subvolume snapshot -r`,
// list_snapshots of 2,000 snapshots vs raw `btrfs subvolume list -s`, history appends at 1k and 50k
// existing entries, and the server's peak RSS. Needs root and btrfs-progs.
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { createExec } from '../dist/system/exec.js';
import { createLoopBtrfs } from '../dist/system/loop.js';
import { HistoryStore } from '../dist/core/history/store.js';
import { formatSnapshotName } from '../dist/core/naming.js';
import { startMcpServer } from './server.mjs';
import { median, percentile as pct, targetMark, timed as time } from './stats.mjs';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url));
const exec = createExec();

const ms = (x) => `${x.toFixed(1)} ms`;
/** The 1-minute load average now: other work on the machine inflates every figure. */
const load = () => loadavg()[0].toFixed(1);

const dir = await mkdtemp(join(tmpdir(), 'snapguard-bench-core-'));
const pool = await createLoopBtrfs(exec, dir, 4 * 1024 ** 3);
const lines = ['## Core: snapshots, listing, history', ''];
let server;
try {
  const data = join(pool.mountPoint, 'data');
  await exec('btrfs', ['subvolume', 'create', data]);
  for (let i = 0; i < 1000; i++) await writeFile(join(data, `f${i}`), `file ${i}\n`.repeat(20));
  const rawDir = join(pool.mountPoint, 'raw');
  await mkdir(rawDir);
  const config = join(dir, 'snapguard.yaml');
  await writeFile(
    config,
    stringify({
      contextDir: join(dir, 'context'),
      stateDir: join(dir, 'state'),
      volumes: { data: { backend: 'btrfs', path: data } },
    }),
  );
  const started = await startMcpServer(cli, config);
  server = started.client;
  await server.callTool({ name: 'list_snapshots', arguments: {} }); // warm up
  const idleRss =
    Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${started.pid}/status`, 'utf8'))[1]) / 1024;

  // 1. create: alternate raw and snapguard calls so drift hits both alike.
  const createLoad = load();
  const raw = [];
  const ours = [];
  for (let i = 0; i < 40; i++) {
    raw.push(await time(() => run('btrfs', ['subvolume', 'snapshot', '-r', data, join(rawDir, `raw-${i}`)])));
    ours.push(
      await time(async () => {
        const r = await server.callTool({
          name: 'create_snapshot',
          arguments: { volumes: ['data'], type: 'manual' },
        });
        if (r.isError) throw new Error(JSON.stringify(r.content));
      }),
    );
  }
  lines.push(
    '### create_snapshot (warm MCP server over stdio) vs `btrfs subvolume snapshot -r`',
    '',
    '| | median | p90 |',
    '| --- | --- | --- |',
    `| raw btrfs (spawned from node) | ${ms(median(raw))} | ${ms(pct(raw, 90))} |`,
    `| snapguard create_snapshot | ${ms(median(ours))} | ${ms(pct(ours, 90))} |`,
    '',
    `Ratio of medians: **${(median(ours) / median(raw)).toFixed(2)}x** (target <= 1.3x). 40 calls each, 1,000-file subvolume, load average ${createLoad} -> ${load()}; the snapguard call includes the check for an interrupted recovery, the volume lock, the pool usage check (statfs), the history write once the snapshot exists (its lock, the new file and its fsync, the rename and the folder's fsync) and the MCP round trip.`,
    targetMark('warm create_snapshot / raw btrfs snapshot', median(ours) / median(raw), 1.3),
    '',
  );

  // 2. list 2,000 snapshots.
  const snapshotDir = join(pool.mountPoint, '.snapshots', 'data');
  const base = Date.UTC(2025, 0, 1);
  const existing = 40;
  for (let i = existing; i < 2000; i++) {
    await run('btrfs', [
      'subvolume',
      'snapshot',
      '-r',
      data,
      join(snapshotDir, formatSnapshotName('data', 'scheduled', undefined, new Date(base + i * 3600_000))),
    ]);
  }
  const listLoad = load();
  const rawList = [];
  const ourList = [];
  let total = 0;
  for (let i = 0; i < 15; i++) {
    rawList.push(
      await time(() => run('btrfs', ['subvolume', 'list', '-s', pool.mountPoint], { maxBuffer: 64 << 20 })),
    );
    ourList.push(
      await time(async () => {
        const r = await server.callTool({ name: 'list_snapshots', arguments: { volume: 'data' } });
        total = r.structuredContent.total;
      }),
    );
  }
  lines.push(
    '### list_snapshots of 2,000 snapshots vs `btrfs subvolume list -s`',
    '',
    '| | median | p90 |',
    '| --- | --- | --- |',
    `| raw btrfs subvolume list -s | ${ms(median(rawList))} | ${ms(pct(rawList, 90))} |`,
    `| snapguard list_snapshots (${total} listed, full JSON over MCP) | ${ms(median(ourList))} | ${ms(pct(ourList, 90))} |`,
    '',
    `Ratio of medians: **${(median(ourList) / median(rawList)).toFixed(2)}x** (target <= 1.5x). The pool holds ${2000 + 40} read-only snapshots; load average ${listLoad} -> ${load()}.`,
    targetMark('list_snapshots of 2,000 / raw btrfs subvolume list', median(ourList) / median(rawList), 1.5),
    '',
  );
  const memory = async () => {
    const status = await readFile(`/proc/${started.pid}/status`, 'utf8');
    const kib = (field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)[1]) / 1024;
    return { rss: kib('VmRSS'), peak: kib('VmHWM') };
  };
  lines.push(
    `Server peak RSS (VmHWM) after these calls: **${(await memory()).peak.toFixed(0)} MiB** (target <= 150 MB).`,
    '',
  );

  // 3. list 5,000 snapshots, then the server's memory over 100 listings and after it sat idle.
  const script = join(dir, 'more-snapshots.sh');
  await writeFile(
    script,
    Array.from(
      { length: 5000 - 2000 },
      (_, k) =>
        `btrfs -q subvolume snapshot -r ${data} ${join(snapshotDir, formatSnapshotName('data', 'scheduled', undefined, new Date(base + (2000 + k) * 3600_000)))}`,
    ).join('\n'),
  );
  await run('sh', [script], { maxBuffer: 64 << 20 });
  const list5kLoad = load();
  const raw5k = [];
  const ours5k = [];
  for (let i = 0; i < 15; i++) {
    raw5k.push(
      await time(() => run('btrfs', ['subvolume', 'list', '-s', pool.mountPoint], { maxBuffer: 64 << 20 })),
    );
    ours5k.push(
      await time(async () => {
        const r = await server.callTool({ name: 'list_snapshots', arguments: { volume: 'data' } });
        total = r.structuredContent.total;
      }),
    );
  }
  for (let i = 15; i < 100; i++)
    await server.callTool({ name: 'list_snapshots', arguments: { volume: 'data' } });
  const after100 = await memory();
  await new Promise((resolve) => setTimeout(resolve, 30_000));
  const afterIdle = await memory();
  lines.push(
    "### list_snapshots of 5,000 snapshots, and the server's memory",
    '',
    '| | median | p90 |',
    '| --- | --- | --- |',
    `| raw btrfs subvolume list -s | ${ms(median(raw5k))} | ${ms(pct(raw5k, 90))} |`,
    `| snapguard list_snapshots (${total} listed, full JSON over MCP) | ${ms(median(ours5k))} | ${ms(pct(ours5k, 90))} |`,
    '',
    `Ratio of medians: **${(median(ours5k) / median(raw5k)).toFixed(2)}x** (target <= 2x); load average ${list5kLoad} -> ${load()}.`,
    targetMark('list_snapshots of 5,000 / raw btrfs subvolume list', median(ours5k) / median(raw5k), 2),
    '',
    `Server RSS after 100 listings of 5,000: **${after100.rss.toFixed(0)} MiB** (target <= 120 MiB), after 30 s idle: ${afterIdle.rss.toFixed(0)} MiB (${idleRss.toFixed(0)} MiB before the first call); peak ${afterIdle.peak.toFixed(0)} MiB.`,
    targetMark('server RSS after 100 listings of 5,000', after100.rss, 120, 'MiB'),
    '',
  );
} finally {
  await server?.close().catch(() => undefined);
  await pool.cleanup();
}

// 3. History appends.
function entry(i, year) {
  return {
    id: `e${year}-${i}`,
    timestamp: `${year}-06-01T00:00:00.000Z`,
    host: 'h',
    subvolume: 'data',
    type: 'manual',
    operation: null,
    operation_id: `op-${i}`,
    snapshot_name: `data-manual-${i}`,
    path: `/p/${i}`,
    outcome: 'success',
    size_mb: null,
  };
}
lines.push(
  '### History append (lock, read, append, temp file + fsync + rename + folder fsync)',
  '',
  '| existing entries | p50 | p95 | max |',
  '| --- | --- | --- | --- |',
);
let historyMark = '';
for (const existing of [1000, 50_000]) {
  const contextDir = join(dir, `history-${existing}`);
  await mkdir(join(contextDir, 'backup-history.d'), { recursive: true });
  const live = Math.min(existing, 750);
  const archived = existing - live;
  if (archived > 0) {
    await writeFile(
      join(contextDir, 'backup-history.d', 'backup-history-2025.json'),
      JSON.stringify({
        version: 1,
        snapshots: Array.from({ length: archived }, (_, i) => entry(i, 2025)),
        recoveries: [],
        restore_tests: [],
        orchestrations: [],
      }),
    );
  }
  await writeFile(
    join(contextDir, 'backup-history.json'),
    JSON.stringify(
      {
        version: 1,
        snapshots: Array.from({ length: live }, (_, i) => entry(i, 2026)),
        recoveries: [],
        restore_tests: [],
        orchestrations: [],
      },
      null,
      2,
    ),
  );
  const store = new HistoryStore({ contextDir, liveEntries: 1000 });
  const times = [];
  for (let i = 0; i < 400; i++)
    times.push(await time(() => store.update((h) => void h.snapshots.push(entry(100_000 + i, 2026)))));
  lines.push(
    `| ${existing.toLocaleString('en')} | ${ms(median(times))} | ${ms(pct(times, 95))} | ${ms(Math.max(...times))} |`,
  );
  if (existing === 50_000)
    historyMark = targetMark('history append p50 at 50,000 entries', median(times), 15, 'ms');
}
lines.push(
  '',
  'Target: p50 <= 15 ms at 50k. The live file keeps the newest 1,000 entries per section (`history.liveEntries`); at 50k the other 49k+ sit in backup-history.d/backup-history-<year>.json. 400 appends each: the max includes the rotation that moves the oldest quarter into the yearly archive (reading and rewriting that archive).',
  historyMark,
);
await rm(dir, { recursive: true, force: true });
process.stdout.write(`${lines.join('\n')}\n`);
