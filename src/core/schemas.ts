import { z } from 'zod';
import { SnapshotNameSchema, OperationSchema, SnapshotTypeSchema } from './naming.js';
import { SnapshotOutcomeSchema } from './history/schema.js';
import { VOLUME_ID_PATTERN } from './config.js';

/** Shared by the MCP output schemas, the CLI's --json and the docs. */
export const VolumeIdSchema = z
  .string()
  .max(64, 'volume ids are at most 64 characters')
  .regex(VOLUME_ID_PATTERN, 'volume ids are lowercase letters, digits, ".", "_" and "-"');

export const LocationSchema = z.enum(['local', 'external']);

export const SnapshotSchema = z.object({
  name: z.string(),
  volume: z.string(),
  path: z.string(),
  type: SnapshotTypeSchema.optional().describe('absent for foreign snapshots'),
  operation: z.string().optional(),
  operationId: z.string().optional(),
  createdAt: z.string().describe('ISO 8601, UTC'),
  readOnly: z.boolean(),
  location: LocationSchema,
  outcome: SnapshotOutcomeSchema.optional(),
  meaning: z
    .string()
    .optional()
    .describe(
      'what this snapshot holds, in words: e.g. the state before a failed operation (the good state to return to), or the state a recovery replaced',
    ),
  replacedBy: z
    .string()
    .optional()
    .describe('pre-recover snapshots: the recovery id that replaced the state this snapshot holds'),
  rollbackPointOf: z
    .array(z.string())
    .optional()
    .describe(
      'operation ids that reuse this snapshot as their rollback point (the volume was unchanged since)',
    ),
});
export type Snapshot = z.infer<typeof SnapshotSchema>;

export const ListedSnapshotSchema = SnapshotSchema.extend({
  ageSeconds: z.number(),
  owned: z.boolean().describe('false for snapshots made by other tools; snapguard never changes those'),
});
export type ListedSnapshot = z.infer<typeof ListedSnapshotSchema>;

export const OPERATION_ID_PATTERN = /^op-\d{8}-\d{6}-[0-9a-f]{6}$/;
export const OperationIdSchema = z
  .string()
  .max(64)
  .regex(
    OPERATION_ID_PATTERN,
    'operation ids look like op-20261121-143000-1a2b3c (returned by create_snapshot)',
  );

export const CreateSnapshotInput = z.object({
  volumes: z.array(VolumeIdSchema).min(1, 'name at least one volume').max(64),
  type: SnapshotTypeSchema.default('manual'),
  operation: OperationSchema.optional(),
  force: z.boolean().default(false),
  dryRun: z.boolean().default(false),
});
export type CreateSnapshotRequest = z.input<typeof CreateSnapshotInput>;

export const SkippedSchema = z.object({
  volume: z.string(),
  reason: z.string(),
  existing: SnapshotSchema.optional(),
});

export const CreateSnapshotResultSchema = z.object({
  operationId: z.string(),
  dryRun: z.boolean(),
  created: z.array(SnapshotSchema),
  planned: z.array(SnapshotSchema).describe('what a dry run would create; empty otherwise'),
  skipped: z.array(SkippedSchema),
  warnings: z.array(z.string()),
});
export type CreateSnapshotResult = z.infer<typeof CreateSnapshotResultSchema>;

export const ListSnapshotsInput = z.object({
  volume: VolumeIdSchema.optional(),
  type: SnapshotTypeSchema.optional(),
  operation: OperationSchema.optional(),
  location: z.enum(['local', 'external', 'all']).default('local'),
  since: z.string().max(64).optional().describe('a duration back from now (24h, 7d) or an ISO 8601 time'),
  limit: z.number().int().min(1).max(100_000).optional(),
  includeForeign: z.boolean().default(false),
});
export type ListSnapshotsRequest = z.input<typeof ListSnapshotsInput>;

export const ListSnapshotsResultSchema = z.object({
  snapshots: z.array(ListedSnapshotSchema),
  total: z.number().int().describe('matches before the limit was applied'),
});
export type ListSnapshotsResult = z.infer<typeof ListSnapshotsResultSchema>;

export const CompleteOperationInput = z.object({
  operationId: OperationIdSchema,
  outcome: z.enum(['success', 'failed']),
  notes: z.string().max(2000).optional(),
  dryRun: z.boolean().default(false),
});
export type CompleteOperationRequest = z.input<typeof CompleteOperationInput>;

export const CompleteOperationResultSchema = z.object({
  operationId: z.string(),
  outcome: z.enum(['success', 'failed']),
  dryRun: z.boolean(),
  snapshots: z.array(SnapshotSchema),
});
export type CompleteOperationResult = z.infer<typeof CompleteOperationResultSchema>;

export { SnapshotNameSchema };
