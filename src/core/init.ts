import { homedir, hostname } from 'node:os';
import { dirname, posix, resolve } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { discoverVolumes, pathInside, type DiscoveryNote, type FoundVolume } from '../backends/discover.js';
import { createExec, type Exec } from '../system/exec.js';
import { mountOf, readMounts, type MountEntry } from '../system/mounts.js';
import { writeFileAtomic } from './atomic-file.js';
import { buildConfig, VOLUME_ID_PATTERN, type Config, type Tier } from './config.js';
import { SnapguardError } from './errors.js';
import { classifyVolume } from './planner/classify.js';

/** Folders that hold snapshots of other tools (and snapguard's own default): never proposed as volumes. */
export const SNAPSHOT_FOLDER_NAMES = [
  '.snapshots',
  '.snapshot',
  '_btrbk_snap',
  'btrbk_snapshots',
  '.btrbk_snapshots',
  'timeshift-btrfs',
] as const;

/** Where container engines keep image layers as subvolumes: rebuilt by the engine, not data. */
const ENGINE_LAYERS = /(^|\/)var\/lib\/(docker\/btrfs|containers\/storage\/btrfs)(\/|$)/;

/** A pre-change snapshot is skipped when the newest one is younger than this and nothing changed since. */
export const MIN_INTERVAL_BY_TIER: Record<Exclude<Tier, 'temporary'>, string> = {
  critical: '15m',
  important: '30m',
  standard: '1h',
};

export interface ProposedVolume {
  id: string;
  backend: 'btrfs' | 'zfs';
  path: string;
  dataset?: string;
  /** btrfs: where its snapshots go (on the same filesystem, outside every proposed volume). */
  snapshotDir?: string;
  tier: Tier;
  /** Why this tier (the planner's classification by path). */
  tierReason: string;
  minInterval: string;
}

export interface SkippedVolume {
  backend: 'btrfs' | 'zfs';
  path: string;
  dataset?: string;
  reason: string;
}

export interface InitProposal {
  configFile: string;
  contextDir: string;
  stateDir: string;
  volumes: ProposedVolume[];
  skipped: SkippedVolume[];
  /** What could not be looked at (a listing that failed), and why. */
  notes: DiscoveryNote[];
  /** The file as it is (or would be) written. */
  yaml: string;
}

export interface InitOptions {
  /** Default: the one exec wrapper. */
  exec?: Exec;
  configFile: string;
  contextDir?: string | undefined;
  stateDir?: string | undefined;
  /** Only look at filesystems mounted at or below these folders. */
  under?: readonly string[] | undefined;
  mounts?: MountEntry[];
  signal?: AbortSignal | undefined;
  /** For the header comment; default now. */
  now?: Date;
}

function defaultStateDir(): string {
  if (process.geteuid?.() === 0) return '/var/lib/snapguard';
  const base = process.env.XDG_STATE_HOME || posix.join(homedir(), '.local', 'state');
  return posix.join(base, 'snapguard');
}

/** Why a found subvolume or dataset is not proposed, or undefined when it is a volume. */
function skipReason(found: FoundVolume, tier: Tier, tierReason: string): string | undefined {
  if (found.path === '/')
    return 'the root filesystem: a rollback would move the whole system aside (snapguard refuses a volume at /)';
  const parts = found.path.split('/');
  const folder = SNAPSHOT_FOLDER_NAMES.find((name) => parts.includes(name));
  if (folder) return `inside a snapshot folder (${folder})`;
  if (found.backend === 'btrfs' && ENGINE_LAYERS.test(found.path))
    return 'container image layers (the engine rebuilds them)';
  if (found.readOnly)
    return found.backend === 'btrfs'
      ? 'read-only subvolume: a snapshot or a received copy, not a live volume'
      : 'read-only dataset (readonly=on): a received copy, not a live volume';
  if (found.backend === 'zfs' && found.hasChildren && !found.dataset?.includes('/'))
    return 'the root dataset of a pool that holds other datasets (they are proposed one by one)';
  if (tier === 'temporary') return `${tierReason}: not worth snapshots`;
  return undefined;
}

/** A valid volume id from a path or dataset name: lowercase letters, digits, ".", "_", "-". */
function idFrom(word: string): string {
  return (
    word
      .toLowerCase()
      .replace(/^[^a-z0-9]+/, '')
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/-+$/, '')
      .slice(0, 64) || 'volume'
  );
}

