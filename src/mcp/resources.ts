import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Deps } from '../core/deps.js';
import { redactSecrets } from '../shared/redact.js';

export const HISTORY_URI = 'snapguard://history';
export const CONFIG_URI = 'snapguard://config';

/** Registers the history and config resources; returns a cleanup that stops watching the file. */
export function registerResources(server: McpServer, deps: Deps): () => void {
  server.registerResource(
    'history',
    HISTORY_URI,
    {
      title: 'Backup history',
      description:
        'backup-history.json: snapshots with their outcome, recoveries, restore tests and orchestrations (newest entries; older ones are archived yearly).',
      mimeType: 'application/json',
    },
    async (uri) => {
      const { history, corrupt } = await deps.history.read();
      const text = corrupt
        ? JSON.stringify({ error: `backup-history.json does not parse: ${corrupt}` })
        : JSON.stringify(history, null, 2);
      return { contents: [{ uri: uri.href, mimeType: 'application/json', text }] };
    },
  );
  server.registerResource(
    'config',
    CONFIG_URI,
    {
      title: 'snapguard configuration',
      description:
        'The effective configuration: volumes, their paths, tiers and services, after defaults; secrets (headers, URL credentials, environment values) are redacted.',
      mimeType: 'application/json',
    },
    async (uri) => ({
      contents: [
        {
          uri: uri.href,
          mimeType: 'application/json',
          text: JSON.stringify(redactSecrets(deps.config), null, 2),
        },
      ],
    }),
  );

  const subscribed = new Set<string>();
  server.server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    subscribed.add(request.params.uri);
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    subscribed.delete(request.params.uri);
    return {};
  });
  const notify = () => {
    if (!subscribed.has(HISTORY_URI) || !server.isConnected()) return;
    server.server
      .sendResourceUpdated({ uri: HISTORY_URI })
      .catch((error: unknown) =>
        deps.logger.debug({ error: String(error) }, 'resource update notification failed'),
      );
  };
  // Own writes notify at once; writes by other processes (CLI, timers) arrive through the file watch.
  const stopOwn = deps.history.onChange(notify);
  const stopWatch = deps.history.watch(notify);
  return () => {
    stopOwn();
    stopWatch();
  };
}
