// Kept apart from output.ts so the CLI entry installs it without loading anything else.

/**
 * A reader that closed the output early (`snapguard history | head -1`) is not an error: further
 * output is dropped, the command runs to its end (a mutating verb is not cut off mid-step) and
 * exits with its own status, without a stack trace.
 */
export function dropOutputWhenReaderLeaves(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') return;
      throw error;
    });
  }
}
