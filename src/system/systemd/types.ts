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
