import { readFile } from 'node:fs/promises';
import { existsSync, lstatSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SnapguardError } from './errors.js';
import { SNAPSHOT_TYPES } from './naming.js';
import { tryParseDuration, tryParseSize } from './units.js';
import { OrchestrateConfigSchema } from './orchestrate/schema.js';
import { DAYS_OF_WEEK, parsePreserve, parsePreserveMin } from './retention/policy.js';

export const VOLUME_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const TIERS = ['critical', 'important', 'standard', 'temporary'] as const;
export type Tier = (typeof TIERS)[number];

export const durationString = z
  .union([z.string(), z.number()], 'expected a duration like 30s, 5m, 1h, 7d or 4w, or a number of seconds')
  .transform((value, ctx) => {
    if (typeof value === 'number') return value;
    const seconds = tryParseDuration(value);
    if (seconds === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `"${value}" is not a duration; write it like 30s, 5m, 1h, 7d or 4w`,
      });
      return z.NEVER;
    }
    return seconds;
  });

export const sizeString = z
  .union([z.string(), z.number()], 'expected a size like 512M, 2G or 1T, or a number of bytes')
  .transform((value, ctx) => {
    if (typeof value === 'number') return value;
    const bytes = tryParseSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a size; write it like 512M, 2G or 1T` });
      return z.NEVER;
    }
    return bytes;
  });

const ratio = z
  .number('expected a number between 0 and 1')
  .gt(0, 'must be a ratio above 0, e.g. 0.90')
  .lte(1, 'must be a ratio of at most 1, e.g. 0.90');

export const ServicesSchema = z.strictObject({
  units: z
    .array(z.string().regex(/^[A-Za-z0-9@:._\\-]+$/, 'must be a systemd unit name like jellyfin.service'))
    .default([])
    .describe('systemd units stopped before and started after a rollback of this volume'),
  scope: z.enum(['system', 'user']).default('system').describe('`user` runs `systemctl --user`'),
  /** argv prefix that reaches systemctl: [systemctl] locally, [nsenter, -t, PID, -a, systemctl], [ssh, host, systemctl]. */
  systemctl: z
    .array(z.string().min(1))
    .min(1)
    .default(['systemctl'])
    .describe(
      'argv prefix that reaches systemctl, e.g. `[ssh, host, systemctl]` or `[nsenter, -t, PID, -a, systemctl]`',
    ),
  settleTime: durationString
    .default(2)
    .describe('wait after starting the units before checking that they stayed up'),
});

export const ExternalSchema = z.strictObject({
  kind: z.enum(['btrfs', 'zfs', 'dir', 'restic']).describe('what holds the copies'),
  path: z.string().optional().describe('folder of the received snapshots (btrfs, dir)'),
  dataset: z.string().optional().describe('dataset of the received snapshots (zfs)'),
  repository: z.string().optional().describe('restic repository (a path or a restic URL)'),
  passwordFile: z.string().optional().describe('file holding the restic repository password'),
});

const preserveMinString = z.string().refine(
  (value) => {
    try {
      parsePreserveMin(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be all, latest, no, or a window like 48h, 2d, 1w, 1m, 1y' },
);
const preserveString = z.string().refine(
  (value) => {
    try {
      parsePreserve(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be counts per period like "24h 7d 4w 12m 2y" (* for all), or "no"' },
);

/** btrbk-style retention of one location; see docs/retention.md. */
export const RetentionRulesSchema = z.strictObject({
  preserveMin: preserveMinString
    .optional()
    .describe('keep everything within this window (`48h`, `2d`, `1w`), or `all`, `latest`, `no`'),
  preserve: preserveString
    .optional()
    .describe('counts per period like `24h 7d 4w 12m 2y` (`*` for all), or `no`'),
  preserveHourOfDay: z
    .number()
    .int()
    .min(0)
    .max(23)
    .optional()
    .describe('hour that starts a day for the daily count'),
  preserveDayOfWeek: z
    .enum(DAYS_OF_WEEK, `must be one of ${DAYS_OF_WEEK.join(', ')}`)
    .optional()
    .describe('day that starts a week for the weekly count'),
});

/** A volume's retention: a preserve string (local only) or rules for local with `external` rules. */
export const VolumeRetentionSchema = z.union([
  preserveString,
  RetentionRulesSchema.extend({
    external: RetentionRulesSchema.optional().describe('rules for the external copies of this volume'),
  }),
]);

export const VolumeSchema = z
  .strictObject({
    backend: z.enum(['btrfs', 'zfs', 'dir'], 'must be one of btrfs, zfs, dir').describe('the storage driver'),
    path: z
      .string()
      .min(1)
      .optional()
      .describe('the subvolume or folder that is snapshotted (required for btrfs and dir)'),
    snapshotDir: z
      .string()
      .min(1)
      .optional()
      .describe('where its snapshots live, outside `path` (default: `<parent of path>/.snapshots/<id>`)'),
    dataset: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.:/-]*$/, 'must be a ZFS dataset name like tank/containers')
      .optional()
      .describe('the ZFS dataset, e.g. `tank/containers` (required for zfs)'),
    tier: z
      .enum(TIERS, `must be one of ${TIERS.join(', ')}`)
      .default('standard')
      .describe('how much the volume matters; drives schedules, retention and health thresholds'),
    services: ServicesSchema.optional().describe('systemd units that use the volume'),
    minInterval: durationString
      .optional()
      .describe(
        'a pre-change snapshot is skipped when the newest one is younger than this and the volume has not changed since it (btrfs, zfs; dir volumes always snapshot)',
      ),
    retention: VolumeRetentionSchema.optional().describe(
      'snapshots kept: a preserve string like `24h 7d 4w 12m`, or rules with `external` rules (docs/retention.md)',
    ),
    external: z
      .array(ExternalSchema)
      .default([])
      .describe('replicated copies of the volume (received snapshots, restic repositories)'),
    /** Checks run after a recovery (and by wrap): argv arrays, never a shell. */
    validate: z
      .array(
        z.strictObject({
          command: z.array(z.string().min(1)).min(1).describe('the check as an argument array (no shell)'),
          timeout: durationString.default(60).describe('how long the check may take'),
        }),
      )
      .default([])
      .describe('checks run after a recovery and by wrap (argument arrays, no shell)'),
  })
  .superRefine((volume, ctx) => {
    if (volume.backend === 'zfs' && !volume.dataset) {
      ctx.addIssue({
        code: 'custom',
        path: ['dataset'],
        message: 'is required for the zfs backend (e.g. tank/containers)',
      });
    }
    if (volume.backend === 'zfs' && volume.snapshotDir) {
      ctx.addIssue({
        code: 'custom',
        path: ['snapshotDir'],
        message:
          'has no meaning for the zfs backend (snapshots live in the dataset, readable under <mountpoint>/.zfs/snapshot); remove it',
      });
    }
    if (volume.backend !== 'zfs' && !volume.path) {
      ctx.addIssue({
        code: 'custom',
        path: ['path'],
        message: `is required for the ${volume.backend} backend`,
      });
    }
  });

/** Names of other hosts in `hosts:`; `local` is this host. */
export const HOST_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const LOCAL_HOST = 'local';

/** Another host reached by a command that speaks snapguard's MCP on stdio (see docs/fleet.md). */
export const HostSchema = z.strictObject({
  command: z
    .array(z.string().min(1, 'must not be empty'), 'expected a list of words, e.g. [ssh, -T, root@nas.lan]')
    .min(1, 'must name the program to run, e.g. [ssh, -T, root@nas.lan]')
    .describe(
      'argv (no shell) that speaks snapguard MCP on stdio: `[ssh, -T, root@nas]` with a forced command, `[ssh, host, snapguard, mcp]`, or `[snapguard, mcp, --config, FILE]`',
    ),
  readOnly: z
    .boolean()
    .default(false)
    .describe('`true`: only read-only tools of this host are offered through this snapguard'),
});

export const ConfigSchema = z.strictObject({
  contextDir: z
    .string()
    .min(1)
    .default('.claude/context')
    .describe('folder of `backup-history.json` (read by homelab-deployment tooling)'),
  stateDir: z
    .string()
    .min(1)
    .default('/var/lib/snapguard')
    .describe('locks, recovery journal, confirmation secret'),
  host: z.string().min(1).optional().describe('recorded in every history entry (default: the hostname)'),
  confirm: z
    .enum(['elicit-or-token', 'token', 'never'], 'must be one of elicit-or-token, token, never')
    .default('elicit-or-token')
    .describe(
      'how destructive tools are confirmed: ask the user (elicitation) or a token, a token only, or never',
    ),
  readOnly: z.boolean().default(false).describe('`true`: the MCP server offers only read-only tools'),
  logFile: z.string().optional().describe('audit and log lines go here instead of stderr'),
  volumes: z
    .record(
      z
        .string()
        .regex(
          VOLUME_ID_PATTERN,
          'volume ids are lowercase letters, digits, ".", "_" and "-", at most 64 characters',
        ),
      VolumeSchema,
    )
    .default({})
    .describe('one entry per volume; the id is what every call names'),
  hosts: z
    .record(
      z
        .string()
        .regex(
          HOST_NAME_PATTERN,
          'host names are lowercase letters, digits, ".", "_" and "-", at most 64 characters',
        ),
      HostSchema,
    )
    .default({})
    .describe('other hosts reached over OpenSSH, each running its own snapguard (docs/fleet.md)'),
  health: z
    .strictObject({
      maxPoolUsage: ratio
        .default(0.9)
        .describe('create_snapshot refuses at or above this pool usage unless forced'),
      maxSnapshotShare: ratio.default(0.1).describe('share of the pool snapshots may take before a warning'),
      restoreTestMaxAge: durationString
        .default(35 * 86_400)
        .describe('a restore test older than this is overdue'),
      /** Per-tier thresholds for the newest snapshot's age, overriding the built-in ones (see docs/health.md). */
      // A tier left out keeps its built-in thresholds (partialRecord: zod's record of an enum wants every key).
      staleAfter: z
        .partialRecord(
          z.enum(TIERS),
          z.strictObject({
            warn: durationString.describe('newest snapshot older than this: warning'),
            crit: durationString.describe('newest snapshot older than this: critical'),
          }),
        )
        .optional()
        .describe(
          'per tier, the age of the newest snapshot that is a warning / critical; tiers left out keep the built-in thresholds (see docs/health.md)',
        ),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      textfile: z.string().optional().describe('Prometheus textfile collector output file'),
    })
    .prefault({}),
  restoreTest: z
    .strictObject({
      /** Where sample restores go (default: the system temp folder); full btrfs drills use the pool. */
      scratchDir: z
        .string()
        .optional()
        .describe('where sample restores go (default: the system temp folder)'),
      /** Where full btrfs drills receive into; must be on btrfs (default: the folder above snapshotDir). */
      drillDir: z
        .string()
        .optional()
        .describe(
          'where full btrfs drills receive into; must be on btrfs (default: the folder above snapshotDir)',
        ),
      sampleSize: z
        .number()
        .int()
        .min(1)
        .max(100_000)
        .default(50)
        .describe('files checked by a sample restore test'),
    })
    .prefault({}),
  history: z
    .strictObject({
      /** Entries per section kept in backup-history.json; older ones move to yearly archive files. */
      liveEntries: z
        .number()
        .int()
        .min(10)
        .default(1000)
        .describe('entries per section kept in the live history file; older ones are archived yearly'),
    })
    .prefault({}),
  orchestrate: OrchestrateConfigSchema.optional().describe(
    'stages and jobs of `snapguard orchestrate` (see docs/orchestrate.md)',
  ),
  /** Defaults for every volume's retention, and the never-delete age of recovery safety snapshots. */
  retention: RetentionRulesSchema.extend({
    external: RetentionRulesSchema.optional().describe('default rules for external copies'),
    keepRecoverySafety: durationString
      .default(7 * 86_400)
      .describe('recovery safety snapshots younger than this are never deleted'),
  })
    .prefault({})
    .describe('defaults for every volume without its own retention (docs/retention.md)'),
});

export type ConfigInput = z.input<typeof ConfigSchema>;
type ParsedConfig = z.output<typeof ConfigSchema>;
type ParsedVolume = z.output<typeof VolumeSchema>;

export interface VolumeConfig extends Omit<ParsedVolume, 'path' | 'snapshotDir'> {
  id: string;
  /** Mount path of the volume (for zfs the dataset's mountpoint when given). */
  path: string;
  /** For zfs always <path>/.zfs/snapshot (informational: the zfs backend asks zfs where things are). */
  snapshotDir: string;
}

export interface Config extends Omit<ParsedConfig, 'volumes' | 'host'> {
  host: string;
  volumes: Record<string, VolumeConfig>;
  /** The file this config came from, or undefined for an in-memory config. */
  sourceFile: string | undefined;
}

function keyPath(path: readonly PropertyKey[]): string {
  return path.map((part) => String(part)).join('.') || '(top level)';
}

/** Edit distance of two short words (keys, enum values), case-insensitive. */
function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let before: number[] = [];
  let previous = Array.from({ length: y.length + 1 }, (_, i) => i);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    for (let j = 1; j <= y.length; j++) {
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (x[i - 1] === y[j - 1] ? 0 : 1),
      );
      // Two neighbouring letters swapped count as one slip.
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) {
        current[j] = Math.min(current[j] as number, (before[j - 2] as number) + 1);
      }
    }
    before = previous;
    previous = current;
  }
  return previous[y.length] as number;
}

/** The closest of `choices` to `word` when it is close enough to be a typo of it. */
export function closestWord(word: string, choices: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const choice of choices) {
    if (choice === word) continue;
    const distance = editDistance(word, choice);
    if (distance < bestDistance) {
      best = choice;
      bestDistance = distance;
    }
  }
  const allowed = Math.max(1, Math.floor(word.length / 3));
  return best !== undefined && bestDistance <= allowed ? best : undefined;
}

/** Where keys may be written: each object of the schema as a path ("*" for a map key, "#" for a list item) and its keys. */
interface KeyLevel {
  path: string[];
  keys: string[];
}

function collectLevels(schema: z.core.$ZodType, path: string[], out: KeyLevel[], seen: Set<unknown>): void {
  if (seen.has(schema)) return;
  seen.add(schema);
  const def = schema._zod.def as unknown as Record<string, unknown> & { type: string };
  const next = (child: unknown, at: string[]) => {
    if (child && typeof child === 'object' && '_zod' in child)
      collectLevels(child as z.core.$ZodType, at, out, seen);
  };
  switch (def.type) {
    case 'object': {
      const shape = def.shape as Record<string, unknown>;
      out.push({ path, keys: Object.keys(shape) });
      for (const [key, child] of Object.entries(shape)) next(child, [...path, key]);
      break;
    }
    case 'record':
      next(def.valueType, [...path, '*']);
      break;
    case 'array':
      next(def.element, [...path, '#']);
      break;
    case 'union':
      for (const option of def.options as unknown[]) next(option, path);
      break;
    case 'pipe':
      next(def.in, path);
      next(def.out, path);
      break;
    default:
      next(def.innerType, path);
  }
}

let keyLevels: KeyLevel[] | undefined;
function levels(): KeyLevel[] {
  keyLevels ??= (() => {
    const out: KeyLevel[] = [];
    collectLevels(ConfigSchema, [], out, new Set());
    return out;
  })();
  return keyLevels;
}

function matchesLevel(pattern: readonly string[], path: readonly string[]): boolean {
  return (
    pattern.length === path.length &&
    pattern.every(
      (part, i) => part === '*' || (part === '#' ? /^\d+$/.test(path[i] as string) : part === path[i]),
    )
  );
}

/** The keys accepted at one place of the file (union of the objects that may stand there). */
function keysAt(path: readonly string[]): string[] {
  return [...new Set(levels().flatMap((level) => (matchesLevel(level.path, path) ? level.keys : [])))];
}

/** Where else a key is accepted, written like "volumes.<id>" for the reader. */
function otherPlacesOf(key: string, path: readonly string[]): string[] {
  const places = levels()
    .filter((level) => level.keys.includes(key) && !matchesLevel(level.path, path))
    .map(
      (level) =>
        level.path
          .map((part) =>
            part === '*' ? (level.path[0] === 'volumes' ? '<id>' : '<name>') : part === '#' ? '[n]' : part,
          )
          .join('.') || '(top level)',
    );
  return [...new Set(places)];
}

function showValue(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'a list' : 'a mapping';
}

function unknownKeyAdvice(key: string, path: readonly string[]): string {
  const parts = path.map(String);
  const elsewhere = otherPlacesOf(key, parts);
  if (elsewhere.length > 0) {
    return `"${key}" belongs under ${elsewhere.slice(0, 3).join(' or ')}; check its indentation`;
  }
  const near = closestWord(key, keysAt(parts));
  return near ? `did you mean ${near}?` : 'remove it or check the spelling against docs/configuration.md';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const where = path.length ? `${keyPath(path)}: ` : '';
    if (issue.keys.length === 1) {
      const key = issue.keys[0] as string;
      return `${where}unknown key "${key}"; ${unknownKeyAdvice(key, path)}`;
    }
    return `${where}unknown keys ${issue.keys.map((k) => `"${k}"`).join(', ')}; ${issue.keys
      .map((k) => unknownKeyAdvice(k, path))
      .join('; ')}`;
  }
  const parent = path.slice(0, -1);
  const last = path.at(-1) ?? '';
  // A map key (a volume id, a tier) that is really a key of the level below: the lines lost their indentation.
  const misplaced =
    path.length > 0 && keysAt(parent).length === 0 && keysAt([...parent, last]).includes(last)
      ? `; "${last}" is read as a name under ${keyPath(parent)}, but it is a key of each entry: indent it under the entry's name`
      : '';
  if (issue.code === 'invalid_key') {
    if (parent.join('.') !== 'volumes') {
      return `${keyPath(parent)}: "${last}" is not a valid name here${issue.issues[0] ? ` (${issue.issues[0].message})` : ''}`;
    }
    return `${keyPath(parent)}: "${last}" is not a valid volume id; volume ids are lowercase letters, digits, ".", "_" and "-", at most 64 characters${misplaced}`;
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    return `${keyPath(path)}: is required (expected ${issue.expected})`;
  }
  let message = issue.message;
  if (issue.code === 'invalid_type' && message.startsWith('Invalid input')) {
    message = `expected ${issue.expected === 'object' ? 'a mapping of keys' : issue.expected === 'array' ? 'a list' : `a ${issue.expected}`}`;
  }
  if (issue.code === 'invalid_value' && message.startsWith('Invalid option')) {
    message = `must be one of ${issue.values.map(String).join(', ')}`;
  }
  if (
    issue.input !== undefined &&
    !(typeof issue.input === 'string' && message.includes(showValue(issue.input)))
  ) {
    message += `, got ${showValue(issue.input)}`;
  }
  if (
    typeof issue.input === 'string' &&
    /^\d+(\.\d+)?\s*%$/.test(issue.input) &&
    message.includes('between 0 and 1')
  ) {
    message += ` (write ${Number.parseFloat(issue.input) / 100} for ${issue.input.trim()})`;
  }
  if (issue.code === 'invalid_value' && typeof issue.input === 'string') {
    const near = closestWord(
      issue.input,
      issue.values.filter((v): v is string => typeof v === 'string'),
    );
    if (near) message += `; did you mean ${near}?`;
  }
  return `${keyPath(path)}: ${message}${misplaced}`;
}

/** The real path of an existing path (symlinks resolved), else the path as written. */
function realOrSelf(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    return path;
  }
}

