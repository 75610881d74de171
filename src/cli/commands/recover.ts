import { Command } from 'commander';
import { recover } from '../../core/recovery/recover.js';
import type { RecoverResult } from '../../core/recovery/schemas.js';
import { action, loadDeps, withCommon, type CommonOptions } from '../common.js';
import { confirmOnTerminal } from '../confirm.js';
import { runGatedOnHost, withHost, type HostOptions } from '../remote.js';
import { printJson, printLine } from '../output.js';
import { SnapguardError } from '../../core/errors.js';
import { displayPath } from '../../core/file-history/tree.js';
import {
  countSteps,
  noProgressOption,
  quietOption,
  startProgress,
  type ProgressSwitches,
} from '../progress.js';

interface RecoverOptions extends CommonOptions, ProgressSwitches {
  files?: string[];
  filesBase64?: string[];
  operationId?: string;
  reason?: string;
  yes?: boolean;
  dryRun?: boolean;
  beside?: boolean;
}

export function printRecoverResult(result: RecoverResult): void {
  for (const resolved of result.resolved ?? [])
    printLine(`Interrupted recovery ${resolved.recoveryId}: ${resolved.action}: ${resolved.detail}`);
  if (result.status === 'planned' || result.status === 'declined' || result.status === 'cancelled') {
    printLine(
      result.status === 'planned'
        ? 'Dry run: nothing was changed.'
        : `Recovery ${result.status}: nothing was changed.`,
    );
    return;
  }
  printLine(result.message ?? result.status);
  for (const item of result.written ?? []) printLine(`  wrote ${displayPath(Buffer.from(item.fullPath))}`);
  for (const check of result.validation ?? [])
    printLine(
      `  ${check.ok ? 'ok  ' : 'FAIL'} ${check.volume}: ${check.check}${check.detail ? ` (${check.detail})` : ''}`,
    );
  if (result.durationSeconds !== undefined)
    printLine(`  took ${result.durationSeconds} s, recovery ${result.recoveryId}`);
}

export function printPlan(summary: string): void {
  for (const line of summary.split('\n')) printLine(line);
}

/** recover --host: the plan and the token come from that host, the confirmation is spent there. */
function recoverOnHost(options: RecoverOptions & HostOptions, request: Record<string, unknown>) {
  return runGatedOnHost(options, 'recover', request, {
    question: 'Proceed with this recovery?',
    exitCode: ({ status }) =>
      status === 'recovered' || status === 'planned' ? 0 : status === 'failed' ? 2 : 1,
  });
}

/** The recover request the arguments describe; --beside without --files is refused. */
function recoverRequest(volume: string | undefined, snapshot: string | undefined, options: RecoverOptions) {
  const files = Boolean(options.files?.length || options.filesBase64?.length);
  const paths = {
    ...(options.files?.length ? { paths: options.files } : {}),
    ...(options.filesBase64?.length ? { pathsBase64: options.filesBase64 } : {}),
  };
  if (options.beside && !files) {
    throw new SnapguardError(
      'BAD_INPUT',
      '--beside restores paths: it needs --files.',
      'Add --files PATH... with the files or folders to write beside their originals.',
    );
  }
  return {
    ...(volume ? { volume } : {}),
    ...(snapshot ? { snapshot } : {}),
    ...(options.operationId ? { operationId: options.operationId } : {}),
    mode: files ? ('files' as const) : ('rollback' as const),
    ...paths,
    ...(options.beside ? { destination: 'beside' as const } : {}),
    ...(options.reason ? { reason: options.reason } : {}),
    dryRun: Boolean(options.dryRun),
  };
}

