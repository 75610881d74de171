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
        'Use it before a change and when asked whether backups are fine: overall GOOD, WARNING or CRITICAL, with findings and their remedies',
        '(snapshot age, gaps, pool usage, device errors, restore tests, unfinished recoveries, RPO/RTO).',
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
