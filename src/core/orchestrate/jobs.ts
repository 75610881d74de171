import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Deps } from '../deps.js';
import { isSnapguardError, SnapguardError, toSnapguardError } from '../errors.js';
import type { SnapshotEntry } from '../history/schema.js';
import { parseSnapshotName } from '../naming.js';
import { createSnapshots, lockVolumes, ownedSnapshots } from '../snapshots.js';
import type { PlannedJob } from './plan.js';
import type { JobOutcome, VerifySpec } from './schema.js';
import { unitStatusOf } from '../../system/systemd.js';
import type { UnitStatus } from './systemd-port.js';
import { redactUrls } from '../../shared/redact.js';

export interface JobContext {
  deps: Deps;
  signal: AbortSignal;
  /** Units this run started, so a timeout or cancellation stops exactly those. */
  startedUnits: Set<string>;
  stoppedUnits: string[];
  /** Unit statuses read in one batch at the start of the stage. */
  statusBefore?: Map<PlannedJob, UnitStatus>;
}

/** One `systemctl show` per systemd target for all units of a stage; on failure each job asks itself. */
export async function readStatuses(
  jobs: PlannedJob[],
  signal: AbortSignal,
): Promise<Map<PlannedJob, UnitStatus>> {
  const statuses = new Map<PlannedJob, UnitStatus>();
  type UnitJob = Extract<PlannedJob, { kind: 'systemd' }>;
  const byTarget = new Map<UnitJob['systemd'], UnitJob[]>();
  for (const job of jobs) {
    if (job.kind !== 'systemd') continue;
    byTarget.set(job.systemd, [...(byTarget.get(job.systemd) ?? []), job]);
  }
  for (const [systemd, group] of byTarget) {
    try {
      const found = await systemd.showMany(
        group.map((job) => job.unit),
        { signal },
      );
      group.forEach((job, index) => {
        const status = found[index];
        if (status && status.loadState !== '') statuses.set(job, status);
      });
    } catch (error) {
      if (toSnapguardError(error).code === 'CANCELLED') throw error;
    }
  }
  return statuses;
}

type Outcome = Omit<JobOutcome, 'durationSeconds' | 'timeoutSeconds' | 'id' | 'kind'>;

const JOURNAL_LINES = 20;
const RUNNING_STATES = new Set(['active', 'activating', 'deactivating', 'reloading']);

function isRunning(status: UnitStatus): boolean {
  if (!RUNNING_STATES.has(status.activeState)) return false;
  // A oneshot with RemainAfterExit (active/exited) has finished.
  return !(status.activeState === 'active' && status.subState === 'exited');
}

function restictime(text: string): number {
  // restic prints nanoseconds; Date.parse wants at most milliseconds.
  return Date.parse(text.replace(/(\.\d{3})\d+/, '$1'));
}

