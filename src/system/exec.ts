import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { SnapguardError, errnoInOutput, fromSystemError, hintOf } from '../shared/errors.js';

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
  /**
   * While the command runs, SIGINT, SIGTERM and SIGHUP sent to snapguard go to the command's
   * process group instead of ending snapguard (snapguard wrap in a terminal: Ctrl-C is meant for
   * the command, which runs in its own group and no longer gets it from the terminal).
   */
  forwardSignals?: boolean;
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
  /** Milliseconds between SIGTERM and SIGKILL when a command's group is stopped. */
  killGraceMs?: number;
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

/** Default time a stopped command's group gets between SIGTERM and SIGKILL. */
export const DEFAULT_KILL_GRACE_MS = 5000;

/**
 * Process groups of running commands. Every command starts in a group of its own (detached), so
 * a timeout or cancel reaches what it forked as well (`sh -c`, nsenter, ssh, btrfs helpers), not
 * only the direct child. While any group is registered, snapguard listens for SIGINT, SIGTERM and
 * SIGHUP: a group that asked for it gets the signal passed on (wrap); otherwise, when nothing else
 * in snapguard handles the signal, every group gets SIGTERM and snapguard then ends by the signal
 * as it would have without the listener. A group still running when snapguard exits gets SIGTERM.
 */
interface Group {
  pid: number;
  forward: boolean;
  /** A signal was passed on to this group (the user interrupted the command). */
  forwarded?: boolean;
}

const groups = new Set<Group>();
const relayedSignals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Sends sig to the group led by pid; false when no process of it is left to receive it. */
function signalGroup(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** A process of the group still runs (zombies waiting to be reaped do not count). */
function groupRunning(pid: number): boolean {
  if (!signalGroup(pid, 0)) return false;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so parse after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pid && state !== 'Z' && state !== 'X') return true;
    } catch {
      // The process ended while we looked.
    }
  }
  return false;
}

function onRelayedSignal(sig: NodeJS.Signals): void {
  const forwarding = [...groups].filter((group) => group.forward);
  if (forwarding.length > 0) {
    for (const group of forwarding) {
      group.forwarded = true;
      signalGroup(group.pid, sig);
    }
    return;
  }
  // Another part of snapguard handles the signal (the MCP server, orchestrate): it cancels its
  // calls, which stops their groups; the exit listener catches whatever is left.
  if (process.listenerCount(sig) > 1) return;
  for (const group of groups) signalGroup(group.pid, 'SIGTERM');
  uninstallListeners();
  process.kill(process.pid, sig);
}

function onExit(): void {
  for (const group of groups) signalGroup(group.pid, 'SIGTERM');
}

function installListeners(): void {
  for (const sig of relayedSignals) process.on(sig, onRelayedSignal);
  process.on('exit', onExit);
}

function uninstallListeners(): void {
  for (const sig of relayedSignals) process.removeListener(sig, onRelayedSignal);
  process.removeListener('exit', onExit);
}

function register(group: Group): void {
  if (groups.size === 0) installListeners();
  groups.add(group);
}

function unregister(group: Group): void {
  if (groups.delete(group) && groups.size === 0) uninstallListeners();
}

/** A started child: its pid (undefined when it could not be started) and its pipes. */
export interface OwnedChild {
  pid?: number | undefined;
  stdin?: Writable | null;
  stdout?: Readable | null;
  stderr?: Readable | null;
  once?(event: 'exit', listener: () => void): unknown;
}

export interface GroupControl {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  killGraceMs?: number;
  forwardSignals?: boolean;
}

/**
 * Watches detached children until `finished` settles: on timeout or abort their groups get
 * SIGTERM, then SIGKILL after the grace period. Resolves with why they were stopped (or undefined)
 * once `finished` settled and, when stopped, no process of the groups runs any more. A process
 * that escaped its group (setsid) but holds the pipes open is cut off after the SIGKILL, so the
 * call ends regardless.
 */
