import { z } from 'zod';
import { VolumeIdSchema } from '../schemas.js';

/** Input and result schemas of the file-history tools, shared by MCP, the CLI's --json and the docs. */

const RelativePath = z.string().min(1).max(4096).describe('relative to the volume root, e.g. "immich/.env"');
const SnapshotRef = z
  .string()
  .min(1)
  .max(300)
  .describe('a snapshot name as shown by list_snapshots; "external:NAME" for the external copy of that name');

export const EntryTypeSchema = z.enum([
  'file',
  'folder',
  'symlink',
  'fifo',
  'socket',
  'char-device',
  'block-device',
]);
export type EntryType = z.infer<typeof EntryTypeSchema>;

export const FileVersionsInput = z.object({
  volume: VolumeIdSchema,
  path: RelativePath,
  location: z.enum(['local', 'external', 'all']).default('local'),
  includeForeign: z
    .boolean()
    .default(false)
    .describe('also read snapshots made by other tools (read-only, nothing is changed)'),
  checksum: z
    .boolean()
    .default(false)
    .describe('hash every copy, so versions with equal size and mtime are told apart by content'),
  limit: z.number().int().min(1).max(10_000).default(100),
});
export type FileVersionsRequest = z.input<typeof FileVersionsInput>;

export const FileVersionSchema = z.object({
  snapshots: z
    .array(z.string())
    .describe('every snapshot holding this exact version, newest first; external copies as "external:NAME"'),
  live: z.boolean().optional().describe('true: this is the version in the live volume'),
  type: EntryTypeSchema,
  size: z.number().int(),
  mtime: z.string().describe('ISO 8601, UTC'),
  mode: z.string().describe('octal permission bits, e.g. 0644'),
  owner: z.string().describe('uid:gid'),
  links: z.number().int().describe('hard link count'),
  target: z.string().optional().describe('symlinks: where it points'),
  sha256: z
    .string()
    .optional()
    .describe('only where size and mtime do not tell this version apart from another'),
});
export type FileVersion = z.infer<typeof FileVersionSchema>;

export const FileVersionsResultSchema = z.object({
  volume: z.string(),
  path: z.string(),
  versions: z.array(FileVersionSchema),
  total: z.number().int().describe('distinct versions before the limit'),
  truncated: z.boolean(),
  absent: z.array(z.string()).describe('snapshots (and "live") where the path does not exist'),
  snapshotsChecked: z.number().int(),
  warnings: z.array(z.string()),
});
export type FileVersionsResult = z.infer<typeof FileVersionsResultSchema>;

export const FindDeletedInput = z.object({
  volume: VolumeIdSchema,
  path: RelativePath.optional().describe('only below this folder'),
  since: z.string().max(64).optional().describe('only snapshots newer than this: 24h, 7d or an ISO time'),
  location: z.enum(['local', 'external', 'all']).default('local'),
  includeForeign: z.boolean().default(false),
  limit: z.number().int().min(1).max(100_000).default(500),
});
export type FindDeletedRequest = z.input<typeof FindDeletedInput>;

export const DeletedEntrySchema = z.object({
  path: z.string().describe('non-UTF-8 bytes and control characters shown escaped (\\xff, \\n)'),
  pathBase64: z.string().optional().describe('the raw name bytes, when path had to be escaped'),
  type: EntryTypeSchema,
  newestSnapshot: z.string().describe('the newest snapshot that still holds it: hand this to recover'),
  snapshotCreatedAt: z.string(),
  size: z.number().int(),
  mtime: z.string(),
  topLevel: z
    .boolean()
    .describe(
      'true when its parent folder still exists live; recovering a top-level entry brings back what is below it',
    ),
});
export type DeletedEntry = z.infer<typeof DeletedEntrySchema>;

export const FindDeletedResultSchema = z.object({
  volume: z.string(),
  deleted: z.array(DeletedEntrySchema),
  total: z.number().int(),
  truncated: z.boolean(),
  snapshotsChecked: z.number().int(),
  warnings: z.array(z.string()),
});
export type FindDeletedResult = z.infer<typeof FindDeletedResultSchema>;

export const DiffSnapshotsInput = z.object({
  volume: VolumeIdSchema,
  from: SnapshotRef,
  to: SnapshotRef.optional().describe('default: the live volume'),
  path: RelativePath.optional().describe('only this file or folder'),
  checksum: z
    .boolean()
    .default(false)
    .describe('compare the content of files whose size and mtime are equal (slower)'),
  patch: z.boolean().default(false).describe('a unified diff when path names one small text file'),
  limit: z.number().int().min(1).max(10_000).default(200).describe('paths listed per category'),
});
export type DiffSnapshotsRequest = z.input<typeof DiffSnapshotsInput>;

const ChangeListSchema = z.object({
  count: z.number().int(),
  paths: z.array(z.string()),
  truncated: z.boolean(),
});

export const DiffSnapshotsResultSchema = z.object({
  volume: z.string(),
  from: z.string(),
  to: z.string().describe('a snapshot name or "live"'),
  path: z.string().optional(),
  added: ChangeListSchema,
  removed: ChangeListSchema,
  modified: ChangeListSchema,
  metadata: ChangeListSchema.extend({
    changes: z
      .array(z.object({ path: z.string(), fields: z.array(z.string()) }))
      .describe('what changed for each listed path: mode, owner, xattrs'),
  }),
  patch: z.string().optional(),
  patchTruncated: z.boolean().optional(),
  method: z
    .enum(['btrfs-send', 'walk'])
    .optional()
    .describe(
      'btrfs-send: between two local btrfs snapshots, a metadata-only send stream named the changed paths and only those were compared; walk: both trees were walked',
    ),
  warnings: z.array(z.string()),
});
export type DiffSnapshotsResult = z.infer<typeof DiffSnapshotsResultSchema>;

export const ReadSnapshotFileInput = z.object({
  volume: VolumeIdSchema,
  snapshot: SnapshotRef,
  path: RelativePath,
  maxBytes: z
    .number()
    .int()
    .min(1)
    .max(10 * 1024 * 1024)
    .default(64 * 1024),
});
export type ReadSnapshotFileRequest = z.input<typeof ReadSnapshotFileInput>;

export const ReadSnapshotFileResultSchema = z.object({
  volume: z.string(),
  snapshot: z.string(),
  path: z.string(),
  size: z.number().int(),
  mtime: z.string(),
  sha256: z.string(),
  binary: z.boolean(),
  content: z.string().optional().describe('the text, up to maxBytes; absent for binary files'),
  truncated: z.boolean(),
});
export type ReadSnapshotFileResult = z.infer<typeof ReadSnapshotFileResultSchema>;
