import { Command, Option } from 'commander';
import { healthCheck, healthExitCode } from '../../core/health/index.js';
import { writeMetricsFile } from '../../core/metrics.js';
import { runRestoreTest } from '../../core/restore-test/index.js';
import { RESTORE_SOURCES } from '../../core/restore-test/schemas.js';
import { join } from 'node:path';
import { renderUnits, writeUnits } from '../../core/schedule-units.js';
import { formatBytes, formatDuration, formatMeasuredDuration } from '../../core/units.js';
import {
  action,
  configFileInUse,
  loadDeps,
  parseIntOption,
  runningCommand,
  withCommon,
  type CommonOptions,
} from '../common.js';
import { printJson, printLine, renderTable } from '../output.js';
import { refuseOtherHost, runOnHost, withHereOnlyHost, withHost, type HostOptions } from '../remote.js';
import type { HealthStatus } from '../../core/health/schemas.js';
import { noProgressOption, quietOption, startProgress, type ProgressSwitches } from '../progress.js';

interface RestoreTestOptions extends CommonOptions, HostOptions, ProgressSwitches {
  snapshot?: string;
  source: string;
  full?: boolean;
  sampleSize?: number;
  seed?: number;
  spread?: boolean;
}

interface HealthOptions extends CommonOptions, HostOptions {
  record: boolean;
}

interface UnitsOptions extends CommonOptions {
  write?: string;
  host?: string;
  command?: string[];
  dryRun?: boolean;
  install?: boolean;
}

export function restoreTestCommand(): Command {
  return withHost(
    withCommon(
      new Command('restore-test')
        .description(
          'restore a sample (or all) of a snapshot into scratch and verify it; exit 0 pass, 2 fail',
        )
        .argument('[volume]', 'one volume (default: all)')
        .option('--snapshot <name>', 'snapshot name (restic: snapshot id); default: the newest')
        .addOption(
          new Option('--source <source>', 'where to restore from').choices(RESTORE_SOURCES).default('local'),
        )
        .option(
          '--full',
          'full restore drill (btrfs send | receive or full restic restore) with RTO estimate',
        )
        .option('--sample-size <n>', 'files in the sample (default 50)', parseIntOption('--sample-size'))
        .option('--seed <n>', 'seed for a reproducible sample', parseIntOption('--seed'))
        .option('--spread', 'spread the sample across top-level folders')
        .addOption(noProgressOption())
        .addOption(quietOption()),
    ),
  ).action(
    action(async (volume: string | undefined, options: RestoreTestOptions) => {
      const request = {
        ...(volume ? { volume } : {}),
        ...(options.snapshot ? { snapshot: options.snapshot } : {}),
        source: options.source,
        mode: options.full ? ('full' as const) : ('sample' as const),
        ...(options.sampleSize !== undefined ? { sampleSize: options.sampleSize } : {}),
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
        spread: Boolean(options.spread),
      };
      const remote = await runOnHost(options, 'run_restore_test', request, {
        exitCode: (r) => (r.overall === 'PASS' ? 0 : 2),
      });
      if (remote !== undefined) return remote;
      const deps = await loadDeps(options);
      const progress = await startProgress('restore-test', options);
      const result = await runRestoreTest(deps, request, {
        afterRecord: async () => {
          await writeMetricsFile(deps);
        },
        onProgress: progress.update,
      }).finally(progress.stop);
      if (options.json) {
        printJson(result);
      } else {
        printLine(
          renderTable(
            ['VOLUME', 'SNAPSHOT', 'SOURCE', 'MODE', 'RESULT', 'CHECKED', 'BYTES', 'TIME', 'RTO'],
            result.results.map((r) => [
              r.volume,
              r.snapshot || '-',
              r.source,
              r.mode,
              r.outcome,
              `${r.filesChecked}/${r.population}`,
              formatBytes(r.bytesRestored),
              `${r.durationSeconds.toFixed(1)}s`,
              r.rtoEstimateSeconds === null ? '-' : formatMeasuredDuration(r.rtoEstimateSeconds),
            ]),
          ),
        );
        for (const r of result.results) {
          for (const f of r.failures)
            printLine(`FAIL ${r.volume}: ${f.path} ${f.check}: expected ${f.expected}, got ${f.actual}`);
          for (const d of r.drift)
            printLine(`info ${r.volume}: ${d.path} ${d.change} since the snapshot (${d.detail})`);
          for (const n of r.notCovered ?? [])
            printLine(`not covered ${r.volume}: ${n.path} (${n.kind}): ${n.detail}`);
        }
        printLine(`Overall ${result.overall} (seed ${result.results[0]?.seed ?? '-'})`);
        for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
      }
      return result.overall === 'PASS' ? 0 : 2;
    }),
  );
}

