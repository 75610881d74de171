import type { Deps } from './deps.js';
import { SnapguardError, toSnapguardError } from './errors.js';
import { recover, resolveUnfinishedRecoveries, type RecoverContext } from './recovery/recover.js';
import type { RecoverResult } from './recovery/schemas.js';
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

/**
 * `snapguard wrap`: snapshot, run the command, validate, record the outcome; with autoRollback a
 * failure rolls every snapshotted volume back without asking (the flag is the consent).
 */
export async function runWrap(
  deps: Deps,
  options: WrapOptions,
  context: RecoverContext = {},
): Promise<WrapResult> {
  if (options.command.length === 0) {
    throw new SnapguardError(
      'BAD_INPUT',
      'wrap needs a command after --.',
      'Example: snapguard wrap --volume containers --operation deploy -- docker compose up -d',
    );
  }
  const warnings: string[] = [];
  // An interrupted recovery of these volumes is finished (or undone) before anything new starts.
  for (const resolved of await resolveUnfinishedRecoveries(deps, { volumes: options.volumes, context }))
    warnings.push(`interrupted recovery ${resolved.recoveryId}: ${resolved.action} (${resolved.detail})`);
  const created = await createSnapshots(deps, {
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

  const command = await runStep(
    deps,
    options.command,
    options.commandTimeoutSeconds ?? 3600,
    Boolean(options.inheritOutput),
  );
  let validation: StepRun | undefined;
  if (command.ok && options.validate?.length) {
    validation = await runStep(
      deps,
      options.validate,
      options.validateTimeoutSeconds ?? 300,
      Boolean(options.inheritOutput),
    );
  }
  const failure = !command.ok
    ? 'command-failed'
    : validation && !validation.ok
      ? 'validation-failed'
      : undefined;
  const outcome = failure ? 'failed' : 'success';
  if (snapshots.length > 0) {
    await completeOperation(deps, {
      operationId: created.operationId,
      outcome,
      notes: failure
        ? failure === 'command-failed'
          ? `wrap: \`${options.command.join(' ')}\` exited with ${command.exitCode}`
          : `wrap: validation \`${validation?.argv.join(' ')}\` exited with ${validation?.exitCode}`
        : `wrap: \`${options.command.join(' ')}\` succeeded${validation ? ' and validated' : ''}`,
    });
  }
  let rollback: RecoverResult | undefined;
  let rollbackError: WrapResult['rollbackError'];
  if (failure && options.autoRollback && snapshots.length > 0) {
    try {
      // Reused snapshots belong to the operation too: one recovery brings every volume back.
      rollback = await recover(
        deps,
        { operationId: created.operationId, mode: 'rollback', reason: failure },
        { ...context, skipChanges: true },
      );
    } catch (error) {
      const e = toSnapguardError(error);
      // wrap is run from the CLI: its report speaks CLI.
      rollbackError = { code: e.code, message: e.message, hint: e.hintFor('cli') };
    }
  }
  const exitCode = !command.ok
    ? command.exitCode || 1
    : validation && !validation.ok
      ? validation.exitCode || 1
      : 0;
  return {
    operationId: created.operationId,
    snapshots,
    command,
    ...(validation ? { validation } : {}),
    outcome,
    ...(failure ? { failure } : {}),
    ...(rollback ? { rollback } : {}),
    ...(rollbackError ? { rollbackError } : {}),
    warnings,
    exitCode,
  };
}
