import { z } from 'zod';
import { tryParseDuration } from '../units.js';

/**
 * The `orchestrate:` section of snapguard.yaml and the orchestrate tool's input and result.
 * Kept apart from config.ts so the orchestrator's keys live with the code that reads them.
 */

const duration = z.union([z.string(), z.number().positive()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const seconds = tryParseDuration(value);
  if (seconds === undefined || seconds <= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `"${value}" is not a duration; write it like 30s, 5m, 1h`,
    });
    return z.NEVER;
  }
  return seconds;
});

const argv = z.array(z.string().min(1)).min(1);
const UNIT_PATTERN = /^[A-Za-z0-9@:._\\*?[\]-]+$/;
const unitOrGlob = z
  .string()
  .regex(UNIT_PATTERN, 'must be a systemd unit name or glob like restic-backup-*.service');
const JOB_ID_PATTERN = /^[A-Za-z0-9@:._-]{1,128}$/;

/** What a job produces and how to check it exists, because exit codes alone are not trusted. */
export const ResticVerifySchema = z.strictObject({
  kind: z.literal('restic'),
  repository: z.string().min(1).describe('restic repository the job writes to'),
  passwordFile: z.string().min(1).optional().describe('file holding the repository password'),
  /** Extra environment for restic (e.g. RESTIC_PASSWORD for a test repository, S3 keys). */
  env: z.record(z.string(), z.string()).default({}).describe('extra environment for restic, e.g. S3 keys'),
  /** Only snapshots of this host / with these tags count (restic snapshots --host/--tag). */
  host: z.string().optional().describe('only snapshots of this host count'),
  tags: z.array(z.string()).default([]).describe('only snapshots with these tags count'),
  /** argv prefix to run restic as another user, e.g. [runuser, -u, backup, --]. */
  runAs: z
    .array(z.string().min(1))
    .default([])
    .describe('argv prefix to run restic as another user, e.g. `[runuser, -u, backup, --]`'),
});

export const PgbackrestVerifySchema = z.strictObject({
  kind: z.literal('pgbackrest'),
  stanza: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'must be a pgBackRest stanza name')
    .describe('the pgBackRest stanza'),
  /** pgBackRest config file, passed as --config. */
  config: z.string().min(1).optional().describe('pgBackRest config file, passed as --config'),
  /** argv prefix, usually [runuser, -u, postgres, --]. */
  runAs: z
    .array(z.string().min(1))
    .default([])
    .describe('argv prefix, usually `[runuser, -u, postgres, --]`'),
});

export const VerifySchema = z.discriminatedUnion('kind', [ResticVerifySchema, PgbackrestVerifySchema]);
export type VerifySpec = z.output<typeof VerifySchema>;

const common = {
  /** Overrides the stage timeout for this job. */
  timeout: duration.optional().describe('overrides the stage timeout for this job'),
};

export const SystemdJobSchema = z.strictObject({
  kind: z.literal('systemd'),
  /** Unit names or globs; a plain name must exist (pre-flight), a glob may match nothing. */
  units: z
    .array(unitOrGlob)
    .min(1)
    .describe('unit names or globs; a plain name must exist, a glob may match nothing'),
  exclude: z.array(unitOrGlob).default([]).describe('units or globs left out'),
  /** Keep only units whose name matches this regular expression, e.g. "(full|incr|diff)-backup". */
  match: z
    .string()
    .refine((text) => {
      try {
        new RegExp(text);
        return true;
      } catch {
        return false;
      }
    }, 'must be a valid regular expression')
    .optional()
    .describe('keep only units whose name matches this regular expression'),
  scope: z.enum(['system', 'user']).optional().describe('overrides orchestrate.scope'),
  /** argv prefix that reaches systemctl: [systemctl], [nsenter, -t, PID, -a, systemctl], [ssh, host, systemctl]. */
  systemctl: argv.optional().describe('overrides orchestrate.systemctl'),
  /** How to check what each unit produced (applies to every unit of this job). */
  verify: VerifySchema.optional().describe('how to check what each unit produced (restic or pgbackrest)'),
  ...common,
});

export const SnapshotJobSchema = z.strictObject({
  kind: z.literal('snapshot'),
  /** Volume ids; default all configured volumes. */
  volumes: z.array(z.string()).optional().describe('volume ids (default: all configured volumes)'),
  operation: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/)
    .default('orchestrate')
    .describe('operation name of the snapshots'),
  ...common,
});

export const ReplicateJobSchema = z.strictObject({
  kind: z.literal('replicate'),
  /** Volume ids with a btrfs external target; default every volume that has one. */
  volumes: z
    .array(z.string())
    .optional()
    .describe('volume ids with a btrfs external target (default: every one that has one)'),
  ...common,
});

export const CommandJobSchema = z.strictObject({
  kind: z.literal('command'),
  name: z
    .string()
    .regex(JOB_ID_PATTERN, 'job names are letters, digits and @:._- (at most 128)')
    .describe('job name in results'),
  argv: argv.describe('the command as an argument array (no shell)'),
  env: z.record(z.string(), z.string()).default({}).describe('extra environment'),
  cwd: z.string().min(1).optional().describe('working directory'),
  verify: VerifySchema.optional().describe('how to check what the command produced'),
  ...common,
});

