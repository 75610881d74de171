import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import {
  orchestrate,
  OrchestrateInput,
  OrchestrateResultSchema,
  type OrchestrateEvent,
} from '../../core/orchestrate/index.js';
import { runTool } from '../result.js';

function progressMessage(event: OrchestrateEvent): string | undefined {
  if (event.type === 'job-start') return `${event.stage}: started ${event.job}`;
  if (event.type === 'job-finish')
    return `${event.stage}: ${event.job.id} ${event.job.result} after ${event.job.durationSeconds}s`;
  if (event.type === 'stage-start') return `stage ${event.stage}: ${event.jobs.length} job(s)`;
  return undefined;
}

/** The stage names a run goes through: the configured ones, or the built-in snapshots, replication, backups. */
function stageNames(deps: Deps): string {
  const configured = deps.config.orchestrate?.stages;
  const names = configured ? configured.map((stage) => stage.name) : ['snapshots', 'replication', 'backups'];
  return names.map((name, index) => `${index + 1} ${name}`).join(', ');
}

export function registerOrchestrateTool(server: McpServer, deps: Deps): void {
  server.registerTool(
    'orchestrate',
    {
      title: 'Run all backups before a deployment',
      description: [
        'Use it right before a deployment (NixOS rebuild, kernel update, migration): runs every backup job of this host (systemd units, snapshots, replication, commands) stage by stage and says whether it is safe to deploy.',
        `Stages in order: ${stageNames(deps)}.`,
        'exitCode 0: safe; 1: a non-critical job failed, ask the user; 2: do not deploy. dryRun: true only plans.',
      ].join(' '),
      inputSchema: OrchestrateInput,
      outputSchema: OrchestrateResultSchema,
      annotations: {
        title: 'Orchestrate backups',
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    async (args, extra) => {
      const progressToken = extra._meta?.progressToken;
      let progress = 0;
      let total = 0;
      const onEvent = (event: OrchestrateEvent) => {
        if (event.type === 'plan') total = event.jobs * 2;
        const message = progressMessage(event);
        if (progressToken === undefined || message === undefined) return;
        if (event.type === 'job-start' || event.type === 'job-finish') progress += 1;
        extra
          .sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress, ...(total > 0 ? { total } : {}), message },
          })
          .catch((error: unknown) => deps.logger.debug({ err: error }, 'progress notification not sent'));
      };
      return runTool(
        () => orchestrate(deps, args, { signal: extra.signal, onEvent }),
        (result) => {
          const lines = [
            result.dryRun
              ? `Plan (dry run, nothing started): ${result.stages.map((s) => `${s.name} [${s.jobs.map((j) => j.id).join(', ') || 'no jobs'}]`).join(' -> ')}`
              : `Orchestration ${result.id}: ${result.status}, exit code ${result.exitCode}, ${result.durationSeconds}s.`,
          ];
          for (const failure of result.failures)
            lines.push(`FAILED ${failure.job} (${failure.stage}): ${failure.result}, ${failure.detail}`);
          lines.push(...result.notes);
          if (!result.dryRun)
            lines.push(
              result.exitCode === 0
                ? 'Safe to deploy: every backup job succeeded.'
                : result.exitCode === 1
                  ? 'Partial failure: show the failures to the user before deploying.'
                  : 'Do not deploy: a critical step failed or the run was cancelled.',
            );
          return lines.join('\n');
        },
      );
    },
  );
}
