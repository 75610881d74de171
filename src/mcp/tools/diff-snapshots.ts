import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { diffSnapshots } from '../../core/file-history/diff.js';
import { DiffSnapshotsInput, DiffSnapshotsResultSchema } from '../../core/file-history/schemas.js';
import { progressReporter } from '../progress.js';
import { runTool } from '../result.js';
import { readOnlyAnnotations } from './annotations.js';

export function registerDiffSnapshotsTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'diff_snapshots',
    {
      title: 'Compare snapshots',
      description: [
        'Shows what changed between two snapshots of a volume, or between a snapshot and the live volume when to is left out: added, removed and modified entries, and metadata-only changes (mode, owner, xattrs), each with a count and a bounded list.',
        'Use it to see what a deployment or update changed before deciding to roll back, or to explain what a rollback would undo.',
        'A file counts as modified when its size or mtime differs; checksum also compares the content of files whose size and mtime are equal. Access times are ignored.',
        'path narrows to one file or folder; with patch and a path naming one small text file, a unified diff is returned.',
        'Read-only: it changes nothing.',
      ].join(' '),
      inputSchema: DiffSnapshotsInput,
      outputSchema: DiffSnapshotsResultSchema,
      annotations: readOnlyAnnotations('Compare snapshots'),
    },
    async (args, extra) =>
      runTool(
        () => diffSnapshots(deps, args, { signal: extra.signal, onProgress: progressReporter(extra) }),
        (result) =>
          `${result.from} -> ${result.to}${result.path ? ` (${result.path})` : ''}: ${result.added.count} added, ${result.removed.count} removed, ${result.modified.count} modified, ${result.metadata.count} metadata only.${result.patch !== undefined ? '\n' + result.patch : ''}`,
      ),
  );
}
