import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { toSnapguardError } from '../core/errors.js';

export function okResult(structured: object, summary: string): CallToolResult {
  return {
    content: [{ type: 'text', text: summary }],
    structuredContent: structured as Record<string, unknown>,
  };
}

export function errorResult(error: unknown): CallToolResult {
  const failure = toSnapguardError(error);
  return {
    isError: true,
    content: [
      { type: 'text', text: `[${failure.code}] ${failure.message}\nWhat to do: ${failure.hintFor('mcp')}` },
    ],
  };
}

/** Runs one core call and turns its result or error into a tool result. */
export async function runTool<T extends object>(
  work: () => Promise<T>,
  summarize: (result: T) => string,
): Promise<CallToolResult> {
  try {
    const result = await work();
    return okResult(result, summarize(result));
  } catch (error) {
    return errorResult(error);
  }
}
