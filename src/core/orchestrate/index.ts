import { randomBytes } from 'node:crypto';
import { access, constants, readFile, realpath, unlink } from 'node:fs/promises';
import { setMaxListeners } from 'node:events';
import { join } from 'node:path';
import { statfsUsage } from '../../backends/usage.js';
import { mountOf } from '../../system/mounts.js';
import { createExclusive } from '../atomic-file.js';
import type { Deps } from '../deps.js';
import { toSnapguardError } from '../errors.js';
import { acquireLock, isOwnerAlive, type HeldLock, type LockOwner } from '../lock.js';
import { formatTimestamp } from '../naming.js';
import { parseInput } from '../validate.js';
import { readStatuses, runJob, type JobContext } from './jobs.js';
import { orchestrationMetricsFile, renderOrchestrationMetrics, writeMetricsFile } from './metrics.js';
import { sendWebhook } from './notify.js';
import { planStages, type PlannedJob, type PlannedStage } from './plan.js';
import { OrchestrateInput, type JobOutcome, type OrchestrateResult, type StageOutcome } from './schema.js';
import { createSystemdPort, localInitSystem, type InitSystem, type SystemdFactory } from './systemd-port.js';

export * from './schema.js';

export type OrchestrateEvent =
  | { type: 'plan'; stages: number; jobs: number }
  | { type: 'stage-start'; stage: string; jobs: string[] }
  | { type: 'job-start'; stage: string; job: string; kind: PlannedJob['kind'] }
  | { type: 'job-finish'; stage: string; job: JobOutcome }
  | { type: 'stage-finish'; stage: StageOutcome };

export interface OrchestrateCall {
  signal?: AbortSignal | undefined;
  onEvent?: (event: OrchestrateEvent) => void;
  /** How systemd is reached; default: systemctl through exec with the configured prefix. */
  systemdFor?: SystemdFactory;
  /** What PID 1 of this host is (default: read from /run/systemd/system and /proc/1/comm). */
  initSystem?: () => InitSystem;
}

/** Why systemd could not be asked, in words: no systemd as PID 1 says so; anything else is the error's first line. */
function unavailableReason(error: unknown, init: () => InitSystem): string {
  const message = toSnapguardError(error).message;
  const host = init();
  if (!host.systemd && /booted with systemd|connect to bus|Host is down/i.test(message))
    return `systemd is not PID 1 on this host (PID 1 is ${host.pid1 ?? 'unknown'}), so systemctl can neither list nor start units`;
  return message.split('\n')[0] ?? message;
}

export function orchestrationLockFile(stateDir: string): string {
  return join(stateDir, 'locks', 'orchestrate.lock');
}

const isSuccess = (job: JobOutcome) => job.result === 'verified' || job.result === 'succeeded-unverified';

function stageStatus(jobs: JobOutcome[]): StageOutcome['status'] {
  if (jobs.some((job) => job.result === 'cancelled')) return 'cancelled';
  const failed = jobs.filter((job) => !isSuccess(job)).length;
  if (failed === 0) return 'succeeded';
  return failed === jobs.length ? 'failed' : 'partial';
}

async function checkTarget(
  path: string,
  dryRun: boolean,
  maxUsage: number,
): Promise<{ ok: boolean; detail: string }> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    return { ok: false, detail: `${path} does not exist (is the backup disk mounted?)` };
  }
  const mount = mountOf(real);
  if (!mount || mount.mountPoint === '/')
    return { ok: false, detail: `${path} is on the root filesystem, not on a mounted backup disk` };
  try {
    if (dryRun) await access(real, constants.W_OK);
    else {
      const probe = join(real, `.snapguard-write-test-${process.pid}-${randomBytes(6).toString('hex')}`);
      await (await createExclusive(probe)).close();
      await unlink(probe);
    }
  } catch (error) {
    return { ok: false, detail: `${path} is not writable: ${(error as Error).message}` };
  }
  const usage = await statfsUsage(real);
  if (usage.ratio >= maxUsage)
    return {
      ok: false,
      detail: `${path} is ${(usage.ratio * 100).toFixed(1)}% full, at or above maxPoolUsage ${(maxUsage * 100).toFixed(0)}%`,
    };
  return {
    ok: true,
    detail: `${path} mounted at ${mount.mountPoint}, writable, ${(usage.ratio * 100).toFixed(1)}% used`,
  };
}

