import { z } from 'zod';
import { SnapshotTypeSchema } from '../naming.js';

/**
 * The layout of backup-history.json. homelab-deployment scripts read it with jq, so keys are
 * snake_case and the layout of the original design is kept. Objects are loose: keys written by a
 * newer snapguard survive a rewrite by an older one.
 */
export const SNAPSHOT_OUTCOMES = [
  'pending',
  'success',
  'failed',
  'validation_failed',
  'command_failed',
] as const;
export const SnapshotOutcomeSchema = z.enum(SNAPSHOT_OUTCOMES);

const isoTime = z.string().describe('ISO 8601 time in UTC');

export const SnapshotEntrySchema = z.looseObject({
  id: z.string(),
  timestamp: isoTime,
  host: z.string(),
  subvolume: z.string().describe('the snapguard volume id'),
  type: SnapshotTypeSchema,
  operation: z.string().nullable(),
  operation_id: z.string().nullable(),
  snapshot_name: z.string(),
  path: z.string(),
  outcome: SnapshotOutcomeSchema,
  size_mb: z.number().nullable().describe('exclusive size in MiB when known (btrfs qgroups), else null'),
  backend: z.enum(['btrfs', 'zfs', 'dir']).optional(),
  read_only: z.boolean().optional(),
  completed_at: isoTime.optional(),
  notes: z.string().optional(),
  location: z
    .enum(['local', 'external'])
    .optional()
    .describe('external: a replicated copy on a backup target (absent means local)'),
  replicated_from: z.string().optional().describe('path of the local snapshot a copy was sent from'),
  incremental_parent: z
    .string()
    .nullable()
    .optional()
    .describe('snapshot the copy was sent incrementally against; null for a full send'),
  deleted_at: isoTime
    .optional()
    .describe('set when prune_snapshots deleted the snapshot, or when doctor found it gone from disk'),
  reused_by: z
    .array(
      z.looseObject({
        operation_id: z.string(),
        operation: z.string().nullable(),
        type: SnapshotTypeSchema,
        timestamp: isoTime,
        outcome: SnapshotOutcomeSchema,
        completed_at: isoTime.optional(),
        notes: z.string().optional(),
      }),
    )
    .optional()
    .describe(
      'later operations this snapshot is the rollback point of: create_snapshot found the volume unchanged since it (within minInterval) and took no new one; each has its own outcome',
    ),
});

export const RecoveryEntrySchema = z.looseObject({
  id: z.string(),
  timestamp: isoTime,
  host: z.string().optional(),
  subvolume: z.string(),
  restored_snapshot: z.string(),
  mode: z.enum(['rollback', 'files']),
  paths: z.array(z.string()),
  reason: z.string().nullable(),
  duration_seconds: z.number(),
  outcome: z.enum(['success', 'failed', 'reverted']),
  safety_backup: z.string().nullable(),
  operation_id: z.string().nullable().optional(),
  validation: z
    .array(z.looseObject({ check: z.string(), ok: z.boolean(), detail: z.string().optional() }))
    .optional(),
  recovery_id: z
    .string()
    .optional()
    .describe('the recovery this entry belongs to (one per volume when an operation is recovered)'),
  notes: z.string().optional().describe('e.g. how doctor finished an interrupted recovery'),
  destination: z
    .enum(['in-place', 'beside'])
    .optional()
    .describe('files mode: beside wrote the snapshot versions under new names (absent means in place)'),
  written: z
    .array(z.string())
    .optional()
    .describe('destination beside: the new paths written, relative to the volume root'),
});

export const RestoreTestEntrySchema = z.looseObject({
  id: z.string(),
  timestamp: isoTime,
  host: z.string().optional(),
  subvolume: z.string(),
  snapshot: z.string(),
  source: z.enum(['local', 'external', 'restic']),
  mode: z.enum(['sample', 'full']),
  files_checked: z.number().int(),
  bytes: z.number(),
  duration_seconds: z.number(),
  outcome: z.enum(['pass', 'fail']),
  failures: z.array(
    z.looseObject({
      path: z.string(),
      check: z.string(),
      expected: z.string().optional(),
      actual: z.string().optional(),
    }),
  ),
  population: z.number().int().optional().describe('files in the tree the sample was drawn from'),
  seed: z.number().int().optional().describe('seed of the sample; the same seed picks the same files'),
  throughput_bytes_per_second: z.number().optional(),
  rto_estimate_seconds: z
    .number()
    .nullable()
    .optional()
    .describe("full mode: restore time for the volume's current size at the measured throughput"),
  not_covered: z
    .array(z.looseObject({ path: z.string(), kind: z.string() }))
    .optional()
    .describe('nested subvolumes and mount points inside the volume, which the test did not cover'),
});

