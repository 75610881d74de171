import { setTimeout as sleep } from 'node:timers/promises';
import { SnapguardError, isSnapguardError } from '../../shared/errors.js';
import type { Exec, ExecResult } from '../exec.js';
import { journalctlArgv, journalctlPrefix, showArgs, systemctlArgv, validateUnitName } from './argv.js';
import {
  applyJournalRun,
  hasPendingJob,
  parseJournalRun,
  parseShowOutput,
  type JournalRun,
} from './parse.js';
import {
  DEFAULT_QUERY_TIMEOUT_MS,
  type SystemdTarget,
  type UnitCallOptions,
  type UnitStatus,
} from './types.js';

// Running commands of one systemd target: systemctl (retried while the bus is not reachable),
// journalctl, and the status of a unit after a run.

const busUnreachable =
  /Failed to connect to bus|Transport endpoint is not connected|Connection timed out|Failed to get D-Bus connection/i;
const busRetries = 3;

/** One target as the driver's parts share it. */
export interface SystemdContext {
  exec: Exec;
  target: SystemdTarget;
  /** The target as commands are shown to the user: `systemctl --user`, `ssh host systemctl`. */
  label: string;
}

/**
 * Runs one command of the target. A prefix (nsenter, ssh, sudo) may fork: exec runs it in a
 * process group of its own and stops the whole group on timeout or cancel.
 */
export async function run(
  ctx: SystemdContext,
  argv: string[],
  opts: { timeoutMs: number; signal: AbortSignal | undefined; okExitCodes?: readonly number[] },
): Promise<ExecResult> {
  return ctx.exec(argv[0]!, argv.slice(1), {
    timeoutMs: opts.timeoutMs,
    signal: opts.signal,
    okExitCodes: opts.okExitCodes ?? [],
  });
}

/**
 * One systemctl call. A failure to reach the bus means nothing happened on the target (a
 * freshly booted container answers only after a moment), so it is retried a few times.
 */
export async function systemctl(
  ctx: SystemdContext,
  args: string[],
  opts: UnitCallOptions | undefined,
  defaultTimeoutMs: number,
  okExitCodes: readonly number[] = [],
): Promise<ExecResult> {
  const [file, ...rest] = systemctlArgv(ctx.target, args);
  for (let attempt = 1; ; attempt++) {
    try {
      return await run(ctx, [file!, ...rest], {
        timeoutMs: opts?.timeoutMs ?? defaultTimeoutMs,
        signal: opts?.signal,
        okExitCodes,
      });
    } catch (error) {
      const stderr = isSnapguardError(error) ? String(error.details?.['stderr'] ?? error.message) : '';
      if (
        attempt >= busRetries ||
        !isSnapguardError(error) ||
        error.code !== 'COMMAND_FAILED' ||
        !busUnreachable.test(stderr)
      ) {
        throw error;
      }
      await sleep(200 * attempt, undefined, { signal: opts?.signal });
    }
  }
}

/** One `systemctl show` of a unit: its status, whether a job is queued, and its invocation id. */
export async function query(
  ctx: SystemdContext,
  unit: string,
  opts?: UnitCallOptions,
): Promise<{ status: UnitStatus; jobPending: boolean; invocationId: string }> {
  validateUnitName(unit);
  const result = await systemctl(ctx, showArgs(unit), opts, DEFAULT_QUERY_TIMEOUT_MS);
  return {
    status: parseShowOutput(unit, result.stdout),
    jobPending: hasPendingJob(result.stdout),
    invocationId: /^InvocationID=(\S*)/m.exec(result.stdout)?.[1] ?? '',
  };
}

export async function show(ctx: SystemdContext, unit: string, opts?: UnitCallOptions): Promise<UnitStatus> {
  return (await query(ctx, unit, opts)).status;
}

/** No journald on the target (not installed, not running, no journal files). */
const noJournal = (error: unknown) =>
  isSnapguardError(error) && (error.code === 'COMMAND_FAILED' || error.code === 'COMMAND_NOT_FOUND');

export async function journal(
  ctx: SystemdContext,
  unit: string,
  lines: number,
  opts?: UnitCallOptions,
): Promise<string[]> {
  validateUnitName(unit);
  if (!Number.isInteger(lines) || lines < 1 || lines > 100_000) {
    throw new SnapguardError(
      'BAD_INPUT',
      `Invalid journal line count ${lines}.`,
      'Ask for 1 to 100000 lines.',
    );
  }
  const [file, ...args] = journalctlArgv(ctx.target, unit, lines);
  try {
    const result = await run(ctx, [file!, ...args], {
      timeoutMs: opts?.timeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
      signal: opts?.signal,
    });
    return result.stdout
      .split('\n')
      .filter((line, index, all) => !(line === '' && index === all.length - 1))
      .filter((line) => line !== '-- No entries --');
  } catch (error) {
    if (noJournal(error)) return [];
    throw error;
  }
}

/**
 * systemd unloads an inactive unit that nothing references (a successful oneshot, or a failed
 * one with CollectMode=inactive-or-failed) right after its run, and `show` then answers from the
 * unit file with default values. The manager's own journal messages about the run (with their
 * MESSAGE_IDs) still hold its result, exit status and times.
 */
export async function lastRunFromJournal(
  ctx: SystemdContext,
  unit: string,
  opts: UnitCallOptions | undefined,
): Promise<JournalRun | undefined> {
  const user = ctx.target.scope === 'user';
  const [file, ...args] = [
    ...journalctlPrefix(ctx.target),
    ...(user ? ['--user'] : []),
    `${user ? 'USER_UNIT' : 'UNIT'}=${unit}`,
    '-n',
    '40',
    '--no-pager',
    '-o',
    'json',
    '--output-fields=MESSAGE_ID,INVOCATION_ID,USER_INVOCATION_ID,UNIT_RESULT,EXIT_CODE,EXIT_STATUS',
  ];
  try {
    const result = await run(ctx, [file!, ...args], {
      timeoutMs: DEFAULT_QUERY_TIMEOUT_MS,
      signal: opts?.signal,
    });
    return parseJournalRun(result.stdout);
  } catch (error) {
    if (noJournal(error)) return undefined;
    throw error;
  }
}

/** The status after a run; completed from the journal when systemd has already unloaded the unit. */
export async function statusAfterRun(
  ctx: SystemdContext,
  unit: string,
  opts: UnitCallOptions | undefined,
  notBeforeUsec?: number,
): Promise<UnitStatus> {
  const { status, invocationId } = await query(ctx, unit, { signal: opts?.signal });
  if (invocationId !== '' || status.activeState !== 'inactive' || status.loadState === 'not-found') {
    return status;
  }
  const last = await lastRunFromJournal(ctx, unit, opts);
  // A run that began before this call is an older one (this start failed before running anything).
  if (last === undefined || (notBeforeUsec !== undefined && (last.startUsec ?? 0) < notBeforeUsec))
    return status;
  return applyJournalRun(status, last);
}
