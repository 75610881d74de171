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
        'Finds files and folders that snapshots of a volume still hold but the live volume no longer has, also everything below a deleted folder.',
        'Use it when the user says something is gone ("my photos folder disappeared") to learn what was lost and which snapshot to restore it from.',
        'Each entry names the newest snapshot that still holds it, with type, size and mtime; topLevel entries are the ones to pass to recover (mode files, paths) since recovering them brings back what is below.',
        'Narrow with path (a folder relative to the volume root) and since (24h, 7d or an ISO time: only newer snapshots are searched). The list is bounded by limit; total counts all.',
        'Read-only: it changes nothing.',
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