/**
 * Whether snapshot names of volume `longer` could also be read as names of volume `shorter`:
 * `app-manual-manual-20261121-143000` is `app-manual`'s manual snapshot and `app`'s manual
 * snapshot of operation "manual". That happens when `longer` is `<shorter>-<type>[-...]`.
 */
export function idsCollide(shorter: string, longer: string): boolean {
  if (!longer.startsWith(`${shorter}-`)) return false;
  const rest = longer.slice(shorter.length + 1);
  return SNAPSHOT_TYPES.some((type) => rest === type || rest.startsWith(`${type}-`));
}

/**
 * Checks what the schema cannot see on its own, on normalised paths: no volume at "/", no snapshot
 * folder inside its volume, no volume path that is a symlink, no two volumes on one path, and no
 * two volumes in one snapshot folder whose snapshot names could be read as each other's.
 */
function checkVolumeLayout(volumes: Record<string, VolumeConfig>, where: string): void {
  const problems: string[] = [];
  const fixes: string[] = [];
  const inside = (child: string, parent: string) =>
    child === parent || child.startsWith(parent.endsWith('/') ? parent : `${parent}/`);
  const list = Object.values(volumes);
  for (const volume of list) {
    if (volume.backend === 'zfs') continue;
    if (volume.path === '/') {
      problems.push(
        `volumes.${volume.id}.path: is the root of the filesystem; a rollback would move the whole system aside`,
      );
      fixes.push(`Point volumes.${volume.id}.path at a subvolume or folder below /.`);
      continue;
    }
    if (inside(volume.snapshotDir, volume.path) || inside(volume.path, volume.snapshotDir)) {
      problems.push(
        `volumes.${volume.id}.snapshotDir: ${volume.snapshotDir} overlaps the volume path ${volume.path}`,
      );
      fixes.push(
        `Put volumes.${volume.id}.snapshotDir outside the volume (the default is <parent of path>/.snapshots/${volume.id}).`,
      );
    }
    let isLink = false;
    try {
      isLink = lstatSync(volume.path).isSymbolicLink();
    } catch {
      // A path that does not exist yet is reported by doctor, not here.
    }
    if (isLink) {
      const real = realOrSelf(volume.path);
      problems.push(
        `volumes.${volume.id}.path: ${volume.path} is a symlink${real === volume.path ? ' that leads nowhere' : ` to ${real}`}; a rollback would move the link, not the volume`,
      );
      fixes.push(
        `Write the real path in volumes.${volume.id}.path${real === volume.path ? '' : ` (${real})`}.`,
      );
    }
  }
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) {
      const a = list[i] as VolumeConfig;
      const b = list[j] as VolumeConfig;
      const samePath =
        a.backend === 'zfs' && b.backend === 'zfs'
          ? a.dataset === b.dataset || a.path === b.path
          : a.path === b.path || realOrSelf(a.path) === realOrSelf(b.path);
      if (samePath) {
        problems.push(
          `volumes.${a.id} and volumes.${b.id}: both are ${a.backend === 'zfs' && b.backend === 'zfs' && a.dataset === b.dataset ? `dataset ${a.dataset}` : `the path ${a.path}`}`,
        );
        fixes.push(`Keep one volume per path: remove volumes.${b.id} or point it elsewhere.`);
        continue;
      }
      const sameFolder =
        a.snapshotDir === b.snapshotDir || realOrSelf(a.snapshotDir) === realOrSelf(b.snapshotDir);
      const [shorter, longer] = a.id.length <= b.id.length ? [a, b] : [b, a];
      if (sameFolder && idsCollide(shorter.id, longer.id)) {
        problems.push(
          `volumes "${shorter.id}" and "${longer.id}" share the snapshot folder ${a.snapshotDir}, and a snapshot name of "${longer.id}" (${longer.id}-manual-20261121-143000) also reads as a snapshot of "${shorter.id}"`,
        );
        fixes.push(
          `Give volumes.${longer.id} its own snapshotDir (or remove the shared snapshotDir of both; the default <parent of path>/.snapshots/<id> is one folder per volume).`,
        );
      }
    }
  }
  if (problems.length > 0) {
    throw new SnapguardError(
      'CONFIG_INVALID',
      `Invalid configuration in ${where}:\n  - ${problems.join('\n  - ')}`,
      fixes.join(' '),
      { details: { problems } },
    );
  }
}

