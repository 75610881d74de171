import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import {
  planResult,
  pruneSnapshots,
  PruneSnapshotsInput,
  PruneSnapshotsResultSchema,
} from '../../core/retention/prune.js';
import { noRetentionHint, summarizePrunePlan } from '../../core/retention/summary.js';
import { confirmGate } from '../confirm.js';
import { runTool } from '../result.js';

export function registerPruneSnapshotsTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'prune_snapshots',
    {
      title: 'Prune old snapshots by retention policy',
      description: [
        "Use it to free space or apply retention: deletes the snapshots each volume's retention policy does not keep, with a reason per snapshot; never other tools', the newest, pinned ones or the incremental parent.",
        'The first call only plans: delete by calling again with confirmationToken after the user agrees.',
      ].join(' '),
      inputSchema: PruneSnapshotsInput,
      outputSchema: PruneSnapshotsResultSchema,
      annotations: {
        title: 'Prune snapshots',
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    async (args, extra) =>
      runTool(
        () =>
          pruneSnapshots(deps, args, {
            signal: extra.signal,
            gate: async (plan, request) => {
              const started = performance.now();
              const shown = planResult(plan, 'planned', false, started);
              const outcome = await confirmGate(deps, server, extra, {
                tool: 'prune_snapshots',
                args: { volume: request.volume, location: request.location },
                fingerprint: plan.fingerprint,
                plan: shown,
                summary: summarizePrunePlan(shown),
                token: request.confirmationToken,
              });
              if (outcome.proceed) return true;
              return outcome.status === 'confirmation_required'
                ? planResult(plan, 'confirmation_required', false, started, {
                    confirmationToken: outcome.confirmationToken,
                    expiresAt: outcome.expiresAt,
                  })
                : planResult(plan, outcome.status, false, started);
            },
          }),
        (result) => {
          const head: Record<typeof result.status, string> = {
            planned: `Plan (dry run): delete ${result.delete.length}, keep ${result.keep.length}.`,
            confirmation_required: `Nothing deleted yet. To delete these ${result.delete.length} snapshot(s), show the plan to the user and, if they agree, call prune_snapshots again with the same arguments and confirmationToken (valid until ${result.expiresAt}).`,
            declined: 'The user declined; nothing was deleted.',
            cancelled: 'The confirmation was cancelled; nothing was deleted.',
            nothing_to_do: `Nothing to delete; all ${result.keep.length} snapshot(s) are kept.`,
            pruned: `Deleted ${result.delete.length} snapshot(s); kept ${result.keep.length}.`,
            partial: `Deleted ${result.delete.length - result.failures.length} of ${result.delete.length} snapshot(s); ${result.failures.length} could not be deleted: ${result.failures.map((f) => `${f.volume}/${f.snapshot}: ${f.error}`).join('; ')}`,
          };
          return [
            head[result.status],
            summarizePrunePlan(result),
            ...(noRetentionHint(result) ? [noRetentionHint(result)?.mcp] : []),
            ...result.warnings.map((w) => `Warning: ${w}`),
          ].join('\n');
        },
      ),
  );
}
