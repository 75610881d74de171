import { setTimeout as sleep } from 'node:timers/promises';
import { SnapguardError, isSnapguardError } from '../shared/errors.js';
import type { Exec, ExecResult } from './exec.js';

/**
 * How systemctl is reached. `systemctl` is the argv prefix: `['systemctl']` on this host,
 * `['nsenter', '-t', PID, '-a', 'systemctl']` for a container, `['ssh', 'host', 'systemctl']` for
 * another host. Scope `user` adds `--user` (the user manager of whoever runs the prefix).
 */
export interface SystemdTarget {
  systemctl: string[];
  scope: 'system' | 'user';
}

export interface UnitStatus {
  unit: string;
  loadState: string;
  activeState: string;
  subState: string;
  result: string;
  execMainStatus: number | undefined;
  execMainStartTimestampUsec?: number;
  execMainExitTimestampUsec?: number;
  type: string | undefined;
}

export interface ListedUnit {
  unit: string;
  loadState: string;
  activeState: string;
  subState: string;
  description: string;
}

export interface UnitCallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SystemdDriver {
  readonly target: SystemdTarget;
  /** One `systemctl show -p ...` call. */
  show(unit: string, opts?: UnitCallOptions): Promise<UnitStatus>;
  /**
   * `systemctl start` blocks until a oneshot has finished (or a service is up) and returns the
   * status after. A unit that fails throws COMMAND_FAILED with `details.status` (Result,
   * ExecMainStatus) and `details.journal`; see `unitStatusOf`.
   */
  start(unit: string, opts?: UnitCallOptions & { noBlock?: boolean }): Promise<UnitStatus>;
  stop(unit: string, opts?: UnitCallOptions): Promise<UnitStatus>;
  isActive(unit: string, opts?: UnitCallOptions): Promise<boolean>;
  /** One `systemctl show` for many units (one process instead of one per unit), in argument order. */
  showMany(units: string[], opts?: UnitCallOptions): Promise<UnitStatus[]>;
  /** Loaded units matching the patterns, plus unit files that match but are not loaded. */
  listUnits(patterns: string[], opts?: UnitCallOptions): Promise<ListedUnit[]>;
  listUnitFiles(patterns: string[], opts?: UnitCallOptions): Promise<{ unit: string; state: string }[]>;
  /** Waits for a unit that is already running (e.g. from its timer) to finish; TIMEOUT when it does not. */
  waitUntilInactive(unit: string, opts: UnitCallOptions & { timeoutMs: number }): Promise<UnitStatus>;
  /** Last lines of the unit's journal; empty when journald is not available on the target. */
  journal(unit: string, lines: number, opts?: UnitCallOptions): Promise<string[]>;
}

/** Queries answer quickly; a hung bus must not hang snapguard. */
export const DEFAULT_QUERY_TIMEOUT_MS = 60_000;
/** `start` of a oneshot waits for the whole run (a backup, a dump). */
export const DEFAULT_START_TIMEOUT_MS = 3_600_000;
export const DEFAULT_STOP_TIMEOUT_MS = 600_000;

/** Unit names: guardrail 2 (no shell, vetted arguments). A leading '-' would be read as an option. */
const unitNamePattern = /^[A-Za-z0-9@:._\\-]+$/;
const unitPatternPattern = /^[A-Za-z0-9@:._\\\-*?[\]]+$/;
const maxUnitNameLength = 256;

export function validateUnitName(unit: string, what = 'unit name'): string {
  if (typeof unit !== 'string' || unit.length === 0 || unit.length > maxUnitNameLength) {
    throw new SnapguardError(
      'BAD_INPUT',
      `Invalid ${what} ${JSON.stringify(unit)}: it must be 1-${maxUnitNameLength} characters.`,
      'Give a systemd unit name such as backup-db.service.',
    );
  }
  if (!unitNamePattern.test(unit) || unit.startsWith('-')) {
    throw new SnapguardError(
      'BAD_INPUT',
      `Invalid ${what} ${JSON.stringify(unit)}: only letters, digits and @ : . _ \\ - are allowed, and it must not start with '-'.`,
      'Give a plain systemd unit name such as backup-db.service (globs are only accepted where units are listed).',
    );
  }
  return unit;
}

