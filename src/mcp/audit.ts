import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../core/logger.js';

type RequestHandler = (
  request: { params?: { name?: string; arguments?: Record<string, unknown> } },
  extra: unknown,
) => Promise<unknown>;

function volumesOf(args: Record<string, unknown> | undefined): string | undefined {
  if (!args) return undefined;
  const value = args.volume ?? args.volumes;
  if (typeof value === 'string') return value.slice(0, 80);
  if (Array.isArray(value)) return value.map((v) => String(v).slice(0, 80)).join(',');
  return undefined;
}

const SDK_VALIDATION = /^MCP error -32602: Input validation error: /;

/**
 * Puts one audit line per tool call on the log (guardrail 7), around the SDK's own tools/call
 * handler, so calls the SDK rejects during input validation are audited too. Their error text is
 * given the same "what to do" line as snapguard's own errors. This reaches into the SDK's handler
 * table, which is why it lives here, next to the SDK, and nowhere else.
 */
export function installAudit(server: McpServer, logger: Logger): { idle: () => Promise<void> } {
  // Tool calls still running: a transport that closes waits for them (see serveStdio).
  const inFlight = new Set<Promise<unknown>>();
  const handlers = (server.server as unknown as { _requestHandlers: Map<string, RequestHandler> })
    ._requestHandlers;
  const inner = handlers.get('tools/call');
  if (!inner) throw new Error('installAudit must run after the tools are registered');
  const audited: RequestHandler = async (request, extra) => {
    const started = performance.now();
    const tool = request.params?.name ?? 'unknown';
    const volume = volumesOf(request.params?.arguments);
    const rawHost = request.params?.arguments?.host;
    const host =
      typeof rawHost === 'string' ? rawHost.slice(0, 64) : Array.isArray(rawHost) ? 'list' : undefined;
    try {
      const result = (await inner(request, extra)) as CallToolResult;
      if (result.isError) {
        const first = result.content?.[0];
        if (first?.type === 'text' && SDK_VALIDATION.test(first.text)) {
          first.text = `[BAD_INPUT] ${first.text.replace(SDK_VALIDATION, '')}\nWhat to do: fix the fields named and call again; nothing was changed.`;
        }
      }
      const code = result.isError
        ? /^\[([A-Z_]+)\]/.exec(String((result.content?.[0] as { text?: string })?.text ?? ''))?.[1]
        : undefined;
      logger.info(
        {
          audit: true,
          tool,
          volume,
          ...(host ? { host } : {}),
          outcome: result.isError ? 'error' : 'ok',
          errorCode: code,
          durationMs: Math.round(performance.now() - started),
        },
        'tool call',
      );
      return result;
    } catch (error) {
      logger.info(
        {
          audit: true,
          tool,
          volume,
          outcome: 'error',
          errorCode: 'PROTOCOL',
          durationMs: Math.round(performance.now() - started),
        },
        'tool call',
      );
      throw error;
    }
  };
  handlers.set('tools/call', (request, extra) => {
    const call = audited(request, extra);
    const tracked = call.finally(() => inFlight.delete(tracked)).catch(() => undefined);
    inFlight.add(tracked);
    return call;
  });
  return {
    idle: async () => {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
  };
}
