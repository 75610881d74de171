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
        'Restores data from a snapshot into a temporary scratch folder and verifies it, then removes the scratch folder (also on failure or cancellation). It never writes to the volume or its snapshots.',
        'mode sample (default): picks sampleSize (50) files at random from the newest snapshot (or `snapshot`), restores them by reading every byte, and checks sha256, mode, owner, mtime, xattrs (incl. security.selinux) and symlink targets. A file whose blocks cannot be read (EIO, btrfs checksum error) fails with check "read-error".',
        'mode full: a restore drill of the whole snapshot (btrfs send | receive into scratch on the pool, or a full restic restore), verifying file count, bytes and a checksum sample, and measuring throughput and the RTO for the current volume size. It can take long; progress is reported.',
        'source local (the volume snapshots), external (received copies under the configured external path, verified against the local snapshot of the same name), or restic (the configured repository).',
        'Pass seed to repeat the same sample; spread: true spreads it across top-level folders. Files changed on the live volume since the snapshot are reported as drift, not failures.',
        'Each result is recorded in backup-history.json (restore_tests) and the Prometheus textfile is refreshed.',
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