export function validateUnitPattern(pattern: string): string {
  if (
    typeof pattern !== 'string' ||
    pattern.length === 0 ||
    pattern.length > maxUnitNameLength ||
    !unitPatternPattern.test(pattern) ||
    pattern.startsWith('-')
  ) {
    throw new SnapguardError(
      'BAD_INPUT',
      `Invalid unit pattern ${JSON.stringify(pattern)}: only letters, digits, @ : . _ \\ - and the globs * ? [ ] are allowed, and it must not start with '-'.`,
      'Give a pattern such as backup-*.service.',
    );
  }
  return pattern;
}

function validateTarget(target: SystemdTarget): void {
  if (!Array.isArray(target.systemctl) || target.systemctl.length === 0) {
    throw new SnapguardError(
      'BAD_INPUT',
      'The systemctl command prefix is empty.',
      "Use ['systemctl'], ['nsenter', '-t', PID, '-a', 'systemctl'] or ['ssh', HOST, 'systemctl'].",
    );
  }
  if (target.scope !== 'system' && target.scope !== 'user') {
    throw new SnapguardError(
      'BAD_INPUT',
      `Unknown systemd scope ${JSON.stringify(target.scope)}.`,
      "Use 'system' or 'user'.",
    );
  }
}

/** argv (file first) for one systemctl call on the target. */
export function systemctlArgv(target: SystemdTarget, args: readonly string[]): string[] {
  return [...target.systemctl, ...(target.scope === 'user' ? ['--user'] : []), ...args];
}

/** The journalctl prefix that matches a systemctl prefix: its last element becomes journalctl. */
export function journalctlPrefix(target: SystemdTarget): string[] {
  const prefix = [...target.systemctl];
  const last = prefix[prefix.length - 1] ?? 'systemctl';
  prefix[prefix.length - 1] = last.endsWith('systemctl')
    ? `${last.slice(0, -'systemctl'.length)}journalctl`
    : 'journalctl';
  return prefix;
}

export function journalctlArgv(target: SystemdTarget, unit: string, lines: number): string[] {
  return [
    ...journalctlPrefix(target),
    ...(target.scope === 'user' ? ['--user'] : []),
    '-u',
    unit,
    '-n',
    String(lines),
    '--no-pager',
    '-o',
    'cat',
  ];
}

const showProperties = [
  'Id',
  'LoadState',
  'ActiveState',
  'SubState',
  'Result',
  'ExecMainStatus',
  'ExecMainStartTimestamp',
  'ExecMainExitTimestamp',
  'Type',
  'Job',
  'InvocationID',
] as const;

export function showArgs(unit: string): string[] {
  return ['show', '--timestamp=us+utc', '-p', showProperties.join(','), '--', unit];
}

/** `Sat 2026-11-21 19:57:12.305192 UTC` (from --timestamp=us+utc) -> microseconds since the epoch. */
export function parseTimestampUsec(value: string | undefined): number | undefined {
  if (value === undefined || value === '' || value === 'n/a') return undefined;
  const match = /(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?: UTC)?$/.exec(
    value.trim(),
  );
  if (match === null) return undefined;
  const [, y, mo, d, h, mi, s, frac] = match;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms)) return undefined;
  return ms * 1000 + Number((frac ?? '').padEnd(6, '0'));
}

/** Parses `systemctl show` Key=Value output into a UnitStatus. */
export function parseShowOutput(unit: string, stdout: string): UnitStatus {
  const values = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const statusText = values.get('ExecMainStatus') ?? '';
  const execMainStatus = /^\d+$/.test(statusText) ? Number(statusText) : undefined;
  const type = values.get('Type') ?? '';
  const status: UnitStatus = {
    unit: values.get('Id') || unit,
    loadState: values.get('LoadState') ?? '',
    activeState: values.get('ActiveState') ?? '',
    subState: values.get('SubState') ?? '',
    result: values.get('Result') ?? '',
    execMainStatus,
    type: type === '' ? undefined : type,
  };
  const started = parseTimestampUsec(values.get('ExecMainStartTimestamp'));
  const exited = parseTimestampUsec(values.get('ExecMainExitTimestamp'));
  if (started !== undefined) status.execMainStartTimestampUsec = started;
  if (exited !== undefined) status.execMainExitTimestampUsec = exited;
  return status;
}

