import { z } from 'zod';
import { OperationIdSchema, SnapshotNameSchema, VolumeIdSchema } from '../schemas.js';

export const RecoverInput = z.object({
  volume: VolumeIdSchema.optional().describe('the volume to recover (with snapshot); or give operationId'),
  snapshot: SnapshotNameSchema.optional().describe(
    'an owned snapshot of the volume, as listed by list_snapshots',
  ),
  operationId: OperationIdSchema.optional().describe(
    'instead of volume + snapshot: roll back every volume that operation snapshotted, together',
  ),
  mode: z.enum(['rollback', 'files']).default('rollback'),
  paths: z
    .array(z.string().max(4096))
    .max(1000)
    .optional()
    .describe('files mode: paths relative to the volume root ("." for the whole tree)'),
  pathsBase64: z
    .array(z.string().max(5464))
    .max(1000)
    .optional()
    .describe(
      'files mode: paths given as base64 of their bytes, for names that are not UTF-8 (pathBase64 of find_deleted and file_versions); in place only UTF-8 names, beside any',
    ),
  destination: z
    .enum(['in-place', 'beside'])
    .default('in-place')
    .describe(
      "files mode: in-place (default) replaces the paths, behind the confirmation gate; beside writes the snapshot's version next to each original as NAME.snapguard-YYYYMMDD-HHMMSS (the snapshot's time), never overwriting anything, so it needs no confirmation",
    ),
  reason: z.string().max(500).optional(),
  confirmationToken: z.string().max(1024).optional(),
  dryRun: z.boolean().default(false),
});
export type RecoverRequest = z.input<typeof RecoverInput>;

const PathList = z.object({ count: z.number().int(), first: z.array(z.string()) });
export const ChangeSummarySchema = z.object({
  method: z.enum(['btrfs-send', 'walk']),
  added: PathList.describe('paths the recovery brings back'),
  removed: PathList.describe('paths that exist now and will be gone (kept in the safety snapshot)'),
  modified: PathList,
  metadataOnly: PathList,
  truncated: z.boolean().describe('true when a list shows fewer paths than its count'),
  durationSeconds: z.number(),
});

export const PlannedVolumeSchema = z.object({
  volume: z.string(),
  snapshot: z.string(),
  snapshotPath: z.string(),
  volumePath: z.string(),
  safetyBackup: z.string().describe('the pre-recover snapshot that will keep the current state'),
  paths: z.array(z.string()).optional(),
  removeOnly: z.array(z.string()).optional(),
  services: z.object({ units: z.array(z.string()), scope: z.enum(['system', 'user']) }),
  validate: z.array(z.string()),
  changes: ChangeSummarySchema.optional(),
  backend: z.enum(['btrfs', 'zfs', 'dir']).optional(),
  newerSnapshots: z
    .array(z.object({ name: z.string(), producer: z.string().optional(), effect: z.string() }))
    .optional()
    .describe('zfs: every snapshot newer than the target and what the recovery does to it (nothing)'),
  newerSnapshotsEffect: z.string().optional(),
  nestedSubvolumes: z
    .array(z.string())
    .optional()
    .describe(
      'nested subvolumes under the touched paths (relative): not part of any snapshot, so moved into the new tree (rollback) or left in place (files), with their current files',
    ),
});

export const RecoveryPlanSchema = z.object({
  mode: z.enum(['rollback', 'files']),
  operationId: z.string().optional(),
  reason: z.string().optional(),
  volumes: z.array(PlannedVolumeSchema),
  steps: z.array(z.string()),
  warnings: z.array(z.string()),
});
export type RecoveryPlan = z.infer<typeof RecoveryPlanSchema>;

export const ValidationCheckSchema = z.object({
  volume: z.string(),
  check: z.string(),
  ok: z.boolean(),
  detail: z.string().optional(),
});
export type ValidationCheck = z.infer<typeof ValidationCheckSchema>;

export const ResolvedRecoverySchema = z.object({
  recoveryId: z.string(),
  volumes: z.array(z.string()),
  action: z.enum(['completed', 'reverted', 'in-progress', 'unreadable', 'refused']),
  outcome: z.enum(['success', 'failed', 'reverted']).optional(),
  detail: z.string(),
});
export type ResolvedRecovery = z.infer<typeof ResolvedRecoverySchema>;

export const RecoverResultSchema = z.object({
  status: z.enum(['planned', 'confirmation_required', 'declined', 'cancelled', 'recovered', 'failed']),
  plan: RecoveryPlanSchema.optional(),
  confirmationToken: z.string().optional(),
  expiresAt: z.string().optional(),
  recoveryId: z.string().optional(),
  safetyBackup: z.string().optional().describe('the first safety snapshot; all of them are in volumes'),
  volumes: z
    .array(
      z.object({
        volume: z.string(),
        snapshot: z.string(),
        safetyBackup: z.string(),
        outcome: z.enum(['success', 'failed', 'reverted']),
      }),
    )
    .optional(),
  durationSeconds: z.number().optional(),
  validation: z.array(ValidationCheckSchema).optional(),
  message: z.string().optional(),
  written: z
    .array(
      z.object({
        path: z.string().describe('the restored path, relative to the volume root'),
        writtenTo: z.string().describe('where its snapshot version was written, relative to the volume root'),
        writtenToBase64: z.string().optional().describe('the bytes of writtenTo, when it had to be escaped'),
        fullPath: z.string(),
        type: z.enum(['file', 'folder']),
      }),
    )
    .optional()
    .describe('destination beside: each new name written (planned only, with dryRun)'),
  warnings: z
    .array(z.string())
    .optional()
    .describe('what went wrong after the volumes reached their final state, e.g. the history write'),
  resolved: z
    .array(ResolvedRecoverySchema)
    .optional()
    .describe('unfinished recoveries found and handled first'),
});
export type RecoverResult = z.infer<typeof RecoverResultSchema>;
