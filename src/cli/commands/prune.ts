import { Command, Option } from 'commander';
import { pinSnapshot, readPins } from '../../core/retention/pins.js';
import { planResult, pruneSnapshots, type PruneSnapshotsResult } from '../../core/retention/prune.js';
import { noRetentionHint } from '../../core/retention/summary.js';
import { confirmOnTerminal } from '../confirm.js';
import { action, loadDeps, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine, renderTable } from '../output.js';
import { SnapguardError } from '../../core/errors.js';
import { remoteTarget, runGatedOnHost, runOnHost, withHost, type HostOptions } from '../remote.js';
import { noProgressOption, quietOption, startProgress, type ProgressSwitches } from '../progress.js';

interface PruneOptions extends CommonOptions, ProgressSwitches, HostOptions {
  location: 'local' | 'external' | 'all';
  dryRun?: boolean;
  yes?: boolean;
}

function printPlan(result: Pick<PruneSnapshotsResult, 'keep' | 'delete' | 'targets'>): void {
  const rows = [...result.keep, ...result.delete]
    .sort(
      (a, b) =>
        a.volume.localeCompare(b.volume) ||
        a.location.localeCompare(b.location) ||
        a.createdAt.localeCompare(b.createdAt),
    )
    .map((v) => [
      v.volume,
      v.location,
      v.name,
      v.action === 'delete' ? (v.result === 'planned' ? 'DELETE' : v.result.toUpperCase()) : 'keep',
      v.error ? `${v.reason} -- ${v.error}` : v.reason,
    ]);
  if (rows.length === 0) {
    printLine('No snapshots.');
    return;
  }
  printLine(renderTable(['VOLUME', 'LOCATION', 'SNAPSHOT', 'ACTION', 'REASON'], rows));
  for (const target of result.targets)
    printLine(
      `${target.volume} ${target.location}: ${target.policy}; keep ${target.kept}, delete ${target.toDelete}`,
    );
}

export function pruneCommand(): Command {
  return withHost(
    withCommon(
      new Command('prune')
        .description('delete snapshots that the retention policy does not keep (shows every verdict and why)')
        .argument('[volume]', 'only this volume (default: all)')
        .addOption(
          new Option('--location <where>', 'local snapshots, external copies, or both')
            .choices(['local', 'external', 'all'])
            .default('all'),
        )
        .option('-n, --dry-run', 'only show the plan')
        .option('-y, --yes', 'delete without asking (for timers and scripts)')
        .addOption(noProgressOption())
        .addOption(quietOption()),
    ),
  ).action(
    action(async (volume: string | undefined, options: PruneOptions) => {
      // --host: the host's plan and token; asked here, deleted there.
      const remote = await runGatedOnHost(
        options,
        'prune_snapshots',
        { ...(volume ? { volume } : {}), location: options.location, dryRun: Boolean(options.dryRun) },
        {
          question: 'Delete these snapshot(s)?',
          exitCode: (result) =>
            result.status === 'partial' || (Array.isArray(result.warnings) && result.warnings.length > 0)
              ? 1
              : 0,
        },
      );
      if (remote !== undefined) return remote;
      const deps = await loadDeps(options);
      let printed = false;
      const progress = await startProgress('prune', options);
      const result = await pruneSnapshots(
        deps,
        { ...(volume ? { volume } : {}), location: options.location, dryRun: Boolean(options.dryRun) },
        {
          gate: async (plan) => {
            const shown = planResult(plan, 'planned', false, performance.now());
            if (!options.json) {
              printPlan(shown);
              printed = true;
            }
            const yes = await confirmOnTerminal(`Delete ${shown.delete.length} snapshot(s)?`, {
              yes: options.yes,
              never: deps.config.confirm === 'never',
            });
            return yes ? true : planResult(plan, 'declined', false, performance.now());
          },
          onProgress: progress.update,
        },
      ).finally(progress.stop);
      if (options.json) printJson(result);
      else {
        if (!printed || result.status === 'pruned' || result.status === 'partial') printPlan(result);
        const done = result.delete.filter((v) => v.result === 'deleted').length;
        const messages: Record<PruneSnapshotsResult['status'], string> = {
          planned: `Dry run: would delete ${result.delete.length} snapshot(s). Run without --dry-run to delete.`,
          confirmation_required: 'Nothing deleted: confirmation required.',
          declined: 'Nothing deleted.',
          cancelled: 'Nothing deleted.',
          nothing_to_do: 'Nothing to delete.',
          pruned: `Deleted ${done} snapshot(s).`,
          partial: `Deleted ${done} snapshot(s); ${result.failures.length} could not be deleted (see FAILED above). Fix the cause and run prune again.`,
        };
        printLine(messages[result.status]);
        const unset = noRetentionHint(result);
        if (unset) printLine(unset.cli);
        for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
      }
      return result.status === 'partial' || result.warnings.length > 0 ? 1 : 0;
    }),
  );
}