async function preflight(deps: Deps, stages: PlannedStage[], dryRun: boolean) {
  const checks: OrchestrateResult['preflight'] = [];
  const maxUsage = deps.config.health.maxPoolUsage;
  const jobs = stages.flatMap((stage) => stage.jobs);
  for (const job of jobs) {
    if (job.kind === 'systemd' && job.missing)
      checks.push({ check: `unit ${job.unit}`, ok: false, detail: `${job.unit} is not known to systemd` });
  }
  const units = jobs.filter((job) => job.kind === 'systemd' && !job.missing).length;
  if (units > 0) checks.push({ check: 'units', ok: true, detail: `${units} unit(s) found` });
  const targets = new Set(jobs.flatMap((job) => (job.kind === 'replicate' ? [job.target] : [])));
  for (const target of targets)
    checks.push({ check: `target ${target}`, ...(await checkTarget(target, dryRun, maxUsage)) });
  const volumes = new Map(
    jobs.flatMap((job) =>
      job.kind === 'snapshot' || job.kind === 'replicate' ? [[job.volume.id, job.volume]] : [],
    ),
  );
  for (const volume of volumes.values()) {
    try {
      const usage = await deps.backendFor(volume).poolUsage(volume);
      checks.push({
        check: `space ${volume.id}`,
        ok: usage.ratio < maxUsage,
        detail: `pool of ${volume.id} is ${(usage.ratio * 100).toFixed(1)}% full (maxPoolUsage ${(maxUsage * 100).toFixed(0)}%)`,
      });
    } catch (error) {
      checks.push({ check: `space ${volume.id}`, ok: false, detail: toSnapguardError(error).message });
    }
  }
  return checks;
}

