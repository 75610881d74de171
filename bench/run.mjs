// Runs every bench/*.bench.mjs in turn (each prints a Markdown section on stdout) and writes
// docs/benchmarks.md with the machine it ran on. Usage: npm run bench [-- name-filter]
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { targetsTable } from './stats.mjs';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2];
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs') && (!filter || f.includes(filter)))
  .sort();
const tool = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0];
  } catch {
    return 'not installed';
  }
};
const loadAtStart = loadavg()[0].toFixed(2);
const sections = [];
for (const file of files) {
  process.stderr.write(`bench: ${file}\n`);
  sections.push(
    execFileSync(process.execPath, ['--expose-gc', join(here, file)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 << 20,
    }).trim(),
  );
}
const header = [
  '# Benchmarks',
  '',
  'Measured by `npm run bench` (bench/*.bench.mjs). Medians of repeated runs; every comparison runs the',
  'raw command on the same filesystem in the same run. Timings are never asserted in tests.',
  'This file is written by the run; where the time goes behind each target not met (profiles, what was',
  'tried) is in [performance.md](performance.md).',
  '',
  `- date: ${new Date().toISOString()}`,
  `- machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, kernel ${release()}`,
  `- node ${process.version}; ${tool('btrfs', ['--version'])}`,
  `- load average (1 min) at start / end: ${loadAtStart} / ${loadavg()[0].toFixed(2)} (other work on the machine inflates the numbers)`,
  '',
].join('\n');
const out = `${header}\n${targetsTable(sections)}${sections.join('\n\n')}\n`;
if (!filter) writeFileSync(join(here, '..', 'docs', 'benchmarks.md'), out);
process.stdout.write(out);
