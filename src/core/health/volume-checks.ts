import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { PoolUsage, RawSnapshot, SnapshotBackend } from '../../backends/types.js';
import { pathUnder } from '../byte-names.js';
import type { Tier, VolumeConfig } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError, textFor, type InterfaceHint } from '../errors.js';
import type { History } from '../history/schema.js';
import { listAt, snapshotLocations } from '../locations.js';
import { parseSnapshotName } from '../naming.js';
import { hashFile, errorCode } from '../restore-test/files.js';
import { sampleTree } from '../restore-test/sampler.js';
import { ownedSnapshots } from '../snapshots.js';
import { formatBytes, formatDuration } from '../units.js';
import type { Finding } from './schemas.js';

// The checks health runs on one volume, each a function of its own: every one adds its findings
// and returns what the volume's summary needs.

/**
 * Newest-snapshot age thresholds per tier, in the spirit of sanoid's monitor (warn a little after
 * the expected interval, critical when a whole interval was missed). Overridable per tier with
 * health.staleAfter in the config.
 */
const DEFAULT_STALE_AFTER: Record<Tier, { warn: number; crit: number } | undefined> = {
  critical: { warn: 28 * 3600, crit: 48 * 3600 },
  important: { warn: 52 * 3600, crit: 4 * 86_400 },
  standard: { warn: 8 * 86_400, crit: 15 * 86_400 },
  temporary: undefined,
};

const GAP_WINDOW_SECONDS = 30 * 86_400;
const READ_SAMPLE_FILES = 5;
const FORECAST_WARN_DAYS = 30;
const FORECAST_CRIT_DAYS = 7;

type Thresholds = { warn: number; crit: number } | undefined;
type Owned = { raw: RawSnapshot; createdAt: Date }[];

/** What every check of one volume works with. */
export interface VolumeCheck {
  deps: Deps;
  volume: VolumeConfig;
  backend: SnapshotBackend;
  history: History;
  now: Date;
  signal?: AbortSignal | undefined;
  findings: Finding[];
  /** Adds a finding; a remedy that names commands comes in both forms (the CLI's verbs and the MCP tools' calls). */
  add(severity: Finding['severity'], code: string, message: string, remedy: string | InterfaceHint): void;
}

export function volumeCheck(
  deps: Deps,
  volume: VolumeConfig,
  history: History,
  now: Date,
  signal?: AbortSignal,
): VolumeCheck {
  const findings: Finding[] = [];
  return {
    deps,
    volume,
    backend: deps.backendFor(volume),
    history,
    now,
    signal,
    findings,
    add: (severity, code, message, remedy) =>
      findings.push({
        severity,
        code,
        volume: volume.id,
        message,
        remedy: textFor(remedy, 'cli'),
        ...(typeof remedy === 'string' ? {} : { remedies: remedy }),
      }),
  };
}

const cancelled = (error: unknown) => error instanceof SnapguardError && error.code === 'CANCELLED';

export function staleThresholds(deps: Deps, tier: Tier): Thresholds {
  return deps.config.health.staleAfter?.[tier] ?? DEFAULT_STALE_AFTER[tier];
}

/** The volume's own snapshots, newest first; SNAPSHOTS_UNLISTABLE when they cannot be listed. */
export async function listOwned(check: VolumeCheck): Promise<Owned> {
  try {
    return await ownedSnapshots(check.deps, check.volume, check.signal);
  } catch (error) {
    if (cancelled(error)) throw error;
    check.add(
      'critical',
      'SNAPSHOTS_UNLISTABLE',
      `Cannot list the snapshots of ${check.volume.id}: ${(error as Error).message}`,
      'Check that the volume and its snapshotDir are mounted and readable.',
    );
    return [];
  }
}

