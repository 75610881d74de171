import { createInterface } from 'node:readline/promises';
import { SnapguardError } from '../core/errors.js';

export interface TerminalConfirmOptions {
  /** --yes: the flag is the consent. */
  yes?: boolean | undefined;
  /** `confirm: never` in the config. */
  never?: boolean | undefined;
  input?: NodeJS.ReadableStream & { isTTY?: boolean };
  output?: NodeJS.WritableStream;
}

/**
 * The CLI side of the confirmation gate: --yes (or confirm: never) proceeds, a terminal is asked
 * y/N (anything but y/yes is no), and without a terminal and without --yes the call is refused.
 * The plan has been printed by the caller before this is called.
 */
export async function confirmOnTerminal(
  question: string,
  options: TerminalConfirmOptions = {},
): Promise<boolean> {
  if (options.yes || options.never) return true;
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stderr;
  if (!(input as { isTTY?: boolean }).isTTY) {
    throw new SnapguardError(
      'CONFIRMATION_INVALID',
      'This is destructive and needs a confirmation, but there is no terminal to ask on; nothing was changed.',
      'Review the plan (add --dry-run to only see it) and run again with --yes to confirm.',
    );
  }
  const rl = createInterface({ input, output, terminal: true });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^(y|yes)$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
