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
  | 'UNSAFE_STATE_DIR';

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

export function isInterfaceHint(value: unknown): value is InterfaceHint {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as InterfaceHint).mcp === 'string' &&
    typeof (value as InterfaceHint).cli === 'string'
  );
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

  constructor(
    code: ErrorCode,
    message: string,
    hint: string | InterfaceHint,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SnapguardError';
    this.code = code;
    this.hint = textFor(hint, 'mcp');
    this.hints = typeof hint === 'string' ? undefined : hint;
    this.details = options.details;
  }

  /** The hint in the words of one interface. */
  hintFor(surface: Surface): string {
    return this.hints ? this.hints[surface] : this.hint;
  }

  get exitCode(): number {
    return usageCodes.has(this.code) ? 3 : 2;
  }
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
  const message = error instanceof Error ? error.message : String(error);
  return new SnapguardError(
    'INTERNAL',
    `Unexpected error: ${message}`,
    'This is a bug in snapguard; rerun with --json and report the output.',
    { cause: error },
  );
}

export function badInput(message: string, hint: string): SnapguardError {
  return new SnapguardError('BAD_INPUT', message, hint);
}
