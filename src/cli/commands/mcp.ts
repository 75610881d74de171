import { Command } from 'commander';
import { SnapguardError } from '../../core/errors.js';
import { serveStdio } from '../../mcp/transports/stdio.js';
import { parseListenAddress, resolveToken, serveHttp } from '../../mcp/transports/http.js';
import { action, collect, loadDeps, withCommon, type CommonOptions } from '../common.js';
import { createLogger } from '../../core/logger.js';
import { createDeps } from '../../core/deps.js';

interface McpOptions extends CommonOptions {
  http?: string;
  tokenFile?: string;
  auth: boolean;
  allowedHost?: string[];
  allowedOrigin?: string[];
}

export function mcpCommand(): Command {
  return withCommon(
    new Command('mcp')
      .description(
        'serve the MCP tools on stdio (for Claude Code, Claude Desktop and other MCP clients) or, with --http, over Streamable HTTP',
      )
      .option(
        '--http <host:port>',
        'serve Streamable HTTP on this address (endpoint /mcp), e.g. 127.0.0.1:8765',
      )
      .option(
        '--token-file <file>',
        'file holding the bearer token clients must send (default: $SNAPGUARD_MCP_TOKEN)',
      )
      .option('--no-auth', 'serve without a token (only allowed on a loopback address)')
      .option(
        '--allowed-host <host>',
        'also accept this Host header, e.g. behind a reverse proxy (repeatable)',
        collect,
      )
      .option(
        '--allowed-origin <origin>',
        'also accept this Origin, e.g. https://mcp.example.org (repeatable)',
        collect,
      ),
  ).action(
    action(async (options: McpOptions) => {
      if (
        !options.http &&
        (options.tokenFile || !options.auth || options.allowedHost || options.allowedOrigin)
      ) {
        throw new SnapguardError(
          'BAD_INPUT',
          '--token-file, --no-auth, --allowed-host and --allowed-origin only apply with --http.',
          'Add --http HOST:PORT or drop them.',
        );
      }
      // Check the address and the token before loading anything else: a refusal must come first.
      const listen = options.http ? parseListenAddress(options.http) : undefined;
      const token = listen
        ? await resolveToken({ listen, tokenFile: options.tokenFile, noAuth: !options.auth })
        : undefined;
      const base = await loadDeps(options);
      // The server logs its audit lines at info level: to the log file when configured, else stderr.
      const deps = createDeps(base.config, {
        logger: createLogger({ file: base.config.logFile, level: options.verbose ? 'debug' : 'info' }),
      });
      if (listen) {
        await serveHttp(deps, {
          listen,
          token,
          noAuth: !options.auth,
          allowedHosts: options.allowedHost ?? [],
          allowedOrigins: options.allowedOrigin ?? [],
        });
      } else {
        await serveStdio(deps);
      }
      return 0;
    }),
  );
}
