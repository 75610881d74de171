import { lstat } from 'node:fs/promises';
import { displayBinary, pathUnder } from '../byte-names.js';
import {
  applyXattrs,
  compareEntry,
  errorCode,
  hashFile,
  readXattrs,
  referenceOf,
  restoreEntry,
  type FileReference,
  type RestoreFailure,
} from './files.js';
import type { TreeCensus } from './sampler.js';
import { type VolumeRun, type Expected, FILE_CONCURRENCY, forEachLimit } from './run-context.js';

/** Where a sample is restored from, what it is compared with, and where it is written. */
interface Roots {
  sourceRoot: string;
  referenceRoot: string;
  targetRoot: string;
}

type Xattrs = Awaited<ReturnType<typeof readXattrs>>;

/**
 * Copies each path from source to target (or, without restore, only reads its size); returns the
 * paths that could be read, in sample order, and read errors as failures.
 */
async function restoreSample(
  run: VolumeRun,
  paths: readonly string[],
  roots: Roots,
  restore: boolean,
): Promise<{
  readable: string[];
  bytes: number;
  hashes: Map<string, string | undefined>;
  failures: RestoreFailure[];
}> {
  const { call } = run;
  const failures: RestoreFailure[] = [];
  const hashes = new Map<string, string | undefined>();
  let bytes = 0;
  const readable: string[] = [];
  let restoredCount = 0;
  await forEachLimit(paths, FILE_CONCURRENCY, async (path) => {
    call.signal?.throwIfAborted();
    try {
      if (restore) {
        const copied = await restoreEntry(
          pathUnder(roots.sourceRoot, path),
          pathUnder(roots.targetRoot, path),
          call.signal,
        );
        hashes.set(path, copied.sha256);
        bytes += copied.bytes;
      } else {
        const info = await lstat(pathUnder(roots.sourceRoot, path));
        bytes += info.isFile() ? info.size : 0;
      }
      readable.push(path);
    } catch (error) {
      if (error instanceof Error && error.name === 'AbortError') throw error;
      failures.push({
        path: displayBinary(path),
        check: 'read-error',
        expected: 'readable',
        actual: errorCode(error),
      });
    }
    restoredCount++;
    call.onProgress?.({
      progress: restoredCount,
      total: paths.length * 2,
      message: `${run.volume.id}: restored ${restoredCount}/${paths.length}`,
    });
  });
  // Keep the sample order in results whatever order the copies finished in.
  const order = new Map(paths.map((path, index) => [path, index]));
  readable.sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
  return { readable, bytes, hashes, failures };
}

/** Restores the sample's xattrs (when restoring), then reads them from reference and target. */
async function sampleXattrs(
  run: VolumeRun,
  readable: string[],
  roots: Roots,
  restore: boolean,
): Promise<{ reference: Xattrs; restored: Xattrs }> {
  const { deps, call } = run;
  let sourceXattrs: Xattrs | undefined;
  if (restore && readable.length > 0) {
    sourceXattrs = await readXattrs(deps.exec, roots.sourceRoot, readable, call.signal);
    await applyXattrs(deps.exec, roots.targetRoot, sourceXattrs.dump, call.signal);
  }
  const [reference, restored] = await Promise.all([
    sourceXattrs && roots.referenceRoot === roots.sourceRoot
      ? sourceXattrs
      : readXattrs(deps.exec, roots.referenceRoot, readable, call.signal),
    readXattrs(deps.exec, roots.targetRoot, readable, call.signal),
  ]);
  return { reference, restored };
}

/** Compares one restored path with its reference; the reference is undefined when it cannot be read. */
async function verifyPath(
  path: string,
  roots: Roots,
  knownSha: string | undefined,
  xattrs: { reference: Xattrs; restored: Xattrs },
  signal: AbortSignal | undefined,
): Promise<{ failures: RestoreFailure[]; reference?: FileReference; verified: boolean }> {
  const expected = await expectedFrom(roots.referenceRoot, path, knownSha, signal);
  if (expected.failure) return { failures: [expected.failure], verified: false };
  expected.reference.xattrs = xattrs.reference.byPath.get(path);
  let actual: FileReference;
  try {
    actual = await referenceOf(pathUnder(roots.targetRoot, path));
    if (actual.kind === 'file')
      actual.sha256 = (await hashFile(pathUnder(roots.targetRoot, path), signal)).sha256;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const failure: RestoreFailure = {
      path: displayBinary(path),
      check: code === 'ENOENT' ? 'missing' : 'read-error',
      expected: 'restored',
      actual: errorCode(error),
    };
    return { failures: [failure], reference: expected.reference, verified: false };
  }
  actual.xattrs = xattrs.restored.byPath.get(path);
  return {
    failures: compareEntry(displayBinary(path), expected.reference, actual),
    reference: expected.reference,
    verified: true,
  };
}

