import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { readSnapshotFile } from '../../core/file-history/read.js';
import { ReadSnapshotFileInput, ReadSnapshotFileResultSchema } from '../../core/file-history/schemas.js';
import { runTool } from '../result.js';
import { readOnlyAnnotations } from './annotations.js';

export function registerReadSnapshotFileTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'read_snapshot_file',
    {
      title: 'Read a file from a snapshot',
      description: [
        'Use it to check or compare an old version of a file without restoring it: its content in a snapshot (text up to maxBytes; binary: size and sha256).',
      ].join(' '),
      inputSchema: ReadSnapshotFileInput,
      outputSchema: ReadSnapshotFileResultSchema,
      annotations: readOnlyAnnotations('Read a file from a snapshot'),
    },
    async (args, extra) =>
      runTool(
        () => readSnapshotFile(deps, args, { signal: extra.signal }),
        (result) =>
          result.binary
            ? `${result.path} in ${result.snapshot} is binary: ${result.size} bytes, sha256 ${result.sha256}.`
            : `${result.path} in ${result.snapshot} (${result.size} bytes${result.truncated ? `, first ${Buffer.byteLength(result.content ?? '')} shown` : ''}):\n${result.content ?? ''}`,
      ),
  );
}
