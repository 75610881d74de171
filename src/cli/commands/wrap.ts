import { Command } from 'commander';
import { createSnapshots, REUSE_OVERRIDE } from '../../core/snapshots.js';
import { runWrap, splitCommandLine } from '../../core/wrap.js';
import { action, collect, loadDeps, parseDurationOption, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine } from '../output.js';

interface WrapCliOptions extends CommonOptions {
  volume: string[];
  operation: string;
  deploy?: boolean;
  validate?: string;
  autoRollback?: boolean;
  force?: boolean;
  timeout?: number;
  dryRun?: boolean;
}

export function wrapCommand(): Command {
  return withCommon(
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
  ).action(
    action(async (command: string[], options: WrapCliOptions) => {
      const deps = await loadDeps(options);
      const validate = options.validate ? splitCommandLine(options.validate) : undefined;
      if (options.dryRun) {
        const planned = await createSnapshots(deps, {
          volumes: options.volume,
          type: options.deploy ? 'pre-deploy' : 'pre-change',
          operation: options.operation,
          force: Boolean(options.force),
          dryRun: true,
        });
        const plan = {
          dryRun: true,
          snapshots: planned.planned,
          reused: planned.skipped,
          command,
          validate: validate ?? null,
          onFailure: options.autoRollback ? 'roll back without asking' : 'keep the snapshots and report',
          warnings: planned.warnings,
        };
        if (options.json) printJson(plan);
        else {
          for (const s of plan.snapshots) printLine(`would snapshot ${s.volume} as ${s.name}`);
          for (const r of plan.reused)
            printLine(
              `would reuse ${r.existing?.name ?? 'the newest snapshot'} of ${r.volume}: ${r.reason} (${REUSE_OVERRIDE.cli})`,
            );
          printLine(`would run: ${JSON.stringify(command)}`);
          printLine(validate ? `would validate with: ${JSON.stringify(validate)}` : 'no validation command');
          printLine(`on failure: ${plan.onFailure}`);
        }
        return 0;
      }
      const say = (text: string) => process.stderr.write(`snapguard wrap: ${text}\n`);
      const result = await runWrap(deps, {
        volumes: options.volume,
        operation: options.operation,
        deploy: Boolean(options.deploy),
        command,
        validate,
        autoRollback: Boolean(options.autoRollback),
        force: Boolean(options.force),
        ...(options.timeout ? { commandTimeoutSeconds: options.timeout } : {}),
        inheritOutput: !options.json,
      });
      if (options.json) {
        printJson(result);
        return result.exitCode;
      }
      say(
        `snapshots: ${result.snapshots.map((s) => `${s.name}${s.reused ? ' (reused)' : ''}`).join(', ')} (operation ${result.operationId})`,
      );
      for (const w of result.warnings) say(`warning: ${w}`);
      say(
        `command exited with ${result.command.exitCode}${result.command.ok ? '' : `: ${result.command.output ?? ''}`}`,
      );
      if (result.validation)
        say(`validation ${result.validation.ok ? 'passed' : `failed (exit ${result.validation.exitCode})`}`);
      say(`outcome: ${result.outcome}${result.failure ? ` (${result.failure})` : ''}`);
      if (result.rollback) say(`rolled back: ${result.rollback.message ?? result.rollback.status}`);
      if (result.rollbackError) {
        say(`ROLLBACK FAILED: ${result.rollbackError.message} (${result.rollbackError.hint})`);
        say(`to undo once that is fixed: snapguard recover --operation-id ${result.operationId}`);
      } else if (result.failure && !options.autoRollback)
        say(`to undo: snapguard recover --operation-id ${result.operationId}`);
      return result.exitCode;
    }),
  );
}
