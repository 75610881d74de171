import { writeFileAtomic as writeAtomic } from './atomic-file.js';
import type { Deps } from './deps.js';
import { healthCheck } from './health/index.js';
import type { HealthCheckResult } from './health/schemas.js';
import type { History, RestoreTestEntry } from './history/schema.js';

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: 'gauge';
  samples: { labels: Labels; value: number }[];
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** The Prometheus text exposition format (0.0.4), families in a stable order. */
export function renderMetrics(families: readonly Family[]): string {
  const lines: string[] = [];
  for (const family of families) {
    if (family.samples.length === 0) continue;
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels)
        .map(([key, value]) => `${key}="${escapeLabel(value)}"`)
        .join(',');
      lines.push(`${family.name}${labels ? `{${labels}}` : ''} ${formatValue(sample.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const statusValue = { GOOD: 0, WARNING: 1, CRITICAL: 2 } as const;

function latestTests(history: History): RestoreTestEntry[] {
  const latest = new Map<string, RestoreTestEntry>();
  for (const entry of history.restore_tests) {
    const key = `${entry.subvolume}\0${entry.source}\0${entry.mode}`;
    const seen = latest.get(key);
    if (!seen || seen.timestamp <= entry.timestamp) latest.set(key, entry);
  }
  return [...latest.values()].sort((a, b) =>
    `${a.subvolume}${a.source}${a.mode}`.localeCompare(`${b.subvolume}${b.source}${b.mode}`),
  );
}

const gauge = (name: string, help: string): Family => ({ name, help, type: 'gauge', samples: [] });

/** The families read off a health result: status, snapshots, pool and recovery objectives per volume. */
function healthFamilies(health: HealthCheckResult) {
  const lastSuccess = gauge(
    'snapguard_snapshot_last_success_timestamp_seconds',
    'Creation time of the newest snapguard snapshot per volume and location.',
  );
  const snapshots = gauge('snapguard_snapshots', 'Number of snapguard snapshots per volume and location.');
  const status = gauge(
    'snapguard_health_status',
    'Health per volume: 0 GOOD, 1 WARNING, 2 CRITICAL; volume="" is the overall status.',
  );
  const pool = gauge('snapguard_pool_usage_ratio', 'Used share of the pool holding the volume (0..1).');
  const poolSize = gauge('snapguard_pool_size_bytes', 'Size of the pool holding the volume.');
  const forecast = gauge(
    'snapguard_pool_forecast_days',
    'Days until the pool reaches maxPoolUsage at the recorded growth (absent when not growing).',
  );
  const exclusive = gauge(
    'snapguard_snapshot_exclusive_bytes',
    'Bytes held only by the snapshots of the volume (btrfs qgroups; absent when unknown).',
  );
  const rpo = gauge(
    'snapguard_rpo_seconds',
    'Current recovery point objective: age of the newest copy, local or external.',
  );
  const rto = gauge(
    'snapguard_rto_estimate_seconds',
    "Restore time for the volume's current size at the throughput of the newest full drill.",
  );
  const findings = gauge('snapguard_health_findings', 'Health findings per volume and severity.');

  status.samples.push({ labels: { volume: '' }, value: statusValue[health.overall] });
  for (const v of health.volumes) {
    const volume = { volume: v.volume };
    status.samples.push({ labels: volume, value: statusValue[v.status] });
    snapshots.samples.push({ labels: { ...volume, location: 'local' }, value: v.snapshots });
    if (v.newestSnapshotAgeSeconds !== null)
      lastSuccess.samples.push({
        labels: { ...volume, location: 'local' },
        value: Math.round(Date.parse(health.checkedAt) / 1000 - v.newestSnapshotAgeSeconds),
      });
    if (v.newestExternalAgeSeconds !== null)
      lastSuccess.samples.push({
        labels: { ...volume, location: 'external' },
        value: Math.round(Date.parse(health.checkedAt) / 1000 - v.newestExternalAgeSeconds),
      });
    if (v.poolUsageRatio !== null)
      pool.samples.push({ labels: volume, value: Math.round(v.poolUsageRatio * 10_000) / 10_000 });
    if (v.poolTotalBytes !== null) poolSize.samples.push({ labels: volume, value: v.poolTotalBytes });
    if (v.forecastDaysToMaxUsage !== null)
      forecast.samples.push({ labels: volume, value: v.forecastDaysToMaxUsage });
    if (v.snapshotExclusiveBytes !== null)
      exclusive.samples.push({ labels: volume, value: v.snapshotExclusiveBytes });
    if (v.rpoSeconds !== null) rpo.samples.push({ labels: volume, value: v.rpoSeconds });
    if (v.rtoEstimateSeconds !== null) rto.samples.push({ labels: volume, value: v.rtoEstimateSeconds });
    for (const severity of ['info', 'warning', 'critical'] as const)
      findings.samples.push({
        labels: { ...volume, severity },
        value: health.findings.filter((f) => f.volume === v.volume && f.severity === severity).length,
      });
  }
  return { lastSuccess, snapshots, status, pool, poolSize, forecast, exclusive, rpo, rto, findings };
}

/** The families of the newest restore test per volume, source and mode (from the history). */
function restoreTestFamilies(history: History) {
  const success = gauge(
    'snapguard_restore_test_success',
    'Outcome of the newest restore test per volume, source and mode: 1 pass, 0 fail.',
  );
  const duration = gauge('snapguard_restore_test_duration_seconds', 'Duration of the newest restore test.');
  const verified = gauge(
    'snapguard_restore_test_files_verified',
    'Files verified by the newest restore test.',
  );
  const failures = gauge('snapguard_restore_test_failures', 'Failed checks of the newest restore test.');
  const throughput = gauge(
    'snapguard_restore_test_throughput_bytes_per_second',
    'Restore throughput of the newest restore test.',
  );
  const lastRun = gauge(
    'snapguard_restore_test_last_run_timestamp_seconds',
    'Time of the newest restore test.',
  );
  for (const test of latestTests(history)) {
    const labels = { volume: test.subvolume, source: test.source, mode: test.mode };
    success.samples.push({ labels, value: test.outcome === 'pass' ? 1 : 0 });
    duration.samples.push({ labels, value: test.duration_seconds });
    verified.samples.push({ labels, value: test.files_checked });
    failures.samples.push({ labels, value: test.failures.length });
    if (typeof test.throughput_bytes_per_second === 'number')
      throughput.samples.push({ labels, value: test.throughput_bytes_per_second });
    lastRun.samples.push({ labels, value: Math.round(Date.parse(test.timestamp) / 1000) });
  }
  return { success, duration, verified, failures, throughput, lastRun };
}

/** Every snapguard_ metric, from a health result (snapshots, pool, status) and the history (restore tests). */
export function buildMetrics(health: HealthCheckResult, history: History, now: Date): Family[] {
  const h = healthFamilies(health);
  const t = restoreTestFamilies(history);
  const written = gauge(
    'snapguard_metrics_last_write_timestamp_seconds',
    'When snapguard last wrote this file.',
  );
  written.samples.push({ labels: {}, value: Math.round(now.getTime() / 1000) });
  return [
    h.lastSuccess,
    h.snapshots,
    h.status,
    h.pool,
    h.poolSize,
    h.forecast,
    h.exclusive,
    h.rpo,
    h.rto,
    h.findings,
    t.success,
    t.duration,
    t.verified,
    t.failures,
    t.throughput,
    t.lastRun,
    written,
  ];
}

/** Writes a file atomically (see atomic-file.ts), creating its folder. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  await writeAtomic(file, text, { mkdir: true });
}

/** Refreshes the textfile (metrics.textfile in the config) from a health check and the history. No-op when unset. */
export async function writeMetricsFile(deps: Deps, health?: HealthCheckResult): Promise<string | undefined> {
  const file = deps.config.metrics.textfile;
  if (!file) return undefined;
  const current = health ?? (await healthCheck(deps, {}));
  const { history } = await deps.history.read();
  await writeFileAtomic(file, renderMetrics(buildMetrics(current, history, deps.clock())));
  return file;
}
