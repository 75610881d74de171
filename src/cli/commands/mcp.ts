import { Command } from 'commander';
import { serveStdio } from '../../mcp/transports/stdio.js';
import { action, loadDeps, withCommon, type CommonOptions } from '../common.js';
import { createLogger } from '../../core/logger.js';
import { createDeps } from '../../core/deps.js';

export function mcpCommand(): Command {
  return withCommon(
    new Command('mcp').description(
      'serve the MCP tools on stdio (for Claude Code, Claude Desktop and other MCP clients)',
    ),
  ).action(
    action(async (options: CommonOptions) => {
      const base = await loadDeps(options);
      // The server logs its audit lines at info level: to the log file when configured, else stderr.
      const deps = createDeps(base.config, {
        logger: createLogger({ file: base.config.logFile, level: options.verbose ? 'debug' : 'info' }),
      });
      await serveStdio(deps);
      return 0;
    }),
  );
}
