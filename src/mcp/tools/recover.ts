import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { recover } from '../../core/recovery/recover.js';
import { RecoverInput, RecoverResultSchema, type RecoverResult } from '../../core/recovery/schemas.js';
import { confirmGate, type ToolExtra } from '../confirm.js';
import { runTool } from '../result.js';

function summarize(result: RecoverResult): string {
  const lines: string[] = [];
  for (const resolved of result.resolved ?? [])
    lines.push(`Interrupted recovery ${resolved.recoveryId}: ${resolved.action} (${resolved.detail}).`);
  // A restore beside the original: its message names every path (to be) written.
  if (result.written) {
    lines.push(result.message ?? result.status);
    return lines.join('\n');
  }
  switch (result.status) {
    case 'planned':
    case 'confirmation_required': {
      const plan = result.plan;
      lines.push(
        result.status === 'planned'
          ? 'Plan only (dryRun); nothing was changed.'
          : 'Nothing was changed yet. Show this plan to the user; only if they agree, call recover again with the same arguments and confirmationToken (valid until ' +
              `${result.expiresAt}, once).`,
      );
      for (const item of plan?.volumes ?? []) {
        const c = item.changes;
        if (c)
          lines.push(
            `${item.volume} -> ${item.snapshot}: ${c.added.count} added, ${c.removed.count} removed, ${c.modified.count} modified, ${c.metadataOnly.count} metadata-only${c.truncated ? ' (path lists truncated)' : ''}; safety snapshot ${item.safetyBackup}.`,
          );
      }
      lines.push(...(plan?.steps ?? []).map((s, i) => `${i + 1}. ${s}`));
      break;
    }
    case 'declined':
    case 'cancelled':
      lines.push(`The user ${result.status} the recovery; nothing was changed.`);
      break;
    default:
      lines.push(result.message ?? result.status);
  }
  return lines.join('\n');
}

/** Sends notifications/progress when the client asked for them (a progressToken in _meta). */
function progressReporter(extra: ToolExtra): ((message: string) => void) | undefined {
  const token = extra._meta?.progressToken;
  if (token === undefined) return undefined;
  let progress = 0;
  return (message) => {
    progress += 1;
    void extra
      .sendNotification({
        method: 'notifications/progress',
        params: { progressToken: token, progress, message },
      })
      .catch(() => undefined);
  };
}

export function registerRecoverTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'recover',
    {
      title: 'Recover a volume or files from a snapshot',
      description: [
        'Use it to undo a failed change or bring back lost files: rolls a volume back to a snapshot (mode rollback) or restores paths from it (mode files); give volume + snapshot, or an operationId.',
        'The current state is kept first as a pre-recover snapshot. The first call only plans: show the plan, call again with confirmationToken only after the user agrees.',
        'Files mode with destination "beside" writes the snapshot\'s version next to each original as NAME.snapguard-YYYYMMDD-HHMMSS, overwrites nothing and needs no confirmation.',
      ].join(' '),
      inputSchema: RecoverInput,
      outputSchema: RecoverResultSchema,
      annotations: {
        title: 'Recover from a snapshot',
        readOnlyHint: false,
        destructiveHint: true,
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    async (args, extra) =>
      runTool(
        () =>
          recover(deps, args, {
            signal: extra.signal,
            onProgress: progressReporter(extra),
            confirm: async ({ plan, fingerprint, summary }) => {
              const gate = await confirmGate(deps, server, extra, {
                tool: 'recover',
                args: args as Record<string, unknown>,
                fingerprint,
                plan,
                summary,
                token: args.confirmationToken,
              });
              if (gate.proceed) return true;
              return gate.status === 'confirmation_required'
                ? {
                    status: gate.status,
                    plan: gate.plan,
                    confirmationToken: gate.confirmationToken,
                    expiresAt: gate.expiresAt,
                  }
                : { status: gate.status, plan: gate.plan };
            },
          }),
        summarize,
      ),
  );
}
