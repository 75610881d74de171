import { randomBytes, randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { RawSnapshot } from '../../backends/types.js';
import { pathUnder } from '../byte-names.js';
import { requireVolume, type Tier, type VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError, textFor, type InterfaceHint } from '../errors.js';
import type { HealthSampleEntry, History } from '../history/schema.js';
import { listAt, snapshotLocations } from '../locations.js';
import { parseSnapshotName } from '../naming.js';

/** The btrfs output parsers moved to the btrfs backend; re-exported for the callers that used them here. */
export { parseDeviceStats, parseQgroupShow } from '../../backends/btrfs.js';
import { hashFile, errorCode } from '../restore-test/files.js';
import { sampleTree } from '../restore-test/sampler.js';
import { ownedSnapshots } from '../snapshots.js';
import { formatBytes, formatDuration } from '../units.js';
import { parseInput } from '../validate.js';
import {
  HealthCheckInput,
  type Finding,
  type HealthCheckResult,
  type HealthStatus,
  type VolumeHealth,
} from './schemas.js';
import { listUnfinishedRecoveries } from './unfinished-recoveries.js';

/**
 * Newest-snapshot age thresholds per tier, in the spirit of sanoid's monitor (warn a little after
 * the expected interval, critical when a whole interval was missed). Overridable per tier with
 * health.staleAfter in the config.
 */
export const DEFAULT_STALE_AFTER: Record<Tier, { warn: number; crit: number } | undefined> = {
  critical: { warn: 28 * 3600, crit: 48 * 3600 },
  important: { warn: 52 * 3600, crit: 4 * 86_400 },
  standard: { warn: 8 * 86_400, crit: 15 * 86_400 },
  temporary: undefined,
};

const GAP_WINDOW_SECONDS = 30 * 86_400;
const READ_SAMPLE_FILES = 5;
const FORECAST_WARN_DAYS = 30;
const FORECAST_CRIT_DAYS = 7;

export interface HealthCall {
  signal?: AbortSignal | undefined;
  /** Record the pool reading in history (health_samples) for the forecast; the timer's CLI run does. */
  recordSample?: boolean;
}

function worst(findings: readonly Finding[]): HealthStatus {
  if (findings.some((f) => f.severity === 'critical')) return 'CRITICAL';
  if (findings.some((f) => f.severity === 'warning')) return 'WARNING';
  return 'GOOD';
}

function staleThresholds(deps: Deps, tier: Tier): { warn: number; crit: number } | undefined {
  return deps.config.health.staleAfter?.[tier] ?? DEFAULT_STALE_AFTER[tier];
}

/** Least-squares growth of the usage ratio; days until it reaches `limit`, or null when not growing. */
export function forecastDays(
  samples: readonly { time: number; ratio: number }[],
  limit: number,
): number | null {
  if (samples.length < 2) return null;
  const first = samples[0] as { time: number };
  const last = samples[samples.length - 1] as { time: number; ratio: number };
  if (last.time - first.time < 3600_000) return null;
  const n = samples.length;
  const meanT = samples.reduce((sum, s) => sum + s.time, 0) / n;
  const meanR = samples.reduce((sum, s) => sum + s.ratio, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.time - meanT) * (s.ratio - meanR);
    den += (s.time - meanT) ** 2;
  }
  if (den === 0) return null;
  const slopePerMs = num / den;
  if (slopePerMs <= 0) return null;
  if (last.ratio >= limit) return 0;
  return (limit - last.ratio) / slopePerMs / 86_400_000;
}

