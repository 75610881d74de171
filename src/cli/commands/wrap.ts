import { Command } from 'commander';
import type { Deps } from '../../core/deps.js';
import type { RecoverResult } from '../../core/recovery/schemas.js';
import type { CreateSnapshotResult } from '../../core/schemas.js';
import { REUSE_OVERRIDE } from '../../core/snapshots.js';
import {
  localWrapTarget,
  runWrap,
  splitCommandLine,
  type WrapResult,
  type WrapTarget,
} from '../../core/wrap.js';
import type { HostSessions } from '../../mcp/transports/hosts.js';
import { action, collect, loadDeps, parseDurationOption, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine } from '../output.js';
import { callRemote, remoteTarget, withHost, withSessions } from '../remote.js';

interface WrapCliOptions extends CommonOptions {
  volume: string[];
  operation: string;
  deploy?: boolean;
  validate?: string;
  autoRollback?: boolean;
  force?: boolean;
  timeout?: number;
  dryRun?: boolean;
  host?: string;
}

/**
 * The volumes of another host, through its own tools: create_snapshot and complete_operation
 * there, and the rollback through its recover gate (plan and token from the host, the token spent
 * on the host; --auto-rollback is the consent). The host finishes its own interrupted recoveries
 * when it snapshots.
 */
function hostWrapTarget(sessions: HostSessions, host: string): WrapTarget {
  return {
    prepare: async () => [],
    snapshot: async (request) =>
      (await callRemote(sessions, host, 'create_snapshot', { ...request }))
        .structured as unknown as CreateSnapshotResult,
    complete: async (operationId, outcome, notes) => {
      await callRemote(sessions, host, 'complete_operation', { operationId, outcome, notes });
    },
    rollback: async (operationId, reason) => {
      const request = { operationId, mode: 'rollback', reason };
      const plan = await callRemote(sessions, host, 'recover', request);
      const done =
        plan.structured.status === 'confirmation_required'
          ? await callRemote(sessions, host, 'recover', {
              ...request,
              confirmationToken: plan.structured.confirmationToken,
            })
          : plan;
      const { host: _host, ...result } = done.structured;
      return result as unknown as RecoverResult;
    },
  };
}

/** --dry-run: the snapshots the target would take (or reuse), the command and what a failure does. */
async function dryRun(target: WrapTarget, command: string[], options: WrapCliOptions): Promise<number> {
  const validate = options.validate ? splitCommandLine(options.validate) : undefined;
  const planned = await target.snapshot({
    volumes: options.volume,
    type: options.deploy ? 'pre-deploy' : 'pre-change',
    operation: options.operation,
    force: Boolean(options.force),
    dryRun: true,
  });
  const plan = {
    dryRun: true,
    ...(options.host !== undefined ? { host: options.host } : {}),
    snapshots: planned.planned,
    reused: planned.skipped,
    command,
    validate: validate ?? null,
    onFailure: options.autoRollback ? 'roll back without asking' : 'keep the snapshots and report',
    warnings: planned.warnings,
  };
  if (options.json) {
    printJson(plan);
    return 0;
  }
  const where = options.host !== undefined ? ` on host ${options.host}` : '';
  for (const s of plan.snapshots) printLine(`would snapshot ${s.volume}${where} as ${s.name}`);
  for (const r of plan.reused)
    printLine(
      `would reuse ${r.existing?.name ?? 'the newest snapshot'} of ${r.volume}${where}: ${r.reason} (${REUSE_OVERRIDE.cli})`,
    );
  printLine(`would run: ${JSON.stringify(command)}${where ? ' (here, not on the host)' : ''}`);
  printLine(validate ? `would validate with: ${JSON.stringify(validate)}` : 'no validation command');
  printLine(`on failure: ${plan.onFailure}`);
  return 0;
}

