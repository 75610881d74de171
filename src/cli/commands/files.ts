import { Command, Option } from 'commander';
import { findDeleted } from '../../core/file-history/deleted.js';
import { diffSnapshots } from '../../core/file-history/diff.js';
import { readSnapshotFile } from '../../core/file-history/read.js';
import { fileVersions } from '../../core/file-history/versions.js';
import type {
  DiffSnapshotsResult,
  FileVersionsResult,
  FindDeletedResult,
  ReadSnapshotFileResult,
} from '../../core/file-history/schemas.js';
import { action, loadDeps, parseIntOption, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine, renderTable } from '../output.js';
import { runOnHost, withHost, type HostOptions } from '../remote.js';
import { noProgressOption, quietOption, startProgress, type ProgressSwitches } from '../progress.js';

interface ReadOptions extends CommonOptions, ProgressSwitches, HostOptions {
  location: 'local' | 'external' | 'all';
  includeForeign?: boolean;
  limit?: number;
}

const locationOption = () =>
  new Option('--location <where>', 'which snapshots: local, external copies, or all')
    .choices(['local', 'external', 'all'])
    .default('local');

function versionsCommand(): Command {
  return withHost(
    withCommon(
      new Command('versions')
        .description(
          'the distinct versions of a file or folder across snapshots and the live volume (read-only)',
        )
        .argument('<volume>', 'configured volume id')
        .argument('<path>', 'relative to the volume root')
        .addOption(locationOption())
        .option('--include-foreign', 'also read snapshots made by other tools')
        .option('--checksum', 'hash every copy (slower; tells apart versions with equal size and mtime)')
        .option('--limit <n>', 'at most n versions', parseIntOption('--limit')),
    ),
  ).action(
    action(async (volume: string, path: string, options: ReadOptions & { checksum?: boolean }) => {
      const request = {
        volume,
        path,
        location: options.location,
        includeForeign: options.includeForeign ?? false,
        checksum: options.checksum ?? false,
        ...(options.limit ? { limit: options.limit } : {}),
      };
      const remote = await runOnHost(options, 'file_versions', request, {
        print: (result) => printVersions(result as unknown as FileVersionsResult),
        exitCode: (result) => (result.total === 0 ? 1 : 0),
      });
      if (remote !== undefined) return remote;
      const deps = await loadDeps(options);
      const result = await fileVersions(deps, request);
      if (options.json) printJson(result);
      else printVersions(result);
      return result.total === 0 ? 1 : 0;
    }),
  );
}

function printVersions(result: FileVersionsResult): void {
  {
    for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
    if (result.total === 0) {
      printLine(
        `${result.path}: not in the live volume nor in any of ${result.snapshotsChecked} snapshot(s).`,
      );
    } else {
      printLine(
        renderTable(
          ['#', 'WHERE', 'SIZE', 'MTIME', 'MODE', 'OWNER', 'SHA256'],
          result.versions.map((v, i) => [
            i + 1,
            [...(v.live ? ['live'] : []), ...v.snapshots].join(', '),
            v.type === 'file' ? v.size : v.type === 'symlink' ? `-> ${v.target}` : v.type,
            v.mtime,
            v.mode,
            v.owner,
            v.sha256?.slice(0, 16),
          ]),
        ),
      );
      if (result.truncated) printLine(`(${result.versions.length} of ${result.total} versions shown)`);
      if (result.absent.length) printLine(`absent in: ${result.absent.join(', ')}`);
    }
  }
}