/** Checks what a job claims to have produced. Returns undefined when verified, else why not. */
export async function verifyProduct(
  deps: Deps,
  verify: VerifySpec,
  since: Date,
  signal: AbortSignal,
): Promise<{ ok: boolean; detail: string }> {
  const [runner, ...runnerArgs] = verify.runAs;
  const run = (file: string, args: string[], env: Record<string, string> = {}) =>
    runner
      ? deps.exec(runner, [...runnerArgs, file, ...args], { env, timeoutMs: 120_000, signal })
      : deps.exec(file, args, { env, timeoutMs: 120_000, signal });
  if (verify.kind === 'restic') {
    const env: Record<string, string> = { ...verify.env, RESTIC_REPOSITORY: verify.repository };
    if (verify.passwordFile) env.RESTIC_PASSWORD_FILE = verify.passwordFile;
    const args = ['snapshots', '--json', '--no-lock'];
    if (verify.host) args.push('--host', verify.host);
    for (const tag of verify.tags) args.push('--tag', tag);
    const { stdout } = await run('restic', args, env);
    const snapshots = JSON.parse(stdout || '[]') as { time: string; short_id?: string; id: string }[];
    const newer = snapshots
      .map((s) => ({ id: s.short_id ?? s.id.slice(0, 8), time: restictime(s.time) }))
      .filter((s) => s.time >= since.getTime())
      .sort((a, b) => b.time - a.time);
    const first = newer[0];
    if (!first)
      return {
        ok: false,
        detail: `no restic snapshot in ${redactUrls(verify.repository)} newer than ${since.toISOString()} (${snapshots.length} older ones)`,
      };
    return {
      ok: true,
      detail: `restic snapshot ${first.id} of ${new Date(first.time).toISOString()} in ${redactUrls(verify.repository)}`,
    };
  }
  const args = [
    ...(verify.config ? [`--config=${verify.config}`] : []),
    `--stanza=${verify.stanza}`,
    '--output=json',
    'info',
  ];
  const { stdout } = await run('pgbackrest', args);
  const stanzas = JSON.parse(stdout || '[]') as {
    name: string;
    status?: { code: number; message: string };
    backup?: { label: string; error?: boolean; type: string; timestamp: { start: number; stop: number } }[];
  }[];
  const stanza = stanzas.find((s) => s.name === verify.stanza);
  if (!stanza) return { ok: false, detail: `pgBackRest knows no stanza ${verify.stanza}` };
  const backups = (stanza.backup ?? []).filter(
    (b) => b.timestamp.start >= Math.floor(since.getTime() / 1000),
  );
  const good = backups.filter((b) => b.error !== true).sort((a, b) => b.timestamp.stop - a.timestamp.stop)[0];
  if (!good) {
    const bad = backups.find((b) => b.error === true);
    return {
      ok: false,
      detail: bad
        ? `pgBackRest backup ${bad.label} of stanza ${verify.stanza} has an error flag`
        : `no pgBackRest backup of stanza ${verify.stanza} newer than ${since.toISOString()} (status: ${stanza.status?.message ?? 'unknown'})`,
    };
  }
  return { ok: true, detail: `pgBackRest ${good.type} backup ${good.label} of stanza ${verify.stanza}` };
}

async function withVerification(
  ctx: JobContext,
  verify: VerifySpec | undefined,
  since: Date,
  base: Outcome,
): Promise<Outcome> {
  if (!verify)
    return { ...base, result: 'succeeded-unverified', verification: 'nothing configured to verify' };
  try {
    const check = await verifyProduct(ctx.deps, verify, since, ctx.signal);
    return check.ok
      ? { ...base, result: 'verified', verification: check.detail }
      : {
          ...base,
          result: 'failed',
          detail: `${base.detail}, but the verification failed: ${check.detail}`,
          verification: check.detail,
        };
  } catch (error) {
    const failure = toSnapguardError(error);
    if (failure.code === 'CANCELLED') throw failure;
    return {
      ...base,
      result: 'failed',
      detail: `${base.detail}, but the verification could not run: ${failure.message}`,
      verification: failure.message,
    };
  }
}

async function stopStartedUnit(
  job: Extract<PlannedJob, { kind: 'systemd' }>,
  ctx: JobContext,
  pendingStart?: unknown,
): Promise<string> {
  if (!ctx.startedUnits.has(job.unit)) return '';
  try {
    await job.systemd.stop(job.unit, { timeoutMs: 90_000 });
    ctx.stoppedUnits.push(job.unit);
    // Stopping cancels the start job, so the blocked `systemctl start` returns now.
    if (pendingStart instanceof Promise)
      await Promise.race([
        pendingStart.catch(() => undefined),
        new Promise((r) => setTimeout(r, 10_000).unref()),
      ]);
    return `; stopped ${job.unit}`;
  } catch (error) {
    return `; stopping ${job.unit} failed: ${toSnapguardError(error).message}`;
  }
}

async function journalOf(job: Extract<PlannedJob, { kind: 'systemd' }>): Promise<string[]> {
  try {
    return await job.systemd.journal(job.unit, JOURNAL_LINES, { timeoutMs: 15_000 });
  } catch (error) {
    return [`(journal not available: ${toSnapguardError(error).message})`];
  }
}

