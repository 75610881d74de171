// snapguard beside snapper on one loop-mounted btrfs: the CLI create with few snapshots, then with
// 2,000 snapshots each the create (snapper's CLI against snapguard's warm MCP server and its CLI) and
// the listing. Interleaved runs (A B A B ...), medians, min-max and ratios. Needs root, btrfs-progs and
// snapper (Debian package `snapper`; `--no-dbus`, so no snapperd is involved).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { createExec } from '../dist/system/exec.js';
import { createLoopBtrfs } from '../dist/system/loop.js';
import { formatSnapshotName } from '../dist/core/naming.js';
import { startMcpServer } from './server.mjs';
import { median, targetMark, timed } from './stats.mjs';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url));
const exec = createExec();
const ms = (x) => `${x.toFixed(1)} ms`;
const has = async (cmd) =>
  run('sh', ['-c', `command -v ${cmd}`]).then(
    () => true,
    () => false,
  );

const title = '## Peers: snapguard beside snapper';
if (process.getuid?.() !== 0 || !(await has('btrfs')) || !(await has('snapper'))) {
  process.stdout.write(`${title}\n\nSkipped: needs root, btrfs-progs and snapper.\n`);
  process.exit(0);
}

const COUNT = Number(process.env.SNAPGUARD_BENCH_PEER_COUNT ?? 2000);
const ROUNDS = Number(process.env.SNAPGUARD_BENCH_PEER_ROUNDS ?? 15);
const snapperConfig = `snapguard-bench-${process.pid}`;
const dir = await mkdtemp(join(tmpdir(), 'snapguard-bench-peers-'));
const pool = await createLoopBtrfs(exec, dir, 4 * 1024 ** 3);
const lines = [title, ''];
let server;

/** Runs every case once per round, in turn, so drift and load hit all alike. */
async function interleave(cases, rounds) {
  const times = cases.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, c] of cases.entries()) times[i].push(await timed(() => c.run(round)));
  }
  return times;
}

function table(cases, times, baseIndex) {
  const base = median(times[baseIndex]);
  return [
    '| command | median | min-max | ratio |',
    '| --- | --- | --- | --- |',
    ...cases.map((c, i) => {
      const m = median(times[i]);
      return `| ${c.name} | ${ms(m)} | ${ms(Math.min(...times[i]))}-${ms(Math.max(...times[i]))} | ${(m / base).toFixed(2)}x |`;
    }),
  ];
}

/** What snapper itself leaves for one snapshot: NUM/snapshot (read-only) and NUM/info.xml. */
async function snapperSnapshotByHand(root, num, when) {
  const holder = join(root, '.snapshots', String(num));
  await mkdir(holder);
  await run('btrfs', ['subvolume', 'snapshot', '-r', root, join(holder, 'snapshot')]);
  const date = when.toISOString().replace('T', ' ').slice(0, 19);
  await writeFile(
    join(holder, 'info.xml'),
    `<?xml version="1.0"?>\n<snapshot>\n  <type>single</type>\n  <num>${num}</num>\n  <date>${date}</date>\n  <description>filler</description>\n</snapshot>\n`,
  );
}