/** `systemctl show` of several units prints one block per unit, in order, separated by a blank line. */
export function parseShowManyOutput(units: readonly string[], stdout: string): UnitStatus[] {
  const blocks = stdout.split(/\n\n/);
  return units.map((unit, index) => parseShowOutput(unit, blocks[index] ?? ''));
}

/** What the manager logged about one run (one invocation) of a unit. */
export interface JournalRun {
  invocationId: string;
  startUsec?: number;
  exitUsec?: number;
  result?: string;
  exitStatus?: number;
}

/** Message ids of systemd's catalog for the manager's messages about a unit's run. */
const messageIds = {
  starting: '7d4958e842da4a758f6c1cdc7b36dcc5',
  processExit: '98e322203f7a4ed290d09fe03c09fe15',
  failureResult: 'd9b373ed55a64feb8242e02dbe79a49c',
  success: '7ad2d189f7e94e70a38c781354912448',
} as const;

/** The last run in `journalctl -o json` lines (oldest first), grouped by invocation id. */
export function parseJournalRun(stdout: string): JournalRun | undefined {
  let run: JournalRun | undefined;
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const text = (key: string) => (typeof entry[key] === 'string' ? (entry[key] as string) : undefined);
    const id = text('MESSAGE_ID');
    const invocation = text('INVOCATION_ID') ?? text('USER_INVOCATION_ID');
    if (id === undefined || invocation === undefined || !Object.values(messageIds).includes(id as never))
      continue;
    if (run?.invocationId !== invocation) run = { invocationId: invocation };
    const at = Number(text('__REALTIME_TIMESTAMP'));
    const when = Number.isFinite(at) && at > 0 ? at : undefined;
    if (id === messageIds.starting && when !== undefined) run.startUsec = when;
    if (id === messageIds.processExit) {
      if (when !== undefined) run.exitUsec = when;
      const status = text('EXIT_STATUS');
      if (text('EXIT_CODE') === 'exited' && status !== undefined && /^\d+$/.test(status))
        run.exitStatus = Number(status);
    }
    if (id === messageIds.failureResult) run.result = text('UNIT_RESULT') ?? run.result;
    if (id === messageIds.success) {
      run.result = 'success';
      run.exitUsec ??= when;
    }
  }
  return run;
}

/** Completes a status read after systemd unloaded the unit with what the journal kept. */
export function applyJournalRun(status: UnitStatus, run: JournalRun): UnitStatus {
  const merged: UnitStatus = { ...status };
  if (run.result !== undefined) merged.result = run.result;
  if (run.exitStatus !== undefined) merged.execMainStatus = run.exitStatus;
  else if (run.result === 'success') merged.execMainStatus = 0;
  if (run.startUsec !== undefined) merged.execMainStartTimestampUsec = run.startUsec;
  if (run.exitUsec !== undefined) merged.execMainExitTimestampUsec = run.exitUsec;
  return merged;
}

/** `Job=84` while a start/stop job for the unit is queued or running, `Job=` otherwise. */
export function hasPendingJob(stdout: string): boolean {
  return /^Job=\S/m.test(stdout);
}

/** `list-units --plain --no-legend`: UNIT LOAD ACTIVE SUB DESCRIPTION... */
export function parseListUnits(stdout: string): ListedUnit[] {
  const units: ListedUnit[] = [];
  for (const raw of stdout.split('\n')) {
    // Without --plain (or on some terminals) a status bullet precedes the name.
    const line = raw.replace(/^[\s●*×]+/u, '').trim();
    if (line === '') continue;
    const match = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (match === null) continue;
    const [, unit, loadState, activeState, subState, description] = match;
    units.push({
      unit: unit!,
      loadState: loadState!,
      activeState: activeState!,
      subState: subState!,
      description: description ?? '',
    });
  }
  return units;
}