async function externalAge(
  deps: Deps,
  volume: VolumeConfig,
  now: Date,
  findings: Finding[],
  signal?: AbortSignal,
): Promise<number | null> {
  let newest: number | null = null;
  for (const location of snapshotLocations(volume)) {
    if (location.location === 'local') continue;
    try {
      if (location.dir && !existsSync(location.dir)) {
        findings.push({
          severity: 'warning',
          code: 'EXTERNAL_UNAVAILABLE',
          volume: volume.id,
          message: `External copy location ${location.dir} is not reachable (drive not mounted?).`,
          remedy: 'Mount the backup drive and run the replication, then check again.',
        });
        continue;
      }
      for (const copy of await listAt(deps, volume, location, signal)) {
        // Received or copied snapshots count by their owned name; a restic snapshot of the volume's path counts as it is.
        if (location.kind !== 'restic' && !parseSnapshotName(volume.id, copy.name)) continue;
        newest = Math.max(newest ?? 0, copy.createdAt.getTime());
      }
    } catch (error) {
      if (error instanceof SnapguardError && error.code === 'CANCELLED') throw error;
      findings.push({
        severity: 'warning',
        code: 'EXTERNAL_UNAVAILABLE',
        volume: volume.id,
        message: `Could not list the external copies (${location.label}): ${(error as Error).message}`,
        remedy: 'Check that the backup target is reachable and its credentials are configured.',
      });
    }
  }
  return newest === null ? null : Math.max(0, (now.getTime() - newest) / 1000);
}

