// Answers of several hosts to one call, put together: every snapshot, volume and finding says
// which host it belongs to; hosts that could not be reached (or answered with an error) are listed
// beside the answers and never fail the whole call. The hosts' own results are not re-judged here.
import { SnapguardError } from './errors.js';
import type { HealthCheckResult, HealthStatus } from './health/schemas.js';
import { HEALTH_STATUSES } from './health/schemas.js';
import type { OrchestrateResult } from './orchestrate/schema.js';
import type { ListSnapshotsResult } from './schemas.js';

/** What one host said: its structured result, or the error that stood in for it. */
export type HostAnswer<T> =
  { host: string; result: T; error?: undefined } | { host: string; result?: undefined; error: HostFailure };

export interface HostFailure {
  code: string;
  message: string;
  hint: string;
}

/** A host that gave no answer: `unreachable` when it could not be reached, `failed` when it answered with an error. */
export interface HostProblem {
  host: string;
  error: string;
  hint: string;
  code?: string;
}

function problems(answers: readonly HostAnswer<unknown>[]): {
  unreachable: HostProblem[];
  failed: HostProblem[];
} {
  const unreachable: HostProblem[] = [];
  const failed: HostProblem[] = [];
  for (const answer of answers) {
    if (!answer.error) continue;
    const entry = { host: answer.host, error: answer.error.message, hint: answer.error.hint };
    if (answer.error.code === 'HOST_UNREACHABLE') unreachable.push(entry);
    else failed.push({ ...entry, code: answer.error.code });
  }
  return { unreachable, failed };
}

const answered = <T>(answers: readonly HostAnswer<T>[]) =>
  answers.flatMap((answer) => (answer.error ? [] : [{ host: answer.host, result: answer.result as T }]));

export type FleetSnapshotList = Omit<ListSnapshotsResult, 'snapshots'> & {
  snapshots: (ListSnapshotsResult['snapshots'][number] & { host: string })[];
  unreachable: HostProblem[];
  failed: HostProblem[];
};

/** Every host's snapshots, newest first, each with its host; `limit` applies to the whole list. */
export function mergeSnapshotLists(
  answers: readonly HostAnswer<ListSnapshotsResult>[],
  limit?: number,
): FleetSnapshotList {
  const ok = answered(answers);
  const snapshots = ok
    .flatMap(({ host, result }) => result.snapshots.map((snapshot) => ({ ...snapshot, host })))
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  return {
    snapshots: limit === undefined ? snapshots : snapshots.slice(0, limit),
    total: ok.reduce((sum, { result }) => sum + result.total, 0),
    ...problems(answers),
  };
}

export function worstStatus(statuses: readonly HealthStatus[]): HealthStatus {
  let worst = 0;
  for (const status of statuses) worst = Math.max(worst, HEALTH_STATUSES.indexOf(status));
  return HEALTH_STATUSES[worst] as HealthStatus;
}

export type FleetHealth = Omit<HealthCheckResult, 'volumes' | 'findings'> & {
  volumes: (HealthCheckResult['volumes'][number] & { host: string })[];
  findings: (HealthCheckResult['findings'][number] & { host: string })[];
  hosts: { host: string; overall: HealthStatus | 'UNREACHABLE' | 'FAILED' }[];
  unreachable: HostProblem[];
  failed: HostProblem[];
};

/** A count-weighted mean of the hosts' rates (null when no host has one). */
function weighted(parts: { rate: number | null; weight: number }[]): number | null {
  const known = parts.filter((part) => part.rate !== null && part.weight > 0);
  const weight = known.reduce((sum, part) => sum + part.weight, 0);
  if (weight === 0) return null;
  return known.reduce((sum, part) => sum + (part.rate as number) * part.weight, 0) / weight;
}

/**
 * The health of several hosts: overall is the worst of the hosts that answered, and at least
 * WARNING when a host could not be reached or answered with an error (each gets a finding).
 */
export function mergeHealth(answers: readonly HostAnswer<HealthCheckResult>[], now: Date): FleetHealth {
  const ok = answered(answers);
  const { unreachable, failed } = problems(answers);
  const missing = [...unreachable, ...failed];
  const statuses = ok.map(({ result }) => result.overall);
  if (missing.length > 0) statuses.push('WARNING');
  const summaries = ok.map(({ result }) => result.summary);
  return {
    overall: worstStatus(statuses),
    checkedAt: now.toISOString(),
    volumes: ok.flatMap(({ host, result }) => result.volumes.map((volume) => ({ ...volume, host }))),
    findings: [
      ...missing.map((problem) => ({
        severity: 'warning' as const,
        code: problem.code ? 'HOST_FAILED' : 'HOST_UNREACHABLE',
        message: problem.code
          ? `Host ${problem.host} answered with an error: ${problem.error}`
          : problem.error,
        remedy: problem.hint,
        host: problem.host,
      })),
      ...ok.flatMap(({ host, result }) => result.findings.map((finding) => ({ ...finding, host }))),
    ],
    summary: {
      deployments: summaries.reduce((sum, s) => sum + s.deployments, 0),
      deploymentsWithSnapshotShare: weighted(
        summaries.map((s) => ({ rate: s.deploymentsWithSnapshotShare, weight: s.deployments })),
      ),
      recoveries: summaries.reduce((sum, s) => sum + s.recoveries, 0),
      recoverySuccessRate: weighted(
        summaries.map((s) => ({ rate: s.recoverySuccessRate, weight: s.recoveries })),
      ),
      meanRecoverySeconds: weighted(
        summaries.map((s) => ({ rate: s.meanRecoverySeconds, weight: s.recoveries })),
      ),
    },
    hosts: answers.map((answer) => ({
      host: answer.host,
      overall: answer.result
        ? answer.result.overall
        : answer.error?.code === 'HOST_UNREACHABLE'
          ? 'UNREACHABLE'
          : 'FAILED',
    })),
    unreachable,
    failed,
  };
}

