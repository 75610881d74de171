import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { planStrategy, PlanStrategyInput, PlanStrategyResultSchema } from '../../core/planner/plan.js';
import { formatBytes } from '../../core/units.js';
import { runTool } from '../result.js';
import { readOnlyAnnotations } from './annotations.js';

export function registerPlanStrategyTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'plan_strategy',
    {
      title: 'Plan a snapshot and backup strategy',
      description: [
        'Use it when setting up a host: from its type, volumes, disk and RPO/RTO targets, proposes tiers, snapshot frequency, retention, backup methods, a space estimate, snapguard.yaml, systemd units and runbooks.',
        'Writes nothing.',
      ].join(' '),
      inputSchema: PlanStrategyInput,
      outputSchema: PlanStrategyResultSchema,
      annotations: readOnlyAnnotations('Plan strategy'),
    },
    async (args, extra) =>
      runTool(
        () => planStrategy(deps, args, { signal: extra.signal }),
        (plan) =>
          [
            `${plan.hostType} plan for ${plan.volumes.length} volume(s):`,
            ...plan.volumes.map(
              (v) =>
                `  ${v.id} (${v.path}): ${v.tier}, ${v.frequency}${v.retention.local ? `, keep "${v.retention.local.preserve}"` : ''}${v.retention.remote ? `, remote "${v.retention.remote.preserve}" via ${v.methods.remote}` : ''}${v.methods.database ? `, database: ${v.methods.database.tool}` : ''}`,
            ),
            `Snapshot space: ~${formatBytes(plan.space.estimatedBytes)} of ${formatBytes(plan.space.budgetBytes)} budget${plan.space.fits ? '' : ' (DOES NOT FIT)'}.`,
            `Units: ${plan.units.map((u) => u.name).join(', ')}${plan.unitsVerified ? ` (systemd-analyze verify: ${plan.unitsVerified.ok ? 'ok' : 'FAILED'})` : ''}.`,
            `Runbooks: ${plan.runbooks.map((r) => r.id).join(', ')}.`,
            ...plan.warnings.map((w) => `Warning: ${w}`),
          ].join('\n'),
      ),
  );
}