function deletedCommand(): Command {
  return withHost(
    withCommon(
      new Command('deleted')
        .description('files and folders held by snapshots but gone from the live volume (read-only)')
        .argument('<volume>', 'configured volume id')
        .argument('[path]', 'only below this folder, relative to the volume root')
        .option('--since <when>', 'only snapshots newer than this: 24h, 7d or an ISO time')
        .addOption(locationOption())
        .option('--include-foreign', 'also read snapshots made by other tools')
        .option('--limit <n>', 'at most n entries listed', parseIntOption('--limit'))
        .addOption(noProgressOption())
        .addOption(quietOption()),
    ),
  ).action(
    action(async (volume: string, path: string | undefined, options: ReadOptions & { since?: string }) => {
      const request = {
        volume,
        ...(path !== undefined ? { path } : {}),
        ...(options.since ? { since: options.since } : {}),
        location: options.location,
        includeForeign: options.includeForeign ?? false,
        ...(options.limit ? { limit: options.limit } : {}),
      };
      const remote = await runOnHost(options, 'find_deleted', request, {
        print: (result) => printDeleted(result as unknown as FindDeletedResult),
        exitCode: (result) => (result.truncated ? 1 : 0),
      });
      if (remote !== undefined) return remote;
      const deps = await loadDeps(options);
      const progress = await startProgress('deleted', options);
      const result = await findDeleted(deps, request, { onProgress: progress.update }).finally(progress.stop);
      if (options.json) printJson(result);
      else printDeleted(result);
      return result.truncated ? 1 : 0;
    }),
  );
}

function printDeleted(result: FindDeletedResult): void {
  {
    for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
    if (result.total === 0)
      printLine(`Nothing deleted: every entry of ${result.snapshotsChecked} snapshot(s) is still there.`);
    else {
      printLine(
        renderTable(
          ['PATH', 'TYPE', 'SIZE', 'MTIME', 'NEWEST SNAPSHOT'],
          result.deleted.map((d) => [
            d.topLevel ? d.path : `  ${d.path}`,
            d.type,
            d.size,
            d.mtime,
            d.newestSnapshot,
          ]),
        ),
      );
      printLine(
        `${result.total} deleted${result.truncated ? ` (${result.deleted.length} listed)` : ''}; restore with: snapguard recover ${result.volume} SNAPSHOT --files PATH --beside (or in place without --beside)`,
      );
    }
  }
}

/** The words after a bare `--` on the command line (commander hands them over as operands). */
function afterDoubleDash(command: Command): string[] {
  let root = command;
  while (root.parent) root = root.parent;
  const raw = (root as Command & { rawArgs?: string[] }).rawArgs ?? process.argv;
  const at = raw.indexOf('--');
  return at === -1 ? [] : raw.slice(at + 1);
}

function diffCommand(): Command {
  return withHost(
    withCommon(
      new Command('diff')
        .description('what changed between two snapshots, or a snapshot and the live volume (read-only)')
        .usage('VOLUME FROM [TO] [-- PATH] [options]')
        .argument('<volume>', 'configured volume id')
        .argument('<from>', 'the older snapshot')
        .argument('[to]', 'the newer snapshot (default: the live volume)')
        .argument('[path]', 'only this file or folder (put it after --)')
        .option('--checksum', 'compare the content of files with equal size and mtime')
        .option('--patch', 'a unified diff when PATH names one small text file')
        .option('--limit <n>', 'paths listed per category', parseIntOption('--limit'))
        .addOption(noProgressOption())
        .addOption(quietOption()),
    ),
  ).action(
    action(
      async (
        volume: string,
        from: string,
        to: string | undefined,
        path: string | undefined,
        options: CommonOptions &
          HostOptions &
          ProgressSwitches & { checksum?: boolean; patch?: boolean; limit?: number },
        command: Command,
      ) => {
        // `diff VOLUME FROM -- PATH`: what follows -- is the path, never the second snapshot.
        const operands = [to, path].filter((x): x is string => x !== undefined);
        const dashed = afterDoubleDash(command).length;
        let target: string | undefined;
        let subPath: string | undefined;
        if (dashed > 0 && operands.length > 0) {
          subPath = operands.pop();
          target = operands[0];
        } else {
          [target, subPath] = operands;
        }
        const request = {
          volume,
          from,
          ...(target !== undefined ? { to: target } : {}),
          ...(subPath !== undefined ? { path: subPath } : {}),
          checksum: options.checksum ?? false,
          patch: options.patch ?? false,
          ...(options.limit ? { limit: options.limit } : {}),
        };
        const remote = await runOnHost(options, 'diff_snapshots', request, {
          print: (result) => printDiff(result as unknown as DiffSnapshotsResult),
        });
        if (remote !== undefined) return remote;
        const deps = await loadDeps(options);
        const progress = await startProgress('diff', options);
        const result = await diffSnapshots(deps, request, { onProgress: progress.update }).finally(
          progress.stop,
        );
        if (options.json) printJson(result);
        else printDiff(result);
        return 0;
      },
    ),
  );
}

