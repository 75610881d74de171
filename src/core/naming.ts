import { z } from 'zod';
import { SnapguardError } from './errors.js';

export const SNAPSHOT_TYPES = [
  'pre-deploy',
  'pre-update',
  'pre-change',
  'pre-recover',
  'manual',
  'scheduled',
] as const;
export type SnapshotType = (typeof SNAPSHOT_TYPES)[number];
export const SnapshotTypeSchema = z.enum(SNAPSHOT_TYPES);

/** Pre-change types: the ones minInterval applies to. */
export const PRE_CHANGE_TYPES: ReadonlySet<SnapshotType> = new Set([
  'pre-deploy',
  'pre-update',
  'pre-change',
]);

/** Operation names end up in snapshot names and file paths: letters, digits, ".", "_", "-" only. */
export const OPERATION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const OperationSchema = z
  .string()
  .max(64, 'operation names are at most 64 characters')
  .regex(
    OPERATION_PATTERN,
    'operation names use letters, digits, ".", "_" and "-" only, starting with a letter or digit',
  );

export interface ParsedName {
  volume: string;
  type: SnapshotType;
  operation: string | undefined;
  createdAt: Date;
  /** 1 for the first snapshot in a second, 2.. for the collision suffixes. */
  sequence: number;
}

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}

export function formatTimestamp(date: Date): string {
  return `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}-${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`;
}

export function formatSnapshotName(
  volume: string,
  type: SnapshotType,
  operation: string | undefined,
  date: Date,
  sequence = 1,
): string {
  const parts = [volume, type, ...(operation ? [operation] : []), formatTimestamp(date)];
  if (sequence > 1) parts.push(String(sequence));
  return parts.join('-');
}

// Longest first so that no type is read as a prefix of another.
const typesByLength = [...SNAPSHOT_TYPES].sort((a, b) => b.length - a.length);
const tailPattern =
  /^(?:-([A-Za-z0-9][A-Za-z0-9._-]*?))?-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?:-(\d{1,4}))?$/;

/** Parses a name made by formatSnapshotName for this volume; undefined when it is not one of ours. */
export function parseSnapshotName(volume: string, name: string): ParsedName | undefined {
  if (!name.startsWith(`${volume}-`)) return undefined;
  const rest = name.slice(volume.length + 1);
  const type = typesByLength.find((candidate) => rest.startsWith(candidate));
  if (!type) return undefined;
  const match = tailPattern.exec(rest.slice(type.length));
  if (!match) return undefined;
  const [, operation, y, mo, d, h, mi, s, seq] = match;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const createdAt = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Reject impossible dates (month 13, Feb 30) instead of letting Date roll them over.
  if (
    year < 1000 ||
    createdAt.getUTCFullYear() !== year ||
    createdAt.getUTCMonth() !== month - 1 ||
    createdAt.getUTCDate() !== day ||
    createdAt.getUTCHours() !== hour ||
    createdAt.getUTCMinutes() !== minute ||
    createdAt.getUTCSeconds() !== second
  )
    return undefined;
  const sequence = seq === undefined ? 1 : Number(seq);
  if (seq !== undefined && (sequence < 2 || seq.startsWith('0'))) return undefined;
  if (operation !== undefined && operation.length > 64) return undefined;
  return { volume, type, operation, createdAt, sequence };
}

/** Whether snapguard made `name` for this volume: the test backends are given (they never read this module). */
export function isOwnedSnapshotName(volume: string, name: string): boolean {
  return parseSnapshotName(volume, name) !== undefined;
}

/** The first free name for a new snapshot, given the names already present. */
export function nextFreeName(
  volume: string,
  type: SnapshotType,
  operation: string | undefined,
  date: Date,
  taken: ReadonlySet<string>,
): string {
  for (let sequence = 1; sequence < 10_000; sequence++) {
    const candidate = formatSnapshotName(volume, type, operation, date, sequence);
    if (!taken.has(candidate)) return candidate;
  }
  throw new SnapguardError(
    'INTERNAL',
    'Could not find a free snapshot name within one second.',
    'Wait a second and retry.',
  );
}

/** A plain snapshot name, safe as a single path component. */
export const SnapshotNameSchema = z
  .string()
  .min(1)
  .max(255, 'snapshot names are at most 255 characters')
  .refine((name) => !name.includes('\0'), 'snapshot names cannot contain NUL')
  .refine(
    (name) => !name.includes('/') && name !== '.' && name !== '..',
    'a snapshot name is a single name, not a path',
  );
