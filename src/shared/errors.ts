/**
 * The one error type of snapguard. `code` is stable (scripts and tests match on it), `message`
 * says what happened, `hint` says what to do about it.
 */
export type ErrorCode =
  | 'BAD_INPUT'
  | 'CONFIG_NOT_FOUND'
  | 'CONFIG_INVALID'
  | 'UNKNOWN_VOLUME'
  | 'SNAPSHOT_NOT_FOUND'
  | 'NOT_OWNED'
  | 'OPERATION_NOT_FOUND'
  | 'POOL_FULL'
  | 'LOCKED'
  | 'READ_ONLY_MODE'
  | 'COMMAND_NOT_FOUND'
  | 'COMMAND_FAILED'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'HISTORY_WRITE_FAILED'
  | 'NOT_SUPPORTED'
  | 'PRECONDITION_FAILED'
  | 'CONFIRMATION_INVALID'
  | 'INTERNAL'
  | 'NO_SPACE'
  | 'READ_ONLY_FS'
  | 'BUSY'
  | 'NOT_ROOT'
  | 'PERMISSION_DENIED'
  | 'PATH_MISSING'
  | 'UNSAFE_STATE_DIR'
  | 'UNKNOWN_HOST'
  | 'HOST_UNREACHABLE';

/** Exit status per code: 3 for bad usage or config, 2 for failures of the operation itself. */
const usageCodes: ReadonlySet<ErrorCode> = new Set([
  'BAD_INPUT',
  'CONFIG_NOT_FOUND',
  'CONFIG_INVALID',
  'UNKNOWN_VOLUME',
  'SNAPSHOT_NOT_FOUND',
  'NOT_OWNED',
  'OPERATION_NOT_FOUND',
  'READ_ONLY_MODE',
  'CONFIRMATION_INVALID',
  'UNSAFE_STATE_DIR',
  'UNKNOWN_HOST',
]);

/** Where a text is read: an MCP tool result (tool names and arguments) or the CLI (verbs and options). */
export type Surface = 'mcp' | 'cli';

/**
 * One piece of advice in the words of each interface: `{ mcp: 'pass force: true', cli: 'add --force' }`.
 * The MCP adapter shows `mcp`, the CLI's printer `cli`.
 */
export interface InterfaceHint {
  mcp: string;
  cli: string;
}

/** The text for one interface: a plain string is the same everywhere. */
export function textFor(text: string | InterfaceHint, surface: Surface): string {
  return typeof text === 'string' ? text : text[surface];
}

export class SnapguardError extends Error {
  readonly code: ErrorCode;
  /** What to do, in the words of the MCP tools when the hint has a form per interface (see hintFor). */
  readonly hint: string;
  readonly details: Record<string, unknown> | undefined;
  /** The hint per interface, when it names tools or options. */
  readonly hints: InterfaceHint | undefined;
  /** The message in the CLI's words, when `message` names tool arguments (see messageFor). */
  readonly cliMessage: string | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    hint: string | InterfaceHint,
    options: { cause?: unknown; details?: Record<string, unknown>; cliMessage?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SnapguardError';
    this.code = code;
    this.hint = textFor(hint, 'mcp');
    this.hints = typeof hint === 'string' ? undefined : hint;
    this.details = options.details;
    this.cliMessage = options.cliMessage;
  }

  /** The message in the words of one interface. */
  messageFor(surface: Surface): string {
    return surface === 'cli' && this.cliMessage !== undefined ? this.cliMessage : this.message;
  }

  /** The hint in the words of one interface. */
  hintFor(surface: Surface): string {
    return this.hints ? this.hints[surface] : this.hint;
  }

  get exitCode(): number {
    return usageCodes.has(this.code) ? 3 : 2;
  }
}

/** The hint of an error as given, both forms when it has two: for a new error that keeps the advice. */
export function hintOf(error: SnapguardError): string | InterfaceHint {
  return error.hints ?? error.hint;
}

export function isSnapguardError(value: unknown): value is SnapguardError {
  return value instanceof SnapguardError;
}

/** Wraps anything thrown into a SnapguardError so the edges (MCP, CLI) have one shape to render. */
export function toSnapguardError(error: unknown): SnapguardError {
  if (error instanceof SnapguardError) return error;
  if (error instanceof Error && error.name === 'AbortError') {
    return new SnapguardError('CANCELLED', 'The operation was cancelled.', 'Run it again when ready.', {
      cause: error,
    });
  }
  const fromHost = fromSystemError(error);
  if (fromHost) return fromHost;
  const message = error instanceof Error ? error.message : String(error);
  return new SnapguardError(
    'INTERNAL',
    `Unexpected error: ${message}`,
    {
      mcp: 'This is a bug in snapguard; report the tool call and this message.',
      cli: 'This is a bug in snapguard; rerun with --json and report the output.',
    },
    { cause: error },
  );
}

