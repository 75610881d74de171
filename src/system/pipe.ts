import { SnapguardError } from '../shared/errors.js';
import { describeCommand, superviseGroups } from './exec.js';

export interface PipeOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Milliseconds between SIGTERM and SIGKILL when the pipe is stopped. */
  killGraceMs?: number;
}

export interface PipeResult {
  command: string;
  durationMs: number;
}

/**
 * `a | b` without a shell (e.g. `btrfs send | btrfs receive`): two argv processes, the first's
 * stdout into the second's stdin, one timeout and one AbortSignal for both. A failure of either
 * side is a failure of the whole, with that side's stderr in the message.
 */
export async function pipeCommands(
  from: readonly [string, ...string[]],
  to: readonly [string, ...string[]],
  options: PipeOptions,
): Promise<PipeResult> {
  const command = `${describeCommand(from[0], from.slice(1))} | ${describeCommand(to[0], to.slice(1))}`;
  options.signal?.throwIfAborted();
  const started = performance.now();
  // Loaded here, not at start-up: only send | receive streams between two processes.
  const { execa } = await import('execa');
  // Each side in a group of its own, both stopped together (see superviseGroups in exec.ts).
  const common = {
    reject: false,
    shell: false,
    detached: true,
    maxBuffer: 16 * 1024 * 1024,
  } as const;
  const source = execa(from[0], from.slice(1), {
    ...common,
    stdin: 'ignore',
    stdout: 'pipe',
    buffer: { stdout: false },
  });
  const sink = execa(to[0], to.slice(1), { ...common, stdin: 'pipe' });
  source.stdout.pipe(sink.stdin);
  // A receiver that ended (failed) reads no more: close the pipe so the sender gets EPIPE/SIGPIPE
  // instead of blocking on a full pipe until the timeout.
  const closeSender = () => source.stdout.destroy();
  sink.stdin.on('error', closeSender);
  void sink.finally(closeSender);
  const stopped = await superviseGroups([source, sink], options, Promise.all([source, sink]));
  const [sent, received] = await Promise.all([source, sink]);
  const durationMs = performance.now() - started;
  if (stopped === 'cancel')
    throw new SnapguardError(
      'CANCELLED',
      `Cancelled while running \`${command}\`.`,
      'Run it again when ready.',
    );
  if (stopped === 'timeout')
    throw new SnapguardError(
      'TIMEOUT',
      `\`${command}\` did not finish within ${Math.round(options.timeoutMs / 1000)} s and was stopped.`,
      'Raise the job timeout if the transfer is legitimately long.',
    );
  // A sender that failed on its own (EIO) is the cause of the receiver's cut stream and is reported
  // first; a sender that only lost its reader (broken pipe) is not the cause of a failed receiver.
  const brokenPipe =
    sent.signal === 'SIGPIPE' || /broken pipe|connection reset|EPIPE/i.test(String(sent.stderr ?? ''));
  type Side = readonly [
    'sender' | 'receiver',
    { failed: boolean; stderr?: unknown; exitCode?: number | undefined; shortMessage?: string | undefined },
  ];
  const sides: readonly Side[] =
    brokenPipe && received.failed
      ? [
          ['receiver', received],
          ['sender', sent],
        ]
      : [
          ['sender', sent],
          ['receiver', received],
        ];
  for (const [side, result] of sides) {
    if (result.failed) {
      const stderr = String(result.stderr ?? '')
        .trim()
        .split('\n')
        .slice(-5)
        .join('\n');
      throw new SnapguardError(
        'COMMAND_FAILED',
        `\`${command}\` failed on the ${side} side (exit code ${result.exitCode ?? 'none'}): ${stderr || result.shortMessage}`,
        'Read the error above; it comes from the tool snapguard drives.',
        { details: { command, side, exitCode: result.exitCode } },
      );
    }
  }
  return { command, durationMs };
}
