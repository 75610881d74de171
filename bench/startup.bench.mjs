// CLI start-up: what every skill script, timer and human call pays before any work. Interleaved
// runs (A B C ... A B C ...) of the Node floor (`node -e ''`), `snapguard --version`,
// `snapguard snapshot create` vs raw `btrfs subvolume snapshot -r` on a loop-mounted btrfs with few
// snapshots, and `snapguard snapshot list`; medians, min-max and ratios. Needs root and btrfs-progs.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { createExec } from '../dist/system/exec.js';
import { createLoopBtrfs } from '../dist/system/loop.js';
import { median, targetMark, timed } from './stats.mjs';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url));
const exec = createExec();
const rounds = 30;
const ms = (x) => `${x.toFixed(0)} ms`;

/** Peak RSS of one run, from GNU time's %M (KiB), when /usr/bin/time is there. */
async function peakRssMiB(args) {
  try {
    const { stderr } = await run('/usr/bin/time', ['-f', 'peak-kib %M', process.execPath, ...args]);
    const kib = Number(/peak-kib (\d+)/.exec(stderr)?.[1]);
    return Number.isFinite(kib) ? kib / 1024 : undefined;
  } catch {
    return undefined;
  }
}

const dir = await mkdtemp(join(tmpdir(), 'snapguard-bench-startup-'));
const pool = await createLoopBtrfs(exec, dir, 1024 ** 3);
const lines = ['## CLI start-up', ''];
try {
  const data = join(pool.mountPoint, 'data');
  await exec('btrfs', ['subvolume', 'create', data]);
  for (let i = 0; i < 100; i++) await writeFile(join(data, `f${i}`), `file ${i}\n`);
  const config = join(dir, 'snapguard.yaml');
  await writeFile(
    config,
    stringify({
      contextDir: join(dir, 'context'),
      stateDir: join(dir, 'state'),
      volumes: {
        data: { backend: 'btrfs', path: data, snapshotDir: join(pool.mountPoint, '.snapshots', 'data') },
      },
    }),
  );
  await exec('mkdir', ['-p', join(pool.mountPoint, 'raw')]);

  const cases = [
    { name: "node -e ''", run: () => run(process.execPath, ['-e', '']) },
    { name: 'snapguard --version', run: () => run(process.execPath, [cli, '--version']) },
    {
      name: 'raw btrfs subvolume snapshot -r',
      run: (i) => run('btrfs', ['subvolume', 'snapshot', '-r', data, join(pool.mountPoint, 'raw', `r${i}`)]),
    },
    {
      name: 'snapguard snapshot create',
      run: () => run(process.execPath, [cli, 'snapshot', 'create', 'data', '--force', '--config', config]),
    },
    {
      name: 'snapguard snapshot list',
      run: () => run(process.execPath, [cli, 'snapshot', 'list', 'data', '--config', config]),
    },
  ];
  const times = new Map(cases.map((c) => [c.name, []]));
  for (const c of cases) await c.run(-1); // warm the page cache
  for (let i = 0; i < rounds; i++) for (const c of cases) times.get(c.name).push(await timed(() => c.run(i)));

  const floor = median(times.get("node -e ''"));
  const raw = median(times.get('raw btrfs subvolume snapshot -r'));
  lines.push(
    `${rounds} interleaved rounds; the snapguard snapshots accumulate (about ${rounds + 1} at the end).`,
    '',
    '| command | median | min-max | ratio |',
    '| --- | --- | --- | --- |',
  );
  for (const c of cases) {
    const values = times.get(c.name);
    const m = median(values);
    const ratio =
      c.name === 'snapguard --version'
        ? `${(m / floor).toFixed(2)}x node floor (target <= 1.6x)`
        : c.name === 'snapguard snapshot create'
          ? `(median - raw btrfs) = ${((m - raw) / floor).toFixed(2)}x node floor (target <= 2.5x)`
          : c.name === 'snapguard snapshot list'
            ? `${(m / floor).toFixed(2)}x node floor`
            : '';
    lines.push(`| ${c.name} | ${ms(m)} | ${ms(Math.min(...values))}-${ms(Math.max(...values))} | ${ratio} |`);
  }
  const marks = [
    targetMark('CLI --version / node floor', median(times.get('snapguard --version')) / floor, 1.6),
    targetMark(
      'CLI snapshot create minus raw btrfs / node floor',
      (median(times.get('snapguard snapshot create')) - raw) / floor,
      2.5,
    ),
  ];
  const createPeak = await peakRssMiB([cli, 'snapshot', 'create', 'data', '--force', '--config', config]);
  const listPeak = await peakRssMiB([cli, 'snapshot', 'list', 'data', '--config', config]);
  if (createPeak !== undefined && listPeak !== undefined)
    lines.push(
      '',
      `CLI peak RSS: snapshot create ${createPeak.toFixed(0)} MiB, snapshot list ${listPeak.toFixed(0)} MiB (target <= 60 MiB).`,
      targetMark('CLI peak RSS, snapshot create', createPeak, 60, 'MiB'),
      targetMark('CLI peak RSS, snapshot list', listPeak, 60, 'MiB'),
    );
  lines.push(...marks);
} finally {
  await pool.cleanup();
  await rm(dir, { recursive: true, force: true });
}
process.stdout.write(`${lines.join('\n')}\n`);