/** What to do about each condition of the host (the same advice snapguard doctor gives), per interface. */
export const hostErrorHints = {
  NO_SPACE: {
    mcp: 'Free space on that filesystem: delete old snapshots (call prune_snapshots), delete or move data, or grow the pool; health_check shows the usage.',
    cli: 'Free space on that filesystem: prune old snapshots (snapguard prune), delete or move data, or grow the pool; snapguard health shows the usage.',
  },
  READ_ONLY_FS:
    'The filesystem is mounted read-only (often after an I/O error the kernel remounted it so): check dmesg and the device, then remount it read-write.',
  BUSY: 'Something else is using it (a running btrfs send, an open file, a mount inside it): find it with fuser -vm or lsof, let it finish, and run the command again.',
  NOT_ROOT: {
    mcp: 'Run the snapguard MCP server as root (a root systemd service, or the HTTP transport from one), or grant CAP_SYS_ADMIN to its service.',
    cli: 'Run snapguard as root (sudo, or a root systemd service), or grant CAP_SYS_ADMIN to its service; snapguard doctor checks the permissions.',
  },
  PERMISSION_DENIED: {
    mcp: 'snapguard runs as root but the system refused: check the file attributes (lsattr, chattr -i), the mount options and security modules on the host.',
    cli: 'snapguard runs as root but the system refused: check the file attributes (lsattr, chattr -i), the mount options and security modules; snapguard doctor checks the folders it writes to.',
  },
  PATH_MISSING: {
    mcp: 'Check that the path exists and its filesystem is mounted, and the volume paths in the configuration (the snapguard://config resource). If a volume was lost, recover it from a snapshot (call list_snapshots, then recover).',
    cli: 'Check that the path exists and its filesystem is mounted, and the volume paths in the configuration; snapguard doctor checks every configured path. If a volume was lost, recover it from a snapshot.',
  },
} as const satisfies Partial<Record<ErrorCode, string | InterfaceHint>>;

const hostErrnos: Record<string, { code: keyof typeof hostErrorHints; what: string }> = {
  ENOSPC: { code: 'NO_SPACE', what: 'No space left on the device' },
  EDQUOT: { code: 'NO_SPACE', what: 'Disk quota exceeded' },
  EROFS: { code: 'READ_ONLY_FS', what: 'The filesystem is read-only' },
  EBUSY: { code: 'BUSY', what: 'The resource is busy' },
  EACCES: { code: 'NOT_ROOT', what: 'Permission denied' },
  EPERM: { code: 'NOT_ROOT', what: 'Operation not permitted' },
  ENOENT: { code: 'PATH_MISSING', what: 'No such file or folder' },
};

/** Phrases the tools snapguard drives (btrfs, cp, zfs) print for the same conditions. */
const hostMessages: readonly [RegExp, string][] = [
  [/no space left on device/i, 'ENOSPC'],
  [/disk quota exceeded/i, 'EDQUOT'],
  [/read-only file ?system/i, 'EROFS'],
  [/device or resource busy/i, 'EBUSY'],
  [/operation not permitted/i, 'EPERM'],
  [/permission denied/i, 'EACCES'],
];

/** The errno a command's error output names, if it names one of the conditions above. */
export function errnoInOutput(text: string): string | undefined {
  return hostMessages.find(([pattern]) => pattern.test(text))?.[1];
}

/**
 * A condition of the host (full disk, read-only or busy filesystem, missing permission or path)
 * as the user's error to fix, not a bug: a Node errno error, or an errno given as `errno` (e.g.
 * read from a command's output). `context` says what snapguard was doing ("creating the snapshot
 * of data"). Undefined when the error is none of these.
 */
export function fromSystemError(
  error: unknown,
  context?: string,
  errno?: string,
): SnapguardError | undefined {
  const err = error as (Partial<NodeJS.ErrnoException> & { dest?: string }) | null | undefined;
  const code = errno ?? (typeof err?.code === 'string' ? err.code : undefined);
  const known = code === undefined ? undefined : hostErrnos[code];
  if (!known) return undefined;
  const root = (process.getuid?.() ?? 0) === 0;
  const kind = known.code === 'NOT_ROOT' && root ? 'PERMISSION_DENIED' : known.code;
  const path = typeof err?.path === 'string' ? err.path : undefined;
  const where = path ? `: ${path}` : '';
  const while_ = context ? ` while ${context}` : '';
  const user = known.code === 'NOT_ROOT' && !root ? ` (snapguard runs as uid ${process.getuid?.()})` : '';
  const original = error instanceof Error ? error.message : String(error);
  return new SnapguardError(kind, `${known.what}${where}${while_}${user}.`, hostErrorHints[kind], {
    cause: error,
    details: { errno: code, ...(path ? { path } : {}), reason: original },
  });
}
