import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { FileVersionsInput, FileVersionsResultSchema } from '../../core/file-history/schemas.js';
import { fileVersions } from '../../core/file-history/versions.js';
import { progressReporter } from '../progress.js';
import { runTool } from '../result.js';
import { readOnlyAnnotations } from './annotations.js';

export function registerFileVersionsTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'file_versions',
    {
      title: 'Versions of a file',
      description: [
        'Use it before restoring a file, to pick the version the user wants: the distinct versions of one path across snapshots and the live volume, newest first.',
        'Then read_snapshot_file, or recover mode files.',
      ].join(' '),
      inputSchema: FileVersionsInput,
      outputSchema: FileVersionsResultSchema,
      annotations: readOnlyAnnotations('Versions of a file'),
    },
    async (args, extra) =>
      runTool(
        () => fileVersions(deps, args, { signal: extra.signal, onProgress: progressReporter(extra) }),
        (result) => {
          if (result.total === 0)
            return `"${result.path}" exists neither live nor in any of ${result.snapshotsChecked} snapshot(s) of ${result.volume}.`;
          const shown = result.versions
            .slice(0, 5)
            .map(
              (v) =>
                `${v.live ? 'live' : ''}${v.live && v.snapshots.length ? ' = ' : ''}${v.snapshots.slice(0, 3).join(', ')}${v.snapshots.length > 3 ? ', …' : ''} (${v.size} bytes, ${v.mtime})`,
            );
          return `${result.total} version(s) of ${result.path} in ${result.volume}: ${shown.join('; ')}${result.absent.length ? `; absent in ${result.absent.length}` : ''}.`;
        },
      ),
  );
}
