import type { Tier } from '../config.js';
import { formatPreserve, parsePreserve, PERIODS, type PreserveMatrix } from '../retention/policy.js';
import type { Database } from './classify.js';

export type HostType = 'laptop' | 'server' | 'vps';

export interface LocationPolicy {
  preserveMin: string;
  preserve: string;
}

export interface TierPolicy {
  frequency: 'hourly' | 'daily' | 'none';
  local: LocationPolicy | undefined;
  /** Retention of the copies on remote storage; undefined when there is none. */
  remote: LocationPolicy | undefined;
}

/**
 * Retention per tier and host type (docs/planning.md). The base follows the design tables:
 * critical hourly 7 days, daily 30, weekly 90 days; important daily 14, weekly 60 days; standard
 * daily 7, weekly 30 days. Days of weekly retention become ceil(days / 7) weeks.
 */
export const TIER_POLICIES: Record<
  HostType,
  Record<Exclude<Tier, 'temporary'>, { local: string; remote: string }>
> = {
  // Local first and longer local history: a laptop is often away from its backup target.
  laptop: {
    critical: { local: '168h 60d 26w 12m', remote: '30d 13w 12m' },
    important: { local: '30d 13w 6m', remote: '14d 9w 6m' },
    standard: { local: '14d 5w', remote: '7d 5w' },
  },
  // The design tables locally, plus a longer history on the remote target.
  server: {
    critical: { local: '168h 30d 13w', remote: '30d 13w 12m 2y' },
    important: { local: '14d 9w', remote: '14d 9w 12m' },
    standard: { local: '7d 5w', remote: '7d 5w' },
  },
  // Remote first: local disk is small and billed, the remote copy carries the history.
  vps: {
    critical: { local: '48h 7d', remote: '30d 13w 12m' },
    important: { local: '7d', remote: '14d 9w 6m' },
    standard: { local: '3d', remote: '7d 5w' },
  },
};

/** Default daily change rates (share of the volume rewritten per day) used for the space estimate. */
export const DEFAULT_CHANGE_RATES: Record<Tier, number> = {
  critical: 0.005,
  important: 0.005,
  standard: 0.02,
  temporary: 0,
};

export function tierPolicy(host: HostType, tier: Tier, rpoSeconds: number, remote: boolean): TierPolicy {
  if (tier === 'temporary') return { frequency: 'none', local: undefined, remote: undefined };
  const row = TIER_POLICIES[host][tier];
  return {
    frequency: rpoSeconds < 86_400 ? 'hourly' : 'daily',
    local: { preserveMin: 'latest', preserve: row.local },
    remote: remote ? { preserveMin: 'latest', preserve: row.remote } : undefined,
  };
}

const PERIOD_DAYS: Record<(typeof PERIODS)[number], number> = {
  h: 1 / 24,
  d: 1,
  w: 7,
  m: 30.44,
  y: 365.25,
};

/** How many days back the oldest kept snapshot reaches, and how many snapshots are kept at most. */
export function retentionSpan(preserve: string): { days: number; snapshots: number } {
  const matrix = parsePreserve(preserve);
  let days = 0;
  let snapshots = 1;
  for (const period of PERIODS) {
    const count = matrix[period];
    if (count === undefined || count === 'all') continue;
    days = Math.max(days, count * PERIOD_DAYS[period]);
    snapshots += count;
  }
  return { days, snapshots };
}

/**
 * Space the snapshots of one volume take, as an upper bound: every day rewrites `changeRate` of
 * the volume with new blocks that the oldest kept snapshot still references, so the snapshots
 * hold size x rate x (days covered), but never more than one full copy per kept snapshot.
 */
export function estimateSnapshotBytes(
  sizeBytes: number,
  changeRate: number,
  preserve: string | undefined,
): number {
  if (!preserve) return 0;
  const span = retentionSpan(preserve);
  return Math.round(Math.min(sizeBytes * changeRate * Math.max(span.days, 1), sizeBytes * span.snapshots));
}

/** Scales every count of a preserve string by `factor` (at least 1 of each period kept). */
export function scalePreserve(preserve: string, factor: number): string {
  const matrix = parsePreserve(preserve);
  const scaled: PreserveMatrix = {};
  for (const period of PERIODS) {
    const count = matrix[period];
    if (count === undefined) continue;
    scaled[period] = count === 'all' ? 'all' : Math.max(1, Math.floor(count * factor));
  }
  return formatPreserve(scaled);
}

export const FIT_FACTORS = [1, 0.75, 0.5, 0.35, 0.25, 0.15, 0.1] as const;

export type LocalMethod = 'btrfs-snapshot' | 'zfs-snapshot' | 'reflink-copy' | 'none';
export type RemoteMethod = 'btrfs-send-receive' | 'zfs-send-receive' | 'restic' | 'none';

export interface Methods {
  local: LocalMethod;
  remote: RemoteMethod;
  /** For databases: the native tool that makes a consistent backup (snapshots alone are crash-consistent). */
  database?: { tool: string; why: string };
}

const DATABASE_TOOLS: Record<Database, string> = {
  postgresql: 'pgbackrest (full + incremental backups with WAL archiving)',
  mysql: 'mariadb-backup / mysqldump --single-transaction',
  mongodb: 'mongodump',
  redis: 'redis-cli BGSAVE, then snapshot the dump',
  sqlite: 'sqlite3 .backup',
};

export function chooseMethods(
  host: HostType,
  tier: Tier,
  backend: 'btrfs' | 'zfs' | 'dir',
  remote: boolean,
  database: Database | undefined,
): Methods {
  if (tier === 'temporary') return { local: 'none', remote: 'none' };
  const local: LocalMethod =
    backend === 'btrfs' ? 'btrfs-snapshot' : backend === 'zfs' ? 'zfs-snapshot' : 'reflink-copy';
  let remoteMethod: RemoteMethod = 'none';
  if (remote) {
    // A VPS pays for storage and transfer: restic deduplicates and compresses; elsewhere a
    // received snapshot is restorable at once.
    if (host === 'vps' || backend === 'dir') remoteMethod = 'restic';
    else remoteMethod = backend === 'zfs' ? 'zfs-send-receive' : 'btrfs-send-receive';
  }
  return {
    local,
    remote: remoteMethod,
    ...(database
      ? {
          database: {
            tool: DATABASE_TOOLS[database],
            why: 'a filesystem snapshot of a running database is only crash-consistent; the native tool gives a consistent, point-in-time restorable backup',
          },
        }
      : {}),
  };
}