/** Unique ids: the last path component, then with its parent's, then numbered. */
function chooseId(found: FoundVolume, taken: Set<string>): string {
  const parts = (found.dataset ?? found.path).split('/').filter(Boolean);
  const candidates = [parts.slice(-1), parts.slice(-2), parts.slice(-3)].map((p) => idFrom(p.join('-')));
  let id = candidates.find((c) => !taken.has(c) && VOLUME_ID_PATTERN.test(c));
  const base = candidates[0] ?? 'volume';
  for (let n = 2; !id; n++) {
    const numbered = `${base.slice(0, 60)}-${n}`;
    if (!taken.has(numbered)) id = numbered;
  }
  taken.add(id);
  return id;
}

/**
 * A snapshot folder for a btrfs volume: on its filesystem (btrfs snapshots cannot cross
 * filesystems) and outside every proposed volume (a rollback of one volume must not carry the
 * snapshots of another). Next to the outermost proposed volume around it when that folder is on
 * the same filesystem, else at a mount point of that filesystem.
 */
function snapshotDirFor(
  volume: FoundVolume,
  id: string,
  proposedPaths: string[],
  mounts: MountEntry[],
): string | undefined {
  const outer =
    proposedPaths.filter((p) => pathInside(volume.path, p)).sort((a, b) => a.length - b.length)[0] ??
    volume.path;
  const outsideVolumes = (dir: string) => !proposedPaths.some((p) => pathInside(dir, p));
  const candidates = [dirname(outer), ...(volume.fsMounts ?? [])];
  for (const base of candidates) {
    const holder = mountOf(base, mounts);
    if (!holder || holder.source !== volume.device || holder.fsType !== 'btrfs') continue;
    const dir = posix.join(base, '.snapshots', id);
    if (outsideVolumes(dir)) return dir;
  }
  return undefined;
}

/**
 * The planner's classification by path. A folder named with --under is where the user keeps a
 * pool: where that pool is mounted (a test pool below /tmp) does not make its volumes temporary,
 * so a temporary verdict is taken from the path below that folder instead.
 */
function classify(path: string, under: readonly string[] | undefined) {
  const byPath = classifyVolume(path);
  if (byPath.tier !== 'temporary' || !under) return byPath;
  const base = under.filter((dir) => pathInside(path, dir)).sort((a, b) => b.length - a.length)[0];
  if (!base || base === '/') return byPath;
  return classifyVolume(`/${posix.relative(base, path)}`);
}

