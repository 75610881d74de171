import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lchown, lstat, lutimes, mkdir, open, readlink, symlink } from 'node:fs/promises';
import type { Exec } from '../../system/exec.js';
import { CREATE_FLAGS } from '../atomic-file.js';
import { binaryOf, bytesOf, displayBinary, isUtf8, parentOf } from '../byte-names.js';

export interface RestoreFailure {
  path: string;
  check: string;
  expected: string;
  actual: string;
}

const CHUNK = 1 << 20;

/** What a restored file must match: taken from the snapshot, a received copy or a restic listing. */
export interface FileReference {
  kind: 'file' | 'symlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  /** Microseconds since the epoch: utimes via Node keeps ~0.1 µs, so times are compared in µs. */
  mtimeUs: number;
  size: number;
  sha256?: string | undefined;
  /** The target's bytes as a binary string (one char per byte). */
  linkTarget?: string | undefined;
  /** name -> hex value; undefined when xattrs were not read for this reference. */
  xattrs?: Map<string, string> | undefined;
}

export function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

/** Reads `file` to the end and returns its sha256; throws the read error (EIO on a bad checksum). */
export async function hashFile(
  file: string | Buffer,
  signal?: AbortSignal,
): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  const buffer = Buffer.allocUnsafe(CHUNK);
  let bytes = 0;
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      bytes += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}

function seconds(ns: bigint): number {
  return Number(ns) / 1e9;
}

export function isoMicro(us: number): string {
  const ms = Math.floor(us / 1000);
  const micro = String(Math.round(us - ms * 1000)).padStart(3, '0');
  return new Date(ms).toISOString().replace('Z', `${micro}Z`);
}

const ZEROS = Buffer.alloc(CHUNK);

/**
 * Restores one file by reading every byte of the source and writing it to `target` (never a
 * reflink: the point is to prove the blocks are readable), then owner, mode and times.
 * Returns the sha256 of what was read. Xattrs are applied afterwards in one batch.
 * Chunks of zeros are not written but left as holes, so a sparse file stays sparse (a 2 GiB
 * file of holes takes no room in the scratch folder). The target is created with
 * O_EXCL|O_NOFOLLOW and its owner, mode and times are set on the open file, never by path.
 */
export async function restoreEntry(
  source: string | Buffer,
  target: Buffer,
  signal?: AbortSignal,
): Promise<{ sha256?: string; bytes: number }> {
  const info = await lstat(source, { bigint: true });
  await mkdir(parentOf(target), { recursive: true });
  if (info.isSymbolicLink()) {
    await symlink(await readlink(source, { encoding: 'buffer' }), target);
    await lchown(target, Number(info.uid), Number(info.gid));
    await lutimes(target, seconds(info.atimeNs), seconds(info.mtimeNs));
    return { bytes: 0 };
  }
  const hash = createHash('sha256');
  const input = await open(source, constants.O_RDONLY | constants.O_NOFOLLOW);
  let bytes = 0;
  try {
    const output = await open(target, CREATE_FLAGS, 0o600);
    try {
      const buffer = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        signal?.throwIfAborted();
        const { bytesRead } = await input.read(buffer, 0, CHUNK, null);
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        hash.update(chunk);
        if (!chunk.equals(ZEROS.subarray(0, bytesRead))) await output.write(chunk, 0, bytesRead, bytes);
        bytes += bytesRead;
      }
      // Trailing holes: the size comes from truncate, not from written zeros.
      await output.truncate(bytes);
      // Owner first: chown clears setuid/setgid, so the mode goes on afterwards.
      await output.chown(Number(info.uid), Number(info.gid));
      await output.chmod(Number(info.mode) & 0o7777);
      await output.utimes(seconds(info.atimeNs), seconds(info.mtimeNs));
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** lstat into a FileReference (no content hash, no xattrs). */
export async function referenceOf(path: string | Buffer): Promise<FileReference> {
  const info = await lstat(path, { bigint: true });
  return {
    kind: info.isSymbolicLink() ? 'symlink' : info.isFile() ? 'file' : 'other',
    mode: Number(info.mode) & 0o7777,
    uid: Number(info.uid),
    gid: Number(info.gid),
    mtimeUs: Number(info.mtimeNs / 1000n),
    size: Number(info.size),
    ...(info.isSymbolicLink() ? { linkTarget: binaryOf(await readlink(path, { encoding: 'buffer' })) } : {}),
  };
}

/** A `# file:` name of getfattr (read as one char per byte) as the exact bytes of the path. */
function unescapeGetfattrName(name: string): string {
  // getfattr writes control characters and backslashes in names as \ooo octal escapes and
  // other bytes as they are.
  return name.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8) & 0xff));
}

/**
 * Parses `getfattr -d -m - -e hex` output, read as one char per byte (exec's latin1 encoding),
 * into path -> (name -> hex value); paths are binary strings (one char per byte).
 */
export function parseGetfattrDump(text: string): Map<string, Map<string, string>> {
  const result = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = new Map();
      result.set(unescapeGetfattrName(line.slice('# file: '.length)), current);
    } else if (current && line.includes('=')) {
      const at = line.indexOf('=');
      current.set(line.slice(0, at), line.slice(at + 1));
    } else if (current && line.trim() && !line.startsWith('#')) {
      current.set(line.trim(), '');
    }
  }
  return result;
}