/**
 * Restores `paths` from sourceRoot into scratch and verifies them against referenceRoot. Paths
 * are binary strings (one char per byte, see sampleTree's bytePaths); failures show them escaped.
 */
export async function restoreAndVerify(
  run: VolumeRun,
  paths: readonly string[],
  sourceRoot: string,
  referenceRoot: string,
  targetRoot: string,
  options: { restore: boolean },
): Promise<{
  failures: RestoreFailure[];
  bytes: number;
  checked: number;
  references: Map<string, FileReference>;
}> {
  const { call } = run;
  const roots: Roots = { sourceRoot, referenceRoot, targetRoot };
  const { readable, bytes, hashes, failures } = await restoreSample(run, paths, roots, options.restore);
  const xattrs = await sampleXattrs(run, readable, roots, options.restore);
  const references = new Map<string, FileReference>();
  let checked = 0;
  const perFile = new Map<string, RestoreFailure[]>();
  await forEachLimit(readable, FILE_CONCURRENCY, async (path) => {
    call.signal?.throwIfAborted();
    const knownSha = referenceRoot === sourceRoot ? hashes.get(path) : undefined;
    const result = await verifyPath(path, roots, knownSha, xattrs, call.signal);
    perFile.set(path, result.failures);
    if (result.reference) references.set(path, result.reference);
    if (!result.verified) return;
    checked++;
    call.onProgress?.({
      progress: paths.length + checked,
      total: paths.length * 2,
      message: `${run.volume.id}: verified ${checked}/${readable.length}`,
    });
  });
  for (const path of readable) failures.push(...(perFile.get(path) ?? []));
  return { failures, bytes, checked, references };
}

async function expectedFrom(
  root: string,
  path: string,
  knownSha: string | undefined,
  signal?: AbortSignal,
): Promise<Expected> {
  try {
    const reference = await referenceOf(pathUnder(root, path));
    if (reference.kind === 'file')
      reference.sha256 = knownSha ?? (await hashFile(pathUnder(root, path), signal)).sha256;
    return { reference };
  } catch (error) {
    if (error instanceof Error && error.name === 'AbortError') throw error;
    const code = (error as NodeJS.ErrnoException).code;
    return {
      reference: undefined as unknown as FileReference,
      failure: {
        path: displayBinary(path),
        check: code === 'ENOENT' ? 'missing' : 'read-error',
        expected: `present and readable in the reference ${root}`,
        actual: errorCode(error),
      },
    };
  }
}

/** Whole seconds from 10 s on; below, two significant digits, so a sub-second RTO is not shown as 0. */
export function roundRto(seconds: number): number {
  if (seconds >= 10) return Math.round(seconds);
  return Number(seconds.toPrecision(2));
}

export function censusFailures(expected: TreeCensus, actual: TreeCensus): RestoreFailure[] {
  const failures: RestoreFailure[] = [];
  if (expected.files !== actual.files || expected.symlinks !== actual.symlinks)
    failures.push({
      path: '.',
      check: 'file-count',
      expected: `${expected.files} files, ${expected.symlinks} symlinks`,
      actual: `${actual.files} files, ${actual.symlinks} symlinks`,
    });
  if (expected.directories !== actual.directories)
    failures.push({
      path: '.',
      check: 'directory-count',
      expected: String(expected.directories),
      actual: String(actual.directories),
    });
  if (expected.bytes !== actual.bytes)
    failures.push({
      path: '.',
      check: 'bytes',
      expected: String(expected.bytes),
      actual: String(actual.bytes),
    });
  for (const entry of [...expected.unreadable, ...actual.unreadable])
    failures.push({ path: entry.path, check: 'read-error', expected: 'readable folder', actual: entry.code });
  return failures;
}
