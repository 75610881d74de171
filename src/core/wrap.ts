import type { Deps } from './deps.js';
import { SnapguardError, toSnapguardError } from './errors.js';
import { recover, resolveUnfinishedRecoveries, type RecoverContext } from './recovery/recover.js';
import type { RecoverResult } from './recovery/schemas.js';
import type { CreateSnapshotResult } from './schemas.js';
import { completeOperation, createSnapshots } from './snapshots.js';

export interface WrapOptions {
  volumes: string[];
  operation: string;
  /** pre-deploy instead of pre-change. */
  deploy?: boolean;
  command: string[];
  /** A validation command as argv (see splitCommandLine). */
  validate?: string[] | undefined;
  autoRollback?: boolean;
  /** Take a new snapshot even when minInterval would reuse a recent one (also overrides maxPoolUsage). */
  force?: boolean;
  commandTimeoutSeconds?: number;
  validateTimeoutSeconds?: number;
  /** Let the command and the validation write to the terminal (the CLI without --json). */
  inheritOutput?: boolean;
}

export interface StepRun {
  argv: string[];
  exitCode: number;
  ok: boolean;
  durationSeconds: number;
  /** Last lines of output when captured. */
  output?: string;
}

export interface WrapResult {
  operationId: string;
  snapshots: { volume: string; name: string; reused: boolean }[];
  command: StepRun;
  validation?: StepRun;
  outcome: 'success' | 'failed';
  failure?: 'command-failed' | 'validation-failed';
  rollback?: RecoverResult;
  rollbackError?: { code: string; message: string; hint: string };
  warnings: string[];
  exitCode: number;
}

/**
 * Splits a command line into argv without a shell: whitespace separates, single and double quotes
 * group, a backslash escapes the next character. Nothing is expanded ($, *, ~, ; and | are plain
 * characters passed to the program).
 */
export function splitCommandLine(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) current += line[++i];
      else current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inArg = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      current += line[++i];
      inArg = true;
    } else if (/\s/.test(ch)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += ch;
      inArg = true;
    }
  }
  if (quote) {
    throw new SnapguardError(
      'BAD_INPUT',
      `--validate: unterminated ${quote} quote in "${line}".`,
      'Close the quote; the validation command runs without a shell.',
    );
  }
  if (inArg) args.push(current);
  return args;
}

async function runStep(
  deps: Deps,
  argv: string[],
  timeoutSeconds: number,
  inherit: boolean,
): Promise<StepRun> {
  const started = performance.now();
  const [file, ...args] = argv;
  const seconds = () => Math.round((performance.now() - started) / 10) / 100;
  try {
    const result = await deps.exec(file as string, args, {
      timeoutMs: timeoutSeconds * 1000,
      inheritOutput: inherit,
      // The command runs in a process group of its own: Ctrl-C in the terminal reaches only
      // snapguard, which passes it on; the command's exit is then handled like any failure.
      forwardSignals: inherit,
    });
    return {
      argv,
      exitCode: 0,
      ok: true,
      durationSeconds: seconds(),
      ...(inherit
        ? {}
        : { output: `${result.stdout}${result.stderr}`.trim().split('\n').slice(-20).join('\n') }),
    };
  } catch (error) {
    const failure = toSnapguardError(error);
    const exitCode =
      typeof failure.details?.exitCode === 'number'
        ? failure.details.exitCode
        : failure.code === 'COMMAND_NOT_FOUND'
          ? 127
          : 1;
    return { argv, exitCode, ok: false, durationSeconds: seconds(), output: failure.message };
  }
}

/** A snapshot request of wrap, as create_snapshot takes it. */
export interface WrapSnapshotRequest {
  volumes: string[];
  type: 'pre-deploy' | 'pre-change';
  operation: string;
  force: boolean;
  dryRun?: boolean;
}

/**
 * Where the volumes of a wrap live. The command always runs here; the snapshots, the outcome and
 * the rollback happen where the data is: this host (localWrapTarget), or another host through its
 * own tools and its own gate (the CLI builds that one for --host).
 */
export interface WrapTarget {
  /** Finishes (or undoes) interrupted recoveries of the volumes; says what was done. */
  prepare(volumes: string[]): Promise<string[]>;
  snapshot(request: WrapSnapshotRequest): Promise<CreateSnapshotResult>;
  complete(operationId: string, outcome: 'success' | 'failed', notes: string): Promise<void>;
  /** Rolls every volume of the operation back; autoRollback is the consent. */
  rollback(operationId: string, reason: string): Promise<RecoverResult>;
}

/** The volumes of this host, through its own deps. */
export function localWrapTarget(deps: Deps, context: RecoverContext = {}): WrapTarget {
  return {
    prepare: async (volumes) =>
      (await resolveUnfinishedRecoveries(deps, { volumes, context })).map(
        (resolved) => `interrupted recovery ${resolved.recoveryId}: ${resolved.action} (${resolved.detail})`,
      ),
    snapshot: (request) => createSnapshots(deps, request),
    complete: async (operationId, outcome, notes) => {
      await completeOperation(deps, { operationId, outcome, notes });
    },
    // Reused snapshots belong to the operation too: one recovery brings every volume back.
    rollback: (operationId, reason) =>
      recover(deps, { operationId, mode: 'rollback', reason }, { ...context, skipChanges: true }),
  };
}