/** What happened, on stderr (stdout and stderr of the command went to the terminal). */
function report(result: WrapResult, options: WrapCliOptions): void {
  const say = (text: string) => process.stderr.write(`snapguard wrap: ${text}\n`);
  const where = options.host !== undefined ? ` on host ${options.host}` : '';
  const onHost = options.host !== undefined ? ` --host ${options.host}` : '';
  say(
    `snapshots${where}: ${result.snapshots.map((s) => `${s.name}${s.reused ? ' (reused)' : ''}`).join(', ')} (operation ${result.operationId})`,
  );
  for (const w of result.warnings) say(`warning: ${w}`);
  say(
    `command exited with ${result.command.exitCode}${result.command.ok ? '' : `: ${result.command.output ?? ''}`}`,
  );
  if (result.validation)
    say(`validation ${result.validation.ok ? 'passed' : `failed (exit ${result.validation.exitCode})`}`);
  say(`outcome: ${result.outcome}${result.failure ? ` (${result.failure})` : ''}`);
  if (result.rollback) say(`rolled back${where}: ${result.rollback.message ?? result.rollback.status}`);
  if (result.rollbackError) {
    say(`ROLLBACK FAILED: ${result.rollbackError.message} (${result.rollbackError.hint})`);
    say(`to undo once that is fixed: snapguard recover --operation-id ${result.operationId}${onHost}`);
  } else if (result.failure && !options.autoRollback)
    say(`to undo: snapguard recover --operation-id ${result.operationId}${onHost}`);
}

/** The run itself: snapshots on the target, the command here, the outcome and rollback on the target. */
async function wrapOn(
  deps: Deps,
  target: WrapTarget,
  command: string[],
  options: WrapCliOptions,
): Promise<number> {
  if (options.dryRun) return dryRun(target, command, options);
  const result = await runWrap(
    deps,
    {
      volumes: options.volume,
      operation: options.operation,
      deploy: Boolean(options.deploy),
      command,
      validate: options.validate ? splitCommandLine(options.validate) : undefined,
      autoRollback: Boolean(options.autoRollback),
      force: Boolean(options.force),
      ...(options.timeout ? { commandTimeoutSeconds: options.timeout } : {}),
      inheritOutput: !options.json,
    },
    {},
    target,
  );
  if (options.json) printJson(options.host !== undefined ? { ...result, host: options.host } : result);
  else report(result, options);
  return result.exitCode;
}

export function wrapCommand(): Command {
  return withHost(
    withCommon(
      new Command('wrap')
        .description(
          'snapshot, run a command, validate, record the outcome; with --auto-rollback a failure rolls the volumes back',
        )
        .requiredOption('--volume <id>', 'volume to protect (repeatable)', collect)
        .requiredOption('--operation <name>', 'what the change is, e.g. deploy-immich')
        .option('--deploy', 'snapshot type pre-deploy instead of pre-change')
        .option('--validate <command>', 'validation command line (split without a shell; quotes group words)')
        .option(
          '-f, --force',
          'take a new snapshot even when a recent one exists (minInterval) or the pool is nearly full',
        )
        .option('--auto-rollback', 'on failure roll back without asking (this flag is the consent)')
        .option(
          '--timeout <duration>',
          'command timeout: 30s, 5m, 1h, ... or seconds (default 1h)',
          parseDurationOption('--timeout'),
        )
        .option(
          '-n, --dry-run',
          'show the snapshots, command, validation and rollback it would do; run nothing',
        )
        .argument('<command...>', 'the command and its arguments, after --'),
    ),
  ).action(
    action(async (command: string[], options: WrapCliOptions) => {
      // --host: the volumes are that host's; the command still runs here (it deploys from here to there).
      const remote = await remoteTarget(options);
      const deps = await loadDeps(options);
      if (!remote) {
        // --host naming this host: the same run as without it.
        const { host: _here, ...here } = options;
        return wrapOn(deps, localWrapTarget(deps), command, here);
      }
      return withSessions(remote.config, (sessions) =>
        wrapOn(deps, hostWrapTarget(sessions, remote.host), command, options),
      );
    }),
  );
}
