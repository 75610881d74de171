import { z } from 'zod';
import { VolumeIdSchema } from '../schemas.js';

export const HEALTH_STATUSES = ['GOOD', 'WARNING', 'CRITICAL'] as const;
export const HealthStatusSchema = z.enum(HEALTH_STATUSES);
export type HealthStatus = z.infer<typeof HealthStatusSchema>;

export const HealthCheckInput = z.object({
  volume: VolumeIdSchema.optional().describe('one volume; all configured volumes when left out'),
});

export const FindingSchema = z.object({
  severity: z.enum(['info', 'warning', 'critical']),
  code: z.string().describe('stable code, e.g. SNAPSHOT_STALE, DEVICE_ERRORS, RESTORE_TEST_OVERDUE'),
  volume: z.string().optional(),
  message: z.string(),
  remedy: z.string(),
  remedies: z
    .object({ mcp: z.string(), cli: z.string() })
    .optional()
    .describe(
      'the remedy in the words of each interface (MCP tool calls, CLI verbs), when it names commands',
    ),
});
export type Finding = z.infer<typeof FindingSchema>;

export const VolumeHealthSchema = z.object({
  volume: z.string(),
  status: HealthStatusSchema,
  tier: z.string(),
  snapshots: z.number().int(),
  newestSnapshot: z.string().nullable(),
  newestSnapshotAgeSeconds: z.number().nullable(),
  newestExternalAgeSeconds: z.number().nullable().describe('age of the newest external copy; null when none'),
  rpoSeconds: z.number().nullable().describe('current RPO: age of the newest copy, local or external'),
  poolUsageRatio: z.number().nullable(),
  poolUsedBytes: z.number().nullable(),
  poolTotalBytes: z.number().nullable(),
  snapshotExclusiveBytes: z
    .number()
    .nullable()
    .describe(
      'sum of exclusive sizes of the owned snapshots from btrfs qgroups; null = unknown (quotas off)',
    ),
  snapshotShare: z.number().nullable(),
  forecastDaysToMaxUsage: z
    .number()
    .nullable()
    .describe('days until maxPoolUsage at the recorded growth; null = no growth or too few samples'),
  lastRestoreTest: z
    .object({
      timestamp: z.string(),
      outcome: z.enum(['pass', 'fail']),
      mode: z.string(),
      source: z.string(),
      ageSeconds: z.number(),
    })
    .nullable(),
  rtoEstimateSeconds: z.number().nullable().describe('from the newest full restore drill'),
});
export type VolumeHealth = z.infer<typeof VolumeHealthSchema>;

export const HealthSummarySchema = z.object({
  deployments: z
    .number()
    .int()
    .describe('deployments known to the history (pre-deploy operations and orchestrations)'),
  deploymentsWithSnapshotShare: z.number().nullable(),
  recoveries: z.number().int(),
  recoverySuccessRate: z.number().nullable(),
  meanRecoverySeconds: z.number().nullable(),
});

export const HealthCheckResultSchema = z.object({
  overall: HealthStatusSchema,
  checkedAt: z.string(),
  volumes: z.array(VolumeHealthSchema),
  findings: z.array(FindingSchema),
  summary: HealthSummarySchema,
});
export type HealthCheckResult = z.infer<typeof HealthCheckResultSchema>;
