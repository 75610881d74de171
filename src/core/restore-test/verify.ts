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
  const { deps, call } = run;
  const failures: RestoreFailure[] = [];
  const restoredHashes = new Map<string, string | undefined>();
  let bytes = 0;
  const readable: string[] = [];
  let restoredCount = 0;
  await forEachLimit(paths, FILE_CONCURRENCY, async (path) => {
    call.signal?.throwIfAborted();
    try {
      if (options.restore) {
        const copied = await restoreEntry(
          pathUnder(sourceRoot, path),
          pathUnder(targetRoot, path),
          call.signal,
        );
        restoredHashes.set(path, copied.sha256);
        bytes += copied.bytes;
      } else {
        const info = await lstat(pathUnder(sourceRoot, path));
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
  let sourceXattrs: Awaited<ReturnType<typeof readXattrs>> | undefined;
  if (options.restore && readable.length > 0) {
    sourceXattrs = await readXattrs(deps.exec, sourceRoot, readable, call.signal);
    await applyXattrs(deps.exec, targetRoot, sourceXattrs.dump, call.signal);
  }
  const [referenceXattrs, restoredXattrs] = await Promise.all([
    sourceXattrs && referenceRoot === sourceRoot
      ? sourceXattrs
      : readXattrs(deps.exec, referenceRoot, readable, call.signal),
    readXattrs(deps.exec, targetRoot, readable, call.signal),
  ]);
  const references = new Map<string, FileReference>();
  let checked = 0;
  const perFile = new Map<string, RestoreFailure[]>();
  let verifiedCount = 0;
  await forEachLimit(readable, FILE_CONCURRENCY, async (path) => {
    call.signal?.throwIfAborted();
    const fileFailures: RestoreFailure[] = [];
    perFile.set(path, fileFailures);
    const expected = await expectedFrom(
      referenceRoot,
      path,
      referenceRoot === sourceRoot ? restoredHashes.get(path) : undefined,
      call.signal,
    );
    if (expected.failure) {
      fileFailures.push(expected.failure);
      return;
    }
    expected.reference.xattrs = referenceXattrs.byPath.get(path);
    references.set(path, expected.reference);
    let actual: FileReference;
    try {
      actual = await referenceOf(pathUnder(targetRoot, path));
      if (actual.kind === 'file')
        actual.sha256 = (await hashFile(pathUnder(targetRoot, path), call.signal)).sha256;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      fileFailures.push({
        path: displayBinary(path),
        check: code === 'ENOENT' ? 'missing' : 'read-error',
        expected: 'restored',
        actual: errorCode(error),
      });
      return;
    }
    actual.xattrs = restoredXattrs.byPath.get(path);
    fileFailures.push(...compareEntry(displayBinary(path), expected.reference, actual));
    checked++;
    verifiedCount++;
    call.onProgress?.({
      progress: paths.length + verifiedCount,
      total: paths.length * 2,
      message: `${run.volume.id}: verified ${verifiedCount}/${readable.length}`,
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
