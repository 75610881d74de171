import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { pinSnapshot, PinSnapshotInput, PinSnapshotResultSchema } from '../../core/retention/pins.js';
import { runTool } from '../result.js';

export function registerPinSnapshotTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'pin_snapshot',
    {
      title: 'Pin or unpin a snapshot',
      description: [
        'Use it to keep a known-good state (e.g. before a major upgrade): prune_snapshots never deletes a pinned snapshot; pinned: false unpins.',
      ].join(' '),
      inputSchema: PinSnapshotInput,
      outputSchema: PinSnapshotResultSchema,
      annotations: {
        title: 'Pin snapshot',
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    async (args, extra) =>
      runTool(
        () => pinSnapshot(deps, args, { signal: extra.signal }),
        (result) =>
          `${result.snapshot} of ${result.volume} is ${result.pinned ? 'pinned' : 'not pinned'}${result.changed ? '' : ' (unchanged)'}; ${result.pins.length} pin(s) on this volume.`,
      ),
  );
}