const XATTR_BATCH = 200;

const GETFATTR = ['getfattr', '-h', '-d', '-m', '-', '-e', 'hex', '--'];

/**
 * A program's arguments are strings, which cannot carry a name that is not UTF-8. Such a batch
 * runs through sh, which turns each argument's octal escapes (\0ooo, printf %b) back into bytes;
 * the x appended and removed keeps a trailing newline of a name.
 */
const DECODE_ARGS_THEN_RUN = 'for a do f=$(printf "%bx" "$a"); set -- "$@" "${f%x}"; shift; done; exec "$@"';

function octalEscaped(binary: string): string {
  let out = '';
  for (const byte of bytesOf(binary)) out += `\\0${byte.toString(8).padStart(3, '0')}`;
  return out;
}

/**
 * Every xattr (all namespaces, incl. security.selinux) of the given relative paths under root.
 * Paths are binary strings (one char per byte); so are the keys of byPath.
 */
export async function readXattrs(
  exec: Exec,
  root: string,
  paths: readonly string[],
  signal?: AbortSignal,
): Promise<{ dump: string; byPath: Map<string, Map<string, string>> }> {
  const byPath = new Map<string, Map<string, string>>();
  const dumps: string[] = [];
  for (let i = 0; i < paths.length; i += XATTR_BATCH) {
    const batch = paths.slice(i, i + XATTR_BATCH);
    const plain = batch.every((path) => isUtf8(bytesOf(path)));
    const [command, ...args] = plain
      ? [...GETFATTR, ...batch.map((path) => bytesOf(path).toString('utf8'))]
      : [
          'sh',
          '-c',
          DECODE_ARGS_THEN_RUN,
          'sh',
          ...[...GETFATTR, ...batch].map((arg, index) =>
            index < GETFATTR.length ? octalEscaped(binaryOf(Buffer.from(arg))) : octalEscaped(arg),
          ),
        ];
    // Exit 1 means some path had a problem (reported per file below); the rest is still printed.
    const result = await exec(command as string, args, {
      cwd: root,
      signal,
      okExitCodes: [1],
      encoding: 'latin1',
    });
    dumps.push(result.stdout);
    for (const [path, attrs] of parseGetfattrDump(result.stdout)) byPath.set(path, attrs);
  }
  for (const path of paths) if (!byPath.has(path)) byPath.set(path, new Map());
  return { dump: dumps.join('\n'), byPath };
}

/**
 * Applies a getfattr dump (relative paths, one char per byte as readXattrs returns it) under
 * another root: how the sample's xattrs are restored.
 */
export async function applyXattrs(
  exec: Exec,
  root: string,
  dump: string,
  signal?: AbortSignal,
): Promise<void> {
  if (!dump.includes('# file: ')) return;
  await exec('setfattr', ['-h', '--restore=-'], { cwd: root, input: bytesOf(dump), signal });
}

/** Compares a restored entry with its reference; each difference is one failure naming the check. */
export function compareEntry(
  path: string,
  expected: FileReference,
  actual: FileReference,
  options: { content?: boolean; owner?: boolean; xattrs?: boolean; mtimeToleranceUs?: number } = {},
): RestoreFailure[] {
  const failures: RestoreFailure[] = [];
  const fail = (check: string, want: string, got: string) =>
    failures.push({ path, check, expected: want, actual: got });
  if (expected.kind !== actual.kind) {
    fail('type', expected.kind, actual.kind);
    return failures;
  }
  if (expected.kind === 'symlink') {
    if (expected.linkTarget !== actual.linkTarget)
      fail(
        'symlink-target',
        displayBinary(expected.linkTarget ?? ''),
        displayBinary(actual.linkTarget ?? ''),
      );
  } else {
    if (expected.mode !== actual.mode) fail('mode', octal(expected.mode), octal(actual.mode));
    if (expected.size !== actual.size) fail('size', String(expected.size), String(actual.size));
    if (options.content !== false && expected.sha256 && actual.sha256 && expected.sha256 !== actual.sha256)
      fail('sha256', expected.sha256, actual.sha256);
  }
  if (options.owner !== false) {
    if (expected.uid !== actual.uid) fail('uid', String(expected.uid), String(actual.uid));
    if (expected.gid !== actual.gid) fail('gid', String(expected.gid), String(actual.gid));
  }
  if (Math.abs(expected.mtimeUs - actual.mtimeUs) > (options.mtimeToleranceUs ?? 1))
    fail('mtime', isoMicro(expected.mtimeUs), isoMicro(actual.mtimeUs));
  if (options.xattrs !== false && expected.xattrs && actual.xattrs) {
    const names = new Set([...expected.xattrs.keys(), ...actual.xattrs.keys()]);
    for (const name of [...names].sort()) {
      const want = expected.xattrs.get(name);
      const got = actual.xattrs.get(name);
      if (want !== got) fail(`xattr:${name}`, want ?? '(absent)', got ?? '(absent)');
    }
  }
  return failures;
}

export function errorCode(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code ? `${code}: ${(error as Error).message}` : (error as Error).message;
}