/** `list-unit-files --plain --no-legend`: UNIT STATE [PRESET]. */
export function parseListUnitFiles(stdout: string): { unit: string; state: string }[] {
  const files: { unit: string; state: string }[] = [];
  for (const line of stdout.split('\n')) {
    const [unit, state] = line.trim().split(/\s+/);
    if (unit && state) files.push({ unit, state });
  }
  return files;
}

/** The UnitStatus carried by an error from start/stop/waitUntilInactive, if any. */
export function unitStatusOf(error: unknown): UnitStatus | undefined {
  if (!isSnapguardError(error)) return undefined;
  const status = error.details?.['status'];
  return status !== null && typeof status === 'object' ? (status as UnitStatus) : undefined;
}

/** A unit's run failed: Result is not success, or its main process exited non-zero. */
export function unitRunFailed(status: UnitStatus): boolean {
  return (
    status.activeState === 'failed' ||
    (status.result !== '' && status.result !== 'success') ||
    (status.execMainStatus !== undefined && status.execMainStatus !== 0)
  );
}

function describeStatus(status: UnitStatus): string {
  const main =
    status.execMainStatus === undefined ? '' : `, main process exit status ${status.execMainStatus}`;
  return `${status.activeState}/${status.subState}, result ${status.result || 'unknown'}${main}`;
}

const busUnreachable =
  /Failed to connect to bus|Transport endpoint is not connected|Connection timed out|Failed to get D-Bus connection/i;
const busRetries = 3;
/** Clock difference tolerated between this host and the target when matching a run in the journal. */
const clockSlackUsec = 5_000_000;

