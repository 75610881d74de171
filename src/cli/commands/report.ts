import { resolve } from 'node:path';
import { Command } from 'commander';
import { writeFileAtomic } from '../../core/atomic-file.js';
import { SnapguardError } from '../../core/errors.js';
import { renderHtmlReport, summarizeHistory, formatSeconds } from '../../core/report/html.js';
import { action, loadDeps, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine, renderTable } from '../output.js';

interface ReportOptions extends CommonOptions {
  html?: string;
}

export function reportCommand(): Command {
  return withCommon(
    new Command('report')
      .description(
        'summarise the history per volume; --html FILE writes one self-contained page with a timeline and charts',
      )
      .option('--html <file>', 'write the report as a single HTML file (no network needed to view it)'),
  ).action(
    action(async (options: ReportOptions) => {
      const deps = await loadDeps(options);
      const { history, corrupt } = await deps.history.read();
      if (corrupt) {
        throw new SnapguardError(
          'PRECONDITION_FAILED',
          `backup-history.json does not parse: ${corrupt}`,
          'Run snapguard health to see the problem; the file is kept as it is.',
        );
      }
      const model = summarizeHistory(history, {
        host: deps.config.host,
        now: deps.clock(),
        volumes: Object.keys(deps.config.volumes),
      });
      if (options.html) {
        await writeFileAtomic(resolve(options.html), renderHtmlReport(history, model), { mode: 0o644 });
      }
      if (options.json) {
        printJson({ ...model, ...(options.html ? { html: resolve(options.html) } : {}) });
        return 0;
      }
      printLine(
        renderTable(
          ['VOLUME', 'SNAPSHOTS', 'NEWEST', 'RECOVERIES', 'LAST TEST', 'RTO'],
          model.volumes.map((v) => [
            v.host ? `${v.host}/${v.volume}` : v.volume,
            v.snapshots,
            v.newestSnapshotAt ?? undefined,
            v.recoveries,
            v.lastRestoreTestOutcome
              ? `${v.lastRestoreTestOutcome.toUpperCase()} ${v.lastRestoreTestAt}`
              : 'never',
            v.lastRtoSeconds === null ? undefined : formatSeconds(v.lastRtoSeconds),
          ]),
        ),
      );
      if (options.html) printLine(`Wrote ${resolve(options.html)}`);
      return 0;
    }),
  );
}