async function checkVolume(
  deps: Deps,
  volume: VolumeConfig,
  history: History,
  now: Date,
  signal?: AbortSignal,
): Promise<{ health: VolumeHealth; findings: Finding[] }> {
  const findings: Finding[] = [];
  // A remedy that names commands comes in both forms: the CLI's verbs and the MCP tools' calls.
  const add = (
    severity: Finding['severity'],
    code: string,
    message: string,
    remedy: string | InterfaceHint,
  ) =>
    findings.push({
      severity,
      code,
      volume: volume.id,
      message,
      remedy: textFor(remedy, 'cli'),
      ...(typeof remedy === 'string' ? {} : { remedies: remedy }),
    });
  const backend = deps.backendFor(volume);
  let owned: { raw: RawSnapshot; createdAt: Date }[] = [];
  try {
    owned = await ownedSnapshots(deps, volume, signal);
  } catch (error) {
    if (error instanceof SnapguardError && error.code === 'CANCELLED') throw error;
    add(
      'critical',
      'SNAPSHOTS_UNLISTABLE',
      `Cannot list the snapshots of ${volume.id}: ${(error as Error).message}`,
      'Check that the volume and its snapshotDir are mounted and readable.',
    );
  }
  const newest = owned[0];
  const newestAge = newest ? Math.max(0, (now.getTime() - newest.createdAt.getTime()) / 1000) : null;
  const thresholds = staleThresholds(deps, volume.tier);

  // Freshness and gaps.
  if (!newest) {
    add('critical', 'NO_SNAPSHOTS', `Volume ${volume.id} has no snapguard snapshots.`, {
      cli: `Create one now (snapguard snapshot create ${volume.id}) and schedule them (snapguard units).`,
      mcp: `Create one now: call create_snapshot with volumes ["${volume.id}"]; schedule them on the host with the snapshot timer.`,
    });
  } else if (thresholds && newestAge !== null) {
    if (newestAge >= thresholds.crit || newestAge >= thresholds.warn) {
      const critical = newestAge >= thresholds.crit;
      add(
        critical ? 'critical' : 'warning',
        'SNAPSHOT_STALE',
        `Newest snapshot of ${volume.id} (${newest.raw.name}) is ${formatDuration(newestAge)} old; the ${volume.tier} tier expects one within ${formatDuration(critical ? thresholds.crit : thresholds.warn)}.`,
        'Check the snapshot timer (systemctl list-timers) and its logs, then take a snapshot.',
      );
    }
    const windowStart = now.getTime() - GAP_WINDOW_SECONDS * 1000;
    const times = owned
      .map((s) => s.createdAt.getTime())
      .filter((t) => t >= windowStart)
      .sort((a, b) => a - b);
    const gaps: string[] = [];
    for (let i = 1; i < times.length; i++) {
      const gap = ((times[i] as number) - (times[i - 1] as number)) / 1000;
      if (gap > thresholds.crit)
        gaps.push(`${formatDuration(gap)} before ${new Date(times[i] as number).toISOString().slice(0, 16)}`);
    }
    if (gaps.length > 0) {
      add(
        'warning',
        'SNAPSHOT_GAPS',
        `${gaps.length} gap(s) longer than ${formatDuration(thresholds.crit)} between snapshots of ${volume.id} in the last 30 days: ${gaps.slice(0, 5).join('; ')}.`,
        'Look at the snapshot timer logs for those days (missed runs, full pool, host down).',
      );
    }
  }
  add('info', 'SNAPSHOT_COUNT', `${volume.id} has ${owned.length} snapguard snapshot(s).`, 'None needed.');

  // A readable sample of the newest snapshot.
  if (newest) {
    // zfs snapshots are read through .zfs/snapshot or a temporary clone (removed below).
    let reader: { path: string; close(): Promise<void> } | undefined;
    try {
      if (volume.backend === 'zfs' && backend.openSnapshot)
        reader = await backend.openSnapshot(volume, newest.raw.name, { signal });
      const root = reader?.path ?? newest.raw.path;
      const sample = await sampleTree(root, READ_SAMPLE_FILES, {
        seed: randomInt(0, 2 ** 32 - 1),
        signal,
      });
      const unreadable: string[] = sample.unreadable.map((u) => `${u.path} (${u.code})`);
      for (const [index, path] of sample.bytePaths.entries()) {
        try {
          await hashFile(pathUnder(root, path), signal);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ELOOP') continue; // a symlink: nothing to read
          unreadable.push(`${sample.paths[index] ?? path} (${errorCode(error)})`);
        }
      }
      if (unreadable.length > 0) {
        add(
          'critical',
          'SNAPSHOT_UNREADABLE',
          `Files of the newest snapshot ${newest.raw.name} cannot be read: ${unreadable.join(', ')}.`,
          {
            cli: `Run a full restore test (snapguard restore-test ${volume.id} --full) and btrfs scrub; restore from an external copy if the data is damaged.`,
            mcp: `Call run_restore_test with volume "${volume.id}" and mode "full", and have btrfs scrub run on the host; restore from an external copy if the data is damaged.`,
          },
        );
      }
    } catch (error) {
      if (error instanceof Error && error.name === 'AbortError') throw error;
      add(
        'critical',
        'SNAPSHOT_UNREADABLE',
        `The newest snapshot ${newest.raw.name} cannot be walked: ${(error as Error).message}`,
        'Check the filesystem (btrfs scrub, dmesg).',
      );
    } finally {
      await reader?.close();
    }
  }

  // Pool usage, snapshot share, device errors.
  let usage: { ratio: number; usedBytes: number; totalBytes: number } | undefined;
  try {
    usage = await backend.poolUsage(volume, { signal });
  } catch (error) {
    add(
      'warning',
      'POOL_USAGE_UNKNOWN',
      `Cannot read the pool usage of ${volume.id}: ${(error as Error).message}`,
      'Check that the volume is mounted.',
    );
  }
  const maxUsage = deps.config.health.maxPoolUsage;
  if (usage) {
    const percent = (usage.ratio * 100).toFixed(1);
    if (usage.ratio >= maxUsage) {
      add(
        'critical',
        'POOL_USAGE',
        `Pool of ${volume.id} is ${percent}% full, at or above maxPoolUsage ${(maxUsage * 100).toFixed(0)}%; new snapshots are refused.`,
        {
          cli: `Prune old snapshots (snapguard prune ${volume.id}) or free space.`,
          mcp: `Prune old snapshots (call prune_snapshots with volume "${volume.id}") or free space.`,
        },
      );
    } else if (usage.ratio >= maxUsage - 0.1) {
      add(
        'warning',
        'POOL_USAGE',
        `Pool of ${volume.id} is ${percent}% full, within 10 points of maxPoolUsage ${(maxUsage * 100).toFixed(0)}%.`,
        'Plan to prune snapshots or add space.',
      );
    }
  }
  let exclusive: number | null = null;
  let share: number | null = null;
  if (volume.backend === 'zfs' && owned.every((s) => s.raw.usedBytes !== undefined)) {
    // zfs `used` of a snapshot: the bytes only it references, the same meaning as a qgroup's exclusive.
    exclusive = owned.reduce((sum, s) => sum + (s.raw.usedBytes ?? 0), 0);
    if (usage && usage.totalBytes > 0) share = exclusive / usage.totalBytes;
    if (share !== null && share >= deps.config.health.maxSnapshotShare) {
      add(
        'warning',
        'SNAPSHOT_SHARE',
        `Snapshots of ${volume.id} hold ${formatBytes(exclusive)} exclusively, ${(share * 100).toFixed(1)}% of the pool (limit ${(deps.config.health.maxSnapshotShare * 100).toFixed(0)}%).`,
        {
          cli: `Prune old snapshots (snapguard prune ${volume.id}) or raise health.maxSnapshotShare.`,
          mcp: `Prune old snapshots (call prune_snapshots with volume "${volume.id}") or raise health.maxSnapshotShare.`,
        },
      );
    }
  }
  if (backend.exclusiveBytes) {
    try {
      const sizes = await backend.exclusiveBytes(volume, { signal });
      exclusive = owned.reduce((sum, s) => sum + (s.raw.id ? (sizes.get(s.raw.id) ?? 0) : 0), 0);
      if (usage && usage.totalBytes > 0) share = exclusive / usage.totalBytes;
      if (share !== null && share >= deps.config.health.maxSnapshotShare) {
        add(
          'warning',
          'SNAPSHOT_SHARE',
          `Snapshots of ${volume.id} hold ${formatBytes(exclusive)} exclusively, ${(share * 100).toFixed(1)}% of the pool (limit ${(deps.config.health.maxSnapshotShare * 100).toFixed(0)}%).`,
          {
            cli: `Prune old snapshots (snapguard prune ${volume.id}) or tighten the retention.`,
            mcp: `Prune old snapshots (call prune_snapshots with volume "${volume.id}") or tighten the retention.`,
          },
        );
      }
    } catch (error) {
      if (error instanceof SnapguardError && error.code === 'CANCELLED') throw error;
      add(
        'info',
        'SNAPSHOT_SHARE_UNKNOWN',
        `Exclusive snapshot sizes of ${volume.id} are unknown: btrfs quotas (qgroups) are not enabled.`,
        'Enable them with `btrfs quota enable` on the pool if you want snapshot sizes (it costs some write performance).',
      );
    }
  }
  if (backend.deviceErrors) {
    try {
      const errors = await backend.deviceErrors(volume, { signal });
      const names = Object.entries(errors).map(([name, count]) => `${name}=${count}`);
      if (names.length > 0) {
        add(
          'critical',
          'DEVICE_ERRORS',
          `btrfs device error counters of ${volume.id}'s pool are not zero: ${names.join(', ')}.`,
          'Check the disk (smartctl -a, dmesg), run btrfs scrub, verify backups with a restore test; reset the counters with `btrfs device stats -z` once resolved.',
        );
      }
    } catch (error) {
      if (error instanceof SnapguardError && error.code === 'CANCELLED') throw error;
      add(
        'warning',
        'DEVICE_STATS_UNKNOWN',
        `Cannot read btrfs device stats of ${volume.id}: ${(error as Error).message}`,
        'Run `btrfs device stats` on the pool by hand.',
      );
    }
  }

  // Restore tests.
  const tests = history.restore_tests
    .filter((t) => t.subvolume === volume.id)
    .sort((a, b) => a.timestamp.localeCompare(b.timestamp));
  const lastTest = tests[tests.length - 1];
  const lastAge = lastTest ? Math.max(0, (now.getTime() - Date.parse(lastTest.timestamp)) / 1000) : null;
  if (!lastTest) {
    add('warning', 'RESTORE_TEST_NEVER', `${volume.id} has never been restore-tested.`, {
      cli: `Run snapguard restore-test ${volume.id} and schedule it monthly (snapguard units).`,
      mcp: `Call run_restore_test with volume "${volume.id}"; schedule it monthly on the host (the restore-test timer).`,
    });
  } else {
    if (lastTest.outcome === 'fail') {
      const first = lastTest.failures[0];
      add(
        'critical',
        'RESTORE_TEST_FAILED',
        `The last restore test of ${volume.id} (${lastTest.timestamp}, ${lastTest.source}/${lastTest.mode}) failed with ${lastTest.failures.length} failure(s)${first ? `, first: ${first.path} ${first.check}` : ''}.`,
        {
          cli: 'Read the failures (snapguard history --kind restore_tests), fix the cause, and run the test again.',
          mcp: `Read the failures (the restore_tests section of the snapguard://history resource), fix the cause, and call run_restore_test with volume "${volume.id}" again.`,
        },
      );
    }
    if (lastAge !== null && lastAge > deps.config.health.restoreTestMaxAge) {
      add(
        'warning',
        'RESTORE_TEST_OVERDUE',
        `The last restore test of ${volume.id} is ${formatDuration(lastAge)} old (restoreTestMaxAge ${formatDuration(deps.config.health.restoreTestMaxAge)}).`,
        {
          cli: `Run snapguard restore-test ${volume.id}; check the monthly timer.`,
          mcp: `Call run_restore_test with volume "${volume.id}"; check the monthly timer on the host.`,
        },
      );
    }
  }
  const lastFull = [...tests]
    .reverse()
    .find((t) => t.mode === 'full' && typeof t.rto_estimate_seconds === 'number');

  // External copies and RPO.
  const externalAgeSeconds =
    volume.external.length > 0 ? await externalAge(deps, volume, now, findings, signal) : null;
  if (volume.external.length > 0 && thresholds) {
    if (externalAgeSeconds === null) {
      add(
        'warning',
        'EXTERNAL_MISSING',
        `No external copy of ${volume.id} was found.`,
        'Run the replication (btrfs send/receive or restic backup) to the configured target.',
      );
    } else if (externalAgeSeconds > thresholds.crit * 7) {
      add(
        'warning',
        'EXTERNAL_STALE',
        `Newest external copy of ${volume.id} is ${formatDuration(externalAgeSeconds)} old.`,
        'Check the external backup job and that the drive is connected.',
      );
    }
  }
  if (volume.external.length === 0 && volume.tier === 'critical') {
    add(
      'warning',
      'EXTERNAL_NONE',
      `${volume.id} is a critical volume with no external copy configured: its snapshots live on the same disk, so a disk failure loses the data and every snapshot of it.`,
      `Add a copy on another disk or host under volumes.${volume.id}.external (a btrfs/zfs receive target or a restic repository) and replicate to it (snapguard plan shows a schedule).`,
    );
  }
  const ages = [newestAge, externalAgeSeconds].filter((a): a is number => a !== null);

  // Forecast from the usage recorded by earlier health checks.
  let forecast: number | null = null;
  if (usage) {
    const windowStart = now.getTime() - GAP_WINDOW_SECONDS * 1000;
    const series = (history.health_samples ?? [])
      .filter((s) => s.subvolume === volume.id && Date.parse(s.timestamp) >= windowStart)
      .map((s) => ({ time: Date.parse(s.timestamp), ratio: s.pool_usage_ratio }))
      .concat([{ time: now.getTime(), ratio: usage.ratio }])
      .sort((a, b) => a.time - b.time);
    forecast = forecastDays(series, maxUsage);
    if (forecast !== null) {
      const days = forecast.toFixed(1);
      if (forecast < FORECAST_CRIT_DAYS)
        add(
          'critical',
          'POOL_FORECAST',
          `At the growth of the last ${series.length} readings, the pool of ${volume.id} reaches maxPoolUsage in ${days} days.`,
          'Free space or add capacity now.',
        );
      else if (forecast < FORECAST_WARN_DAYS)
        add(
          'warning',
          'POOL_FORECAST',
          `At the growth of the last ${series.length} readings, the pool of ${volume.id} reaches maxPoolUsage in ${days} days.`,
          'Plan pruning or more capacity.',
        );
      else
        add(
          'info',
          'POOL_FORECAST',
          `The pool of ${volume.id} reaches maxPoolUsage in about ${days} days at the current growth.`,
          'None needed.',
        );
    }
  }

  const health: VolumeHealth = {
    volume: volume.id,
    status: worst(findings),
    tier: volume.tier,
    snapshots: owned.length,
    newestSnapshot: newest?.raw.name ?? null,
    newestSnapshotAgeSeconds: newestAge === null ? null : Math.round(newestAge),
    newestExternalAgeSeconds: externalAgeSeconds === null ? null : Math.round(externalAgeSeconds),
    rpoSeconds: ages.length ? Math.round(Math.min(...ages)) : null,
    poolUsageRatio: usage?.ratio ?? null,
    poolUsedBytes: usage?.usedBytes ?? null,
    poolTotalBytes: usage?.totalBytes ?? null,
    snapshotExclusiveBytes: exclusive,
    snapshotShare: share,
    forecastDaysToMaxUsage: forecast === null ? null : Math.round(forecast * 10) / 10,
    lastRestoreTest: lastTest
      ? {
          timestamp: lastTest.timestamp,
          outcome: lastTest.outcome,
          mode: lastTest.mode,
          source: lastTest.source,
          ageSeconds: Math.round(lastAge ?? 0),
        }
      : null,
    rtoEstimateSeconds: lastFull?.rto_estimate_seconds ?? null,
  };
  return { health, findings };
}

