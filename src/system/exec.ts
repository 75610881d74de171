import { execa } from 'execa';
import { SnapguardError } from '../shared/errors.js';

export interface ExecOptions {
  /** Milliseconds before the process is killed; every command has one. */
  timeoutMs?: number;
  signal?: AbortSignal | undefined;
  env?: Record<string, string>;
  cwd?: string;
  input?: string | Buffer;
  /**
   * How stdout and stderr are decoded (default utf8). 'latin1' gives one char per byte, so
   * output that holds file names which are not UTF-8 keeps every byte.
   */
  encoding?: 'utf8' | 'latin1';
  /** Exit codes that are not failures (e.g. restic's 3 is handled by the caller). */
  okExitCodes?: readonly number[];
  /** The command writes to this process's stdout/stderr instead of being captured (snapguard wrap). */
  inheritOutput?: boolean;
}

export interface ExecResult {
  command: string;
  stdout: string;
  stderr: string;
  exitCode: number;
  durationMs: number;
}

/** Every external command of snapguard goes through this: argv array, no shell, timeout, signal. */
export type Exec = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

export interface ExecFactoryOptions {
  defaultTimeoutMs?: number;
  /** Install hints per binary, used when it is missing. */
  installHints?: Record<string, string>;
}

const defaultInstallHints: Record<string, string> = {
  btrfs: 'Install btrfs-progs (apt install btrfs-progs).',
  zfs: 'Install OpenZFS (zfsutils-linux) or zfs-fuse.',
  zpool: 'Install OpenZFS (zfsutils-linux) or zfs-fuse.',
  restic: 'Install restic (apt install restic).',
  pgbackrest: 'Install pgBackRest (apt install pgbackrest).',
  systemctl: 'systemd is required for service control.',
  cp: 'GNU coreutils is required.',
};

export function describeCommand(file: string, args: readonly string[]): string {
  return [file, ...args]
    .map((part) => (/^[\w@%+=:,./-]+$/.test(part) ? part : JSON.stringify(part)))
    .join(' ');
}

function lastLines(text: string, count: number): string {
  const lines = text.trim().split('\n').filter(Boolean);
  return lines.slice(-count).join('\n');
}

export function createExec(factoryOptions: ExecFactoryOptions = {}): Exec {
  const defaultTimeoutMs = factoryOptions.defaultTimeoutMs ?? 120_000;
  const hints = { ...defaultInstallHints, ...factoryOptions.installHints };
  return async (file, args, options = {}) => {
    for (const arg of [file, ...args]) {
      if (typeof arg !== 'string' || arg.includes('\0')) {
        throw new SnapguardError(
          'BAD_INPUT',
          'Refusing to run a command with a NUL byte or non-string argument.',
          'Check the value passed.',
        );
      }
    }
    const command = describeCommand(file, args);
    options.signal?.throwIfAborted();
    const started = performance.now();
    const result = await execa(file, args, {
      reject: false,
      shell: false,
      timeout: options.timeoutMs ?? defaultTimeoutMs,
      cancelSignal: options.signal,
      env: options.env,
      extendEnv: true,
      cwd: options.cwd,
      input: options.input,
      stdin: options.input === undefined ? 'ignore' : undefined,
      ...(options.inheritOutput ? { stdout: 'inherit' as const, stderr: 'inherit' as const } : {}),
      stripFinalNewline: false,
      ...(options.encoding ? { encoding: options.encoding } : {}),
      maxBuffer: 256 * 1024 * 1024,
    });
    const durationMs = performance.now() - started;
    const stdout = String(result.stdout ?? '');
    const stderr = String(result.stderr ?? '');
    if (result.isCanceled) {
      throw new SnapguardError(
        'CANCELLED',
        `Cancelled while running \`${command}\`.`,
        'Run it again when ready.',
      );
    }
    if (result.timedOut) {
      throw new SnapguardError(
        'TIMEOUT',
        `\`${command}\` did not finish within ${Math.round((options.timeoutMs ?? defaultTimeoutMs) / 1000)} s and was stopped.`,
        'Check the system for a hung device or lock; raise the timeout if the work is legitimately long.',
        { details: { command, stderr: lastLines(stderr, 5) } },
      );
    }
    const failure = result.failed && result.exitCode === undefined;
    if (failure) {
      const code = (result.cause as NodeJS.ErrnoException | undefined)?.code;
      if (code === 'ENOENT') {
        throw new SnapguardError(
          'COMMAND_NOT_FOUND',
          `\`${file}\` is not installed or not on PATH.`,
          hints[file.split('/').pop() ?? file] ?? `Install ${file} or fix PATH.`,
          { details: { command } },
        );
      }
      throw new SnapguardError(
        'COMMAND_FAILED',
        `\`${command}\` could not be started: ${result.shortMessage}`,
        'Check permissions and PATH.',
        {
          details: { command },
        },
      );
    }
    const exitCode = result.exitCode ?? 0;
    if (exitCode !== 0 && !(options.okExitCodes ?? []).includes(exitCode)) {
      const reason = lastLines(stderr, 5) || lastLines(stdout, 5) || 'no output';
      throw new SnapguardError(
        'COMMAND_FAILED',
        `\`${command}\` failed with exit code ${exitCode}: ${reason}`,
        'Read the command error above; it comes from the tool snapguard drives.',
        { details: { command, exitCode, stderr: lastLines(stderr, 20) } },
      );
    }
    return { command, stdout, stderr, exitCode, durationMs };
  };
}
