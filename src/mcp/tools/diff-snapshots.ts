import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { diffSnapshots } from '../../core/file-history/diff.js';
import { DiffSnapshotsInput, DiffSnapshotsResultSchema } from '../../core/file-history/schemas.js';
import { progressReporter } from '../progress.js';
import { runTool } from '../result.js';
import { readOnlyAnnotations } from './annotations.js';

export function registerDiffSnapshotsTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'diff_snapshots',
    {
      title: 'Compare snapshots',
      description: [
        'Use it to see what a change did before rolling back, or what a rollback would undo: added, removed, modified and metadata-only paths between two snapshots, or a snapshot and the live volume.',
      ].join(' '),
      inputSchema: DiffSnapshotsInput,
      outputSchema: DiffSnapshotsResultSchema,
      annotations: readOnlyAnnotations('Compare snapshots'),
    },
    async (args, extra) =>
      runTool(
        () => diffSnapshots(deps, args, { signal: extra.signal, onProgress: progressReporter(extra) }),
        (result) =>
          `${result.from} -> ${result.to}${result.path ? ` (${result.path})` : ''}: ${result.added.count} added, ${result.removed.count} removed, ${result.modified.count} modified, ${result.metadata.count} metadata only.${result.patch !== undefined ? '\n' + result.patch : ''}`,
      ),
  );
}
