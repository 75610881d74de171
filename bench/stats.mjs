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

/**
 * A target of the project and what this run measured, as an HTML comment (invisible in the section):
 * bench/run.mjs gathers these into the Targets table at the top of docs/benchmarks.md.
 * `measured` and `limit` are in `unit`; a target is met when measured <= limit.
 */
export function targetMark(label, measured, limit, unit = 'x') {
  return `<!-- target: ${JSON.stringify({ label, measured: Number(measured.toFixed(3)), limit, unit })} -->`;
}
