import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { findDeleted } from '../../core/file-history/deleted.js';
import { FindDeletedInput, FindDeletedResultSchema } from '../../core/file-history/schemas.js';
import { progressReporter } from '../progress.js';
import { runTool } from '../result.js';
import { readOnlyAnnotations } from './annotations.js';

export function registerFindDeletedTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'find_deleted',
    {
      title: 'Find deleted files',
      description: [
        'Use it when something is gone ("my photos folder disappeared"): what snapshots still hold but the live volume lacks, with the newest snapshot holding each.',
        'Pass topLevel entries to recover mode files.',
      ].join(' '),
      inputSchema: FindDeletedInput,
      outputSchema: FindDeletedResultSchema,
      annotations: readOnlyAnnotations('Find deleted files'),
    },
    async (args, extra) =>
      runTool(
        () => findDeleted(deps, args, { signal: extra.signal, onProgress: progressReporter(extra) }),
        (result) => {
          const top = result.deleted.filter((d) => d.topLevel).slice(0, 5);
          return `${result.total} deleted entr${result.total === 1 ? 'y' : 'ies'} found in ${result.snapshotsChecked} snapshot(s) of ${result.volume}${result.truncated ? ` (${result.deleted.length} listed)` : ''}${top.length ? `; e.g. ${top.map((d) => `${d.path} (in ${d.newestSnapshot})`).join(', ')}` : ''}.`;
        },
      ),
  );
}