/** One health check's pool reading per volume: the series the pool-usage forecast is fitted to. */
export const HealthSampleEntrySchema = z.looseObject({
  id: z.string(),
  timestamp: isoTime,
  host: z.string().optional(),
  subvolume: z.string(),
  status: z.enum(['GOOD', 'WARNING', 'CRITICAL']),
  pool_usage_ratio: z.number(),
  pool_used_bytes: z.number(),
  pool_total_bytes: z.number(),
  reasons: z
    .array(z.looseObject({ severity: z.string(), code: z.string(), message: z.string() }))
    .optional()
    .describe('the warning and critical findings of this volume in that check (why it was not GOOD)'),
});

export const OrchestrationEntrySchema = z.looseObject({
  id: z.string(),
  timestamp: isoTime,
  host: z.string().optional(),
  exit_code: z.union([z.literal(0), z.literal(1), z.literal(2)]),
  status: z.string().optional(),
  stages: z.array(
    z.looseObject({
      name: z.string(),
      status: z.string(),
      critical: z.boolean().optional(),
      jobs: z
        .array(
          z.looseObject({
            id: z.string(),
            kind: z.string(),
            result: z
              .string()
              .describe('verified | succeeded-unverified | failed | timeout | cancelled | skipped'),
            duration_seconds: z.number(),
            detail: z.string().optional(),
            unit: z.string().optional(),
            already_running: z.boolean().optional(),
          }),
        )
        .optional(),
    }),
  ),
  duration_seconds: z.number(),
  failures: z
    .array(z.looseObject({ stage: z.string(), job: z.string(), result: z.string(), detail: z.string() }))
    .optional(),
  preflight: z
    .array(z.looseObject({ check: z.string(), ok: z.boolean(), detail: z.string() }))
    .optional()
    .describe('the pre-flight checks that failed'),
  stopped_units: z
    .array(z.string())
    .optional()
    .describe('units this run started and stopped (timeout, cancel)'),
});

export const PruneEntrySchema = z.looseObject({
  id: z.string(),
  timestamp: isoTime,
  host: z.string().optional(),
  subvolume: z.string(),
  location: z.enum(['local', 'external']),
  location_path: z.string(),
  policy: z.string().describe('the retention applied, e.g. "preserveMin latest, preserve 24h 7d 4w 12m"'),
  deleted: z.array(z.looseObject({ snapshot_name: z.string(), reason: z.string() })),
  failed: z.array(z.looseObject({ snapshot_name: z.string(), error: z.string() })),
  kept: z.number().int(),
  duration_seconds: z.number(),
});

export const HistorySchema = z
  .looseObject({
    version: z.literal(1),
    snapshots: z.array(SnapshotEntrySchema),
    recoveries: z.array(RecoveryEntrySchema),
    restore_tests: z.array(RestoreTestEntrySchema),
    orchestrations: z.array(OrchestrationEntrySchema),
    health_samples: z.array(HealthSampleEntrySchema).optional(),
    prunes: z.array(PruneEntrySchema).optional().describe('snapshot deletions by prune_snapshots'),
  })
  .describe('snapguard backup history: snapshots, recoveries, restore tests and orchestrations of one host');

export type SnapshotEntry = z.infer<typeof SnapshotEntrySchema>;
export type SnapshotReuse = NonNullable<SnapshotEntry['reused_by']>[number];
export type RecoveryEntry = z.infer<typeof RecoveryEntrySchema>;
export type RestoreTestEntry = z.infer<typeof RestoreTestEntrySchema>;
export type OrchestrationEntry = z.infer<typeof OrchestrationEntrySchema>;
export type HealthSampleEntry = z.infer<typeof HealthSampleEntrySchema>;
export type PruneEntry = z.infer<typeof PruneEntrySchema>;
export type History = z.infer<typeof HistorySchema>;

export const HISTORY_SECTIONS = ['snapshots', 'recoveries', 'restore_tests', 'orchestrations'] as const;
export type HistorySection = (typeof HISTORY_SECTIONS)[number];

/**
 * What a file must look like to be read at all. Entries are not validated one by one on read: a
 * hand-edited entry must not make snapguard set the whole file aside.
 */
export const HistoryFileShape = z.looseObject({
  version: z.number().optional(),
  snapshots: z.array(z.looseObject({})).default([]),
  recoveries: z.array(z.looseObject({})).default([]),
  restore_tests: z.array(z.looseObject({})).default([]),
  orchestrations: z.array(z.looseObject({})).default([]),
  health_samples: z.array(z.looseObject({})).optional(),
});

export function emptyHistory(): History {
  return { version: 1, snapshots: [], recoveries: [], restore_tests: [], orchestrations: [] };
}

export function historyJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://snapguard.dev/schema/backup-history.schema.json',
    ...z.toJSONSchema(HistorySchema, { target: 'draft-2020-12', io: 'output' }),
    title: 'backup-history.json',
  };
}
