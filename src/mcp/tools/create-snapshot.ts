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
        'Call it BEFORE a deployment, update or config change (type pre-deploy/pre-update/pre-change, an operation name); keep the operationId for complete_operation.',
        'A volume unchanged since a snapshot younger than its minInterval gets none: that one is in skipped and is the rollback point. force: true snapshots anyway.',
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