export async function superviseGroups(
  children: readonly OwnedChild[],
  control: GroupControl,
  finished: Promise<unknown>,
): Promise<'timeout' | 'cancel' | undefined> {
  const grace = control.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const owned: Group[] = children.flatMap((child) =>
    child.pid === undefined ? [] : [{ pid: child.pid, forward: Boolean(control.forwardSignals) }],
  );
  owned.forEach(register);
  let stopped: 'timeout' | 'cancel' | undefined;
  let terminating = false;
  let killTimer: NodeJS.Timeout | undefined;
  let cutTimer: NodeJS.Timeout | undefined;
  const terminate = () => {
    if (terminating) return;
    terminating = true;
    for (const group of owned) signalGroup(group.pid, 'SIGTERM');
    killTimer = setTimeout(() => {
      for (const group of owned) signalGroup(group.pid, 'SIGKILL');
      cutTimer = setTimeout(() => {
        for (const child of children) {
          child.stdin?.destroy();
          child.stdout?.destroy();
          child.stderr?.destroy();
        }
      }, 1000);
    }, grace);
  };
  const stop = (reason: 'timeout' | 'cancel') => {
    stopped ??= reason;
    terminate();
  };
  // An interrupted command that ended leaves nothing behind: background processes of a
  // non-interactive shell ignore SIGINT, so what is left of the group is stopped as well.
  for (const child of children)
    child.once?.('exit', () => {
      if (owned.some((group) => group.forwarded)) terminate();
    });
  const timer = setTimeout(() => stop('timeout'), control.timeoutMs);
  const onAbort = () => stop('cancel');
  control.signal?.addEventListener('abort', onAbort, { once: true });
  if (control.signal?.aborted) onAbort();
  try {
    await finished.catch(() => undefined);
    if (terminating) {
      // The direct child is gone; what it forked may still be in its grace period.
      const deadline = Date.now() + grace + 5000;
      while (owned.some((group) => groupRunning(group.pid)) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    clearTimeout(timer);
    clearTimeout(killTimer);
    clearTimeout(cutTimer);
    control.signal?.removeEventListener('abort', onAbort);
    owned.forEach(unregister);
  }
  return stopped;
}

/** The exit code a shell would show for a process ended by sig (128 + its number). */
export function signalExitCode(sig: string | undefined): number | undefined {
  if (!sig) return undefined;
  const number = (constants.signals as Record<string, number | undefined>)[sig];
  return number === undefined ? undefined : 128 + number;
}

/** Most a command may write to stdout or to stderr before it is stopped. */
const MAX_OUTPUT_BYTES = 256 * 1024 * 1024;

interface BufferedResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The command could not be started (ENOENT, EACCES...). */
  error?: NodeJS.ErrnoException;
  /** The stream that went over MAX_OUTPUT_BYTES; the group was stopped. */
  overflow?: 'stdout' | 'stderr';
}

/**
 * One command with its output collected, on node's own spawn: a buffered call needs none of
 * execa's stream machinery, which costs milliseconds per call (execa stays for the pipes in
 * pipe.ts). The child leads a process group of its own; timeout and cancel are superviseGroups'.
 */
function runBuffered(
  file: string,
  args: readonly string[],
  options: ExecOptions,
  killGraceMs: number,
): { child: ChildProcess; finished: Promise<BufferedResult> } {
  const child = spawn(file, [...args], {
    detached: true,
    shell: false,
    cwd: options.cwd,
    env: options.env ? { ...process.env, ...options.env } : process.env,
    stdio: [
      options.input === undefined ? 'ignore' : 'pipe',
      options.inheritOutput ? 'inherit' : 'pipe',
      options.inheritOutput ? 'inherit' : 'pipe',
    ],
  });
  const encoding = options.encoding ?? 'utf8';
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let overflow: BufferedResult['overflow'];
  let killTimer: NodeJS.Timeout | undefined;
  const collect = (stream: Readable | null, into: Buffer[], name: 'stdout' | 'stderr') => {
    let size = 0;
    stream?.on('data', (chunk: Buffer) => {
      if (overflow) return;
      size += chunk.length;
      if (size > MAX_OUTPUT_BYTES) {
        overflow = name;
        if (child.pid !== undefined && signalGroup(child.pid, 'SIGTERM')) {
          const pid = child.pid;
          killTimer = setTimeout(() => signalGroup(pid, 'SIGKILL'), killGraceMs);
        }
        return;
      }
      into.push(chunk);
    });
  };
  collect(child.stdout, out, 'stdout');
  collect(child.stderr, err, 'stderr');
  if (options.input !== undefined && child.stdin) {
    // A command that ends without reading its input closes the pipe: that is its answer, not ours.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input);
  }
  const finished = new Promise<BufferedResult>((resolve) => {
    const settle = (exitCode: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      clearTimeout(killTimer);
      resolve({
        stdout: Buffer.concat(out).toString(encoding),
        stderr: Buffer.concat(err).toString(encoding),
        exitCode,
        signal,
        ...(error ? { error: error as NodeJS.ErrnoException } : {}),
        ...(overflow ? { overflow } : {}),
      });
    };
    child.once('error', (error) => {
      // Not started: no 'close' follows for a child that has no pid.
      if (child.pid === undefined) settle(null, null, error);
    });
    child.once('close', (exitCode, signal) => settle(exitCode, signal));
  });
  return { child, finished };
}

/** Bad input changes nothing: argv must be strings without NUL before anything is started. */
function assertArgv(file: string, args: readonly string[]): void {
  for (const arg of [file, ...args]) {
    if (typeof arg !== 'string' || arg.includes('\0')) {
      throw new SnapguardError(
        'BAD_INPUT',
        'Refusing to run a command with a NUL byte or non-string argument.',
        'Check the value passed.',
      );
    }
  }
}

/** A command stopped by snapguard: cancelled, or over its time. */
function stoppedError(
  stopped: 'cancel' | 'timeout',
  command: string,
  timeoutMs: number,
  stderr: string,
): SnapguardError {
  if (stopped === 'cancel') {
    return new SnapguardError(
      'CANCELLED',
      `Cancelled while running \`${command}\`.`,
      'Run it again when ready.',
    );
  }
  return new SnapguardError(
    'TIMEOUT',
    `\`${command}\` did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped.`,
    'Check the system for a hung device or lock; raise the timeout if the work is legitimately long.',
    { details: { command, stderr: lastLines(stderr, 5) } },
  );
}

/** A command that could not be started: missing (with how to install it) or not runnable. */
function notStartedError(
  file: string,
  command: string,
  error: NodeJS.ErrnoException,
  hints: Record<string, string>,
): SnapguardError {
  if (error.code === 'ENOENT') {
    return new SnapguardError(
      'COMMAND_NOT_FOUND',
      `\`${file}\` is not installed or not on PATH.`,
      hints[file.split('/').pop() ?? file] ?? `Install ${file} or fix PATH.`,
      { details: { command } },
    );
  }
  return new SnapguardError(
    'COMMAND_FAILED',
    `\`${command}\` could not be started: ${error.message}`,
    'Check permissions and PATH.',
    {
      details: { command },
    },
  );
}

/** A command ended by a signal snapguard did not send. */
function signalledError(command: string, signal: NodeJS.Signals, stderr: string): SnapguardError {
  const exitCode = signalExitCode(signal);
  const reason = lastLines(stderr, 5);
  return new SnapguardError(
    'COMMAND_FAILED',
    `\`${command}\` was ended by ${signal}${reason ? `: ${reason}` : '.'}`,
    'Something outside snapguard stopped the command (a signal from a user, the OOM killer or a service manager).',
    { details: { command, signal, exitCode, stderr: lastLines(stderr, 20) } },
  );
}

/** A non-zero exit: the host's own condition (full disk, read-only...) when stderr names one. */
function exitError(command: string, exitCode: number, stdout: string, stderr: string): SnapguardError {
  const reason = lastLines(stderr, 5) || lastLines(stdout, 5) || 'no output';
  // A full disk, a read-only or busy filesystem, a missing permission: the user's to fix.
  const errno = errnoInOutput(lastLines(stderr, 5));
  const host = errno === undefined ? undefined : fromSystemError(undefined, undefined, errno);
  if (host) {
    return new SnapguardError(
      host.code,
      `\`${command}\` failed with exit code ${exitCode}: ${reason}`,
      hintOf(host),
      {
        details: { command, exitCode, errno, stderr: lastLines(stderr, 20) },
      },
    );
  }
  return new SnapguardError(
    'COMMAND_FAILED',
    `\`${command}\` failed with exit code ${exitCode}: ${reason}`,
    'Read the command error above; it comes from the tool snapguard drives.',
    { details: { command, exitCode, stderr: lastLines(stderr, 20) } },
  );
}

/** Why a finished command counts as failed; undefined when it succeeded. */
function failureOf(
  file: string,
  command: string,
  result: BufferedResult,
  hints: Record<string, string>,
  okExitCodes: readonly number[],
): SnapguardError | undefined {
  const { stdout, stderr } = result;
  if (result.overflow) {
    return new SnapguardError(
      'COMMAND_FAILED',
      `\`${command}\` wrote more than ${MAX_OUTPUT_BYTES / 1024 ** 2} MiB to ${result.overflow} and was stopped.`,
      'Narrow what the command is asked for (a path, a filter) so its output stays smaller.',
      { details: { command, stderr: lastLines(stderr, 5) } },
    );
  }
  if (result.error) return notStartedError(file, command, result.error, hints);
  if (result.exitCode === null && result.signal) return signalledError(command, result.signal, stderr);
  const exitCode = result.exitCode ?? 0;
  if (exitCode !== 0 && !okExitCodes.includes(exitCode)) return exitError(command, exitCode, stdout, stderr);
  return undefined;
}

export function createExec(factoryOptions: ExecFactoryOptions = {}): Exec {
  const defaultTimeoutMs = factoryOptions.defaultTimeoutMs ?? 120_000;
  const hints = { ...defaultInstallHints, ...factoryOptions.installHints };
  return async (file, args, options = {}) => {
    assertArgv(file, args);
    const command = describeCommand(file, args);
    options.signal?.throwIfAborted();
    const started = performance.now();
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    // A group of its own: a timeout or cancel stops everything the command forked (see superviseGroups).
    const run = runBuffered(file, args, options, factoryOptions.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
    const stopped = await superviseGroups(
      [run.child],
      {
        timeoutMs,
        signal: options.signal,
        killGraceMs: factoryOptions.killGraceMs,
        forwardSignals: options.forwardSignals,
      },
      run.finished,
    );
    const result = await run.finished;
    const durationMs = performance.now() - started;
    const { stdout, stderr } = result;
    if (stopped === 'cancel' || stopped === 'timeout')
      throw stoppedError(stopped, command, timeoutMs, stderr);
    const failure = failureOf(file, command, result, hints, options.okExitCodes ?? []);
    if (failure) throw failure;
    return { command, stdout, stderr, exitCode: result.exitCode ?? 0, durationMs };
  };
}

/** A long-running child with open pipes (a session to another host), in a process group of its own. */
export interface OwnedProcess {
  pid: number | undefined;
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Settles once the child ended, with its exit code or signal; rejects when it could not start. */
  exited: Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when the child started; rejects with the reason when it could not (ENOENT, EACCES). */
  started: Promise<void>;
  /** SIGTERM to the group, SIGKILL after the grace period; resolves once nothing of the group runs. */
  stop(): Promise<void>;
}

/**
 * Starts a child that lives as long as snapguard needs it (argv, no shell), supervised like every
 * command: its group is stopped on stop(), on a signal to snapguard, and when snapguard exits.
 */
export function startOwnedProcess(
  file: string,
  args: readonly string[],
  options: { killGraceMs?: number; env?: Record<string, string> } = {},
): OwnedProcess {
  assertArgv(file, args);
  const child = spawn(file, [...args], {
    detached: true,
    shell: false,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: options.env ? { ...process.env, ...options.env } : process.env,
  });
  const started = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  const exited = new Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.once('close', (exitCode, signal) => resolve({ exitCode, signal }));
      child.once('error', reject);
    },
  );
  exited.catch(() => undefined);
  started.catch(() => undefined);
  const stopper = new AbortController();
  // The longest timer Node keeps: the session lives until stopped, not until a timeout.
  const supervised = superviseGroups(
    [child],
    { timeoutMs: 2 ** 31 - 1, signal: stopper.signal, killGraceMs: options.killGraceMs ?? 2000 },
    exited,
  );
  return {
    pid: child.pid,
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    exited,
    started,
    stop: async () => {
      stopper.abort();
      await supervised;
    },
  };
}