type WrapSnapshots = Pick<WrapResult, 'operationId' | 'snapshots' | 'warnings'>;

/** Step 1: the snapshots (new ones, and the recent ones minInterval reuses as rollback points). */
async function takeSnapshots(target: WrapTarget, options: WrapOptions): Promise<WrapSnapshots> {
  // An interrupted recovery of these volumes is finished (or undone) before anything new starts.
  const warnings = await target.prepare(options.volumes);
  const created = await target.snapshot({
    volumes: options.volumes,
    type: options.deploy ? 'pre-deploy' : 'pre-change',
    operation: options.operation,
    force: Boolean(options.force),
  });
  const snapshots = [
    ...created.created.map((s) => ({ volume: s.volume, name: s.name, reused: false })),
    ...created.skipped.flatMap((s) =>
      s.existing ? [{ volume: s.volume, name: s.existing.name, reused: true }] : [],
    ),
  ];
  for (const skip of created.skipped)
    warnings.push(
      `${skip.volume}: no new snapshot (${skip.reason}); a rollback goes back to ${skip.existing?.name ?? 'nothing'}`,
    );
  warnings.push(...created.warnings);
  return { operationId: created.operationId, snapshots, warnings };
}

/** Step 2: the command, then the validation when the command succeeded. */
async function runSteps(
  deps: Deps,
  options: WrapOptions,
): Promise<{ command: StepRun; validation?: StepRun }> {
  const inherit = Boolean(options.inheritOutput);
  const command = await runStep(deps, options.command, options.commandTimeoutSeconds ?? 3600, inherit);
  if (!command.ok || !options.validate?.length) return { command };
  const validation = await runStep(deps, options.validate, options.validateTimeoutSeconds ?? 300, inherit);
  return { command, validation };
}

function failureOf(steps: { command: StepRun; validation?: StepRun }): WrapResult['failure'] {
  if (!steps.command.ok) return 'command-failed';
  return steps.validation && !steps.validation.ok ? 'validation-failed' : undefined;
}

/** The note the operation's snapshots get with their outcome. */
function outcomeNotes(options: WrapOptions, steps: { command: StepRun; validation?: StepRun }): string {
  const { command, validation } = steps;
  const failure = failureOf(steps);
  if (failure === 'command-failed')
    return `wrap: \`${options.command.join(' ')}\` exited with ${command.exitCode}`;
  if (failure === 'validation-failed')
    return `wrap: validation \`${validation?.argv.join(' ')}\` exited with ${validation?.exitCode}`;
  return `wrap: \`${options.command.join(' ')}\` succeeded${validation ? ' and validated' : ''}`;
}

/** Step 4: the rollback of a failed change; its error is reported, not thrown (the command already ran). */
async function rollBack(
  target: WrapTarget,
  operationId: string,
  failure: NonNullable<WrapResult['failure']>,
): Promise<Pick<WrapResult, 'rollback' | 'rollbackError'>> {
  try {
    return { rollback: await target.rollback(operationId, failure) };
  } catch (error) {
    const e = toSnapguardError(error);
    // wrap is run from the CLI: its report speaks CLI.
    return { rollbackError: { code: e.code, message: e.message, hint: e.hintFor('cli') } };
  }
}

function exitCodeOf(steps: { command: StepRun; validation?: StepRun }): number {
  if (!steps.command.ok) return steps.command.exitCode || 1;
  if (steps.validation && !steps.validation.ok) return steps.validation.exitCode || 1;
  return 0;
}

/**
 * `snapguard wrap`: snapshot, run the command, validate, record the outcome; with autoRollback a
 * failure rolls every snapshotted volume back without asking (the flag is the consent). The
 * volumes are this host's unless a target says otherwise (wrap --host).
 */
export async function runWrap(
  deps: Deps,
  options: WrapOptions,
  context: RecoverContext = {},
  target: WrapTarget = localWrapTarget(deps, context),
): Promise<WrapResult> {
  if (options.command.length === 0) {
    throw new SnapguardError(
      'BAD_INPUT',
      'wrap needs a command after --.',
      'Example: snapguard wrap --volume containers --operation deploy -- docker compose up -d',
    );
  }
  const { operationId, snapshots, warnings } = await takeSnapshots(target, options);
  const steps = await runSteps(deps, options);
  const failure = failureOf(steps);
  const outcome = failure ? 'failed' : 'success';
  if (snapshots.length > 0) await target.complete(operationId, outcome, outcomeNotes(options, steps));
  const rolledBack =
    failure && options.autoRollback && snapshots.length > 0
      ? await rollBack(target, operationId, failure)
      : {};
  return {
    operationId,
    snapshots,
    command: steps.command,
    ...(steps.validation ? { validation: steps.validation } : {}),
    outcome,
    ...(failure ? { failure } : {}),
    ...rolledBack,
    warnings,
    exitCode: exitCodeOf(steps),
  };
}
