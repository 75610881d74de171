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
        'Lists snapshots of the configured volumes, newest first, with age, type, operation and the outcome recorded in history.',
        'An outcome belongs to the change made after the snapshot: the snapshot of a failed operation holds the good state from before it (the one to return to); a pre-recover snapshot holds the state a recovery replaced. meaning says this in words.',
        'Filter by volume, type, operation, since (24h, 7d or an ISO time) and limit; location external lists received copies on backup targets.',
        'Snapshots made by other tools (snapper, btrbk, timeshift, sanoid) are hidden unless includeForeign is true; they are listed with owned: false and snapguard never changes them.',
        'Read-only: it changes nothing.',
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
