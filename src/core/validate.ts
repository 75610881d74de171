import type { z } from 'zod';
import { SnapguardError } from './errors.js';

/** Parses tool/CLI input with its zod schema; a failure is a BAD_INPUT naming each field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const field = issue.path.map(String).join('.') || 'input';
    return `${field}: ${issue.message}`;
  });
  throw new SnapguardError(
    'BAD_INPUT',
    `Invalid ${what} input: ${problems.join('; ')}.`,
    {
      mcp: 'Fix the fields named and call again; nothing was changed.',
      cli: 'Fix the values named (the arguments and options that set them) and run the command again; nothing was changed.',
    },
    {
      details: { problems },
    },
  );
}