/** `local` and this host's own name stand for this host: a `hosts:` entry may not take them. */
function checkHosts(hosts: Record<string, unknown>, self: string, where: string): void {
  const problems: string[] = [];
  for (const name of Object.keys(hosts)) {
    if (name === LOCAL_HOST)
      problems.push(`hosts.${name}: "${LOCAL_HOST}" is reserved for this host (the one reading ${where})`);
    else if (name === self)
      problems.push(`hosts.${name}: "${name}" is this host's own name (config key host, or the hostname)`);
  }
  if (problems.length > 0) {
    throw new SnapguardError(
      'CONFIG_INVALID',
      `Invalid configuration in ${where}:\n  - ${problems.join('\n  - ')}`,
      'Rename the entry under hosts: (e.g. after the machine, like nas or vps); this host is always reachable as host "local".',
      { details: { problems } },
    );
  }
}

/** Validates a raw config object; relative paths resolve against baseDir. */
export function buildConfig(raw: unknown, baseDir: string, sourceFile?: string): Config {
  const result = ConfigSchema.safeParse(raw ?? {}, { reportInput: true });
  const where = sourceFile ?? 'the configuration';
  if (!result.success) {
    const problems = result.error.issues.map(describeIssue);
    throw new SnapguardError(
      'CONFIG_INVALID',
      `Invalid configuration in ${where}:\n  - ${problems.join('\n  - ')}`,
      `Fix the keys named above in ${where}; the reference is docs/configuration.md.`,
      {
        details: { problems },
      },
    );
  }
  const parsed = result.data;
  // resolve() also normalises absolute paths: "/x/app/", "/x/./app" and "//x/app" are all "/x/app",
  // so every check below compares one spelling of each path.
  const abs = (p: string) => resolve(baseDir, p);
  const volumes: Record<string, VolumeConfig> = {};
  for (const [id, volume] of Object.entries(parsed.volumes)) {
    const path = abs(volume.path ?? `/${volume.dataset}`);
    volumes[id] = {
      ...volume,
      id,
      path,
      snapshotDir:
        volume.backend === 'zfs'
          ? resolve(path, '.zfs', 'snapshot')
          : volume.snapshotDir
            ? abs(volume.snapshotDir)
            : resolve(dirname(path), '.snapshots', id),
      external: volume.external.map((ext) => ({
        ...ext,
        ...(ext.path ? { path: abs(ext.path) } : {}),
        ...(ext.passwordFile ? { passwordFile: abs(ext.passwordFile) } : {}),
        ...(ext.repository && !ext.repository.includes(':') ? { repository: abs(ext.repository) } : {}),
      })),
    };
  }
  checkVolumeLayout(volumes, where);
  checkHosts(parsed.hosts, parsed.host ?? hostname(), where);
  return {
    ...parsed,
    host: parsed.host ?? hostname(),
    contextDir: abs(parsed.contextDir),
    stateDir: abs(parsed.stateDir),
    ...(parsed.logFile ? { logFile: abs(parsed.logFile) } : {}),
    restoreTest: {
      ...parsed.restoreTest,
      ...(parsed.restoreTest.scratchDir ? { scratchDir: abs(parsed.restoreTest.scratchDir) } : {}),
      ...(parsed.restoreTest.drillDir ? { drillDir: abs(parsed.restoreTest.drillDir) } : {}),
    },
    metrics: {
      ...parsed.metrics,
      ...(parsed.metrics.textfile ? { textfile: abs(parsed.metrics.textfile) } : {}),
    },
    volumes,
    sourceFile,
  };
}