const STATUS_ORDER: OrchestrateResult['status'][] = [
  'planned',
  'succeeded',
  'partial',
  'cancelled',
  'critical',
  'preflight-failed',
];

export type FleetOrchestration = Omit<OrchestrateResult, 'preflight' | 'stages' | 'failures'> & {
  preflight: (OrchestrateResult['preflight'][number] & { host: string })[];
  stages: (OrchestrateResult['stages'][number] & { host: string })[];
  failures: (OrchestrateResult['failures'][number] & { host: string })[];
  hosts: { host: string; id?: string; exitCode: 0 | 1 | 2; status: string }[];
  unreachable: HostProblem[];
  failed: HostProblem[];
};

/**
 * Several hosts' orchestrations as one: the exit code is the worst host's, and a host that could
 * not run it (unreachable, refused) counts as 2: nobody knows that its backups ran.
 */
export function mergeOrchestrations(
  answers: readonly HostAnswer<OrchestrateResult>[],
  now: Date,
): FleetOrchestration {
  const ok = answered(answers);
  const { unreachable, failed } = problems(answers);
  const exitCode = Math.max(
    0,
    ...ok.map(({ result }) => result.exitCode),
    ...(unreachable.length + failed.length > 0 ? [2] : []),
  ) as 0 | 1 | 2;
  const worst = ok.reduce<OrchestrateResult['status'] | undefined>(
    (status, { result }) =>
      status === undefined || STATUS_ORDER.indexOf(result.status) > STATUS_ORDER.indexOf(status)
        ? result.status
        : status,
    undefined,
  );
  const status = unreachable.length + failed.length > 0 ? 'preflight-failed' : (worst ?? 'preflight-failed');
  return {
    id: ok.map(({ host, result }) => `${host}:${result.id}`).join(','),
    dryRun: ok.length > 0 && ok.every(({ result }) => result.dryRun),
    exitCode,
    status,
    startedAt: ok.map(({ result }) => result.startedAt).sort()[0] ?? now.toISOString(),
    durationSeconds: Math.max(0, ...ok.map(({ result }) => result.durationSeconds)),
    preflight: ok.flatMap(({ host, result }) => result.preflight.map((check) => ({ ...check, host }))),
    stages: ok.flatMap(({ host, result }) => result.stages.map((stage) => ({ ...stage, host }))),
    failures: ok.flatMap(({ host, result }) => result.failures.map((failure) => ({ ...failure, host }))),
    stoppedUnits: ok.flatMap(({ host, result }) => result.stoppedUnits.map((unit) => `${host}:${unit}`)),
    notes: [
      ...ok.flatMap(({ host, result }) => result.notes.map((note) => `${host}: ${note}`)),
      ...unreachable.map((p) => `${p.host}: not reached (${p.error}); its backups did not run from here`),
      ...failed.map((p) => `${p.host}: refused (${p.error})`),
    ],
    hosts: answers.map((answer) =>
      answer.result
        ? {
            host: answer.host,
            id: answer.result.id,
            exitCode: answer.result.exitCode,
            status: answer.result.status,
          }
        : {
            host: answer.host,
            exitCode: 2 as const,
            status: answer.error?.code === 'HOST_UNREACHABLE' ? 'unreachable' : 'failed',
          },
    ),
    unreachable,
    failed,
  };
}

/** A word as a POSIX shell reads it back unchanged: in single quotes, each ' written as '\''. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The authorized_keys line of the controller's key on a host: the key may run exactly
 * `<snapguard> mcp --config <config>` (whatever the client asks for), with `restrict` (no
 * forwarding, no pty). sshd hands the forced command to the user's shell, so each word is quoted
 * for it; a `"` is escaped for the option's own quotes.
 */
export function authorizedKeyLine(
  snapguard: readonly string[],
  configFile: string,
  publicKey: string,
): string {
  const key = publicKey.trim();
  if (!/^(ssh-|ecdsa-|sk-)[\w@.-]+ [A-Za-z0-9+/=]+( .*)?$/.test(key) || key.includes('\n')) {
    throw new SnapguardError(
      'BAD_INPUT',
      'That is not one OpenSSH public key line (like `ssh-ed25519 AAAA... comment`).',
      'Pass the .pub file of the key, e.g. --key /root/.ssh/snapguard.pub (ssh-keygen -t ed25519 -f /root/.ssh/snapguard makes one).',
    );
  }
  const words = [...snapguard, 'mcp', '--config', configFile];
  if (words.some((word) => /[\n\r\0]/.test(word))) {
    throw new SnapguardError(
      'BAD_INPUT',
      'A path of the forced command holds a line break, which an authorized_keys line cannot carry.',
      'Move the configuration (or snapguard) to a path without line breaks.',
    );
  }
  const command = words.map(shellQuote).join(' ').replaceAll('"', '\\"');
  return `command="${command}",restrict ${key}`;
}
