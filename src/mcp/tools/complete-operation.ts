import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { CompleteOperationInput, CompleteOperationResultSchema } from '../../core/schemas.js';
import { completeOperation } from '../../core/snapshots.js';
import { runTool } from '../result.js';

export function registerCompleteOperationTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'complete_operation',
    {
      title: 'Record the outcome of a change',
      description: [
        'Records the outcome of an operation (the operationId from create_snapshot) as success or failed in backup-history.json for every snapshot it made or reused, with optional notes.',
        'failed describes the change, not the snapshot: the snapshot holds the good state from before the change.',
        'Call it after the change was validated. It does not roll anything back: after a failure, use recover (with confirmation) to return to the snapshot.',
      ].join(' '),
      inputSchema: CompleteOperationInput,
      outputSchema: CompleteOperationResultSchema,
      annotations: {
        title: 'Complete an operation',
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    async (args) =>
      runTool(
        () => completeOperation(deps, args),
        (result) =>
          [
            `Recorded ${result.operationId} as ${result.outcome} for ${result.snapshots.length} snapshot(s): ${result.snapshots.map((s) => s.name).join(', ')}.`,
            result.outcome === 'failed'
              ? 'These snapshots are not bad: they hold the good state from before the change, the one recover returns to.'
              : '',
          ]
            .filter(Boolean)
            .join('\n'),
      ),
  );
}
