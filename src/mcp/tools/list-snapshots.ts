import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { ListSnapshotsInput, ListSnapshotsResultSchema } from '../../core/schemas.js';
import { listSnapshots } from '../../core/snapshots.js';
import { runTool } from '../result.js';
import { readOnlyAnnotations } from './annotations.js';

export function registerListSnapshotsTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'list_snapshots',
    {
      title: 'List snapshots',
      description: [
        'Lists snapshots, newest first, to pick one to recover, compare or read.',
        'outcome belongs to the change made after the snapshot: a failed one holds the good state from before it (meaning says so in words).',
        "includeForeign adds other tools' snapshots.",
      ].join(' '),
      inputSchema: ListSnapshotsInput,
      outputSchema: ListSnapshotsResultSchema,
      annotations: readOnlyAnnotations('List snapshots'),
    },
    async (args, extra) =>
      runTool(
        () => listSnapshots(deps, args, { signal: extra.signal }),
        (result) => {
          const shown = result.snapshots
            .slice(0, 5)
            .map(
              (s) =>
                `${s.name} (${s.location}${s.owned ? '' : ', foreign'}${s.meaning ? `; ${s.meaning}` : ''}${s.rollbackPointOf?.length ? `; also the rollback point of ${s.rollbackPointOf.join(', ')}` : ''})`,
            );
          return `${result.total} snapshot(s)${result.snapshots.length < result.total ? `, ${result.snapshots.length} shown` : ''}${shown.length ? `; newest: ${shown.join(', ')}` : ''}.`;
        },
      ),
  );
}