/**
 * `systemctl start` of a oneshot unit blocks until the unit has finished: that is the wait, with
 * no polling. The deadline and the cancellation are enforced here rather than by killing the
 * systemctl client (behind nsenter or ssh a killed client leaves its remote half blocked and the
 * unit running): on either, the unit is stopped, which ends the start job and the blocked client.
 */
async function startAndWait(
  job: Extract<PlannedJob, { kind: 'systemd' }>,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<UnitStatus | undefined> {
  const { systemd, unit } = job;
  let stopReason: 'TIMEOUT' | 'CANCELLED' | undefined;
  let onAbort: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const interrupted = new Promise<'TIMEOUT' | 'CANCELLED'>((resolve) => {
    timer = setTimeout(() => resolve('TIMEOUT'), timeoutMs);
    onAbort = () => resolve('CANCELLED');
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  const start: Promise<UnitStatus | undefined> = systemd
    .start(unit, { timeoutMs: timeoutMs + 120_000 })
    .catch((error: unknown) => {
      // A failing unit makes `systemctl start` exit non-zero; the error carries the unit's status.
      if (isSnapguardError(error) && error.code === 'COMMAND_FAILED') return unitStatusOf(error);
      throw error;
    });
  let status: UnitStatus | undefined;
  try {
    const first = await Promise.race([start.then((after) => ({ after })), interrupted]);
    if (typeof first === 'string') stopReason = first;
    else status = first.after;
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
  if (stopReason === undefined) return status;
  // The caller stops the unit (it records that it did); wait for the start job to end with it.
  throw new SnapguardError(
    stopReason,
    stopReason === 'TIMEOUT'
      ? `${unit} did not finish within ${Math.round(timeoutMs / 1000)} s.`
      : `Cancelled while ${unit} ran.`,
    'See the unit journal.',
    { details: { pendingStart: start } },
  );
}

type UnitJob = Extract<PlannedJob, { kind: 'systemd' }>;

/** What is known about one unit job while it runs. */
interface UnitRun {
  /** This job started the unit (it was not running). */
  started: boolean;
  /** The unit was already running (started by its timer) and this job waited for it. */
  alreadyRunning: boolean;
  runStartUsec?: number | undefined;
}

/**
 * Starts the unit (or waits for the run its timer started) until it is inactive; returns its
 * final status when known, or an outcome when the unit does not exist.
 */
async function startOrWait(
  job: UnitJob,
  ctx: JobContext,
  run: UnitRun,
  remaining: () => number,
): Promise<{ status?: UnitStatus | undefined; outcome?: Outcome }> {
  const { systemd, unit } = job;
  const before = ctx.statusBefore?.get(job) ?? (await systemd.show(unit, { signal: ctx.signal }));
  run.runStartUsec = before.execMainStartTimestampUsec;
  if (before.loadState === 'not-found')
    return {
      outcome: {
        result: 'failed',
        started: run.started,
        detail: `${unit} does not exist`,
        unit,
        journal: [],
      },
    };
  if (isRunning(before)) {
    // Started by its timer: wait for that run instead of queueing a second one.
    run.alreadyRunning = true;
    return { status: await systemd.waitUntilInactive(unit, { timeoutMs: remaining(), signal: ctx.signal }) };
  }
  run.started = true;
  ctx.startedUnits.add(unit);
  // The status after the start saves a call per job; a non-oneshot unit is still running then.
  const after = await startAndWait(job, remaining(), ctx.signal);
  return {
    status:
      after && !isRunning(after)
        ? after
        : await systemd.waitUntilInactive(unit, { timeoutMs: remaining(), signal: ctx.signal }),
  };
}

/** The outcome of a unit job that timed out, was cancelled or failed to run; a unit it started is stopped. */
async function interruptedUnit(
  job: UnitJob,
  ctx: JobContext,
  run: UnitRun,
  error: unknown,
): Promise<Outcome> {
  const { unit } = job;
  const { started, alreadyRunning } = run;
  const failure = toSnapguardError(error);
  if (failure.code === 'TIMEOUT') {
    const stopped = await stopStartedUnit(job, ctx, failure.details?.pendingStart);
    const journal = await journalOf(job);
    return {
      result: 'timeout',
      started,
      alreadyRunning,
      unit,
      detail: `${unit} did not finish within ${job.timeoutSeconds} s${stopped || (alreadyRunning ? '; it was started by its timer, so it was left running' : '')}`,
      journal,
    };
  }
  if (failure.code === 'CANCELLED') {
    const stopped = await stopStartedUnit(job, ctx, failure.details?.pendingStart);
    return {
      result: 'cancelled',
      started,
      alreadyRunning,
      unit,
      detail: `cancelled while waiting for ${unit}${stopped || (alreadyRunning ? '; it was started by its timer and left running' : '')}`,
    };
  }
  return {
    result: 'failed',
    started,
    alreadyRunning,
    unit,
    detail: failure.message,
    journal: await journalOf(job),
  };
}

/** The outcome of a unit run that ended: failed by its status, or succeeded and then verified. */
async function finishedUnit(
  job: UnitJob,
  ctx: JobContext,
  run: UnitRun,
  final: UnitStatus,
  jobStart: Date,
): Promise<Outcome> {
  const { unit } = job;
  const { started, alreadyRunning, runStartUsec } = run;
  const how = alreadyRunning ? 'was already running (started by its timer) and was waited for' : 'ran';
  const base = {
    started,
    alreadyRunning,
    unit,
    systemdResult: final.result,
    ...(final.execMainStatus === undefined ? {} : { exitStatus: final.execMainStatus }),
  };
  if (final.result !== 'success' || (final.execMainStatus ?? 0) !== 0 || final.activeState === 'failed') {
    return {
      ...base,
      result: 'failed',
      detail: `${unit} ${how} and failed: Result=${final.result}, ExecMainStatus=${final.execMainStatus ?? '?'}`,
      journal: await journalOf(job),
    };
  }
  // A run that was already going began before this job: its products count from its own start.
  const since =
    alreadyRunning && runStartUsec !== undefined ? new Date(Math.floor(runStartUsec / 1000)) : jobStart;
  const outcome = await withVerification(ctx, job.verify, since, {
    ...base,
    result: 'succeeded-unverified',
    detail: `${unit} ${how}: Result=success, ExecMainStatus=${final.execMainStatus ?? 0}`,
  });
  return outcome.result === 'failed' ? { ...outcome, journal: await journalOf(job) } : outcome;
}

async function runUnit(job: UnitJob, ctx: JobContext): Promise<Outcome> {
  const deadline = Date.now() + job.timeoutSeconds * 1000;
  const remaining = () => Math.max(1, deadline - Date.now());
  const jobStart = ctx.deps.clock();
  const run: UnitRun = { started: false, alreadyRunning: false };
  let finalStatus: UnitStatus | undefined;
  try {
    const ran = await startOrWait(job, ctx, run, remaining);
    if (ran.outcome) return ran.outcome;
    finalStatus = ran.status;
  } catch (error) {
    return interruptedUnit(job, ctx, run, error);
  }
  const final = finalStatus ?? (await job.systemd.show(job.unit, { signal: ctx.signal }));
  return finishedUnit(job, ctx, run, final, jobStart);
}

async function runCommand(job: Extract<PlannedJob, { kind: 'command' }>, ctx: JobContext): Promise<Outcome> {
  const [file, ...args] = job.command.argv;
  const jobStart = ctx.deps.clock();
  try {
    await ctx.deps.exec(file!, args, {
      timeoutMs: job.timeoutSeconds * 1000,
      signal: ctx.signal,
      env: job.command.env,
      ...(job.command.cwd ? { cwd: job.command.cwd } : {}),
    });
  } catch (error) {
    const failure = toSnapguardError(error);
    const output = String(failure.details?.stderr ?? '')
      .split('\n')
      .filter(Boolean);
    if (failure.code === 'TIMEOUT')
      return {
        result: 'timeout',
        started: true,
        detail: `${job.id} did not finish within ${job.timeoutSeconds} s and was killed`,
        journal: output,
      };
    if (failure.code === 'CANCELLED')
      return { result: 'cancelled', started: true, detail: `cancelled; ${job.id} was killed` };
    const exitCode = failure.details?.exitCode;
    return {
      result: 'failed',
      started: true,
      ...(typeof exitCode === 'number' ? { exitStatus: exitCode } : {}),
      detail:
        typeof exitCode === 'number'
          ? `${job.id} exited with ${exitCode}${file!.endsWith('restic') && exitCode === 3 ? ' (restic: snapshot written but some files could not be read)' : ''}`
          : failure.message,
      journal: output,
    };
  }
  return withVerification(ctx, job.verify, jobStart, {
    result: 'succeeded-unverified',
    started: true,
    exitStatus: 0,
    detail: `${job.id} exited with 0`,
  });
}

async function runSnapshot(
  job: Extract<PlannedJob, { kind: 'snapshot' }>,
  ctx: JobContext,
): Promise<Outcome> {
  const result = await createSnapshots(
    ctx.deps,
    { volumes: [job.volume.id], type: 'pre-deploy', operation: job.operation },
    { signal: ctx.signal },
  );
  const made = result.created[0] ?? result.skipped[0]?.existing;
  if (!made) return { result: 'failed', started: true, detail: `no snapshot of ${job.volume.id} was made` };
  const exists = await ctx.deps.backendFor(job.volume).show(job.volume, made.name, { signal: ctx.signal });
  const how = result.created[0]
    ? `created ${made.name} (operation ${result.operationId})`
    : `kept ${made.name}: ${result.skipped[0]?.reason ?? ''}`;
  return exists
    ? { result: 'verified', started: true, detail: how, verification: `${made.path} exists` }
    : { result: 'failed', started: true, detail: `${how}, but ${made.path} does not exist` };
}

type ReplicateJob = Extract<PlannedJob, { kind: 'replicate' }>;
type Owned = Awaited<ReturnType<typeof ownedSnapshots>>[number];

/** Snapshot names of this volume in the target folder (read directly: `btrfs subvolume list -s` leaves out snapshots received in full). */
async function namesOnTarget(job: ReplicateJob): Promise<Set<string>> {
  return new Set(
    (await readdir(job.target, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory() && parseSnapshotName(job.volume.id, entry.name))
      .map((entry) => entry.name),
  );
}

/** Adds the received copy to the history, in the operation of its local snapshot. */
async function recordReplica(
  deps: Deps,
  job: ReplicateJob,
  newest: Owned,
  parent: Owned | undefined,
  targetPath: string,
): Promise<void> {
  const volume = job.volume;
  const parsed = parseSnapshotName(volume.id, newest.raw.name);
  const entry: SnapshotEntry = {
    id: `snap-${randomBytes(6).toString('hex')}`,
    timestamp: deps.clock().toISOString(),
    host: deps.config.host,
    subvolume: volume.id,
    type: parsed?.type ?? 'manual',
    operation: parsed?.operation ?? null,
    operation_id: null,
    snapshot_name: newest.raw.name,
    path: targetPath,
    outcome: 'success',
    size_mb: null,
    backend: deps.backendFor(volume).kind,
    read_only: true,
    location: 'external',
    replicated_from: newest.raw.path,
    incremental_parent: parent?.raw.name ?? null,
  };
  await deps.history.update((history) => {
    // The copy belongs to the operation of its local snapshot (so it is not counted as another one).
    const local = history.snapshots.find(
      (e) => e.subvolume === volume.id && e.snapshot_name === newest.raw.name && e.location !== 'external',
    );
    history.snapshots.push({ ...entry, operation_id: local?.operation_id ?? null });
  });
}

/** Sends the newest snapshot to the target (incremental where a parent is there) and records the copy. */
async function replicateNewest(
  job: ReplicateJob,
  ctx: JobContext,
  backend: ReturnType<Deps['backendFor']>,
): Promise<Outcome> {
  const { deps } = ctx;
  const volume = job.volume;
  const local = await ownedSnapshots(deps, volume, ctx.signal);
  const newest = local[0];
  if (!newest)
    return {
      result: 'failed',
      started: false,
      detail: `${volume.id} has no snapguard snapshot to replicate; run a snapshot stage first`,
    };
  if (!backend.replicateTo || !backend.receivedUuidOf)
    return {
      result: 'failed',
      started: false,
      detail: `${volume.id} uses the ${volume.backend} backend, which cannot replicate`,
    };
  const receivedUuidOf = (path: string) => backend.receivedUuidOf!(path, { signal: ctx.signal });
  const replicateTo = backend.replicateTo.bind(backend);
  const onTarget = await namesOnTarget(job);
  const targetPath = join(job.target, newest.raw.name);
  if (onTarget.has(newest.raw.name)) {
    return (await receivedUuidOf(targetPath))
      ? {
          result: 'verified',
          started: false,
          detail: `${newest.raw.name} is already on ${job.target}`,
          verification: `${targetPath} has a received UUID`,
        }
      : { result: 'failed', started: false, detail: `${targetPath} exists but is not a received snapshot` };
  }
  const parent = local.slice(1).find((s) => onTarget.has(s.raw.name));
  await replicateTo(newest.raw, job.target, {
    parent: parent?.raw,
    timeoutMs: job.timeoutSeconds * 1000,
    signal: ctx.signal,
  });
  const uuid = await receivedUuidOf(targetPath);
  const how = parent ? `incremental from ${parent.raw.name}` : 'full (no common parent on the target)';
  if (!uuid)
    return {
      result: 'failed',
      started: true,
      detail: `sent ${newest.raw.name} (${how}) but ${targetPath} has no received UUID`,
    };
  await recordReplica(deps, job, newest, parent, targetPath);
  return {
    result: 'verified',
    started: true,
    detail: `replicated ${newest.raw.name} to ${job.target}, ${how}`,
    verification: `${targetPath} has received UUID ${uuid}`,
  };
}

async function runReplicate(job: ReplicateJob, ctx: JobContext): Promise<Outcome> {
  const backend = ctx.deps.backendFor(job.volume);
  const release = await lockVolumes(
    ctx.deps,
    [job.volume.id],
    `orchestrate replicate ${job.volume.id}`,
    ctx.signal,
  );
  try {
    return await replicateNewest(job, ctx, backend);
  } finally {
    await release();
  }
}

/** Runs one job to an honest outcome; never throws except for cancellation of non-unit work. */
export async function runJob(job: PlannedJob, ctx: JobContext): Promise<JobOutcome> {
  const started = performance.now();
  let outcome: Outcome;
  try {
    if (job.kind === 'systemd') outcome = await runUnit(job, ctx);
    else if (job.kind === 'command') outcome = await runCommand(job, ctx);
    else if (job.kind === 'snapshot') outcome = await runSnapshot(job, ctx);
    else outcome = await runReplicate(job, ctx);
  } catch (error) {
    const failure = toSnapguardError(error);
    outcome =
      failure.code === 'CANCELLED' || ctx.signal.aborted
        ? { result: 'cancelled', started: false, detail: `cancelled: ${failure.message}` }
        : failure.code === 'TIMEOUT'
          ? { result: 'timeout', started: true, detail: failure.message }
          : { result: 'failed', started: false, detail: failure.message };
  }
  return {
    id: job.id,
    kind: job.kind,
    timeoutSeconds: job.timeoutSeconds,
    durationSeconds: Math.round((performance.now() - started) / 10) / 100,
    ...outcome,
  };
}
