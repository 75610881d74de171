import { execa } from 'execa';
import { SnapguardError } from '../shared/errors.js';
import { describeCommand } from './exec.js';

export interface PipeOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
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
  const common = {
    reject: false,
    shell: false,
    timeout: options.timeoutMs,
    cancelSignal: options.signal,
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
  const [sent, received] = await Promise.all([source, sink]);
  const durationMs = performance.now() - started;
  for (const [side, result] of [
    ['sender', sent],
    ['receiver', received],
  ] as const) {
    if (result.isCanceled)
      throw new SnapguardError(
        'CANCELLED',
        `Cancelled while running \`${command}\`.`,
        'Run it again when ready.',
      );
    if (result.timedOut)
      throw new SnapguardError(
        'TIMEOUT',
        `\`${command}\` did not finish within ${Math.round(options.timeoutMs / 1000)} s and was stopped.`,
        'Raise the job timeout if the transfer is legitimately long.',
      );
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
