import type { z } from 'zod';
import { SnapguardError } from './errors.js';

/** The value at a field path of the raw input, for quoting it back. */
export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/**
 * Parses tool/CLI input with its zod schema; a failure is a BAD_INPUT naming each field. Over MCP the
 * message names the tool's fields; on the CLI (cliMessage) it quotes the value given, since the
 * command line sets those fields through arguments and options with other names.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems: string[] = [];
  const inCliWords: string[] = [];
  for (const issue of result.error.issues) {
    const field = issue.path.map(String).join('.') || 'input';
    problems.push(`${field}: ${issue.message}`);
    const value = valueAt(input, issue.path);
    const shown =
      typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
        ? JSON.stringify(value)
        : value === undefined
          ? `${field} (missing)`
          : field;
    inCliWords.push(`${shown}: ${issue.message}`);
  }
  throw new SnapguardError(
    'BAD_INPUT',
    `Invalid ${what} input: ${problems.join('; ')}.`,
    {
      mcp: 'Fix the fields named and call again; nothing was changed.',
      cli: 'Fix the values named (the arguments and options that set them) and run the command again; nothing was changed.',
    },
    { details: { problems }, cliMessage: `Invalid value: ${inCliWords.join('; ')}.` },
  );
}
