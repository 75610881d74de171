import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { healthCheck } from '../../core/health/index.js';
import { HealthCheckInput, HealthCheckResultSchema } from '../../core/health/schemas.js';
import { runTool } from '../result.js';
import { readOnlyAnnotations } from './annotations.js';

export function registerHealthCheckTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'health_check',
    {
      title: 'Check backup health',
      description: [
        'Checks each volume (or the one named) and returns overall GOOD, WARNING or CRITICAL with findings, each with severity, code, message and remedy.',
        "It looks at: the newest snapshot's age against the tier's expected interval, gaps in the last 30 days, whether a sample of the newest snapshot reads, pool usage and the snapshots' exclusive share (from btrfs qgroups; unknown when quotas are off), btrfs device error counters, age and result of the last restore test, unfinished recoveries, a corrupt history file, external copies, and a forecast of when the pool reaches maxPoolUsage.",
        'It also reports RPO (age of the newest copy), the measured RTO from the last full drill, and history-based rates (deployments with a pre-deploy snapshot, recovery success, mean recovery time).',
        'Read-only: it changes nothing.',
      ].join(' '),
      inputSchema: HealthCheckInput,
      outputSchema: HealthCheckResultSchema,
      annotations: readOnlyAnnotations('Health check'),
    },
    async (args, extra) =>
      runTool(
        // Remedies in the words of the tools (the core's remedy names CLI verbs).
        async () => {
          const result = await healthCheck(deps, args, { signal: extra.signal });
          return {
            ...result,
            findings: result.findings.map((f) => (f.remedies ? { ...f, remedy: f.remedies.mcp } : f)),
          };
        },
        (result) => {
          const lines = [`Overall ${result.overall}.`];
          for (const v of result.volumes) lines.push(`${v.volume}: ${v.status}`);
          for (const f of result.findings.filter((x) => x.severity !== 'info'))
            lines.push(
              `${f.severity.toUpperCase()} ${f.code}${f.volume ? ` (${f.volume})` : ''}: ${f.message} Remedy: ${f.remedy}`,
            );
          return lines.join('\n');
        },
      ),
  );
}
