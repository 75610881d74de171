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

export class SnapguardError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    hint: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SnapguardError';
    this.code = code;
    this.hint = hint;
    this.details = options.details;
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