function summarize(history: History): HealthCheckResult['summary'] {
  const preDeployOps = new Set([
    ...history.snapshots.filter((s) => s.type === 'pre-deploy').map((s) => s.operation_id ?? s.id),
    // Deployments whose volume was unchanged since a recent snapshot reuse it as their rollback point.
    ...history.snapshots.flatMap((s) =>
      (s.reused_by ?? []).filter((r) => r.type === 'pre-deploy').map((r) => r.operation_id),
    ),
  ]);
  const orchestrations = history.orchestrations;
  const orchestrationsWithSnapshot = orchestrations.filter((o) =>
    o.stages.some((s) => /snapshot/i.test(s.name) && s.status !== 'skipped'),
  );
  const deployments = preDeployOps.size + orchestrations.length;
  const withSnapshot = preDeployOps.size + orchestrationsWithSnapshot.length;
  const recoveries = history.recoveries;
  const succeeded = recoveries.filter((r) => r.outcome === 'success');
  return {
    deployments,
    deploymentsWithSnapshotShare: deployments > 0 ? Math.min(1, withSnapshot / deployments) : null,
    recoveries: recoveries.length,
    recoverySuccessRate: recoveries.length > 0 ? succeeded.length / recoveries.length : null,
    meanRecoverySeconds:
      succeeded.length > 0
        ? succeeded.reduce((sum, r) => sum + r.duration_seconds, 0) / succeeded.length
        : null,
  };
}