export const JobSchema = z.discriminatedUnion('kind', [
  SystemdJobSchema,
  SnapshotJobSchema,
  ReplicateJobSchema,
  CommandJobSchema,
]);
export type JobConfig = z.output<typeof JobSchema>;
export type SystemdJobConfig = z.output<typeof SystemdJobSchema>;
export type CommandJobConfig = z.output<typeof CommandJobSchema>;

export const StageSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'stage names are letters, digits and ._-')
    .describe('stage name'),
  /** Per-job timeout in this stage. */
  timeout: duration.describe('per-job timeout in this stage'),
  /** A failure here stops the run with exit code 2; later stages never start. */
  critical: z.boolean().default(false).describe('a failure here stops the run with exit code 2'),
  jobs: z.array(JobSchema).min(1).describe('jobs run in parallel within the stage, by kind'),
});
export type StageConfig = z.output<typeof StageSchema>;

export const WebhookSchema = z.strictObject({
  url: z
    .string()
    .url()
    .refine((url) => /^https?:\/\//.test(url), 'must be an http:// or https:// URL')
    .describe('webhook URL the result is posted to'),
  /** json: the result as JSON; ntfy: a short text body with Title/Priority/Tags headers. */
  format: z
    .enum(['json', 'ntfy'])
    .default('json')
    .describe('`json`: the result; `ntfy`: a short text with headers'),
  /** always, or only when the run did not fully succeed. */
  on: z
    .enum(['always', 'failure'])
    .default('always')
    .describe('notify always or only when the run did not fully succeed'),
  headers: z.record(z.string(), z.string()).default({}).describe('extra HTTP headers'),
  timeout: duration.default(10).describe('request timeout'),
});

export const OrchestrateConfigSchema = z.strictObject({
  /** Default systemctl argv prefix and scope for systemd jobs. */
  systemctl: argv.default(['systemctl']).describe('default argv prefix reaching systemctl for systemd jobs'),
  scope: z.enum(['system', 'user']).default('system').describe('default scope for systemd jobs'),
  /** The stages in order; without them the built-in stages of the design are used. */
  stages: z
    .array(StageSchema)
    .min(1)
    .optional()
    .describe('the stages in order (default: the built-in stages)'),
  notify: WebhookSchema.optional().describe('a webhook told about each run'),
});
export type OrchestrateConfig = z.output<typeof OrchestrateConfigSchema>;

// ---- tool input and result -------------------------------------------------------------------

export const OrchestrateInput = z.object({
  stages: z
    .array(z.string().min(1).max(64))
    .max(32)
    .optional()
    .describe('run only these stages (by name or 1-based number); default all'),
  dryRun: z.boolean().default(false).describe('only show the plan; start nothing, write nothing'),
});
export type OrchestrateRequest = z.input<typeof OrchestrateInput>;

export const JOB_RESULTS = [
  'verified',
  'succeeded-unverified',
  'failed',
  'timeout',
  'cancelled',
  'skipped',
  'planned',
] as const;
export type JobResult = (typeof JOB_RESULTS)[number];

export const JobOutcomeSchema = z.object({
  id: z.string().describe('unit name, command name, or snapshot:/replicate:<volume>'),
  kind: z.enum(['systemd', 'snapshot', 'replicate', 'command']),
  result: z.enum(JOB_RESULTS),
  durationSeconds: z.number(),
  detail: z.string(),
  unit: z.string().optional(),
  /** A unit that was already running (from its timer) is waited for, not started a second time. */
  alreadyRunning: z.boolean().optional(),
  started: z.boolean().describe('whether this run started it'),
  exitStatus: z.number().optional(),
  systemdResult: z.string().optional(),
  verification: z.string().optional().describe('what was checked after the run, or would be in a dry run'),
  journal: z.array(z.string()).optional().describe('last journal lines of a failed unit'),
  timeoutSeconds: z.number(),
});
export type JobOutcome = z.infer<typeof JobOutcomeSchema>;

export const StageOutcomeSchema = z.object({
  name: z.string(),
  status: z.enum(['succeeded', 'partial', 'failed', 'skipped', 'cancelled', 'planned']),
  critical: z.boolean(),
  timeoutSeconds: z.number(),
  jobs: z.array(JobOutcomeSchema),
  notes: z.array(z.string()),
});
export type StageOutcome = z.infer<typeof StageOutcomeSchema>;

export const FailureSchema = z.object({
  stage: z.string(),
  job: z.string(),
  unit: z.string().optional(),
  result: z.string(),
  detail: z.string(),
  journal: z.array(z.string()),
});

export const PreflightCheckSchema = z.object({
  check: z.string(),
  ok: z.boolean(),
  detail: z.string(),
});

export const OrchestrateResultSchema = z.object({
  id: z.string(),
  dryRun: z.boolean(),
  exitCode: z.union([z.literal(0), z.literal(1), z.literal(2)]),
  status: z.enum(['succeeded', 'partial', 'critical', 'preflight-failed', 'cancelled', 'planned']),
  startedAt: z.string(),
  durationSeconds: z.number(),
  preflight: z.array(PreflightCheckSchema),
  stages: z.array(StageOutcomeSchema),
  failures: z.array(FailureSchema),
  /** Units this run started and stopped again because of a timeout or cancellation. */
  stoppedUnits: z.array(z.string()),
  notes: z.array(z.string()),
});
export type OrchestrateResult = z.infer<typeof OrchestrateResultSchema>;
