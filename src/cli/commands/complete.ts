import { Command, Option } from 'commander';
import { completeOperation } from '../../core/snapshots.js';
import { action, loadDeps, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine } from '../output.js';
import { runOnHost, withHost, type HostOptions } from '../remote.js';

export function completeCommand(): Command {
  return withHost(
    withCommon(
      new Command('complete')
        .description('record the outcome of an operation on its snapshots')
        .argument('<operation-id>', 'the id printed by snapshot create')
        .addOption(
          new Option('--outcome <outcome>', 'how the change went')
            .choices(['success', 'failed'])
            .makeOptionMandatory(),
        )
        .option('--notes <text>', 'a note stored with the snapshots')
        .option('-n, --dry-run', 'show the snapshots that would be marked, change nothing'),
    ),
  ).action(
    action(
      async (
        operationId: string,
        options: CommonOptions & HostOptions & { outcome: string; notes?: string; dryRun?: boolean },
      ) => {
        const remote = await runOnHost(options, 'complete_operation', {
          operationId,
          outcome: options.outcome,
          dryRun: Boolean(options.dryRun),
          ...(options.notes ? { notes: options.notes } : {}),
        });
        if (remote !== undefined) return remote;
        const deps = await loadDeps(options);
        const result = await completeOperation(deps, {
          operationId,
          outcome: options.outcome,
          dryRun: Boolean(options.dryRun),
          ...(options.notes ? { notes: options.notes } : {}),
        });
        if (options.json) printJson(result);
        else
          printLine(
            `${result.dryRun ? 'Would mark' : 'Marked'} ${result.snapshots.length} snapshot(s) of ${operationId} as ${result.outcome}: ${result.snapshots.map((s) => s.name).join(', ')}`,
          );
        return 0;
      },
    ),
  );
}
