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
        'Call it when a change begun with create_snapshot is done and validated: records success or failed for the operationId.',
        'failed describes the change; the snapshot still holds the good state before it. Rolls nothing back (use recover).',
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
