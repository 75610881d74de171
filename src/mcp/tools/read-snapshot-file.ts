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
        'Returns the content of one file as it is in a snapshot, to check or compare an old version without restoring it.',
        'Text is returned up to maxBytes (default 64 KiB, truncated: true beyond); a binary file (one with NUL bytes) is not returned, only its size and sha256.',
        'path is relative to the volume root and checked like a file restore: no absolute paths, no "..", and symlinks may not lead outside the snapshot. Foreign snapshots and external copies can be read too.',
        'Read-only: it changes nothing.',
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