/** Proposes a configuration for this host from its btrfs subvolumes and ZFS datasets. */
export async function proposeConfig(options: InitOptions): Promise<InitProposal> {
  const mounts = options.mounts ?? readMounts();
  const under = options.under?.map((dir) => resolve(dir));
  const discovery = await discoverVolumes({
    exec: options.exec ?? createExec(),
    mounts,
    ...(under ? { under } : {}),
    signal: options.signal,
  });
  const skipped: SkippedVolume[] = [];
  const candidates: { found: FoundVolume; tier: Tier; tierReason: string }[] = [];
  const seen = new Set<string>();
  for (const found of discovery.found.sort((a, b) => a.path.localeCompare(b.path))) {
    if (under && !under.some((dir) => pathInside(found.path, dir))) continue;
    // The same subvolume mounted twice (or a dataset listed twice) is one volume.
    const key = found.backend === 'zfs' ? `zfs:${found.dataset}` : `btrfs:${found.device}:${found.treePath}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const { tier, reason } = classify(found.path, under);
    const why = skipReason(found, tier, reason);
    const entry = {
      backend: found.backend,
      path: found.path,
      ...(found.dataset ? { dataset: found.dataset } : {}),
    };
    if (why) skipped.push({ ...entry, reason: why });
    else candidates.push({ found, tier, tierReason: reason });
  }
  const proposedPaths = candidates.filter((c) => c.found.backend === 'btrfs').map((c) => c.found.path);
  const taken = new Set<string>();
  const volumes: ProposedVolume[] = [];
  for (const { found, tier, tierReason } of candidates) {
    const id = chooseId(found, taken);
    let snapshotDir: string | undefined;
    if (found.backend === 'btrfs') {
      snapshotDir = snapshotDirFor(found, id, proposedPaths, mounts);
      if (!snapshotDir) {
        taken.delete(id);
        skipped.push({
          backend: 'btrfs',
          path: found.path,
          reason:
            'no folder on its filesystem outside the volume for its snapshots: mount the top level of the filesystem (subvolid=5) somewhere and run init again',
        });
        continue;
      }
    }
    volumes.push({
      id,
      backend: found.backend,
      path: found.path,
      ...(found.dataset ? { dataset: found.dataset } : {}),
      ...(snapshotDir ? { snapshotDir } : {}),
      tier,
      tierReason,
      minInterval: MIN_INTERVAL_BY_TIER[tier as Exclude<Tier, 'temporary'>],
    });
  }
  const configFile = resolve(options.configFile);
  const contextDir = resolve(options.contextDir ?? posix.join(homedir(), '.claude', 'context'));
  const stateDir = resolve(options.stateDir ?? defaultStateDir());
  const proposal: Omit<InitProposal, 'yaml'> = {
    configFile,
    contextDir,
    stateDir,
    volumes,
    skipped,
    notes: discovery.notes,
  };
  const yaml = renderConfig(proposal, options.now ?? new Date());
  // What init writes must load: a proposal the loader refuses is a bug here, said before writing.
  checkLoads(yaml, configFile);
  return { ...proposal, yaml };
}

/** A scalar as YAML writes it (quoted when it needs to be). */
function scalar(value: string): string {
  return toYaml(value).trimEnd();
}

function withComment(line: string, comment: string): string {
  return `${line.padEnd(44)} # ${comment}`;
}

/** The configuration file: the proposal as YAML, with a comment on each decision. */
export function renderConfig(proposal: Omit<InitProposal, 'yaml'>, now: Date): string {
  const lines = [
    `# snapguard.yaml, proposed by \`snapguard init\` on ${hostname()} at ${now.toISOString().slice(0, 19)}Z`,
    '# from the btrfs subvolumes and ZFS datasets mounted at that time. Review it: every key is',
    '# described in docs/configuration.md; `snapguard doctor` checks the file and the host.',
    withComment(`contextDir: ${scalar(proposal.contextDir)}`, 'backup-history.json lives here'),
    withComment(`stateDir: ${scalar(proposal.stateDir)}`, 'locks, recovery journals, confirmation secret'),
    '# No retention yet: every snapshot is kept until one is set, e.g. (docs/retention.md):',
    '# retention:',
    '#   preserve: 24h 7d 4w 12m',
  ];
  if (proposal.volumes.length === 0) {
    lines.push(
      withComment('volumes: {}', 'none found; add btrfs subvolumes, ZFS datasets or folders by hand'),
    );
  } else {
    lines.push('volumes:');
    for (const volume of proposal.volumes) {
      lines.push(
        `  # ${volume.backend === 'zfs' ? `ZFS dataset ${volume.dataset} at ${volume.path}` : `btrfs subvolume ${volume.path}`}`,
        `  ${scalar(volume.id)}:`,
        `    backend: ${volume.backend}`,
      );
      if (volume.dataset) lines.push(`    dataset: ${scalar(volume.dataset)}`);
      lines.push(`    path: ${scalar(volume.path)}`);
      if (volume.snapshotDir)
        lines.push(
          withComment(
            `    snapshotDir: ${scalar(volume.snapshotDir)}`,
            'same filesystem, outside the volume',
          ),
        );
      lines.push(
        withComment(`    tier: ${volume.tier}`, volume.tierReason),
        withComment(
          `    minInterval: ${volume.minInterval}`,
          'no second pre-change snapshot this soon if nothing changed',
        ),
      );
    }
  }
  if (proposal.skipped.length > 0) {
    lines.push('# Found and left out:');
    for (const skip of proposal.skipped)
      lines.push(`#   ${skip.dataset ? `${skip.dataset} (${skip.path})` : skip.path}: ${skip.reason}`);
  }
  if (proposal.notes.length > 0) {
    lines.push('# Not looked at:');
    for (const note of proposal.notes) lines.push(`#   ${note.subject}: ${note.detail.split('\n')[0]}`);
  }
  return `${lines.join('\n')}\n`;
}

function checkLoads(yaml: string, configFile: string): Config {
  try {
    return buildConfig(parseYaml(yaml), dirname(configFile), configFile);
  } catch (error) {
    throw new SnapguardError(
      'INTERNAL',
      `The proposed configuration does not load: ${(error as Error).message}`,
      'This is a bug in snapguard init; run it with --dry-run, fix the printed file by hand and report the output.',
      { cause: error },
    );
  }
}

/** Writes the proposal; refuses an existing file (or anything else at its name) unless `force`. */
export async function writeProposal(proposal: InitProposal, force: boolean): Promise<void> {
  const file = proposal.configFile;
  try {
    await writeFileAtomic(file, proposal.yaml, { exclusive: !force, syncDir: true, mkdir: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    throw configExists(file);
  }
}

/** The refusal to replace an existing configuration file. */
export function configExists(file: string): SnapguardError {
  return new SnapguardError(
    'BAD_INPUT',
    `${file} already exists; snapguard init left it as it is.`,
    `Pass --force to replace it, --config FILE to write the proposal elsewhere, or --dry-run to only print it; \`snapguard doctor --config ${file}\` checks the existing one.`,
  );
}
