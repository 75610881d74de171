import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  getParseErrorMessage,
  normalizeObjectSchema,
  safeParse,
} from '@modelcontextprotocol/sdk/server/zod-compat.js';
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';

type AnySchema = Parameters<typeof normalizeObjectSchema>[0];
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
    const parsed = safeParse(schema, result.structuredContent);
    if (!parsed.success) {
      throw new McpError(
        ErrorCode.InvalidParams,
        `Output validation error: Invalid structured content for tool ${name}: ${getParseErrorMessage(parsed.error)}`,
      );
    }
  };
}
