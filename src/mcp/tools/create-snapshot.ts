import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { CreateSnapshotInput, CreateSnapshotResultSchema } from '../../core/schemas.js';
import { createSnapshots, REUSE_OVERRIDE } from '../../core/snapshots.js';
import { runTool } from '../result.js';

export function registerCreateSnapshotTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'create_snapshot',
    {
      title: 'Create snapshots before a change',
      description: [
        'Takes a read-only snapshot of each named volume, recorded in backup-history.json with outcome "pending".',
        'Call it BEFORE a deployment, update or config change, with type pre-deploy / pre-update / pre-change and an operation name (e.g. "deploy-immich").',
        'Keep the returned operationId and call complete_operation with success or failed when the change is done.',
        "It will not snapshot when the pool is at or above maxPoolUsage (force: true overrides). For pre-* types it takes no new snapshot only when the newest one is younger than the volume's minInterval AND the volume has not changed since it (btrfs generation, zfs written@; never for dir volumes, never onto a pre-recover snapshot): that snapshot is then the state just before this change, is reported in skipped and belongs to this operationId like a new one.",
        'dryRun: true shows the names it would create and changes nothing. Volumes are the ids from list_snapshots or the snapguard://config resource.',
      ].join(' '),
      inputSchema: CreateSnapshotInput,
      outputSchema: CreateSnapshotResultSchema,
      annotations: {
        title: 'Create snapshots',
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    async (args, extra) =>
      runTool(
        () => createSnapshots(deps, args, { signal: extra.signal }),
        (result) => {
          const made = result.dryRun ? result.planned : result.created;
          const lines = [
            `${result.dryRun ? 'Would create' : 'Created'} ${made.length} snapshot(s) for ${result.operationId}: ${made.map((s) => s.name).join(', ') || 'none'}.`,
          ];
          for (const skip of result.skipped)
            lines.push(`No new snapshot of ${skip.volume}: ${skip.reason} (${REUSE_OVERRIDE.mcp}).`);
          lines.push(...result.warnings);
          if (!result.dryRun && made.length + result.skipped.length > 0)
            lines.push(
              `When the change is done, call complete_operation with operationId ${result.operationId}.`,
            );
          return lines.join('\n');
        },
      ),
  );
}
