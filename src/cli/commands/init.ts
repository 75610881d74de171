import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { runEnvironmentChecks, worstStatus, type DoctorCheck } from '../../core/doctor/checks.js';
import { runDoctor } from '../../core/doctor.js';
import { configExists, proposeConfig, writeProposal, type InitProposal } from '../../core/init.js';
import { action, collect, loadDeps, withCommon, type CommonOptions } from '../common.js';
import { refuseOtherHost, withHereOnlyHost } from '../remote.js';
import { printJson, printLine } from '../output.js';

interface InitOptions extends CommonOptions {
  host?: string;
  dryRun?: boolean;
  force?: boolean;
  under?: string[];
  contextDir?: string;
  stateDir?: string;
}

const MARK: Record<DoctorCheck['status'], string> = { ok: 'ok  ', warning: 'WARN', critical: 'FAIL' };

/** The doctor's checks on the file just written (the same checks as `snapguard doctor`). */
async function doctorOn(file: string, options: CommonOptions) {
  const deps = await loadDeps({ ...options, config: file });
  const report = await runDoctor(deps);
  const checks = await runEnvironmentChecks(deps);
  for (const r of report.recoveries)
    checks.push({
      id: `recovery:${r.recoveryId}`,
      status: r.outcome === 'failed' ? 'critical' : 'warning',
      message: `unfinished recovery ${r.recoveryId} (${r.volumes.join(', ')}): ${r.action}: ${r.detail}`,
    });
  return { overall: worstStatus(checks), checks };
}

function summary(proposal: InitProposal): string[] {
  const lines = [
    proposal.volumes.length > 0
      ? `${proposal.volumes.length} volume(s): ${proposal.volumes.map((v) => `${v.id} (${v.backend} ${v.dataset ?? v.path}, ${v.tier})`).join(', ')}`
      : 'No btrfs subvolume or ZFS dataset to propose.',
  ];
  if (proposal.skipped.length > 0)
    lines.push(`${proposal.skipped.length} left out (the reasons are comments at the end of the file).`);
  for (const note of proposal.notes)
    lines.push(`not looked at: ${note.subject}: ${note.detail.split('\n')[0]}`);
  return lines;
}

export function initCommand(): Command {
  return withHereOnlyHost(
    withCommon(
      new Command('init')
        .description(
          'write snapguard.yaml for this host: its btrfs subvolumes and ZFS datasets with ids, tiers, snapshot folders and minIntervals, then run doctor on it',
        )
        .option('-n, --dry-run', 'print the proposed file, write nothing')
        .option('-f, --force', 'replace an existing configuration file')
        .option('--under <dir>', 'only filesystems mounted at or below this folder (repeatable)', collect)
        .option('--context-dir <dir>', 'contextDir to write (default: ~/.claude/context)')
        .option(
          '--state-dir <dir>',
          'stateDir to write (default: /var/lib/snapguard as root, ~/.local/state/snapguard otherwise)',
        ),
    ),
    'init',
  ).action(
    action(async (options: InitOptions) => {
      // --config names the file to write on the host: the hosts come from the configuration found without it.
      await refuseOtherHost(options, 'init', 'writes the configuration of the host it runs on', true);
      // The file to write: --config, else ./snapguard.yaml (not the search order of the other verbs:
      // init creates a file, it does not look for one).
      const configFile = resolve(options.config ?? 'snapguard.yaml');
      // Said before looking at anything; writeProposal checks again when it creates the file.
      if (!options.dryRun && !options.force && existsSync(configFile)) throw configExists(configFile);
      const proposal = await proposeConfig({
        configFile,
        contextDir: options.contextDir,
        stateDir: options.stateDir,
        under: options.under,
      });
      if (options.dryRun) {
        if (options.json) printJson({ ...proposal, written: false });
        else {
          printLine(proposal.yaml.trimEnd());
          for (const line of summary(proposal)) process.stderr.write(`${line}\n`);
          process.stderr.write(`Dry run: nothing written. Run without --dry-run to write ${configFile}.\n`);
        }
        return 0;
      }
      await writeProposal(proposal, Boolean(options.force));
      const doctor = await doctorOn(configFile, options);
      if (options.json) {
        printJson({ ...proposal, written: true, doctor });
      } else {
        printLine(`Wrote ${configFile}.`);
        for (const line of summary(proposal)) printLine(line);
        printLine();
        printLine('doctor:');
        for (const check of doctor.checks.filter((c) => c.status !== 'ok')) {
          printLine(`${MARK[check.status]} ${check.message}`);
          if (check.fix) printLine(`     fix: ${check.fix}`);
        }
        const passed = doctor.checks.filter((c) => c.status === 'ok').length;
        printLine(
          doctor.overall === 'ok'
            ? `doctor: all ${passed} checks passed.`
            : `doctor: ${doctor.checks.length - passed} finding(s) need attention (see above); ${passed} passed.`,
        );
        const first = proposal.volumes[0];
        const config = configFile === resolve('snapguard.yaml') ? '' : ` --config ${configFile}`;
        if (first)
          printLine(
            [
              '',
              'Next:',
              `  snapguard${config} snapshot create ${first.id} --type manual --operation first-snapshot`,
              `  snapguard${config} snapshot list`,
            ].join('\n'),
          );
      }
      // The file is written either way; the exit code is doctor's (0 ok, 1 warnings, 2 problems).
      return doctor.overall === 'critical' ? 2 : doctor.overall === 'warning' ? 1 : 0;
    }),
  );
}
