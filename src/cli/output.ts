import { toSnapguardError } from '../core/errors.js';

export interface OutputOptions {
  json?: boolean;
}

export { dropOutputWhenReaderLeaves } from './closed-output.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/** A plain text table: columns padded to their widest cell, no colour, safe to pipe. */
export function renderTable(headers: string[], rows: (string | number | undefined)[][]): string {
  const cells = rows.map((row) => row.map((cell) => (cell === undefined ? '-' : String(cell))));
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...cells.map((row) => row[i]?.length ?? 0)),
  );
  const format = (row: string[]) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [format(headers), format(widths.map((w) => '-'.repeat(w))), ...cells.map(format)].join('\n');
}

/** Prints an error the way every verb does: message, then what to do; JSON when asked. Returns the exit code. */
export function reportError(error: unknown, options: OutputOptions): number {
  const failure = toSnapguardError(error);
  if (options.json) {
    printJson({
      error: {
        code: failure.code,
        message: failure.messageFor('cli'),
        hint: failure.hintFor('cli'),
        ...(failure.details ? { details: failure.details } : {}),
      },
    });
  } else {
    process.stderr.write(
      `snapguard: ${failure.messageFor('cli')}\n  what to do: ${failure.hintFor('cli')}\n`,
    );
  }
  return failure.exitCode;
}

export function age(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}
