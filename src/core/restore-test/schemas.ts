import { z } from 'zod';
import { SnapshotNameSchema } from '../naming.js';
import { VolumeIdSchema } from '../schemas.js';

export const RESTORE_SOURCES = ['local', 'external', 'restic'] as const;

export const RunRestoreTestInput = z.object({
  volume: VolumeIdSchema.optional().describe('one volume; all configured volumes when left out'),
  snapshot: SnapshotNameSchema.optional().describe(
    'an owned snapshot name (local/external) or a restic snapshot id; default: the newest',
  ),
  source: z.enum(RESTORE_SOURCES).default('local'),
  mode: z.enum(['sample', 'full']).default('sample'),
  sampleSize: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .optional()
    .describe('files to restore in sample mode (50)'),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .optional()
    .describe('the same seed picks the same files; a random one is used and reported when left out'),
  spread: z.boolean().default(false).describe('spread the sample across the top-level folders'),
});
export type RunRestoreTestRequest = z.input<typeof RunRestoreTestInput>;

export const RestoreFailureSchema = z.object({
  path: z.string(),
  check: z
    .string()
    .describe(
      'read-error, missing, type, sha256, size, mode, uid, gid, mtime, symlink-target, xattr:<name>, file-count, directory-count, bytes, send-receive, no-snapshot',
    ),
  expected: z.string(),
  actual: z.string(),
});

export const DriftSchema = z.object({
  path: z.string(),
  change: z.enum(['modified', 'deleted', 'added']),
  detail: z.string(),
});

export const NotCoveredSchema = z.object({
  path: z.string().describe('relative to the volume root'),
  kind: z.enum(['nested-subvolume', 'mount-point']),
  detail: z.string(),
});

export const RestoreTestResultSchema = z.object({
  volume: z.string(),
  snapshot: z.string(),
  source: z.enum(RESTORE_SOURCES),
  mode: z.enum(['sample', 'full']),
  outcome: z.enum(['PASS', 'FAIL']),
  seed: z.number().int(),
  population: z.number().int().describe('files and symlinks in the snapshot the sample was drawn from'),
  filesChecked: z.number().int(),
  bytesRestored: z.number(),
  durationSeconds: z.number(),
  throughputBytesPerSecond: z.number(),
  rtoEstimateSeconds: z
    .number()
    .nullable()
    .describe("full mode: time to restore the volume's current size at the measured throughput"),
  checkedPaths: z
    .array(z.string())
    .describe('the sampled paths, relative to the snapshot (empty in full mode)'),
  failures: z.array(RestoreFailureSchema),
  drift: z
    .array(DriftSchema)
    .describe(
      'files changed, deleted or added on the live volume since the snapshot: information, not failures',
    ),
  notCovered: z
    .array(NotCoveredSchema)
    .optional()
    .describe(
      'nested subvolumes and mount points inside the volume: not part of its snapshots, so this test says nothing about them (neither a pass nor a failure); back them up on their own',
    ),
});
export type RestoreTestResult = z.infer<typeof RestoreTestResultSchema>;

export const RunRestoreTestResultSchema = z.object({
  overall: z.enum(['PASS', 'FAIL']),
  results: z.array(RestoreTestResultSchema),
  warnings: z.array(z.string()),
});
export type RunRestoreTestResult = z.infer<typeof RunRestoreTestResultSchema>;