/** Runs the recovery on this host, asking on the terminal unless --yes or confirm: never. */
async function recoverHere(
  options: RecoverOptions,
  request: ReturnType<typeof recoverRequest>,
): Promise<RecoverResult> {
  const deps = await loadDeps(options);
  const progress = await startProgress('recover', options);
  return recover(deps, request, {
    onProgress: countSteps(progress.update),
    skipChanges: Boolean(options.yes),
    confirm: async ({ plan, summary }) => {
      if (options.yes || deps.config.confirm === 'never') return true;
      // The plan goes to stderr with --json so stdout stays one JSON document.
      if (options.json) process.stderr.write(`${summary}\n`);
      else printPlan(summary);
      const yes = await confirmOnTerminal('Proceed with this recovery?');
      return yes ? true : { status: 'declined', plan };
    },
  }).finally(progress.stop);
}

/** A dry run's change summary per volume and its steps. */
function printDryRunPlan(plan: NonNullable<RecoverResult['plan']>): void {
  for (const item of plan.volumes) {
    const c = item.changes;
    if (!c) continue;
    printLine(`${item.volume} -> ${item.snapshot} (${c.method}, ${c.durationSeconds} s):`);
    for (const [label, list] of [
      ['added', c.added],
      ['removed', c.removed],
      ['modified', c.modified],
      ['metadata only', c.metadataOnly],
    ] as const) {
      printLine(`  ${label}: ${list.count}`);
      for (const path of list.first) printLine(`    ${path}`);
      if (list.first.length < list.count)
        printLine(`    ... ${list.count - list.first.length} more (truncated)`);
    }
  }
  printLine('Steps:');
  plan.steps.forEach((s, i) => printLine(`  ${i + 1}. ${s}`));
}

/** Prints the result and returns the exit code. */
function reportRecover(result: RecoverResult, options: RecoverOptions): number {
  if (result.status === 'planned' && result.written && !options.json) {
    printLine(result.message ?? 'Dry run: nothing was written.');
    for (const item of result.written) printLine(`  would write ${displayPath(Buffer.from(item.fullPath))}`);
    return 0;
  }
  if (result.status === 'planned' && !options.json && result.plan) printDryRunPlan(result.plan);
  if (options.json) printJson(result);
  else printRecoverResult(result);
  // Recovered, but something after it went wrong (the history write): a warning.
  if (result.status === 'recovered') return result.warnings?.length ? 1 : 0;
  if (result.status === 'planned') return 0;
  if (result.status === 'failed') return 2;
  return 1;
}

export function recoverCommand(): Command {
  return withHost(
    withCommon(
      new Command('recover')
        .description(
          'roll a volume back to a snapshot, or restore paths from it (--files); the current state is kept as a pre-recover snapshot',
        )
        .argument('[volume]', 'configured volume id')
        .argument('[snapshot]', 'owned snapshot name (snapguard snapshot list)')
        .option(
          '--files <path...>',
          'restore these paths (relative to the volume root; "." = the whole tree); the rest stays as it is',
        )
        .option(
          '--files-base64 <base64...>',
          'like --files, each path given as base64 of its bytes (for names that are not UTF-8, as `snapguard deleted --json` gives them); in place only UTF-8 names, with --beside any',
        )
        .option(
          '--beside',
          'with --files: write the snapshot version next to each original as NAME.snapguard-YYYYMMDD-HHMMSS instead of replacing it (nothing is overwritten; no confirmation)',
        )
        .option('--operation-id <id>', 'roll back every volume this operation snapshotted, together')
        .option('--reason <text>', 'why, recorded in the history')
        .option('-y, --yes', 'do not ask: the flag is the confirmation (for scripts)')
        .option('-n, --dry-run', 'show the plan and the change summary, change nothing')
        .addOption(noProgressOption())
        .addOption(quietOption()),
    ),
  ).action(
    action(async (volume: string | undefined, snapshot: string | undefined, options: RecoverOptions) => {
      const request = recoverRequest(volume, snapshot, options);
      const remote = await recoverOnHost(options, request);
      if (remote !== undefined) return remote;
      return reportRecover(await recoverHere(options, request), options);
    }),
  );
}
