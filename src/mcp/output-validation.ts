import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  getParseErrorMessage,
  normalizeObjectSchema,
  safeParse,
} from '@modelcontextprotocol/sdk/server/zod-compat.js';
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';

type AnySchema = Parameters<typeof normalizeObjectSchema>[0];
type ParseSchema = Parameters<typeof safeParse>[0];
type Validate = (tool: { outputSchema?: AnySchema }, result: CallToolResult, name: string) => Promise<void>;

/**
 * The SDK checks every tool result against the tool's output schema with zod's asynchronous
 * parser, which cannot use zod's compiled object checks: on a listing of thousands of snapshots
 * that check cost more than the listing. Nothing in snapguard's output schemas is asynchronous, so
 * the same check runs with the synchronous parser: the same schema, the same rules, the same
 * error. This replaces one SDK method on this server instance, which is why it lives here, next to
 * the SDK, and nowhere else; it refuses to install when the SDK no longer has that method.
 */
export function installSyncOutputValidation(server: McpServer): void {
  const target = server as unknown as { validateToolOutput?: Validate };
  if (typeof target.validateToolOutput !== 'function')
    throw new Error('the MCP SDK no longer validates tool output where snapguard expects it');
  target.validateToolOutput = async (tool, result, name) => {
    if (!tool.outputSchema || !('content' in result) || result.isError) return;
    if (!result.structuredContent) {
      throw new McpError(
        ErrorCode.InvalidParams,
        `Output validation error: Tool ${name} has an output schema but no structured content was provided`,
      );
    }
    const schema = normalizeObjectSchema(tool.outputSchema);
    if (!schema) return;
    if (longArraysPass(schema, result.structuredContent)) return;
    const parsed = safeParse(schema, result.structuredContent);
    if (!parsed.success) {
      throw new McpError(
        ErrorCode.InvalidParams,
        `Output validation error: Invalid structured content for tool ${name}: ${getParseErrorMessage(parsed.error)}`,
      );
    }
  };
}

/** Arrays from this length on are checked item by item. */
const LONG_ARRAY = 256;

interface ZodInternals {
  _zod?: { def?: { type?: string; shape?: Record<string, unknown>; element?: unknown; checks?: unknown[] } };
}

/**
 * The same check as parsing the whole result, with less memory held: the parser builds a copy of
 * what it checks, and for a listing of thousands of snapshots that copy of every entry lived until
 * the end of the call (long enough to move to the old generation, which only a full collection
 * frees). A top-level property that is a plain array (no length rules) of LONG_ARRAY or more items
 * is checked one item at a time, each copy dropped at once, and the rest of the result with that
 * array empty. Returns true when everything passed; false sends the caller to the whole parse,
 * which gives the error exactly as before (or handles a schema this does not know).
 */
function longArraysPass(schema: ParseSchema, content: Record<string, unknown>): boolean {
  const def = (schema as ZodInternals)._zod?.def;
  if (def?.type !== 'object' || !def.shape) return false;
  const long: [string, ParseSchema, unknown[]][] = [];
  for (const [key, value] of Object.entries(content)) {
    if (!Array.isArray(value) || value.length < LONG_ARRAY) continue;
    const arrayDef = (def.shape[key] as ZodInternals | undefined)?._zod?.def;
    if (arrayDef?.type !== 'array' || !arrayDef.element || (arrayDef.checks?.length ?? 0) > 0) continue;
    long.push([key, arrayDef.element as ParseSchema, value]);
  }
  if (long.length === 0) return false;
  for (const [, element, items] of long)
    for (const item of items) if (!safeParse(element, item).success) return false;
  const rest: Record<string, unknown> = { ...content };
  for (const [key] of long) rest[key] = [];
  return safeParse(schema, rest).success;
}