export function createSystemdDriver(exec: Exec, target: SystemdTarget): SystemdDriver {
  validateTarget(target);
  const frozenTarget: SystemdTarget = Object.freeze({
    systemctl: [...target.systemctl],
    scope: target.scope,
  });
  const targetLabel = frozenTarget.systemctl.join(' ') + (frozenTarget.scope === 'user' ? ' --user' : '');

  /**
   * One systemctl call. A failure to reach the bus means nothing happened on the target (a
   * freshly booted container answers only after a moment), so it is retried a few times.
   */
  /**
   * Runs one command of the target. A prefix (nsenter, ssh, sudo) may fork: exec runs it in a
   * process group of its own and stops the whole group on timeout or cancel.
   */
  async function run(
    argv: string[],
    opts: { timeoutMs: number; signal: AbortSignal | undefined; okExitCodes?: readonly number[] },
  ): Promise<ExecResult> {
    return exec(argv[0]!, argv.slice(1), {
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
      okExitCodes: opts.okExitCodes ?? [],
    });
  }

  async function systemctl(
    args: string[],
    opts: UnitCallOptions | undefined,
    defaultTimeoutMs: number,
    okExitCodes: readonly number[] = [],
  ): Promise<ExecResult> {
    const [file, ...rest] = systemctlArgv(frozenTarget, args);
    for (let attempt = 1; ; attempt++) {
      try {
        return await run([file!, ...rest], {
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

  async function query(
    unit: string,
    opts?: UnitCallOptions,
  ): Promise<{ status: UnitStatus; jobPending: boolean; invocationId: string }> {
    validateUnitName(unit);
    const result = await systemctl(showArgs(unit), opts, DEFAULT_QUERY_TIMEOUT_MS);
    return {
      status: parseShowOutput(unit, result.stdout),
      jobPending: hasPendingJob(result.stdout),
      invocationId: /^InvocationID=(\S*)/m.exec(result.stdout)?.[1] ?? '',
    };
  }

  async function show(unit: string, opts?: UnitCallOptions): Promise<UnitStatus> {
    return (await query(unit, opts)).status;
  }

  async function journal(unit: string, lines: number, opts?: UnitCallOptions): Promise<string[]> {
    validateUnitName(unit);
    if (!Number.isInteger(lines) || lines < 1 || lines > 100_000) {
      throw new SnapguardError(
        'BAD_INPUT',
        `Invalid journal line count ${lines}.`,
        'Ask for 1 to 100000 lines.',
      );
    }
    const [file, ...args] = journalctlArgv(frozenTarget, unit, lines);
    try {
      const result = await run([file!, ...args], {
        timeoutMs: opts?.timeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
        signal: opts?.signal,
      });
      return result.stdout
        .split('\n')
        .filter((line, index, all) => !(line === '' && index === all.length - 1))
        .filter((line) => line !== '-- No entries --');
    } catch (error) {
      // No journald on the target (not installed, not running, no journal files): no lines.
      if (
        isSnapguardError(error) &&
        (error.code === 'COMMAND_FAILED' || error.code === 'COMMAND_NOT_FOUND')
      ) {
        return [];
      }
      throw error;
    }
  }

  /**
   * systemd unloads an inactive unit that nothing references (a successful oneshot, or a failed
   * one with CollectMode=inactive-or-failed) right after its run, and `show` then answers from the
   * unit file with default values. The manager's own journal messages about the run (with their
   * MESSAGE_IDs) still hold its result, exit status and times.
   */
  async function lastRunFromJournal(
    unit: string,
    opts: UnitCallOptions | undefined,
  ): Promise<JournalRun | undefined> {
    const field = frozenTarget.scope === 'user' ? 'USER_UNIT' : 'UNIT';
    const [file, ...args] = [
      ...journalctlPrefix(frozenTarget),
      ...(frozenTarget.scope === 'user' ? ['--user'] : []),
      `${field}=${unit}`,
      '-n',
      '40',
      '--no-pager',
      '-o',
      'json',
      '--output-fields=MESSAGE_ID,INVOCATION_ID,USER_INVOCATION_ID,UNIT_RESULT,EXIT_CODE,EXIT_STATUS',
    ];
    try {
      const result = await run([file!, ...args], {
        timeoutMs: DEFAULT_QUERY_TIMEOUT_MS,
        signal: opts?.signal,
      });
      return parseJournalRun(result.stdout);
    } catch (error) {
      if (
        isSnapguardError(error) &&
        (error.code === 'COMMAND_FAILED' || error.code === 'COMMAND_NOT_FOUND')
      ) {
        return undefined;
      }
      throw error;
    }
  }

  /** The status after a run; completed from the journal when systemd has already unloaded the unit. */
  async function statusAfterRun(
    unit: string,
    opts: UnitCallOptions | undefined,
    notBeforeUsec?: number,
  ): Promise<UnitStatus> {
    const { status, invocationId } = await query(unit, { signal: opts?.signal });
    if (invocationId !== '' || status.activeState !== 'inactive' || status.loadState === 'not-found') {
      return status;
    }
    const run = await lastRunFromJournal(unit, opts);
    // A run that began before this call is an older one (this start failed before running anything).
    if (run === undefined || (notBeforeUsec !== undefined && (run.startUsec ?? 0) < notBeforeUsec))
      return status;
    return applyJournalRun(status, run);
  }

  /** Turns a failed start/stop into an error that keeps the unit's Result and exit status. */
  async function unitError(
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
      status = await statusAfterRun(unit, opts, notBeforeUsec);
      lines = await journal(unit, 10, { signal: opts?.signal });
    } catch {
      // The original failure is what matters; the status is a bonus.
    }
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
      `Read its log: \`${journalctlPrefix(frozenTarget).join(' ')}${frozenTarget.scope === 'user' ? ' --user' : ''} -u ${unit}\`.`,
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

  async function listUnitFiles(
    patterns: string[],
    opts?: UnitCallOptions,
  ): Promise<{ unit: string; state: string }[]> {
    patterns.forEach(validateUnitPattern);
    // Exit 1 with no output means nothing matched.
    const result = await systemctl(
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

  return {
    target: frozenTarget,
    show,

    async showMany(units, opts) {
      units.forEach((unit) => validateUnitName(unit));
      if (units.length === 0) return [];
      // showArgs(u) is [show, ...options, --, u]: keep the options, name every unit.
      const options = showArgs(units[0]!).slice(1, -2);
      const result = await systemctl(['show', ...options, '--', ...units], opts, DEFAULT_QUERY_TIMEOUT_MS);
      return parseShowManyOutput(units, result.stdout);
    },

    async start(unit, opts) {
      validateUnitName(unit);
      const args = ['start', ...(opts?.noBlock ? ['--no-block'] : []), '--', unit];
      const notBeforeUsec = Date.now() * 1000 - clockSlackUsec;
      try {
        await systemctl(args, opts, opts?.noBlock ? DEFAULT_QUERY_TIMEOUT_MS : DEFAULT_START_TIMEOUT_MS);
      } catch (error) {
        throw await unitError('start', unit, error, opts, notBeforeUsec);
      }
      return opts?.noBlock ? show(unit, { signal: opts?.signal }) : statusAfterRun(unit, opts, notBeforeUsec);
    },

    async stop(unit, opts) {
      validateUnitName(unit);
      try {
        await systemctl(['stop', '--', unit], opts, DEFAULT_STOP_TIMEOUT_MS);
      } catch (error) {
        throw await unitError('stop', unit, error, opts);
      }
      return show(unit, { signal: opts?.signal });
    },

    async isActive(unit, opts) {
      validateUnitName(unit);
      // is-active exits 3 for inactive/failed and 4 for unknown units, writing the state on stdout;
      // an empty stdout with a non-zero exit means systemctl itself failed.
      const result = await systemctl(['is-active', '--', unit], opts, DEFAULT_QUERY_TIMEOUT_MS, [1, 2, 3, 4]);
      if (result.exitCode !== 0 && result.stdout.trim() === '') {
        throw new SnapguardError(
          'COMMAND_FAILED',
          `\`${result.command}\` failed with exit code ${result.exitCode}: ${result.stderr.trim() || 'no output'}`,
          'Check that systemd is reachable on the target.',
          { details: { command: result.command, exitCode: result.exitCode } },
        );
      }
      return result.exitCode === 0;
    },

    listUnitFiles,

    async listUnits(patterns, opts) {
      patterns.forEach(validateUnitPattern);
      const loaded = parseListUnits(
        (
          await systemctl(
            ['list-units', '--all', '--plain', '--no-legend', '--', ...patterns],
            opts,
            DEFAULT_QUERY_TIMEOUT_MS,
          )
        ).stdout,
      );
      const files = await listUnitFiles(patterns, opts);
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
    },

    async waitUntilInactive(unit, opts) {
      validateUnitName(unit);
      const deadline = performance.now() + opts.timeoutMs;
      // systemctl has no "wait for this running job" verb and exec does not stream, so poll with a
      // growing interval: quick answers for short runs, few calls for long ones.
      let interval = 100;
      for (;;) {
        const remaining = deadline - performance.now();
        const { status, jobPending, invocationId } = await query(unit, {
          signal: opts.signal,
          timeoutMs: Math.max(1000, Math.min(DEFAULT_QUERY_TIMEOUT_MS, remaining)),
        });
        // A job still queued (start --no-block before it ran) means the run has not even begun.
        if (!jobPending && isFinished(status)) {
          if (invocationId !== '' || status.activeState !== 'inactive') return status;
          const run = await lastRunFromJournal(unit, opts);
          return run ? applyJournalRun(status, run) : status;
        }
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new SnapguardError(
            'TIMEOUT',
            `Unit ${unit} on ${targetLabel} was still ${status.activeState}/${status.subState} after ${Math.round(opts.timeoutMs / 1000)} s.`,
            `It keeps running; check it with \`${targetLabel} status ${unit}\` or wait longer.`,
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
    },

    journal,
  };
}

/** Finished: not running any more, or a RemainAfterExit oneshot whose main process has exited. */
function isFinished(status: UnitStatus): boolean {
  if (status.activeState === 'inactive' || status.activeState === 'failed') return true;
  return status.activeState === 'active' && status.subState === 'exited';
}