/** health_check: per volume and overall GOOD | WARNING | CRITICAL, each finding with a remedy. */
export async function healthCheck(
  deps: Deps,
  input: unknown,
  call: HealthCall = {},
): Promise<HealthCheckResult> {
  const request = parseInput(HealthCheckInput, input ?? {}, 'health_check');
  const volumes = request.volume
    ? [requireVolume(deps.config, request.volume)]
    : Object.values(deps.config.volumes);
  const now = deps.clock();
  const read = await deps.history.read();
  const findings: Finding[] = [];
  const corrupt = await deps.history.corruptFiles();
  if (read.corrupt) {
    findings.push({
      severity: 'critical',
      code: 'HISTORY_CORRUPT',
      message: `${deps.history.file} does not parse: ${read.corrupt}`,
      remedy: 'Inspect and fix the JSON by hand; the next write moves it aside and starts a new file.',
    });
  }
  if (corrupt.length > 0) {
    findings.push({
      severity: 'warning',
      code: 'HISTORY_CORRUPT',
      message: `${corrupt.length} history file(s) did not parse and were set aside: ${corrupt.join(', ')}.`,
      remedy: 'Recover what you need from them (they are JSON that failed to parse), then delete them.',
    });
  }
  for (const recovery of await listUnfinishedRecoveries(deps)) {
    findings.push({
      severity: 'critical',
      code: 'UNFINISHED_RECOVERY',
      volume: recovery.volume,
      message: `Recovery ${recovery.recoveryId} of ${recovery.volume} stopped at step "${recovery.step}" (started ${recovery.startedAt}).`,
      ...(recovery.volume === 'unknown'
        ? {
            // Nothing resolves a journal that does not parse: it is read by a person.
            remedy: `Inspect ${recovery.recoveryId} and remove it by hand once the volumes are in order.`,
          }
        : {
            remedy: 'Run snapguard doctor to complete or revert it.',
            remedies: {
              mcp: `Call create_snapshot with volumes ["${recovery.volume}"]: before it snapshots, it completes or reverts the interrupted recovery of that volume.`,
              cli: 'Run snapguard doctor to complete or revert it.',
            },
          }),
    });
  }
  const volumeResults: VolumeHealth[] = [];
  for (const volume of volumes) {
    const { health, findings: volumeFindings } = await checkVolume(
      deps,
      volume,
      read.history,
      now,
      call.signal,
    );
    volumeResults.push(health);
    findings.push(...volumeFindings);
  }
  if (volumes.length === 0) {
    findings.push({
      severity: 'warning',
      code: 'NO_VOLUMES',
      message: 'No volumes are configured.',
      remedy: 'Add volumes to snapguard.yaml.',
    });
  }
  const result: HealthCheckResult = {
    overall: worst(findings),
    checkedAt: now.toISOString(),
    volumes: volumeResults,
    findings,
    summary: summarize(read.history),
  };
  if (call.recordSample) await recordSamples(deps, result, now);
  return result;
}

