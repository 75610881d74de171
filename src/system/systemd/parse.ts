import { isSnapguardError } from '../../shared/errors.js';
import type { ListedUnit, UnitStatus } from './types.js';

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

export function describeStatus(status: UnitStatus): string {
  const main =
    status.execMainStatus === undefined ? '' : `, main process exit status ${status.execMainStatus}`;
  return `${status.activeState}/${status.subState}, result ${status.result || 'unknown'}${main}`;
}

/** Finished: not running any more, or a RemainAfterExit oneshot whose main process has exited. */
export function isFinished(status: UnitStatus): boolean {
  if (status.activeState === 'inactive' || status.activeState === 'failed') return true;
  return status.activeState === 'active' && status.subState === 'exited';
}