export interface ConfigLookup {
  explicit?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** The documented search order: --config, $SNAPGUARD_CONFIG, ./snapguard.yaml, /etc/snapguard/snapguard.yaml. */
export function findConfigFile(lookup: ConfigLookup = {}): { file: string; via: string } | undefined {
  const env = lookup.env ?? process.env;
  const cwd = lookup.cwd ?? process.cwd();
  if (lookup.explicit) return { file: resolve(cwd, lookup.explicit), via: '--config' };
  if (env.SNAPGUARD_CONFIG) return { file: resolve(cwd, env.SNAPGUARD_CONFIG), via: '$SNAPGUARD_CONFIG' };
  for (const candidate of [resolve(cwd, 'snapguard.yaml'), '/etc/snapguard/snapguard.yaml']) {
    if (existsSync(candidate)) return { file: candidate, via: candidate };
  }
  return undefined;
}

export async function loadConfig(lookup: ConfigLookup = {}): Promise<Config> {
  const found = findConfigFile(lookup);
  if (!found) {
    throw new SnapguardError(
      'CONFIG_NOT_FOUND',
      'No snapguard configuration found (looked at --config, $SNAPGUARD_CONFIG, ./snapguard.yaml, /etc/snapguard/snapguard.yaml).',
      'Create snapguard.yaml (see docs/configuration.md) or pass --config FILE; `snapguard demo` runs without one.',
    );
  }
  let text: string;
  try {
    text = await readFile(found.file, 'utf8');
  } catch (error) {
    throw new SnapguardError(
      'CONFIG_NOT_FOUND',
      `Cannot read the configuration ${found.file} (named by ${found.via}): ${(error as Error).message}`,
      'Check the path and its permissions.',
    );
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new SnapguardError(
      'CONFIG_INVALID',
      `${found.file} is not valid YAML: ${(error as Error).message}`,
      'Fix the YAML syntax at the line given.',
    );
  }
  return buildConfig(raw, dirname(found.file), found.file);
}

export function requireVolume(config: Config, id: unknown): VolumeConfig {
  if (typeof id !== 'string' || !VOLUME_ID_PATTERN.test(id)) {
    throw new SnapguardError(
      'BAD_INPUT',
      `"${String(id).slice(0, 80)}" is not a valid volume id.`,
      `Use one of the configured volumes: ${Object.keys(config.volumes).join(', ') || '(none configured)'}.`,
    );
  }
  const volume = config.volumes[id];
  if (!volume) {
    throw new SnapguardError(
      'UNKNOWN_VOLUME',
      `Volume "${id}" is not configured.`,
      `Use one of: ${Object.keys(config.volumes).join(', ') || '(none configured; add volumes to snapguard.yaml)'}.`,
    );
  }
  return volume;
}
