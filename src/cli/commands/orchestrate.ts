import { Command } from 'commander';
import { orchestrate, type OrchestrateEvent, type OrchestrateResult } from '../../core/orchestrate/index.js';
import { action, collect, loadDeps, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine, renderTable } from '../output.js';
import { runOnHost, withHost, type HostOptions } from '../remote.js';
import {
  jobCounter,
  noProgressOption,
  quietOption,
  startProgress,
  type ProgressSwitches,
} from '../progress.js';

interface OrchestrateOptions extends CommonOptions, HostOptions, ProgressSwitches {
  stage?: string[];
  dryRun?: boolean;
}

const time = () => new Date().toISOString().slice(11, 19);

/** One line per job. On a terminal the lines are redrawn in place; otherwise each change is a new line. */
export function createProgressPrinter(
  out: NodeJS.WriteStream | { write(text: string): unknown; isTTY?: boolean },
) {
  const tty = Boolean(out.isTTY);
  const rows: { key: string; text: string }[] = [];
  let drawn = 0;
  const started = new Map<string, number>();
  const redraw = () => {
    let text = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const row of rows) text += `\x1b[2K${row.text}\n`;
    out.write(text);
    drawn = rows.length;
  };
  const set = (key: string, line: string) => {
    if (!tty) {
      out.write(`[${time()}] ${line}\n`);
      return;
    }
    const row = rows.find((r) => r.key === key);
    if (row) row.text = line;
    else rows.push({ key, text: line });
    redraw();
  };
  let ticker: NodeJS.Timeout | undefined;
  if (tty) {
    ticker = setInterval(() => {
      for (const row of rows) {
        const since = started.get(row.key);
        if (since !== undefined)
          row.text = row.text.replace(
            /running( \d+s)?$/,
            `running ${Math.round((Date.now() - since) / 1000)}s`,
          );
      }
      if (rows.length) redraw();
    }, 1000);
    ticker.unref();
  }
  return {
    onEvent(event: OrchestrateEvent) {
      if (event.type === 'stage-start')
        set(`stage:${event.stage}`, `== stage ${event.stage}: ${event.jobs.length} job(s)`);
      else if (event.type === 'job-start') {
        started.set(`${event.stage}/${event.job}`, Date.now());
        set(`${event.stage}/${event.job}`, `   ${event.job}  running`);
      } else if (event.type === 'job-finish') {
        started.delete(`${event.stage}/${event.job.id}`);
        const mark =
          event.job.result === 'verified' || event.job.result === 'succeeded-unverified' ? 'ok ' : 'ERR';
        set(
          `${event.stage}/${event.job.id}`,
          `${mark} ${event.job.id}  ${event.job.result} (${event.job.durationSeconds}s)`,
        );
      }
    },
    stop() {
      if (ticker) clearInterval(ticker);
    },
  };
}

export function renderOrchestration(result: OrchestrateResult): string {
  const lines: string[] = [];
  if (result.dryRun && result.stages.length > 0)
    lines.push(
      `Stages: ${result.stages
        .map(
          (stage, i) =>
            `${i + 1} ${stage.name} (${stage.critical ? 'critical, ' : ''}${stage.jobs.length} job${stage.jobs.length === 1 ? '' : 's'})`,
        )
        .join(', ')}`,
    );
  const rows = result.stages.flatMap((stage) =>
    stage.jobs.map((job) => [
      stage.name,
      job.id,
      job.kind,
      job.result,
      result.dryRun ? `${job.timeoutSeconds}s max` : `${job.durationSeconds}s`,
      result.dryRun ? job.verification : job.detail,
    ]),
  );
  if (rows.length > 0)
    lines.push(
      renderTable(
        [
          'STAGE',
          'JOB',
          'KIND',
          'RESULT',
          result.dryRun ? 'TIMEOUT' : 'TIME',
          result.dryRun ? 'VERIFIES' : 'DETAIL',
        ],
        rows,
      ),
    );
  for (const stage of result.stages) for (const note of stage.notes) lines.push(`${stage.name}: ${note}`);
  const badChecks = result.preflight.filter((check) => !check.ok);
  if (badChecks.length > 0) {
    lines.push('', result.dryRun ? 'Pre-flight (a real run would stop here):' : 'Pre-flight failed:');
    for (const check of badChecks) lines.push(`  ${check.check}: ${check.detail}`);
  }
  const jobFailures = result.failures.filter((f) => f.stage !== 'pre-flight');
  if (jobFailures.length > 0) {
    lines.push('', `${jobFailures.length} failure(s):`);
    for (const failure of jobFailures) {
      lines.push(`  - ${failure.job} (${failure.stage}): ${failure.result}, ${failure.detail}`);
      for (const line of failure.journal.slice(-20)) lines.push(`      | ${line}`);
    }
  }
  lines.push(...result.notes.map((note) => `note: ${note}`));
  lines.push(
    '',
    result.dryRun
      ? 'Dry run: nothing was started.'
      : `${result.status.toUpperCase()}: exit ${result.exitCode} after ${result.durationSeconds}s` +
          (result.exitCode === 0
            ? ' - safe to deploy.'
            : result.exitCode === 1
              ? ' - review the failures before deploying.'
              : ' - do not deploy.'),
  );
  return lines.join('\n');
}

export function orchestrateCommand(): Command {
  return withHost(
    withCommon(
      new Command('orchestrate')
        .description(
          'run every backup system of this host in stages before a deployment; exit 0 ok, 1 partial, 2 critical',
        )
        .option('-s, --stage <name>', 'run only this stage (name or number); repeatable', collect)
        .option('-n, --dry-run', 'show the plan (units per stage, timeouts, verification), start nothing')
        .addOption(noProgressOption())
        .addOption(quietOption()),
    ),
  ).action(
    action(async (options: OrchestrateOptions) => {
      const remote = await runOnHost(
        options,
        'orchestrate',
        { ...(options.stage ? { stages: options.stage } : {}), dryRun: Boolean(options.dryRun) },
        {
          exitCode: (r) => Number(r.exitCode ?? 2),
          print: (r) => printLine(renderOrchestration(r as unknown as OrchestrateResult)),
        },
      );
      if (remote !== undefined) return remote;
      const deps = await loadDeps(options);
      const quiet = options.progress === false || options.quiet;
      const printer = options.json || quiet ? undefined : createProgressPrinter(process.stdout);
      // With --json stdout is the result's alone: the jobs' progress goes to stderr.
      const bar = options.json ? await startProgress('orchestrate', options) : undefined;
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const result = await orchestrate(
          deps,
          { ...(options.stage ? { stages: options.stage } : {}), dryRun: Boolean(options.dryRun) },
          {
            signal: controller.signal,
            ...(printer ? { onEvent: printer.onEvent } : {}),
            ...(bar ? { onEvent: jobCounter(bar.update) } : {}),
          },
        );
        printer?.stop();
        if (options.json) printJson(result);
        else printLine(`\n${renderOrchestration(result)}`);
        return result.exitCode;
      } finally {
        bar?.stop();
        printer?.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    }),
  );
}