async function recordSamples(deps: Deps, result: HealthCheckResult, now: Date): Promise<void> {
  const samples: HealthSampleEntry[] = result.volumes.flatMap((v) =>
    v.poolUsageRatio === null
      ? []
      : [
          {
            id: `hs-${randomBytes(6).toString('hex')}`,
            timestamp: now.toISOString(),
            host: deps.config.host,
            subvolume: v.volume,
            status: v.status,
            pool_usage_ratio: v.poolUsageRatio,
            pool_used_bytes: v.poolUsedBytes ?? 0,
            pool_total_bytes: v.poolTotalBytes ?? 0,
            reasons: result.findings
              .filter((f) => f.volume === v.volume && f.severity !== 'info')
              .map((f) => ({ severity: f.severity, code: f.code, message: f.message })),
          },
        ],
  );
  if (samples.length === 0) return;
  const keepAfter = now.getTime() - 90 * 86_400_000;
  await deps.history.update((history) => {
    // Only the forecast reads these: 90 days are kept, older readings are dropped.
    const kept = (history.health_samples ?? []).filter((s) => Date.parse(s.timestamp) >= keepAfter);
    history.health_samples = [...kept, ...samples].slice(-5000);
  });
}

/** Exit status for the CLI and timers: GOOD 0, WARNING 1, CRITICAL 2. */
export function healthExitCode(status: HealthStatus): number {
  return status === 'GOOD' ? 0 : status === 'WARNING' ? 1 : 2;
}
