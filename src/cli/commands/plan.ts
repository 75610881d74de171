import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { buildConfig, type Config } from '../../core/config.js';
import { createDeps, type Deps } from '../../core/deps.js';
import { isSnapguardError, SnapguardError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import {
  planStrategy,
  writePlan,
  type PlanStrategyRequest,
  type PlanStrategyResult,
} from '../../core/planner/plan.js';
import { formatBytes, formatDuration } from '../../core/units.js';
import { valueAt } from '../../core/validate.js';
import { resolve } from 'node:path';
import {
  action,
  collect,
  configFileInUse,
  loadDeps,
  runningCommand,
  withCommon,
  type CommonOptions,
} from '../common.js';
import { printJson, printLine, renderTable } from '../output.js';
import { callRemote, remoteTarget, withHost, withSessions } from '../remote.js';

interface PlanOptions extends CommonOptions {
  hostType?: string;
  input?: string;
  volume: string[];
  diskSize?: string;
  diskFree?: string;
  remote?: boolean;
  remoteTarget?: string;
  rpo: string[];
  rto: string[];
  budget?: string;
  samples?: string;
  execStart?: string;
  targetConfig?: string;
  write?: string;
  verify: boolean;
  host?: string;
}

function parseVolume(spec: string): NonNullable<PlanStrategyRequest['volumes']>[number] {
  // PATH:SIZE[:TIER[:ID]]
  const [path, size, tier, id] = spec.split(':');
  if (!path || !size) throw new InvalidArgumentError(`--volume wants PATH:SIZE[:TIER[:ID]], got "${spec}".`);
  return {
    path,
    size,
    ...(tier ? { tier: tier as 'critical' } : {}),
    ...(id ? { id } : {}),
  };
}

function perTier(values: string[], key: 'rpo' | 'rto', into: Record<string, Record<string, string>>): void {
  for (const value of values) {
    const [tier, duration] = value.split('=');
    if (!tier || !duration)
      throw new InvalidArgumentError(`--${key} wants TIER=DURATION, e.g. critical=15m.`);
    into[tier] = { ...into[tier], [key]: duration };
  }
}

/** The option that sets each plan_strategy field (a dotted path is matched before its first part). */
const OPTION_OF: Record<string, string> = {
  hostType: '--host-type',
  volumes: '--volume',
  'disk.size': '--disk-size',
  'disk.free': '--disk-free',
  disk: '--disk-size',
  remote: '--remote',
  remoteTarget: '--remote-target',
  targets: '--rpo/--rto',
  snapshotBudget: '--budget',
  activitySamples: '--samples',
  command: '--exec-start',
  configFile: '--target-config',
};

const ordinal = (n: number) =>
  n % 100 >= 11 && n % 100 <= 13 ? `${n}th` : `${n}${['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;

/** A refused plan input in the words of the CLI: the options that set each field, "missing" for an absent one. */
function inCliWords(error: unknown, request: Record<string, unknown>): unknown {
  const problems = isSnapguardError(error) ? (error.details?.problems as string[] | undefined) : undefined;
  if (!isSnapguardError(error) || error.code !== 'BAD_INPUT' || !problems) return error;
  const named = problems.map((problem) => {
    const at = problem.indexOf(': ');
    const path = problem.slice(0, at).split('.');
    const two = path.slice(0, 2).join('.');
    const key = OPTION_OF[two] ? two : path[0]!;
    const option = OPTION_OF[key] ?? path.join('.');
    const which =
      key === 'volumes' && /^\d+$/.test(path[1] ?? '') ? ` (${ordinal(Number(path[1]) + 1)})` : '';
    const value = valueAt(request, path);
    const missing =
      value === undefined ? `missing${key === 'hostType' ? ' (laptop, server or vps)' : ''}` : '';
    return `${option}${which}: ${missing || problem.slice(at + 2)}`;
  });
  return new SnapguardError(
    'BAD_INPUT',
    `Cannot plan with this input: ${named.join('; ')}.`,
    {
      mcp: error.hintFor('mcp'),
      cli: 'Give --host-type (laptop, server or vps), a --volume PATH:SIZE[:TIER[:ID]] per volume, --disk-size and --disk-free, or the same as an --input file (docs/planning.md); nothing was changed.',
    },
    { details: { problems } },
  );
}

async function depsForPlan(options: PlanOptions): Promise<Deps> {
  try {
    return await loadDeps(options);
  } catch (error) {
    // Planning a new host needs no configuration yet.
    if (isSnapguardError(error) && error.code === 'CONFIG_NOT_FOUND' && !options.config)
      return createDeps(buildConfig({}, process.cwd()), { logger: createLogger({ level: 'warn' }) });
    throw error;
  }
}

async function readInput(file: string | undefined): Promise<Record<string, unknown>> {
  if (!file) return {};
  try {
    return (parseYaml(await readFile(file, 'utf8')) ?? {}) as Record<string, unknown>;
  } catch (error) {
    throw new SnapguardError(
      'BAD_INPUT',
      `Cannot read the plan input ${file}: ${(error as Error).message}`,
      'Give a YAML or JSON file with hostType, volumes, disk, targets, remote (see docs/planning.md).',
    );
  }
}

/** The options that say how the host is started and configured; none for another host (its defaults). */
function hereOnly(
  options: PlanOptions,
  input: Record<string, unknown>,
  host: string | undefined,
): Record<string, unknown> {
  if (host !== undefined) return {};
  const configFile = input.configFile === undefined ? configFileInUse(options.config) : undefined;
  return {
    // ExecStart runs the snapguard that is running now, with the absolute path of the config.
    command: input.command ?? runningCommand(),
    ...(configFile ? { configFile } : {}),
  };
}

/** The plan_strategy request: the --input file, then the options over it. */
async function planRequest(options: PlanOptions, host: string | undefined): Promise<Record<string, unknown>> {
  const input = await readInput(options.input);
  const targets: Record<string, Record<string, string>> = {
    ...((input.targets as Record<string, Record<string, string>> | undefined) ?? {}),
  };
  perTier(options.rpo, 'rpo', targets);
  perTier(options.rto, 'rto', targets);
  return {
    ...input,
    ...(options.hostType ? { hostType: options.hostType } : {}),
    ...(options.volume.length ? { volumes: options.volume.map(parseVolume) } : {}),
    ...(options.diskSize || options.diskFree
      ? {
          disk: {
            ...((input.disk as object | undefined) ?? {}),
            ...(options.diskSize ? { size: options.diskSize } : {}),
            ...(options.diskFree ? { free: options.diskFree } : {}),
          },
        }
      : {}),
    ...(options.remote ? { remote: true } : {}),
    ...(options.remoteTarget ? { remoteTarget: options.remoteTarget } : {}),
    ...(Object.keys(targets).length ? { targets } : {}),
    ...(options.budget ? { snapshotBudget: options.budget } : {}),
    ...(options.samples ? { activitySamples: options.samples } : {}),
    ...hereOnly(options, input, host),
    ...(options.execStart ? { command: options.execStart.split(/\s+/).filter(Boolean) } : {}),
    ...(options.targetConfig ? { configFile: resolve(options.targetConfig) } : {}),
    ...(options.verify === false ? { verifyUnits: false } : {}),
  };
}

/** The plan: made here, or by the plan_strategy tool of the host --host names. */
async function makePlan(
  options: PlanOptions,
  request: Record<string, unknown>,
  remote: { config: Config; host: string } | undefined,
): Promise<PlanStrategyResult> {
  if (remote) {
    const answer = await withSessions(remote.config, (sessions) =>
      callRemote(sessions, remote.host, 'plan_strategy', request),
    );
    const { host: _host, ...plan } = answer.structured;
    return plan as unknown as PlanStrategyResult;
  }
  const deps = await depsForPlan(options);
  // The planner knows this build's verbs: the program holds only the commands this call loaded.
  return planStrategy(deps, request, { surface: 'cli' }).catch((error: unknown) => {
    throw inCliWords(error, request);
  });
}

function printPlan(plan: PlanStrategyResult, options: PlanOptions, host: string | undefined): void {
  if (host !== undefined) printLine(`host ${host}:`);
  printLine(
    renderTable(
      ['VOLUME', 'PATH', 'TIER', 'WHY', 'SNAPSHOTS', 'LOCAL KEEP', 'REMOTE', 'EST. SPACE'],
      plan.volumes.map((v) => [
        v.id,
        v.path,
        v.tier,
        v.classification,
        v.frequency,
        v.retention.local?.preserve,
        v.methods.remote === 'none'
          ? undefined
          : `${v.methods.remote} "${v.retention.remote?.preserve ?? ''}"`,
        formatBytes(v.estimatedBytes),
      ]),
    ),
  );
  printLine();
  printLine(
    `Snapshot space: ~${formatBytes(plan.space.estimatedBytes)} of a ${formatBytes(plan.space.budgetBytes)} budget${plan.space.fits ? '' : ' -- does not fit'}.`,
  );
  if (plan.lowTrafficWindow)
    printLine(
      `Quietest window: ${String(plan.lowTrafficWindow.startHour).padStart(2, '0')}:00 UTC for ${plan.lowTrafficWindow.hours}h (mean ${plan.lowTrafficWindow.meanInWindow.toFixed(1)} vs ${plan.lowTrafficWindow.meanOverall.toFixed(1)} overall).`,
    );
  printLine(
    renderTable(
      ['JOB', 'WHEN (UTC)', 'AC ONLY'],
      plan.schedule.map((j) => [j.job, j.onCalendar, j.acPowerOnly ? 'yes' : 'no']),
    ),
  );
  if (plan.unitsVerified)
    printLine(
      `systemd-analyze verify: ${plan.unitsVerified.ok ? 'ok' : `FAILED\n${plan.unitsVerified.output}`}`,
    );
  for (const v of plan.volumes.filter((x) => x.methods.database))
    printLine(
      `${v.id}: database-native backup with ${v.methods.database?.tool}; RTO target ${formatDuration(v.rtoSeconds)}`,
    );
  for (const warning of plan.warnings) process.stderr.write(`warning: ${warning}\n`);
  if (plan.written.length) printLine(`Wrote ${plan.written.length} files under ${options.write}.`);
  else
    printLine('Add --write DIR to write the config fragment, the units and the runbooks; --json shows them.');
}

export function planCommand(): Command {
  return withHost(
    withCommon(
      new Command('plan')
        .description(
          'design the snapshot/backup strategy: classification, schedule and retention, methods, space estimate, snapguard.yaml fragment, systemd units, DR runbooks',
        )
        .addOption(
          new Option('--host-type <type>', 'laptop, server or vps').choices(['laptop', 'server', 'vps']),
        )
        .option('--input <file>', 'the whole plan input as YAML or JSON (the plan_strategy tool input)')
        .option('--volume <spec>', 'PATH:SIZE[:TIER[:ID]], repeat per volume', collect, [])
        .option('--disk-size <size>', 'size of the pool, e.g. 1T')
        .option('--disk-free <size>', 'free space of the pool, e.g. 400G')
        .option('--remote', 'remote storage exists (backup disk, host or repository)')
        .option('--remote-target <where>', 'btrfs folder or restic repository for the remote copies')
        .option('--rpo <tier=duration>', 'RPO of a tier, e.g. critical=15m', collect, [])
        .option('--rto <tier=duration>', 'RTO of a tier, e.g. critical=1h', collect, [])
        .option('--budget <size>', 'space the snapshots may take')
        .option('--samples <file>', 'activity samples (CSV timestamp,value or Prometheus range-query JSON)')
        .option(
          '--exec-start <argv>',
          'command that runs snapguard in the units (default: this node and this CLI)',
        )
        .option(
          '--target-config <file>',
          'where snapguard.yaml will live (default: the config in use, else /etc/snapguard/snapguard.yaml)',
        )
        .option('--write <dir>', 'write snapguard.fragment.yaml, systemd/ units and runbooks/ into DIR')
        .option('--no-verify', 'skip systemd-analyze verify'),
    ),
  ).action(
    action(async (options: PlanOptions) => {
      // --host: the host's plan_strategy makes the plan with its own defaults; --write writes it here.
      const remote = await remoteTarget(options);
      const plan = await makePlan(options, await planRequest(options, remote?.host), remote);
      if (options.write) plan.written = await writePlan(plan, options.write);
      if (options.json) printJson(remote ? { ...plan, host: remote.host } : plan);
      else printPlan(plan, options, remote?.host);
      if (plan.unitsVerified && !plan.unitsVerified.ok) return 2;
      return plan.space.fits && plan.warnings.length === 0 ? 0 : 1;
    }),
  );
}
