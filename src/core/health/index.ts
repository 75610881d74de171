import { randomBytes } from 'node:crypto';
import { requireVolume, type VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import type { HealthSampleEntry, History } from '../history/schema.js';
import { parseInput } from '../validate.js';
import {
  HealthCheckInput,
  type Finding,
  type HealthCheckResult,
  type HealthStatus,
  type VolumeHealth,
} from './schemas.js';
import { listUnfinishedRecoveries } from './unfinished-recoveries.js';
import {
  checkDeviceErrors,
  checkExternals,
  checkForecast,
  checkFreshness,
  checkNewestReadable,
  checkPoolUsage,
  checkRestoreTests,
  checkSnapshotShare,
  listOwned,
  staleThresholds,
  volumeCheck,
} from './volume-checks.js';

export { forecastDays } from './volume-checks.js';

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

/** Every check of one volume, in the order its findings are reported, and the volume's summary. */
async function checkVolume(
  deps: Deps,
  volume: VolumeConfig,
  history: History,
  now: Date,
  signal?: AbortSignal,
): Promise<{ health: VolumeHealth; findings: Finding[] }> {
  const check = volumeCheck(deps, volume, history, now, signal);
  const thresholds = staleThresholds(deps, volume.tier);
  const owned = await listOwned(check);
  const newest = owned[0];
  const newestAge = checkFreshness(check, owned, thresholds);
  if (newest) await checkNewestReadable(check, newest);
  const usage = await checkPoolUsage(check);
  const { exclusive, share } = await checkSnapshotShare(check, owned, usage);
  await checkDeviceErrors(check);
  const { lastTest, lastAge, lastFull } = checkRestoreTests(check);
  const externalAgeSeconds = await checkExternals(check, thresholds);
  const forecast = checkForecast(check, usage);
  const ages = [newestAge, externalAgeSeconds].filter((a): a is number => a !== null);

  const health: VolumeHealth = {
    volume: volume.id,
    status: worst(check.findings),
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
  return { health, findings: check.findings };
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