/** NO_SNAPSHOTS, SNAPSHOT_STALE and SNAPSHOT_GAPS; returns the newest snapshot's age in seconds. */
export function checkFreshness(check: VolumeCheck, owned: Owned, thresholds: Thresholds): number | null {
  const { volume, now, add } = check;
  const newest = owned[0];
  const newestAge = newest ? Math.max(0, (now.getTime() - newest.createdAt.getTime()) / 1000) : null;
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
    checkGaps(check, owned, thresholds);
  }
  add('info', 'SNAPSHOT_COUNT', `${volume.id} has ${owned.length} snapguard snapshot(s).`, 'None needed.');
  return newestAge;
}

function checkGaps(check: VolumeCheck, owned: Owned, thresholds: { warn: number; crit: number }): void {
  const windowStart = check.now.getTime() - GAP_WINDOW_SECONDS * 1000;
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
    check.add(
      'warning',
      'SNAPSHOT_GAPS',
      `${gaps.length} gap(s) longer than ${formatDuration(thresholds.crit)} between snapshots of ${check.volume.id} in the last 30 days: ${gaps.slice(0, 5).join('; ')}.`,
      'Look at the snapshot timer logs for those days (missed runs, full pool, host down).',
    );
  }
}

/** SNAPSHOT_UNREADABLE when files of a sample of the newest snapshot cannot be read. */
export async function checkNewestReadable(check: VolumeCheck, newest: Owned[number]): Promise<void> {
  const { volume, backend, signal, add } = check;
  // A snapshot without a plain readable path (zfs) is opened through its backend (closed below).
  let reader: { path: string; close(): Promise<void> } | undefined;
  try {
    if (backend.openSnapshot) reader = await backend.openSnapshot(volume, newest.raw.name, { signal });
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

/** The pool's usage (POOL_USAGE_UNKNOWN when it cannot be read) and POOL_USAGE against maxPoolUsage. */
export async function checkPoolUsage(check: VolumeCheck): Promise<PoolUsage | undefined> {
  const { volume, add } = check;
  let usage: PoolUsage | undefined;
  try {
    usage = await check.backend.poolUsage(volume, { signal: check.signal });
  } catch (error) {
    add(
      'warning',
      'POOL_USAGE_UNKNOWN',
      `Cannot read the pool usage of ${volume.id}: ${(error as Error).message}`,
      'Check that the volume is mounted.',
    );
    return undefined;
  }
  const maxUsage = check.deps.config.health.maxPoolUsage;
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
  return usage;
}

/**
 * The bytes the volume's snapshots hold exclusively and their share of the pool, as the backend
 * accounts them: summed from the listing (zfs `used`) or asked per snapshot id (btrfs qgroups;
 * SNAPSHOT_SHARE_UNKNOWN when quotas are off). SNAPSHOT_SHARE above health.maxSnapshotShare.
 */
export async function checkSnapshotShare(
  check: VolumeCheck,
  owned: Owned,
  usage: PoolUsage | undefined,
): Promise<{ exclusive: number | null; share: number | null }> {
  const { volume, backend, add } = check;
  const limit = check.deps.config.health.maxSnapshotShare;
  let exclusive: number | null = null;
  let share: number | null = null;
  const judge = (total: number, advice: string) => {
    exclusive = total;
    if (usage && usage.totalBytes > 0) share = total / usage.totalBytes;
    if (share !== null && share >= limit) {
      add(
        'warning',
        'SNAPSHOT_SHARE',
        `Snapshots of ${volume.id} hold ${formatBytes(total)} exclusively, ${(share * 100).toFixed(1)}% of the pool (limit ${(limit * 100).toFixed(0)}%).`,
        {
          cli: `Prune old snapshots (snapguard prune ${volume.id}) or ${advice}.`,
          mcp: `Prune old snapshots (call prune_snapshots with volume "${volume.id}") or ${advice}.`,
        },
      );
    }
  };
  if (backend.listsUsedBytes && owned.every((s) => s.raw.usedBytes !== undefined)) {
    judge(
      owned.reduce((sum, s) => sum + (s.raw.usedBytes ?? 0), 0),
      'raise health.maxSnapshotShare',
    );
  }
  if (backend.exclusiveBytes) {
    try {
      const sizes = await backend.exclusiveBytes(volume, { signal: check.signal });
      judge(
        owned.reduce((sum, s) => sum + (s.raw.id ? (sizes.get(s.raw.id) ?? 0) : 0), 0),
        'tighten the retention',
      );
    } catch (error) {
      if (cancelled(error)) throw error;
      add(
        'info',
        'SNAPSHOT_SHARE_UNKNOWN',
        `Exclusive snapshot sizes of ${volume.id} are unknown: btrfs quotas (qgroups) are not enabled.`,
        'Enable them with `btrfs quota enable` on the pool if you want snapshot sizes (it costs some write performance).',
      );
    }
  }
  return { exclusive, share };
}

/** DEVICE_ERRORS when the pool's device error counters are not zero. */
export async function checkDeviceErrors(check: VolumeCheck): Promise<void> {
  const { volume, backend, add } = check;
  if (!backend.deviceErrors) return;
  try {
    const errors = await backend.deviceErrors(volume, { signal: check.signal });
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
    if (cancelled(error)) throw error;
    add(
      'warning',
      'DEVICE_STATS_UNKNOWN',
      `Cannot read btrfs device stats of ${volume.id}: ${(error as Error).message}`,
      'Run `btrfs device stats` on the pool by hand.',
    );
  }
}

type RestoreTest = History['restore_tests'][number];

/** RESTORE_TEST_NEVER, RESTORE_TEST_FAILED, RESTORE_TEST_OVERDUE; returns the last test, its age and the last full one. */
export function checkRestoreTests(check: VolumeCheck): {
  lastTest: RestoreTest | undefined;
  lastAge: number | null;
  lastFull: RestoreTest | undefined;
} {
  const { volume, now, add, deps } = check;
  const tests = check.history.restore_tests
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
  return { lastTest, lastAge, lastFull };
}

/** The age of the newest copy over every external location, adding EXTERNAL_UNAVAILABLE for each that cannot be read. */
async function externalAge(check: VolumeCheck): Promise<number | null> {
  const { deps, volume, now, signal } = check;
  let newest: number | null = null;
  for (const location of snapshotLocations(volume)) {
    if (location.location === 'local') continue;
    try {
      if (location.dir && !existsSync(location.dir)) {
        check.findings.push({
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
      if (cancelled(error)) throw error;
      check.findings.push({
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

/** EXTERNAL_MISSING, EXTERNAL_STALE and EXTERNAL_NONE; returns the newest external copy's age in seconds. */
export async function checkExternals(check: VolumeCheck, thresholds: Thresholds): Promise<number | null> {
  const { volume, add } = check;
  const age = volume.external.length > 0 ? await externalAge(check) : null;
  if (volume.external.length > 0 && thresholds) {
    if (age === null) {
      add(
        'warning',
        'EXTERNAL_MISSING',
        `No external copy of ${volume.id} was found.`,
        'Run the replication (btrfs send/receive or restic backup) to the configured target.',
      );
    } else if (age > thresholds.crit * 7) {
      add(
        'warning',
        'EXTERNAL_STALE',
        `Newest external copy of ${volume.id} is ${formatDuration(age)} old.`,
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
  return age;
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

/** POOL_FORECAST from the usage recorded by earlier health checks and this one; returns the days to maxPoolUsage. */
export function checkForecast(check: VolumeCheck, usage: PoolUsage | undefined): number | null {
  if (!usage) return null;
  const { volume, now, add } = check;
  const windowStart = now.getTime() - GAP_WINDOW_SECONDS * 1000;
  const series = (check.history.health_samples ?? [])
    .filter((s) => s.subvolume === volume.id && Date.parse(s.timestamp) >= windowStart)
    .map((s) => ({ time: Date.parse(s.timestamp), ratio: s.pool_usage_ratio }))
    .concat([{ time: now.getTime(), ratio: usage.ratio }])
    .sort((a, b) => a.time - b.time);
  const forecast = forecastDays(series, check.deps.config.health.maxPoolUsage);
  if (forecast === null) return null;
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
  return forecast;
}
