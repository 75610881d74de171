import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { Deps } from '../../core/deps.js';
import { createServer } from '../server.js';

/**
 * Serves MCP on stdin/stdout until the client closes the pipe or a signal arrives. Closing aborts
 * the tool calls still running (a recovery stops at a safe point or reverts its step); the server
 * waits for them to end before it returns, so no step is cut off and no temp file is left.
 */
export async function serveStdio(deps: Deps): Promise<void> {
  const { server, cleanup, tools, idle } = createServer(deps);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.on('end', () => resolve());
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await server.connect(transport);
  deps.logger.info(
    { transport: 'stdio', tools, readOnly: deps.config.readOnly },
    'snapguard MCP server ready',
  );
  await closed;
  await cleanup();
  await idle();
}
