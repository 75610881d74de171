import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { writeMetricsFile } from '../../core/metrics.js';
import { runRestoreTest } from '../../core/restore-test/index.js';
import { RunRestoreTestInput, RunRestoreTestResultSchema } from '../../core/restore-test/schemas.js';
import { progressReporter } from '../progress.js';
import { runTool } from '../result.js';

export function registerRunRestoreTestTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'run_restore_test',
    {
      title: 'Prove that backups restore',
      description: [
        'Use it to prove snapshots or backups restore (after setup or a recovery, or when a test is overdue): restores into a scratch folder and verifies it; the volume is never written.',
        'mode sample checks random files; mode full restores all and measures the RTO.',
      ].join(' '),
      inputSchema: RunRestoreTestInput,
      outputSchema: RunRestoreTestResultSchema,
      annotations: {
        title: 'Run restore test',
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    async (args, extra) =>
      runTool(
        () => {
          const onProgress = progressReporter(extra);
          return runRestoreTest(deps, args, {
            signal: extra.signal,
            ...(onProgress ? { onProgress } : {}),
            afterRecord: async () => {
              await writeMetricsFile(deps);
            },
          });
        },
        (result) => {
          const lines = [`Restore test ${result.overall}.`];
          for (const r of result.results) {
            lines.push(
              `${r.volume} ${r.snapshot || '(no snapshot)'} [${r.source}/${r.mode}]: ${r.outcome}, ${r.filesChecked} of ${r.population} files checked, ${r.failures.length} failure(s), ${r.durationSeconds.toFixed(1)} s, seed ${r.seed}${r.rtoEstimateSeconds !== null ? `, RTO estimate ${r.rtoEstimateSeconds >= 10 ? Math.round(r.rtoEstimateSeconds) : r.rtoEstimateSeconds} s` : ''}.`,
            );
            for (const f of r.failures.slice(0, 5))
              lines.push(`  ${f.path}: ${f.check} (expected ${f.expected}, got ${f.actual})`);
            if (r.notCovered?.length)
              lines.push(
                `  not covered (not in the volume's snapshots, neither passed nor failed): ${r.notCovered.map((n) => `${n.path} (${n.kind})`).join(', ')}`,
              );
          }
          lines.push(...result.warnings);
          return lines.join('\n');
        },
      ),
  );
}
