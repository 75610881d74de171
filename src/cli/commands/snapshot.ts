import { Command, Option } from 'commander';
import { SNAPSHOT_TYPES } from '../../core/naming.js';
import { createSnapshots, listSnapshots, REUSE_OVERRIDE, snapshotHolds } from '../../core/snapshots.js';
import { action, loadDeps, parseIntOption, withCommon, type CommonOptions } from '../common.js';
import { age, printJson, printLine, renderTable } from '../output.js';
import { runOnHost, withHost, type HostOptions } from '../remote.js';
import type { ListSnapshotsResult } from '../../core/schemas.js';

interface CreateOptions extends CommonOptions, HostOptions {
  type: string;
  operation?: string;
  force?: boolean;
  dryRun?: boolean;
}

interface ListOptions extends CommonOptions, HostOptions {
  type?: string;
  operation?: string;
  since?: string;
  limit?: number;
  allLocations?: boolean;
  external?: boolean;
  includeForeign?: boolean;
}

function printCreated(result: Awaited<ReturnType<typeof createSnapshots>>): void {
  const made = result.dryRun ? result.planned : result.created;
  printLine(
    `${result.dryRun ? 'Would create' : 'Created'} ${made.length} snapshot(s), operation ${result.operationId}`,
  );
  for (const s of made) printLine(`  ${s.volume}: ${s.path}`);
  for (const skip of result.skipped)
    printLine(`  ${skip.volume}: no new snapshot, ${skip.reason} (${REUSE_OVERRIDE.cli})`);
  for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
  if (!result.dryRun && made.length + result.skipped.length > 0)
    printLine(
      `Record the outcome later with: snapguard complete ${result.operationId} --outcome success|failed`,
    );
}

async function createAction(volumes: string[], options: CreateOptions): Promise<number> {
  const request = {
    volumes,
    type: options.type,
    ...(options.operation ? { operation: options.operation } : {}),
    force: Boolean(options.force),
    dryRun: Boolean(options.dryRun),
  };
  const remote = await runOnHost(options, 'create_snapshot', request, {
    exitCode: (r) => ((r.warnings as unknown[] | undefined)?.length ? 1 : 0),
  });
  if (remote !== undefined) return remote;
  const deps = await loadDeps(options);
  const result = await createSnapshots(deps, request);
  if (options.json) printJson(result);
  else printCreated(result);
  return result.warnings.length > 0 ? 1 : 0;
}

async function listAction(volume: string | undefined, options: ListOptions): Promise<number> {
  const location = options.allLocations ? 'all' : options.external ? 'external' : 'local';
  const request = {
    ...(volume ? { volume } : {}),
    ...(options.type ? { type: options.type } : {}),
    ...(options.operation ? { operation: options.operation } : {}),
    ...(options.since ? { since: options.since } : {}),
    ...(options.limit ? { limit: options.limit } : {}),
    location,
    includeForeign: Boolean(options.includeForeign),
  } as const;
  const remote = await runOnHost(options, 'list_snapshots', request, {
    print: (r) => printSnapshotTable(r as ListSnapshotsResult),
  });
  if (remote !== undefined) return remote;
  const deps = await loadDeps(options);
  const result = await listSnapshots(deps, request);
  if (options.json) {
    printJson(result);
    return 0;
  }
  printSnapshotTable(result);
  return 0;
}

export function snapshotCommand(): Command {
  const snapshot = new Command('snapshot').description('create and list snapshots');
  withHost(
    withCommon(
      snapshot
        .command('create')
        .description('take read-only snapshots of volumes and record them in the history')
        .argument('<volume...>', 'configured volume ids')
        .addOption(new Option('-t, --type <type>', 'snapshot type').choices(SNAPSHOT_TYPES).default('manual'))
        .option('-o, --operation <name>', 'what the snapshot protects, e.g. deploy-immich')
        .option('-f, --force', 'snapshot even when the pool is nearly full or a recent snapshot exists')
        .option('-n, --dry-run', 'show what would be created, change nothing'),
    ),
  ).action(action(createAction));
  withHost(
    withCommon(
      snapshot
        .command('list')
        .description('list snapshots, newest first')
        .argument('[volume]', 'only this volume')
        .addOption(new Option('-t, --type <type>', 'only this type').choices(SNAPSHOT_TYPES))
        .option('-o, --operation <name>', 'only this operation')
        .option('--since <when>', 'only newer than a duration (24h, 7d) or an ISO time')
        .option('--limit <n>', 'at most n snapshots', parseIntOption('--limit'))
        .option('--all-locations', 'local snapshots and external copies')
        .option('--external', 'only external copies')
        .option('--include-foreign', 'also snapshots made by other tools (listed, never touched)'),
    ),
  ).action(action(listAction));
  return snapshot;
}

function printSnapshotTable(result: ListSnapshotsResult): void {
  if (result.total === 0) {
    printLine('No snapshots.');
    return;
  }
  printLine(
    renderTable(
      ['VOLUME', 'NAME', 'TYPE', 'AGE', 'LOCATION', 'OUTCOME', 'OWNER', 'HOLDS'],
      result.snapshots.map((s) => [
        s.volume,
        s.name,
        s.type,
        age(s.ageSeconds),
        s.location,
        s.outcome,
        s.owned ? 'snapguard' : 'foreign',
        [snapshotHolds(s, s.replacedBy), ...(s.rollbackPointOf ?? []).map((op) => `rollback point of ${op}`)]
          .filter(Boolean)
          .join('; ') || undefined,
      ]),
    ),
  );
  if (result.snapshots.length < result.total)
    printLine(`(${result.snapshots.length} of ${result.total} shown)`);
}