interface PinOptions extends CommonOptions, HostOptions {
  reason?: string;
  dryRun?: boolean;
}

export function pinCommand(): Command {
  return withHost(
    withCommon(
      new Command('pin')
        .description('pin a snapshot so that prune never deletes it; without a snapshot, list the pins')
        .argument('<volume>', 'configured volume id')
        .argument('[snapshot]', 'snapshot name as shown by snapshot list')
        .option('-r, --reason <text>', 'why it is kept (shown in prune plans)')
        .option('-n, --dry-run', 'say what would change, change nothing'),
    ),
  ).action(
    action(async (volume: string, snapshot: string | undefined, options: PinOptions) => {
      if (snapshot === undefined && options.host !== undefined && (await remoteTarget(options)))
        throw new SnapguardError(
          'BAD_INPUT',
          'Listing the pins of another host is not offered through this snapguard.',
          `Run \`snapguard pin ${volume}\` on ${options.host} itself; pinning one snapshot with --host works.`,
        );
      if (snapshot !== undefined) {
        const remote = await runOnHost(options, 'pin_snapshot', {
          volume,
          snapshot,
          pinned: true,
          dryRun: Boolean(options.dryRun),
          ...(options.reason ? { reason: options.reason } : {}),
        });
        if (remote !== undefined) return remote;
      }
      const deps = await loadDeps(options);
      if (!snapshot) {
        const pins = (await readPins(deps)).filter((pin) => pin.volume === volume);
        if (options.json) printJson({ pins });
        else if (pins.length === 0) printLine(`No pins on ${volume}.`);
        else
          printLine(
            renderTable(
              ['SNAPSHOT', 'PINNED AT', 'REASON'],
              pins.map((pin) => [pin.snapshot, pin.pinnedAt, pin.reason ?? undefined]),
            ),
          );
        return 0;
      }
      const result = await pinSnapshot(deps, {
        volume,
        snapshot,
        pinned: true,
        dryRun: Boolean(options.dryRun),
        ...(options.reason ? { reason: options.reason } : {}),
      });
      if (options.json) printJson(result);
      else
        printLine(
          `${result.changed ? (result.dryRun ? 'Would pin' : 'Pinned') : 'Already pinned:'} ${volume}/${snapshot}`,
        );
      return 0;
    }),
  );
}

export function unpinCommand(): Command {
  return withHost(
    withCommon(
      new Command('unpin')
        .description('remove the pin of a snapshot (prune may then delete it by policy)')
        .argument('<volume>', 'configured volume id')
        .argument('<snapshot>', 'snapshot name')
        .option('-n, --dry-run', 'say what would change, change nothing'),
    ),
  ).action(
    action(async (volume: string, snapshot: string, options: PinOptions) => {
      const remote = await runOnHost(options, 'pin_snapshot', {
        volume,
        snapshot,
        pinned: false,
        dryRun: Boolean(options.dryRun),
      });
      if (remote !== undefined) return remote;
      const deps = await loadDeps(options);
      const result = await pinSnapshot(deps, {
        volume,
        snapshot,
        pinned: false,
        dryRun: Boolean(options.dryRun),
      });
      if (options.json) printJson(result);
      else
        printLine(
          `${result.changed ? (result.dryRun ? 'Would unpin' : 'Unpinned') : 'Was not pinned:'} ${volume}/${snapshot}`,
        );
      return 0;
    }),
  );
}
