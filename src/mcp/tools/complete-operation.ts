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
        'Marks every snapshot of an operation (the operationId from create_snapshot) as success or failed in backup-history.json, with optional notes.',
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
          `Marked ${result.snapshots.length} snapshot(s) of ${result.operationId} as ${result.outcome}: ${result.snapshots.map((s) => s.name).join(', ')}.`,
      ),
  );
}
