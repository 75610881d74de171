import { SnapguardError, isSnapguardError } from '../../shared/errors.js';
import { journalctlPrefix } from './argv.js';
import { describeStatus } from './parse.js';
import { journal, statusAfterRun, type SystemdContext } from './runner.js';
import type { UnitCallOptions, UnitStatus } from './types.js';

/** Turns a failed start/stop into an error that keeps the unit's Result and exit status. */
export async function unitError(
  ctx: SystemdContext,
  verb: 'start' | 'stop',
  unit: string,
  cause: unknown,
  opts: UnitCallOptions | undefined,
  notBeforeUsec?: number,
): Promise<SnapguardError> {
  if (isSnapguardError(cause) && (cause.code === 'CANCELLED' || cause.code === 'BAD_INPUT')) return cause;
  let status: UnitStatus | undefined;
  let lines: string[] = [];
  try {
    status = await statusAfterRun(ctx, unit, opts, notBeforeUsec);
    lines = await journal(ctx, unit, 10, { signal: opts?.signal });
  } catch {
    // The original failure is what matters; the status is a bonus.
  }
  const targetLabel = ctx.label;
  const command = `${targetLabel} ${verb} ${unit}`;
  if (isSnapguardError(cause) && cause.code === 'TIMEOUT') {
    return new SnapguardError(
      'TIMEOUT',
      `\`${command}\` did not return in time; the ${verb} job keeps running in systemd` +
        (status ? ` (unit is ${describeStatus(status)}).` : '.'),
      `Check it with \`${targetLabel} status ${unit}\`; raise the timeout if the unit legitimately runs longer.`,
      { cause, details: { unit, status, journal: lines } },
    );
  }
  if (status?.loadState === 'not-found') {
    return new SnapguardError(
      'COMMAND_FAILED',
      `Unit ${unit} does not exist on ${targetLabel}.`,
      `Check the name with \`${targetLabel} list-unit-files\`.`,
      { cause, details: { unit, status, journal: lines } },
    );
  }
  const reason = status ? describeStatus(status) : isSnapguardError(cause) ? cause.message : String(cause);
  return new SnapguardError(
    'COMMAND_FAILED',
    `Unit ${unit} failed to ${verb}: ${reason}.` +
      (lines.length > 0 ? ` Last log line: ${lines[lines.length - 1]}` : ''),
    `Read its log: \`${journalctlPrefix(ctx.target).join(' ')}${ctx.target.scope === 'user' ? ' --user' : ''} -u ${unit}\`.`,
    {
      cause,
      details: {
        unit,
        status,
        journal: lines,
        exitCode: isSnapguardError(cause) ? cause.details?.['exitCode'] : undefined,
      },
    },
  );
}