function printDiff(result: DiffSnapshotsResult): void {
  {
    for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
    printLine(
      `${result.from} -> ${result.to}${result.path ? ` (${result.path})` : ''}: ${result.added.count} added, ${result.removed.count} removed, ${result.modified.count} modified, ${result.metadata.count} metadata only`,
    );
    for (const [mark, list] of [
      ['+', result.added],
      ['-', result.removed],
      ['M', result.modified],
    ] as const) {
      for (const p of list.paths) printLine(`${mark} ${p}`);
      if (list.truncated) printLine(`${mark} … ${list.count - list.paths.length} more`);
    }
    for (const change of result.metadata.changes) printLine(`m ${change.path} (${change.fields.join(', ')})`);
    if (result.metadata.truncated)
      printLine(`m … ${result.metadata.count - result.metadata.changes.length} more`);
    if (result.patch !== undefined) {
      printLine();
      process.stdout.write(result.patch);
      if (result.patchTruncated) printLine('… (patch truncated)');
    }
  }
}

function catCommand(): Command {
  return withHost(
    withCommon(
      new Command('cat')
        .description('print one file as it is in a snapshot (read-only)')
        .argument('<volume>', 'configured volume id')
        .argument('<snapshot>', 'snapshot name')
        .argument('<path>', 'relative to the volume root')
        .option('--max-bytes <n>', 'print at most n bytes (default 65536)', parseIntOption('--max-bytes')),
    ),
  ).action(
    action(
      async (
        volume: string,
        snapshot: string,
        path: string,
        options: CommonOptions & HostOptions & { maxBytes?: number },
      ) => {
        const request = {
          volume,
          snapshot,
          path,
          ...(options.maxBytes ? { maxBytes: options.maxBytes } : {}),
        };
        // The file's bytes alone on stdout, also from another host.
        const remote = await runOnHost(options, 'read_snapshot_file', request, {
          header: false,
          print: (result) => printFile(result as unknown as ReadSnapshotFileResult),
          exitCode: (result) => (result.binary || result.truncated ? 1 : 0),
        });
        if (remote !== undefined) return remote;
        const deps = await loadDeps(options);
        const result = await readSnapshotFile(deps, request);
        if (options.json) printJson(result);
        else printFile(result);
        return result.binary || result.truncated ? 1 : 0;
      },
    ),
  );
}

function printFile(result: ReadSnapshotFileResult): void {
  if (result.binary) {
    process.stderr.write(
      `snapguard: ${result.path} in ${result.snapshot} is binary (${result.size} bytes, sha256 ${result.sha256}); not printed.\n  what to do: restore it with snapguard recover ${result.volume} ${result.snapshot} --files ${result.path}\n`,
    );
  } else {
    process.stdout.write(result.content ?? '');
    if (result.truncated)
      process.stderr.write(
        `snapguard: output cut at ${Buffer.byteLength(result.content ?? '')} of ${result.size} bytes; raise --max-bytes to see more.\n`,
      );
  }
}

export function fileHistoryCommands(): Command[] {
  return [versionsCommand(), deletedCommand(), diffCommand(), catCommand()];
}
