// Shared by the bench scripts: the statistics every table reports.

/** The middle value (upper middle for an even count), as every table in docs/benchmarks.md uses. */
export const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** The p-th percentile (0-100), nearest rank below. */
export const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
};

/** Milliseconds one (async) call takes. */
export async function timed(fn) {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** Milliseconds of each of `rounds` calls of fn, after `warmup` calls that are not measured. */
export async function timedRuns(fn, rounds, warmup = 0) {
  for (let i = 0; i < warmup; i++) await fn();
  const times = [];
  for (let i = 0; i < rounds; i++) times.push(await timed(fn));
  return times;
}

/**
 * A target of the project and what this run measured, as an HTML comment (invisible in the section):
 * bench/run.mjs gathers these into the Targets table at the top of docs/benchmarks.md.
 * `measured` and `limit` are in `unit`; a target is met when measured <= limit.
 */
export function targetMark(label, measured, limit, unit = 'x') {
  return `<!-- target: ${JSON.stringify({ label, measured: Number(measured.toFixed(3)), limit, unit })} -->`;
}

/**
 * The Targets table of docs/benchmarks.md: every targetMark in the texts, each with the `## `
 * section it appears under. Returns '' when there is none.
 */
export function targetsTable(texts) {
  const rows = [];
  for (const text of texts) {
    let section = '';
    for (const line of text.split('\n')) {
      if (line.startsWith('## ')) section = line.slice(3);
      const match = /<!-- target: (\{.*\}) -->/.exec(line);
      if (!match) continue;
      const { label, measured, limit, unit } = JSON.parse(match[1]);
      // Two decimals, or three when two would print the limit itself for a value above it.
      const digits = measured > limit && measured.toFixed(2) === limit.toFixed(2) ? 3 : 2;
      const value = (v, d) =>
        unit === 'x' ? `${v.toFixed(d)}x` : `${v >= 100 ? v.toFixed(0) : v.toFixed(d)} ${unit}`;
      const cell = (t) => t.replaceAll('|', '\\|');
      rows.push(
        `| ${cell(label)} | ${value(measured, digits)} | <= ${value(limit, limit % 1 ? 2 : 0)} | ${measured <= limit ? 'met' : '**not met**'} | ${cell(section)} |`,
      );
    }
  }
  if (!rows.length) return '';
  return [
    '## Targets',
    '',
    'Every target measured in this run (details in the sections below).',
    '',
    '| target | measured | limit | | section |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    '',
  ].join('\n');
}
