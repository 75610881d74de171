// Restore test benchmarks (needs root, btrfs-progs): prints a Markdown section on stdout.
//  1. Sample of 50 files from a snapshot of 200k files: snapguard vs the naive
//     `find -type f | shuf -n 50` + cp + sha256sum; peak memory of the sampling pass vs tree size.
//  2. Full drill: snapguard's btrfs send | receive (through a named pipe, plus verification) vs the raw pipe.
// BENCH_FILES overrides the tree size (default 200000).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { median, targetMark } from './stats.mjs';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const { buildConfig } = await import(join(dist, 'core/config.js'));
const { createDeps } = await import(join(dist, 'core/deps.js'));
const { silentLogger } = await import(join(dist, 'core/logger.js'));
const { runRestoreTest } = await import(join(dist, 'core/restore-test/index.js'));
const { createSnapshots } = await import(join(dist, 'core/snapshots.js'));

const FILES = Number(process.env.BENCH_FILES ?? 200_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const sh = (script, ...args) =>
  execFileSync('sh', ['-c', script, 'sh', ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
const time = (fn) => {
  const t = performance.now();
  const r = fn();
  return r instanceof Promise ? r.then(() => performance.now() - t) : performance.now() - t;
};
const dropCaches = () => writeFileSync('/proc/sys/vm/drop_caches', '3\n');

const root = mkdtempSync(join(tmpdir(), 'snapguard-bench-rt-'));
const image = join(root, 'pool.img');
const mnt = join(root, 'pool');
mkdirSync(mnt);
const out = [];
try {
  sh('truncate -s 16G "$1" && mkfs.btrfs -q -f "$1" && mount -o loop "$1" "$2"', image, mnt);
  const data = join(mnt, 'data');
  execFileSync('btrfs', ['subvolume', 'create', data], { stdio: 'ignore' });
  // 200 top-level folders x 10 subfolders x N files, sizes 0.5-16 KiB (a mix of inline and extent data).
  const perLeaf = Math.max(1, Math.round(FILES / 2000));
  let made = 0;
  const payload = Buffer.alloc(16384, 'snapguard bench ');
  for (let a = 0; a < 200 && made < FILES; a++) {
    for (let b = 0; b < 10 && made < FILES; b++) {
      const dir = join(data, `top-${a}`, `sub-${b}`);
      mkdirSync(dir, { recursive: true });
      for (let c = 0; c < perLeaf && made < FILES; c++, made++)
        writeFileSync(join(dir, `f-${c}.dat`), payload.subarray(0, 512 + ((made * 7919) % 16000)));
    }
  }
  const config = buildConfig(
    {
      contextDir: join(root, 'context'),
      stateDir: join(root, 'state'),
      volumes: { data: { backend: 'btrfs', path: data } },
      restoreTest: { scratchDir: root },
    },
    root,
  );
  const deps = createDeps(config, { logger: silentLogger() });
  await createSnapshots(deps, { volumes: ['data'], type: 'manual' });
  const snapDir = join(mnt, '.snapshots', 'data');
  const snap = join(snapDir, sh('ls "$1"', snapDir).trim());
  sh('sync');

  // 1. Sample of 50, cold cache for both (the monthly timer runs on a cold cache).
  const ours = [];
  const naive = [];
  for (let i = 0; i < RUNS; i++) {
    dropCaches();
    ours.push(await time(() => runRestoreTest(deps, { volume: 'data', sampleSize: 50, seed: i })));
    dropCaches();
    const target = mkdtempSync(join(root, 'naive-'));
    naive.push(
      time(() =>
        sh(
          'cd "$1" && find . -type f | shuf -n 50 > "$2/list" && xargs -a "$2/list" -d "\\n" cp -a --parents -t "$2/out" 2>/dev/null || { mkdir -p "$2/out" && xargs -a "$2/list" -d "\\n" cp -a --parents -t "$2/out"; }; xargs -a "$2/list" -d "\\n" sha256sum > "$2/a" && cd "$2/out" && xargs -a "$2/list" -d "\\n" sha256sum > "$2/b" && cmp "$2/a" "$2/b"',
          snap,
          target,
        ),
      ),
    );
    rmSync(target, { recursive: true, force: true });
  }
  // Peak memory of the sampling pass on the full tree and on one tenth of it (one process each).
  const rss = (dir) =>
    Number(
      execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { sampleTree } = await import(${JSON.stringify(join(dist, 'core/restore-test/sampler.js'))});
           await sampleTree(${JSON.stringify(dir)}, 50, { seed: 1 });
           console.log(process.resourceUsage().maxRSS);`,
        ],
        { encoding: 'utf8' },
      ).trim(),
    );
  const baseRss = Number(
    execFileSync(process.execPath, ['-e', 'console.log(process.resourceUsage().maxRSS)'], {
      encoding: 'utf8',
    }).trim(),
  );
  const rssFull = rss(snap);
  const rssTenth = rss(join(snap, 'top-0')); // 1/200 of the tree
  const oursMs = median(ours);
  const naiveMs = median(naive);
  out.push(
    '## Restore test: sample of 50 files',
    '',
    `Snapshot of ${FILES.toLocaleString('en')} files in 2,000 folders on a loop-mounted btrfs image; caches dropped before every run; median of ${RUNS}.`,
    'snapguard walks the tree once (reservoir sampling), restores by reading every byte, verifies sha256, mode, owner, mtime and xattrs, and records history.',
    'The naive baseline is `find -type f | shuf -n 50`, `cp -a --parents`, `sha256sum` of source and copy, `cmp`.',
    '',
    '| run | median | ratio |',
    '| --- | ---: | ---: |',
    `| snapguard restore-test (sample 50) | ${(oursMs / 1000).toFixed(2)} s | ${(oursMs / naiveMs).toFixed(2)}x |`,
    `| find \\| shuf \\| cp \\| sha256sum | ${(naiveMs / 1000).toFixed(2)} s | 1.00x |`,
    '',
    `Ratio of medians: **${(oursMs / naiveMs).toFixed(2)}x** (target <= 1.0x: ${oursMs <= naiveMs ? 'met' : 'not met'}).`,
    targetMark('sample restore test (50 of 200k files, cold cache) / naive', oursMs / naiveMs, 1.0),
    '',
    `Peak RSS of the sampling pass: ${(rssFull / 1024).toFixed(0)} MiB over ${FILES.toLocaleString('en')} files, ${(rssTenth / 1024).toFixed(0)} MiB over ${Math.round(FILES / 200).toLocaleString('en')} files (node alone: ${(baseRss / 1024).toFixed(0)} MiB).`,
    '',
  );

  // 2. Full drill vs raw send | receive.
  const drill = [];
  const drillThroughput = [];
  const raw = [];
  let bytes = 0;
  for (let i = 0; i < Math.min(RUNS, 3); i++) {
    dropCaches();
    const t = performance.now();
    const result = await runRestoreTest(deps, { volume: 'data', mode: 'full', sampleSize: 50, seed: i });
    drill.push(performance.now() - t);
    drillThroughput.push(result.results[0].throughputBytesPerSecond);
    bytes = result.results[0].bytesRestored;
    if (result.overall !== 'PASS')
      throw new Error(`drill failed: ${JSON.stringify(result.results[0].failures.slice(0, 3))}`);
    dropCaches();
    const target = mkdtempSync(join(mnt, '.raw-'));
    raw.push(time(() => sh('btrfs send -q "$1" | btrfs receive "$2" >/dev/null', snap, target)));
    sh('btrfs subvolume delete "$1"/* >/dev/null && rmdir "$1"', target);
    // Deleted subvolumes are freed by a background cleaner: wait, or the next copy may not fit.
    sh('btrfs subvolume sync "$1" >/dev/null', mnt);
  }
  const rawMs = median(raw);
  const rawThroughput = bytes / (rawMs / 1000);
  const ourThroughput = median(drillThroughput);
  out.push(
    '## Restore drill (full mode) vs raw btrfs send | receive',
    '',
    `Same snapshot (${(bytes / 2 ** 20).toFixed(0)} MiB of file data); caches dropped before every run; median of ${Math.min(RUNS, 3)}.`,
    "snapguard's throughput is measured over its send | receive phase (two processes joined by a named pipe); the drill's wall time adds the verification (census of both trees, 50-file checksum sample) and the walk of the live volume for the RTO estimate.",
    '',
    '| run | throughput | ratio | wall time |',
    '| --- | ---: | ---: | ---: |',
    `| snapguard restore-test --full | ${(ourThroughput / 2 ** 20).toFixed(1)} MiB/s | ${(ourThroughput / rawThroughput).toFixed(2)}x | ${(median(drill) / 1000).toFixed(2)} s |`,
    `| btrfs send \\| btrfs receive | ${(rawThroughput / 2 ** 20).toFixed(1)} MiB/s | 1.00x | ${(rawMs / 1000).toFixed(2)} s |`,
    '',
    `Wall time of the drill / raw send | receive: **${(median(drill) / rawMs).toFixed(2)}x** (target <= 1.1x: ${median(drill) / rawMs <= 1.1 ? 'met' : 'not met'}).`,
    targetMark('full drill wall time / raw send | receive', median(drill) / rawMs, 1.1),
  );
} finally {
  try {
    sh('umount "$1" || umount -l "$1"', mnt);
  } catch {
    // already unmounted
  }
  rmSync(root, { recursive: true, force: true });
}
process.stdout.write(`${out.join('\n')}\n`);
