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
        'Brings a volume back to one of its snapguard snapshots (mode rollback) or restores given paths from it (mode files, paths relative to the volume root).',
        'Give volume + snapshot (from list_snapshots), or operationId to roll back every volume that operation snapshotted together.',
        'Destructive but nothing is lost: the current state is kept first as a pre-recover snapshot, which can itself be recovered to undo.',
        "The first call only returns the plan (steps, services stopped and started, the safety snapshot's name, counts of added/removed/modified paths): either the user is asked directly, or the result has status confirmation_required and a confirmationToken.",
        'Show that plan to the user and call again with the same arguments plus confirmationToken only after they agree. dryRun: true only plans.',
        'Configured services are stopped before and started after; the result lists every validation check.',
        'Files mode with destination "beside" replaces nothing: the snapshot\'s version of each path is written next to the original as NAME.snapguard-YYYYMMDD-HHMMSS (the snapshot\'s time), an existing name is refused, no service is stopped and no confirmation is asked; the result lists each written path. It can read any snapshot file_versions lists (also foreign ones and "external:NAME" copies).',
        "On ZFS volumes `zfs rollback` is never run: the dataset's files are replaced by the snapshot's, and every newer snapshot (snapguard's, sanoid's, syncoid's) stays; the plan lists them under newerSnapshots.",
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
