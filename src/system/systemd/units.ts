import { setTimeout as sleep } from 'node:timers/promises';
import { SnapguardError } from '../../shared/errors.js';
import { showArgs, validateUnitName, validateUnitPattern } from './argv.js';
import {
  applyJournalRun,
  isFinished,
  parseListUnitFiles,
  parseListUnits,
  parseShowManyOutput,
} from './parse.js';
import { lastRunFromJournal, query, show, statusAfterRun, systemctl, type SystemdContext } from './runner.js';
import {
  DEFAULT_QUERY_TIMEOUT_MS,
  DEFAULT_START_TIMEOUT_MS,
  DEFAULT_STOP_TIMEOUT_MS,
  type ListedUnit,
  type UnitCallOptions,
  type UnitStatus,
} from './types.js';
import { unitError } from './unit-error.js';

// The driver's verbs on units: start, stop, is-active, show many, list, wait for a run to end.

/** Clock difference tolerated between this host and the target when matching a run in the journal. */
const clockSlackUsec = 5_000_000;

export async function showMany(
  ctx: SystemdContext,
  units: string[],
  opts?: UnitCallOptions,
): Promise<UnitStatus[]> {
  units.forEach((unit) => validateUnitName(unit));
  if (units.length === 0) return [];
  // showArgs(u) is [show, ...options, --, u]: keep the options, name every unit.
  const options = showArgs(units[0]!).slice(1, -2);
  const result = await systemctl(ctx, ['show', ...options, '--', ...units], opts, DEFAULT_QUERY_TIMEOUT_MS);
  return parseShowManyOutput(units, result.stdout);
}

export async function startUnit(
  ctx: SystemdContext,
  unit: string,
  opts?: UnitCallOptions & { noBlock?: boolean },
): Promise<UnitStatus> {
  validateUnitName(unit);
  const args = ['start', ...(opts?.noBlock ? ['--no-block'] : []), '--', unit];
  const notBeforeUsec = Date.now() * 1000 - clockSlackUsec;
  try {
    await systemctl(ctx, args, opts, opts?.noBlock ? DEFAULT_QUERY_TIMEOUT_MS : DEFAULT_START_TIMEOUT_MS);
  } catch (error) {
    throw await unitError(ctx, 'start', unit, error, opts, notBeforeUsec);
  }
  return opts?.noBlock
    ? show(ctx, unit, { signal: opts?.signal })
    : statusAfterRun(ctx, unit, opts, notBeforeUsec);
}

export async function stopUnit(
  ctx: SystemdContext,
  unit: string,
  opts?: UnitCallOptions,
): Promise<UnitStatus> {
  validateUnitName(unit);
  try {
    await systemctl(ctx, ['stop', '--', unit], opts, DEFAULT_STOP_TIMEOUT_MS);
  } catch (error) {
    throw await unitError(ctx, 'stop', unit, error, opts);
  }
  return show(ctx, unit, { signal: opts?.signal });
}

export async function isActive(ctx: SystemdContext, unit: string, opts?: UnitCallOptions): Promise<boolean> {
  validateUnitName(unit);
  // is-active exits 3 for inactive/failed and 4 for unknown units, writing the state on stdout;
  // an empty stdout with a non-zero exit means systemctl itself failed.
  const result = await systemctl(
    ctx,
    ['is-active', '--', unit],
    opts,
    DEFAULT_QUERY_TIMEOUT_MS,
    [1, 2, 3, 4],
  );
  if (result.exitCode !== 0 && result.stdout.trim() === '') {
    throw new SnapguardError(
      'COMMAND_FAILED',
      `\`${result.command}\` failed with exit code ${result.exitCode}: ${result.stderr.trim() || 'no output'}`,
      'Check that systemd is reachable on the target.',
      { details: { command: result.command, exitCode: result.exitCode } },
    );
  }
  return result.exitCode === 0;
}

