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
        'Pins a snapguard snapshot so that prune_snapshots never deletes it, whatever the retention policy says (pinned: false removes the pin).',
        'Use it for a known-good state worth keeping, e.g. the snapshot before a major upgrade; give a reason, it is shown in prune plans.',
        'Only owned, existing snapshots of a configured volume can be pinned. Pins are stored in stateDir/pins.json and survive restarts.',
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