async function readOwnerFile(file: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

async function lockHolder(file: string): Promise<LockOwner | undefined> {
  const owner = await readOwnerFile(file);
  return owner && isOwnerAlive(owner) ? owner : undefined;
}

function jobFailure(stage: string, job: JobOutcome) {
  return {
    stage,
    job: job.id,
    ...(job.unit ? { unit: job.unit } : {}),
    result: job.result,
    detail: job.detail,
    journal: job.journal ?? [],
  };
}

/** The host's orchestration lock: taken for a run, only looked at for a dry run. */
async function takeHostLock(
  deps: Deps,
  request: { dryRun: boolean },
  id: string,
  signal: AbortSignal,
  notes: string[],
): Promise<{ lock: HeldLock | undefined; lockCheck: OrchestrateResult['preflight'][number] }> {
  const lockFile = orchestrationLockFile(deps.config.stateDir);
  let lock: HeldLock | undefined;
  const lockCheck: OrchestrateResult['preflight'][number] = { check: 'host lock', ok: true, detail: '' };
  if (request.dryRun) {
    const holder = await lockHolder(lockFile);
    lockCheck.ok = !holder;
    lockCheck.detail = holder
      ? `pid ${holder.pid} runs an orchestration since ${holder.since}`
      : 'no other orchestration is running';
  } else {
    // A lock left by a process that died is taken over (guardrail 4); say so in the result.
    const stale = await readOwnerFile(lockFile);
    try {
      lock = await acquireLock(lockFile, {
        purpose: `orchestrate ${id}`,
        waitMs: 0,
        logger: deps.logger,
        signal,
        what: 'The orchestration lock of this host',
      });
      lockCheck.detail = `held in ${lockFile}`;
      if (stale && !isOwnerAlive(stale)) {
        lockCheck.detail += `; took over a stale lock of pid ${stale.pid} (${stale.purpose}, since ${stale.since}), that process is gone`;
        notes.push(
          `Took over the stale orchestration lock of pid ${stale.pid}; that process no longer runs.`,
        );
      }
    } catch (error) {
      const failure = toSnapguardError(error);
      if (failure.code !== 'LOCKED') throw failure;
      lockCheck.ok = false;
      lockCheck.detail = failure.message;
    }
  }
  return { lock, lockCheck };
}

/** Plans the stages (unless the lock is held elsewhere) and runs the pre-flight checks. */
async function planAndCheck(
  deps: Deps,
  request: ReturnType<typeof OrchestrateInput.parse>,
  call: OrchestrateCall,
  systemdFor: SystemdFactory,
  signal: AbortSignal,
  lockCheck: OrchestrateResult['preflight'][number],
) {
  // A dry run shows the plan even while another run holds the lock.
  const mayPlan = lockCheck.ok || request.dryRun;
  let stages: PlannedStage[] = [];
  const discovery: OrchestrateResult['preflight'] = [];
  // A dry run shows the stages even when systemd cannot be asked, saying what is missing and why.
  const unavailable: { what: string; reason: string }[] = [];
  const onUnavailable = (what: string, error: unknown) => {
    const reason = unavailableReason(error, call.initSystem ?? localInitSystem);
    unavailable.push({ what, reason });
    return reason;
  };
  if (mayPlan) {
    try {
      stages = await planStages(
        {
          config: deps.config,
          backendFor: deps.backendFor,
          systemdFor,
          signal,
          ...(request.dryRun ? { onUnavailable } : {}),
        },
        request.stages,
      );
    } catch (error) {
      const failure = toSnapguardError(error);
      // Bad input or config is the caller's to fix (exit 3); anything else (systemd unreachable
      // over ssh, a broken bus) means the host is not ready: a pre-flight failure.
      if (failure.exitCode === 3 || failure.code === 'CANCELLED') throw failure;
      discovery.push({ check: 'discovery', ok: false, detail: failure.message });
    }
  }
  if (unavailable.length > 0) {
    const reasons = [...new Set(unavailable.map((u) => u.reason))];
    discovery.push({
      check: 'discovery',
      ok: false,
      detail: `unavailable: ${reasons.join('; ')}. Not listed: ${unavailable.map((u) => u.what).join(', ')}; the plan shows the other jobs. A real run stops at this check.`,
    });
  }
  const preflightChecks = [
    lockCheck,
    ...discovery,
    ...(mayPlan && (discovery.length === 0 || unavailable.length > 0)
      ? await preflight(deps, stages, request.dryRun)
      : []),
  ];
  const blocked = preflightChecks.filter((check) => !check.ok);
  // A dry run whose only gap is discovery showed a plan, with a hole: a warning, not a failure.
  const onlyDiscovery = unavailable.length > 0 && blocked.every((check) => check.check === 'discovery');
  return { stages, preflightChecks, blocked, onlyDiscovery };
}

function stageShell(
  stage: PlannedStage,
  status: StageOutcome['status'],
  result: JobOutcome['result'],
): StageOutcome {
  return {
    name: stage.name,
    status,
    critical: stage.critical,
    timeoutSeconds: stage.timeoutSeconds,
    notes: stage.notes,
    jobs: stage.jobs.map((job) => ({
      id: job.id,
      kind: job.kind,
      result,
      durationSeconds: 0,
      started: false,
      detail: result === 'planned' ? `would run; checks: ${job.verification}` : 'not started',
      ...(job.kind === 'systemd' ? { unit: job.unit } : {}),
      verification: job.verification,
      timeoutSeconds: job.timeoutSeconds,
    })),
  };
}

/** The result when nothing runs: a dry run's plan, or a run stopped by pre-flight. */
async function notRun(
  deps: Deps,
  request: ReturnType<typeof OrchestrateInput.parse>,
  run: { id: string; startedAt: Date; durationSeconds: number },
  stages: PlannedStage[],
  checks: {
    preflightChecks: OrchestrateResult['preflight'];
    blocked: OrchestrateResult['preflight'];
    onlyDiscovery: boolean;
  },
): Promise<OrchestrateResult> {
  const { preflightChecks, blocked, onlyDiscovery } = checks;
  const result: OrchestrateResult = {
    id: run.id,
    dryRun: request.dryRun,
    exitCode: blocked.length === 0 ? 0 : request.dryRun && onlyDiscovery ? 1 : 2,
    status: blocked.length > 0 ? 'preflight-failed' : 'planned',
    startedAt: run.startedAt.toISOString(),
    durationSeconds: run.durationSeconds,
    preflight: preflightChecks,
    stages: stages.map((stage) =>
      stageShell(stage, request.dryRun ? 'planned' : 'skipped', request.dryRun ? 'planned' : 'skipped'),
    ),
    failures: blocked.map((check) => ({
      stage: 'pre-flight',
      job: check.check,
      result: 'failed',
      detail: check.detail,
      journal: [],
    })),
    stoppedUnits: [],
    notes: request.dryRun
      ? [
          'Dry run: nothing was started or written.',
          ...(blocked.length > 0 ? ['A real run would stop at the failed pre-flight check(s).'] : []),
        ]
      : ['Pre-flight failed: nothing was started.'],
  };
  if (!request.dryRun) await finish(deps, result);
  return result;
}

/** Runs the stages in order, each one's jobs side by side; stops after a failed critical stage. */
async function runStages(
  stages: PlannedStage[],
  context: JobContext,
  emit: (event: OrchestrateEvent) => void,
  notes: string[],
  signal: AbortSignal,
) {
  const outcomes: StageOutcome[] = [];
  let exitCode: 0 | 1 | 2 = 0;
  let status: OrchestrateResult['status'] = 'succeeded';
  for (const [index, stage] of stages.entries()) {
    if (signal.aborted) {
      outcomes.push(...stages.slice(index).map((s) => stageShell(s, 'cancelled', 'cancelled')));
      break;
    }
    if (status === 'critical') {
      outcomes.push(...stages.slice(index).map((s) => stageShell(s, 'skipped', 'skipped')));
      break;
    }
    emit({ type: 'stage-start', stage: stage.name, jobs: stage.jobs.map((job) => job.id) });
    context.statusBefore = await readStatuses(stage.jobs, signal).catch(() => new Map());
    const jobs = await Promise.all(
      stage.jobs.map(async (job) => {
        emit({ type: 'job-start', stage: stage.name, job: job.id, kind: job.kind });
        const outcome = await runJob(job, context);
        emit({ type: 'job-finish', stage: stage.name, job: outcome });
        return outcome;
      }),
    );
    const outcome: StageOutcome = {
      name: stage.name,
      status: jobs.length === 0 ? 'succeeded' : stageStatus(jobs),
      critical: stage.critical,
      timeoutSeconds: stage.timeoutSeconds,
      jobs,
      notes: stage.notes,
    };
    outcomes.push(outcome);
    emit({ type: 'stage-finish', stage: outcome });
    if (outcome.status === 'cancelled' || signal.aborted) {
      status = 'cancelled';
      exitCode = 2;
    } else if (outcome.status !== 'succeeded') {
      if (stage.critical) {
        status = 'critical';
        exitCode = 2;
        notes.push(`Critical stage ${stage.name} failed: later stages were not started.`);
      } else {
        status = 'partial';
        exitCode = 1;
      }
    }
  }
  return { outcomes, exitCode, status };
}

/**
 * Runs every backup system of the host in stages before a deployment and says whether it is safe
 * to deploy: exit code 0 all succeeded, 1 a non-critical job failed, 2 a critical stage failed,
 * pre-flight failed or the run was cancelled.
 */
export async function orchestrate(
  deps: Deps,
  input: unknown,
  call: OrchestrateCall = {},
): Promise<OrchestrateResult> {
  const request = parseInput(OrchestrateInput, input, 'orchestrate');
  const startedAt = deps.clock();
  const t0 = performance.now();
  const id = `orch-${formatTimestamp(startedAt)}-${Math.random().toString(16).slice(2, 8)}`;
  const signal = call.signal ?? new AbortController().signal;
  // Every parallel job listens on the one signal.
  setMaxListeners(0, signal);
  const emit = (event: OrchestrateEvent) => {
    try {
      call.onEvent?.(event);
    } catch (error) {
      deps.logger.warn({ err: error }, 'orchestrate progress listener failed');
    }
  };
  const systemdFor: SystemdFactory =
    call.systemdFor ?? ((systemctl, scope) => createSystemdPort(deps.exec, systemctl, scope));
  const elapsed = () => Math.round((performance.now() - t0) / 10) / 100;
  const notes: string[] = [];

  const { lock, lockCheck } = await takeHostLock(deps, request, id, signal, notes);
  try {
    const { stages, preflightChecks, blocked, onlyDiscovery } = await planAndCheck(
      deps,
      request,
      call,
      systemdFor,
      signal,
      lockCheck,
    );
    if (request.dryRun || blocked.length > 0) {
      return await notRun(deps, request, { id, startedAt, durationSeconds: elapsed() }, stages, {
        preflightChecks,
        blocked,
        onlyDiscovery,
      });
    }

    emit({ type: 'plan', stages: stages.length, jobs: stages.reduce((n, s) => n + s.jobs.length, 0) });
    const context: JobContext = { deps, signal, startedUnits: new Set(), stoppedUnits: [] };
    const ran = await runStages(stages, context, emit, notes, signal);
    const { outcomes } = ran;
    let { exitCode, status } = ran;
    if (signal.aborted) {
      status = 'cancelled';
      exitCode = 2;
      noteCancelled(deps, id, context, notes);
    }
    const failures = outcomes.flatMap((stage) =>
      stage.jobs
        .filter((job) => !isSuccess(job) && job.result !== 'skipped')
        .map((job) => jobFailure(stage.name, job)),
    );
    const result: OrchestrateResult = {
      id,
      dryRun: false,
      exitCode,
      status,
      startedAt: startedAt.toISOString(),
      durationSeconds: elapsed(),
      preflight: preflightChecks,
      stages: outcomes,
      failures,
      stoppedUnits: context.stoppedUnits,
      notes,
    };
    await finish(deps, result);
    return result;
  } finally {
    await lock?.release();
  }
}

/** Says which units a cancelled run stopped, in the result and in the log. */
function noteCancelled(deps: Deps, id: string, context: JobContext, notes: string[]): void {
  notes.push(
    context.stoppedUnits.length > 0
      ? `Cancelled: stopped the unit(s) this run had started: ${context.stoppedUnits.join(', ')}.`
      : 'Cancelled: no unit started by this run was still running.',
  );
  deps.logger.warn(
    { orchestration: id, stoppedUnits: context.stoppedUnits },
    `orchestration ${id} cancelled; stopped the units it had started: ${context.stoppedUnits.join(', ') || 'none'}`,
  );
}

/** Records the run: history entry, metrics file, webhook. */
async function finish(deps: Deps, result: OrchestrateResult): Promise<void> {
  let lastSuccess: number | undefined;
  try {
    await deps.history.update((history) => {
      const previous = history.orchestrations.filter((entry) => entry.exit_code === 0).at(-1);
      if (previous) lastSuccess = Date.parse(previous.timestamp) / 1000 + previous.duration_seconds;
      history.orchestrations.push({
        id: result.id,
        timestamp: result.startedAt,
        host: deps.config.host,
        exit_code: result.exitCode,
        status: result.status,
        duration_seconds: result.durationSeconds,
        stages: result.stages.map((stage) => ({
          name: stage.name,
          status: stage.status,
          critical: stage.critical,
          jobs: stage.jobs.map((job) => ({
            id: job.id,
            kind: job.kind,
            result: job.result,
            duration_seconds: job.durationSeconds,
            detail: job.detail,
            ...(job.unit ? { unit: job.unit } : {}),
            ...(job.alreadyRunning ? { already_running: true } : {}),
          })),
        })),
        failures: result.failures.map((f) => ({
          stage: f.stage,
          job: f.job,
          result: f.result,
          detail: f.detail,
        })),
        preflight: result.preflight.filter((check) => !check.ok),
        stopped_units: result.stoppedUnits,
      });
    });
  } catch (error) {
    result.notes.push(`Could not record the run in the history: ${toSnapguardError(error).message}`);
  }
  if (result.exitCode === 0) lastSuccess = Date.parse(result.startedAt) / 1000 + result.durationSeconds;
  const textfile = deps.config.metrics.textfile;
  if (textfile) {
    const file = orchestrationMetricsFile(textfile);
    try {
      await writeMetricsFile(file, renderOrchestrationMetrics(result, deps.config.host, lastSuccess));
    } catch (error) {
      result.notes.push(`Could not write metrics to ${file}: ${(error as Error).message}`);
    }
  }
  const webhook = deps.config.orchestrate?.notify;
  if (webhook) result.notes.push(await sendWebhook(webhook, result, deps.config.host));
}