export async function listUnitFiles(
  ctx: SystemdContext,
  patterns: string[],
  opts?: UnitCallOptions,
): Promise<{ unit: string; state: string }[]> {
  patterns.forEach(validateUnitPattern);
  // Exit 1 with no output means nothing matched.
  const result = await systemctl(
    ctx,
    ['list-unit-files', '--plain', '--no-legend', '--', ...patterns],
    opts,
    DEFAULT_QUERY_TIMEOUT_MS,
    [1],
  );
  if (result.exitCode !== 0 && result.stdout.trim() !== '') {
    throw new SnapguardError(
      'COMMAND_FAILED',
      `\`${result.command}\` failed with exit code ${result.exitCode}: ${result.stderr.trim() || 'no output'}`,
      'Check that systemd is reachable on the target.',
    );
  }
  if (result.exitCode !== 0 && result.stderr.trim() !== '') {
    throw new SnapguardError(
      'COMMAND_FAILED',
      `\`${result.command}\` failed: ${result.stderr.trim()}`,
      'Check that systemd is reachable on the target.',
    );
  }
  return parseListUnitFiles(result.stdout);
}

export async function listUnits(
  ctx: SystemdContext,
  patterns: string[],
  opts?: UnitCallOptions,
): Promise<ListedUnit[]> {
  patterns.forEach(validateUnitPattern);
  const loaded = parseListUnits(
    (
      await systemctl(
        ctx,
        ['list-units', '--all', '--plain', '--no-legend', '--', ...patterns],
        opts,
        DEFAULT_QUERY_TIMEOUT_MS,
      )
    ).stdout,
  );
  const files = await listUnitFiles(ctx, patterns, opts);
  const known = new Set(loaded.map((unit) => unit.unit));
  for (const file of files) {
    // Templates (name@.service) cannot run as they are; aliases name a unit listed under its own name.
    if (known.has(file.unit) || /@\.[a-z]+$/.test(file.unit) || file.state === 'alias') continue;
    loaded.push({
      unit: file.unit,
      loadState: file.state === 'masked' || file.state === 'masked-runtime' ? 'masked' : 'not-loaded',
      activeState: 'inactive',
      subState: 'dead',
      description: '',
    });
  }
  return loaded.sort((a, b) => a.unit.localeCompare(b.unit));
}

export async function waitUntilInactive(
  ctx: SystemdContext,
  unit: string,
  opts: UnitCallOptions & { timeoutMs: number },
): Promise<UnitStatus> {
  validateUnitName(unit);
  const deadline = performance.now() + opts.timeoutMs;
  // systemctl has no "wait for this running job" verb and exec does not stream, so poll with a
  // growing interval: quick answers for short runs, few calls for long ones.
  let interval = 100;
  for (;;) {
    const remaining = deadline - performance.now();
    const { status, jobPending, invocationId } = await query(ctx, unit, {
      signal: opts.signal,
      timeoutMs: Math.max(1000, Math.min(DEFAULT_QUERY_TIMEOUT_MS, remaining)),
    });
    // A job still queued (start --no-block before it ran) means the run has not even begun.
    if (!jobPending && isFinished(status)) {
      if (invocationId !== '' || status.activeState !== 'inactive') return status;
      const run = await lastRunFromJournal(ctx, unit, opts);
      return run ? applyJournalRun(status, run) : status;
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new SnapguardError(
        'TIMEOUT',
        `Unit ${unit} on ${ctx.label} was still ${status.activeState}/${status.subState} after ${Math.round(opts.timeoutMs / 1000)} s.`,
        `It keeps running; check it with \`${ctx.label} status ${unit}\` or wait longer.`,
        { details: { unit, status } },
      );
    }
    await sleep(Math.min(interval, left), undefined, { signal: opts.signal }).catch((error: unknown) => {
      throw new SnapguardError(
        'CANCELLED',
        `Cancelled while waiting for ${unit} to finish.`,
        'The unit keeps running in systemd.',
        { cause: error },
      );
    });
    interval = Math.min(interval * 1.5, 2000);
  }
}