try {
  const sp = join(pool.mountPoint, 'sp');
  const sg = join(pool.mountPoint, 'sg');
  for (const root of [sp, sg]) {
    await exec('btrfs', ['subvolume', 'create', root]);
    for (let i = 0; i < 1000; i++) await writeFile(join(root, `f${i}`), `file ${i}\n`.repeat(20));
  }
  await run('snapper', ['--no-dbus', '-c', snapperConfig, 'create-config', sp]);
  const snapguardDir = join(pool.mountPoint, '.snapshots', 'sg');
  const config = join(dir, 'snapguard.yaml');
  await writeFile(
    config,
    stringify({
      contextDir: join(dir, 'context'),
      stateDir: join(dir, 'state'),
      volumes: { sg: { backend: 'btrfs', path: sg, snapshotDir: snapguardDir } },
    }),
  );
  const snapperCreate = () =>
    run('snapper', ['--no-dbus', '-c', snapperConfig, 'create', '--description', 'bench']);
  const cliCreate = () => run(process.execPath, [cli, 'snapshot', 'create', 'sg', '--config', config]);

  // 1. One CLI call each with few snapshots.
  const few = [
    { name: '`snapper --no-dbus create`', run: snapperCreate },
    { name: '`snapguard snapshot create` (CLI)', run: cliCreate },
  ];
  const fewTimes = await interleave(few, ROUNDS);
  lines.push(
    '### Create from the command line, few snapshots',
    '',
    ...table(few, fewTimes, 0),
    '',
    `Ratio of medians, snapguard CLI / snapper: **${(median(fewTimes[1]) / median(fewTimes[0])).toFixed(2)}x** (no target; a Node process starts where snapper is a C++ binary). ${ROUNDS} calls each.`,
    '',
  );

  // 2. Fill both to COUNT snapshots by hand (snapper's layout and snapguard's names), then compare.
  const base = Date.UTC(2025, 0, 1);
  let snapperNum = ROUNDS + 1;
  for (let i = 0; i < COUNT - ROUNDS; i++) {
    const when = new Date(base + i * 3600_000);
    await snapperSnapshotByHand(sp, snapperNum++, when);
    await run('btrfs', [
      'subvolume',
      'snapshot',
      '-r',
      sg,
      join(snapguardDir, formatSnapshotName('sg', 'scheduled', undefined, when)),
    ]);
  }
  const started = await startMcpServer(cli, config, 'bench-peers');
  server = started.client;
  await server.callTool({ name: 'list_snapshots', arguments: { volume: 'sg', limit: 1 } });
  const warmCreate = async () => {
    const r = await server.callTool({
      name: 'create_snapshot',
      arguments: { volumes: ['sg'], type: 'manual' },
    });
    if (r.isError) throw new Error(JSON.stringify(r.content));
  };
  const many = [
    { name: '`snapper --no-dbus create`', run: snapperCreate },
    { name: 'snapguard create_snapshot (warm MCP server)', run: warmCreate },
    { name: '`snapguard snapshot create` (CLI)', run: cliCreate },
  ];
  const manyTimes = await interleave(many, ROUNDS);
  const warmRatio = median(manyTimes[1]) / median(manyTimes[0]);
  lines.push(
    `### Create with ${COUNT.toLocaleString('en')} snapshots`,
    '',
    ...table(many, manyTimes, 0),
    '',
    `Ratio of medians, warm create_snapshot / snapper: **${warmRatio.toFixed(2)}x** (target <= 0.5x: ${warmRatio <= 0.5 ? 'met' : 'not met'}). snapper reads every snapshot's info.xml before it adds one.`,
    targetMark(`warm create_snapshot at ${COUNT.toLocaleString('en')} snapshots / snapper`, warmRatio, 0.5),
    '',
  );

  const listing = [
    {
      name: '`snapper --no-dbus list`',
      run: () => run('snapper', ['--no-dbus', '-c', snapperConfig, 'list'], { maxBuffer: 64 << 20 }),
    },
    {
      name: '`snapguard snapshot list sg` (CLI)',
      run: () =>
        run(process.execPath, [cli, 'snapshot', 'list', 'sg', '--config', config], { maxBuffer: 64 << 20 }),
    },
    {
      name: 'snapguard list_snapshots (warm MCP server, full JSON)',
      run: () => server.callTool({ name: 'list_snapshots', arguments: { volume: 'sg' } }),
    },
  ];
  const listTimes = await interleave(listing, ROUNDS);
  lines.push(
    `### List ${COUNT.toLocaleString('en')} snapshots`,
    '',
    ...table(listing, listTimes, 0),
    '',
    `Ratio of medians, snapguard CLI / snapper: **${(median(listTimes[1]) / median(listTimes[0])).toFixed(2)}x** (no target). ${ROUNDS} calls each.`,
  );
  const status = await readFile(`/proc/${started.pid}/status`, 'utf8').catch(() => '');
  const rss = /VmRSS:\s+(\d+) kB/.exec(status);
  if (rss) lines.push('', `Server RSS after these calls: ${(Number(rss[1]) / 1024).toFixed(0)} MiB.`);
} finally {
  await server?.close().catch(() => undefined);
  // snapper's own delete-config would delete the 2,000 snapshots one by one: drop the config instead;
  // the snapshots go with the loop image.
  await rm(`/etc/snapper/configs/${snapperConfig}`, { force: true });
  const defaults = '/etc/default/snapper';
  const text = await readFile(defaults, 'utf8').catch(() => undefined);
  if (text !== undefined) {
    await writeFile(
      defaults,
      text.replace(
        /^SNAPPER_CONFIGS="([^"]*)"/m,
        (_, names) =>
          `SNAPPER_CONFIGS="${names
            .split(/\s+/)
            .filter((n) => n && n !== snapperConfig)
            .join(' ')}"`,
      ),
    );
  }
  await pool.cleanup();
  await rm(dir, { recursive: true, force: true });
}
process.stdout.write(`${lines.join('\n')}\n`);
