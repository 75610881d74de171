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
        'Designs the snapshot and backup strategy of a host from its type (laptop | server | vps), its volumes (path, size, optional tier), the pool size and free space, RPO/RTO targets per tier and whether remote storage exists.',
        'Returns: a classification of each volume (databases such as /var/lib/postgresql critical with a database-native method; /home and configs critical; application data important; logs and caches standard; /tmp and swap temporary; tier overrides), snapshot frequency and btrbk-style retention per volume for local and remote copies, backup methods, a space estimate against the budget (retention scaled down to fit, with a warning), a snapguard.yaml fragment, systemd timer and service units in non-overlapping slots (checked with systemd-analyze verify), and the disaster-recovery runbooks DR-001..DR-004 in Markdown for this host.',
        'activitySamples (a CSV of timestamp,value or a Prometheus range-query JSON file) moves the daily jobs to the quietest 2-hour window.',
        'Read-only: it writes nothing; `snapguard plan --write DIR` writes the files.',
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