export function healthCommand(): Command {
  return withHost(
    withCommon(
      new Command('health')
        .description('check snapshots, pool, devices and restore tests; exit 0 GOOD, 1 WARNING, 2 CRITICAL')
        .argument('[volume]', 'one volume (default: all)')
        .option('--no-record', 'do not record the pool reading in history (used for the forecast)'),
    ),
  ).action(
    action(async (volume: string | undefined, options: HealthOptions) => {
      const remote = await runOnHost(options, 'health_check', volume ? { volume } : {}, {
        exitCode: (r) => healthExitCode(r.overall as HealthStatus),
      });
      if (remote !== undefined) return remote;
      const deps = await loadDeps(options);
      const result = await healthCheck(deps, volume ? { volume } : {}, { recordSample: options.record });
      if (!volume) await writeMetricsFile(deps, result);
      if (options.json) {
        printJson(result);
      } else {
        printLine(
          renderTable(
            ['VOLUME', 'STATUS', 'SNAPSHOTS', 'NEWEST AGE', 'RPO', 'POOL', 'LAST TEST', 'RTO'],
            result.volumes.map((v) => [
              v.volume,
              v.status,
              v.snapshots,
              v.newestSnapshotAgeSeconds === null ? '-' : formatDuration(v.newestSnapshotAgeSeconds),
              v.rpoSeconds === null ? '-' : formatDuration(v.rpoSeconds),
              v.poolUsageRatio === null ? '-' : `${(v.poolUsageRatio * 100).toFixed(1)}%`,
              v.lastRestoreTest
                ? `${v.lastRestoreTest.outcome} ${formatDuration(v.lastRestoreTest.ageSeconds)} ago`
                : 'never',
              v.rtoEstimateSeconds === null ? '-' : formatMeasuredDuration(v.rtoEstimateSeconds),
            ]),
          ),
        );
        for (const f of result.findings.filter((x) => x.severity !== 'info' || options.verbose))
          printLine(`${f.severity.toUpperCase()} ${f.code}: ${f.message}\n  remedy: ${f.remedy}`);
        printLine(`Overall ${result.overall}`);
      }
      return healthExitCode(result.overall);
    }),
  );
}

export function unitsCommand(): Command {
  return withHereOnlyHost(new Command('units'), 'units')
    .description('print (or --write) systemd units: a monthly restore test and an hourly health check')
    .option('-c, --config <file>', 'configuration file the units pass to snapguard')
    .option('--write <dir>', 'write the unit files to this folder (e.g. /etc/systemd/system)')
    .option('--command <argv...>', 'how systemd starts snapguard (default: this node and this CLI)')
    .option('--install', 'write the units to /etc/systemd/system (same as --write /etc/systemd/system)')
    .option('--json', 'print the units as JSON ({name, text}[])')
    .option('-n, --dry-run', 'with --write: list the files it would write, write nothing')
    .action(
      action(async (options: UnitsOptions) => {
        // --config is the host's file the units pass on: the hosts come from the configuration found without it.
        await refuseOtherHost(options, 'units', 'writes the systemd units of the host it runs on', true);
        if (options.install) options.write ??= '/etc/systemd/system';
        const units = renderUnits({
          command: options.command?.length ? options.command : runningCommand(),
          // The config this run would use, written out: under systemd the working folder is /, so
          // a config found as ./snapguard.yaml is not found again without --config.
          configFile: configFileInUse(options.config),
        });
        if (options.json && !options.write) {
          printJson(units);
        } else if (options.write && options.dryRun) {
          const files = units.map((unit) => join(options.write as string, unit.name));
          if (options.json) printJson({ dryRun: true, files });
          else for (const file of files) printLine(`would write ${file}`);
        } else if (options.write) {
          const written = await writeUnits(options.write, units);
          if (options.json) {
            printJson({ dryRun: false, files: written });
            return 0;
          }
          for (const file of written) printLine(file);
          printLine(
            'Then: systemctl daemon-reload && systemctl enable --now snapguard-restore-test.timer snapguard-health.timer',
          );
        } else {
          for (const unit of units) printLine(`# ${unit.name}\n${unit.text}`);
        }
        return 0;
      }),
    );
}

export function restoreTestCommands(): Command[] {
  return [restoreTestCommand(), healthCommand(), unitsCommand()];
}
