import { resolve } from 'node:path';
import { Command } from 'commander';
import { writeFileAtomic } from '../../core/atomic-file.js';
import type { Config } from '../../core/config.js';
import { SnapguardError, toSnapguardError } from '../../core/errors.js';
import { emptyHistory, HISTORY_SECTIONS, type History } from '../../core/history/schema.js';
import { HostSessions, isLocalHost } from '../../mcp/transports/hosts.js';
import { renderHtmlReport, summarizeHistory, formatSeconds } from '../../core/report/html.js';
import { action, loadDeps, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine, renderTable } from '../output.js';
import { withHost, withSessions, type HostOptions } from '../remote.js';

interface ReportOptions extends CommonOptions, HostOptions {
  html?: string;
}

const TAGGED = [...HISTORY_SECTIONS, 'health_samples', 'prunes'] as const;

/** One host's history with every entry naming that host as this configuration calls it. */
function taggedHistory(history: History, host: string): History {
  const tagged: Record<string, unknown> = { ...history };
  for (const section of TAGGED) {
    const entries = history[section] as { host?: string }[] | undefined;
    if (entries) tagged[section] = entries.map((entry) => ({ ...entry, host }));
  }
  return tagged as History;
}

function joined(histories: History[]): History {
  const all: Record<string, unknown> = { ...emptyHistory() };
  for (const section of TAGGED) {
    const entries = histories.flatMap((h) => (h[section] as unknown[] | undefined) ?? []);
    if (entries.length > 0 || section in all) all[section] = entries;
  }
  return all as History;
}

/**
 * The histories of the hosts in hosts: (every one, or the one --host names), read through each
 * host's snapguard://history resource. A host that does not answer is left out with a warning.
 */
async function hostHistories(
  config: Config,
  names: string[],
): Promise<{ histories: History[]; missing: string[] }> {
  return withSessions(config, async (sessions) => {
    const answers = await Promise.all(
      names.map(async (host) => {
        try {
          const text = await sessions.readResource(host, 'snapguard://history');
          return taggedHistory(JSON.parse(text) as History, host);
        } catch (error) {
          process.stderr.write(`warning: host ${host} left out: ${toSnapguardError(error).message}\n`);
          return undefined;
        }
      }),
    );
    return {
      histories: answers.filter((h): h is History => h !== undefined),
      missing: names.filter((_, i) => answers[i] === undefined),
    };
  });
}

export function reportCommand(): Command {
  return withHost(
    withCommon(
      new Command('report')
        .description(
          'summarise the history per volume; --html FILE writes one self-contained page with a timeline and charts',
        )
        .option('--html <file>', 'write the report as a single HTML file (no network needed to view it)'),
    ),
  ).action(
    action(async (options: ReportOptions) => {
      const deps = await loadDeps(options);
      const others = Object.keys(deps.config.hosts);
      // With hosts: the report covers this host and every other one; --host NAME only that one.
      const only =
        options.host === undefined || options.host === '*' || isLocalHost(deps.config, options.host)
          ? undefined
          : options.host;
      if (only !== undefined) new HostSessions(deps.config.hosts).entry(only);
      // Without --host (or with "*"): this host and every other one; "local": this host only.
      const here = only === undefined;
      const includeOthers =
        only !== undefined ? [only] : options.host === undefined || options.host === '*' ? others : [];
      const { history: own, corrupt } = here
        ? await deps.history.read()
        : { history: emptyHistory(), corrupt: undefined };
      if (corrupt) {
        throw new SnapguardError(
          'PRECONDITION_FAILED',
          `backup-history.json does not parse: ${corrupt}`,
          'Run snapguard health to see the problem; the file is kept as it is.',
        );
      }
      const remote =
        includeOthers.length > 0
          ? await hostHistories(deps.config, includeOthers)
          : { histories: [], missing: [] };
      const history =
        remote.histories.length > 0 || includeOthers.length > 0 ? joined([own, ...remote.histories]) : own;
      const model = summarizeHistory(history, {
        host: deps.config.host,
        now: deps.clock(),
        volumes: here ? Object.keys(deps.config.volumes) : [],
      });
      if (options.html) {
        await writeFileAtomic(resolve(options.html), renderHtmlReport(history, model), { mode: 0o644 });
      }
      const exitCode = remote.missing.length > 0 ? 1 : 0;
      if (options.json) {
        printJson({
          ...model,
          ...(options.html ? { html: resolve(options.html) } : {}),
          ...(remote.missing.length > 0 ? { unreachable: remote.missing } : {}),
        });
        return exitCode;
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
      return exitCode;
    }),
  );
}
