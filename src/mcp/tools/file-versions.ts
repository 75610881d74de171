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
        'Lists the distinct versions of one file or folder across the snapshots of a volume and the live volume, newest first.',
        'Use it before recovering a file, to pick the snapshot that holds the version the user wants (e.g. "the config as it was before yesterday").',
        'Each version names every snapshot holding it (identical copies are grouped), with size, mtime, mode, owner and, where size and mtime do not tell versions apart, a sha256; the live one has live: true. Snapshots without the path are listed in absent.',
        'path is relative to the volume root. location external reads received copies; includeForeign also reads snapshots of other tools; checksum hashes every copy.',
        'Read-only: it changes nothing. Then read a version with read_snapshot_file, or restore it with recover mode files.',
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
