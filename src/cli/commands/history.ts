import { Command, Option } from 'commander';
import {
  HISTORY_SECTIONS,
  type History,
  type HistorySection,
  type SnapshotEntry,
} from '../../core/history/schema.js';
import { entryHolds, recoveriesBySafetyBackup } from '../../core/snapshots.js';
import { action, loadDeps, parseIntOption, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine, renderTable } from '../output.js';
import { remoteTarget, withHost, withSessions, type HostOptions } from '../remote.js';

const kindAliases: Record<string, HistorySection> = {
  snapshot: 'snapshots',
  snapshots: 'snapshots',
  recovery: 'recoveries',
  recoveries: 'recoveries',
  'restore-test': 'restore_tests',
  'restore-tests': 'restore_tests',
  restore_tests: 'restore_tests',
  orchestration: 'orchestrations',
  orchestrations: 'orchestrations',
};

type Row = Record<string, unknown>;
const columns: Record<HistorySection, [string, (e: Row) => unknown][]> = {
  snapshots: [
    ['TIME', (e) => e.timestamp],
    ['VOLUME', (e) => e.subvolume],
    ['TYPE', (e) => e.type],
    ['OPERATION', (e) => e.operation],
    ['SNAPSHOT', (e) => e.snapshot_name],
    ['OUTCOME', (e) => e.outcome],
    ['HOLDS', (e) => e.holds],
  ],
  recoveries: [
    ['TIME', (e) => e.timestamp],
    ['VOLUME', (e) => e.subvolume],
    ['MODE', (e) => e.mode],
    ['SNAPSHOT', (e) => e.restored_snapshot],
    ['REASON', (e) => e.reason],
    ['SECONDS', (e) => e.duration_seconds],
    ['OUTCOME', (e) => e.outcome],
  ],
  restore_tests: [
    ['TIME', (e) => e.timestamp],
    ['VOLUME', (e) => e.subvolume],
    ['SOURCE', (e) => e.source],
    ['MODE', (e) => e.mode],
    ['FILES', (e) => e.files_checked],
    ['SECONDS', (e) => e.duration_seconds],
    ['OUTCOME', (e) => e.outcome],
  ],
  orchestrations: [
    ['TIME', (e) => e.timestamp],
    ['EXIT', (e) => e.exit_code],
    ['STATUS', (e) => e.status],
    ['SECONDS', (e) => e.duration_seconds],
  ],
};

/** The newest `limit` entries, newest first by their time (the file's order is the order of writing). */
function newestFirst(entries: readonly Row[], limit: number): Row[] {
  const time = (e: Row) => {
    const parsed = typeof e.timestamp === 'string' ? Date.parse(e.timestamp) : NaN;
    return Number.isNaN(parsed) ? -Infinity : parsed;
  };
  return entries
    .map((entry, index) => ({ entry, index }))
    .sort((a, b) => time(b.entry) - time(a.entry) || b.index - a.index)
    .slice(0, limit)
    .map(({ entry }) => entry);
}

export function renderHistory(history: History, kinds: readonly HistorySection[], limit: number): string {
  const parts: string[] = [];
  for (const kind of kinds) {
    let entries = newestFirst(history[kind] as Row[], limit);
    if (kind === 'snapshots') {
      // What each snapshot holds, so that an outcome "failed" is read as "the change failed".
      const replacedBy = recoveriesBySafetyBackup(history);
      entries = entries.map((e) => {
        const entry = e as SnapshotEntry;
        return {
          ...e,
          holds: entryHolds(entry, replacedBy.get(`${entry.subvolume}/${entry.snapshot_name}`)),
        };
      });
    }
    if (entries.length === 0) continue;
    const cols = columns[kind];
    parts.push(`${kind.replace('_', ' ')} (${entries.length} newest of ${history[kind].length})`);
    parts.push(
      renderTable(
        cols.map(([h]) => h),
        entries.map((e) =>
          cols.map(([, get]) => (get(e) === null || get(e) === undefined ? undefined : String(get(e)))),
        ),
      ),
    );
    parts.push('');
  }
  return parts.length ? parts.join('\n').trimEnd() : 'The history is empty.';
}

export function historyCommand(): Command {
  return withHost(
    withCommon(
      new Command('history')
        .description('show backup-history.json: snapshots, recoveries, restore tests, orchestrations')
        .addOption(new Option('-k, --kind <kind>', 'only one kind').choices(Object.keys(kindAliases)))
        .option('--limit <n>', 'newest n entries per kind', parseIntOption('--limit'), 20),
    ),
  ).action(
    action(async (options: CommonOptions & HostOptions & { kind?: string; limit: number }) => {
      const target = await remoteTarget(options);
      if (target) {
        // The host's snapguard://history resource: its backup-history.json.
        const text = await withSessions(target.config, (sessions) =>
          sessions.readResource(target.host, 'snapguard://history'),
        );
        const history = JSON.parse(text) as Parameters<typeof renderHistory>[0];
        const kinds = options.kind ? [kindAliases[options.kind] as HistorySection] : HISTORY_SECTIONS;
        if (options.json)
          printJson({
            host: target.host,
            ...Object.fromEntries(
              kinds.map((kind) => [kind, newestFirst((history[kind] ?? []) as Row[], options.limit)]),
            ),
          });
        else {
          printLine(`host ${target.host}:`);
          printLine(renderHistory(history, kinds, options.limit));
        }
        return 0;
      }
      const deps = await loadDeps(options);
      const { history, corrupt } = await deps.history.read();
      const kinds = options.kind ? [kindAliases[options.kind] as HistorySection] : HISTORY_SECTIONS;
      if (options.json) {
        printJson({
          file: deps.history.file,
          ...(corrupt ? { corrupt } : {}),
          ...Object.fromEntries(
            kinds.map((kind) => [kind, newestFirst(history[kind] as Row[], options.limit)]),
          ),
        });
      } else {
        printLine(`${deps.history.file}`);
        if (corrupt)
          process.stderr.write(
            `warning: the history file does not parse (${corrupt}); the next write moves it aside.\n`,
          );
        printLine(renderHistory(history, kinds, options.limit));
      }
      return corrupt ? 1 : 0;
    }),
  );
}
