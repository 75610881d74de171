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
