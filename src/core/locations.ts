import { join } from 'node:path';
import type { RawSnapshot } from '../backends/types.js';
import { createRestic } from '../system/restic.js';
import { redactUrls } from '../shared/redact.js';
import type { VolumeConfig } from './config.js';
import type { Deps } from './deps.js';

type ExternalConfig = VolumeConfig['external'][number];

/**
 * One place where copies of a volume's snapshots live: the volume itself, or one of its configured
 * external copies. list_snapshots, health, restore tests, prune and replication all read a volume's
 * copies through this catalogue, so they agree on which external entries hold copies.
 */
export interface SnapshotLocation {
  location: 'local' | 'external';
  /** What holds the copies: the volume's backend for local, the external entry's kind otherwise. */
  kind: 'btrfs' | 'zfs' | 'dir' | 'restic';
  /** A folder of copies (btrfs received subvolumes, plain dir copies). */
  dir?: string;
  /** zfs: a dataset of received snapshots. */
  dataset?: string;
  /** restic: the repository and its password file. */
  repository?: string;
  passwordFile?: string;
  /** How the location is named in messages: "local", "zfs dataset tank/copy", "btrfs /mnt/backup/x". */
  label: string;
  /** The configured external entry, for external locations. */
  external?: ExternalConfig;
}

/** The snapshot-copy location an external entry describes, or undefined when it holds none of this volume's kind. */
function externalLocation(volume: VolumeConfig, external: ExternalConfig): SnapshotLocation | undefined {
  if (external.kind === 'restic') {
    if (!external.repository) return undefined;
    return {
      location: 'external',
      kind: 'restic',
      repository: external.repository,
      ...(external.passwordFile ? { passwordFile: external.passwordFile } : {}),
      label: `restic ${redactUrls(external.repository)}`,
      external,
    };
  }
  // Received zfs snapshots live in a dataset; only a zfs volume can have them.
  if (volume.backend === 'zfs' && external.kind === 'zfs' && external.dataset) {
    return {
      location: 'external',
      kind: 'zfs',
      dataset: external.dataset,
      label: `zfs dataset ${external.dataset}`,
      external,
    };
  }
  // A folder of copies: received subvolumes of the volume's own kind, or plain folder copies.
  if (external.path && (external.kind === volume.backend || external.kind === 'dir')) {
    return {
      location: 'external',
      kind: external.kind,
      dir: external.path,
      label: `${external.kind} ${external.path}`,
      external,
    };
  }
  return undefined;
}

/**
 * Every location of a volume's snapshot copies: local first, then each configured external entry
 * that holds copies of it (in configuration order). External entries of another kind (e.g. a zfs
 * target for a btrfs volume) or without a path/dataset/repository hold nothing of this volume.
 */
export function snapshotLocations(volume: VolumeConfig): SnapshotLocation[] {
  const locations: SnapshotLocation[] = [localLocation(volume)];
  for (const external of volume.external) {
    const location = externalLocation(volume, external);
    if (location) locations.push(location);
  }
  return locations;
}

/** The volume's own snapshots. */
export function localLocation(volume: VolumeConfig): SnapshotLocation {
  return { location: 'local', kind: volume.backend, label: 'local' };
}

/** The external locations whose copies a snapshot backend lists (every kind but restic). */
export function snapshotCopyLocations(volume: VolumeConfig): SnapshotLocation[] {
  return snapshotLocations(volume).filter((l) => l.location === 'external' && l.kind !== 'restic');
}

/**
 * The volume as seen at a location: for a folder of copies, a volume of the location's kind whose
 * snapshotDir is that folder; for a dataset, the volume with that dataset; local is the volume.
 */
export function volumeAt(volume: VolumeConfig, location: SnapshotLocation): VolumeConfig {
  if (location.location === 'local' || location.kind === 'restic') return volume;
  if (location.dataset) return { ...volume, dataset: location.dataset };
  return { ...volume, backend: location.kind, snapshotDir: location.dir ?? volume.snapshotDir };
}

/**
 * Every snapshot (owned or foreign) at one location, as its backend lists it. A restic repository
 * lists the repository snapshots of the volume's path (name: the short id, createdAt: its time).
 */
export async function listAt(
  deps: Deps,
  volume: VolumeConfig,
  location: SnapshotLocation,
  signal?: AbortSignal,
): Promise<RawSnapshot[]> {
  if (location.kind === 'restic') {
    const restic = createRestic(deps.exec, {
      repository: location.repository as string,
      passwordFile: location.passwordFile,
      cacheDir: join(deps.config.stateDir, 'restic-cache'),
    });
    const snapshots = await restic.snapshots(signal);
    return snapshots
      .filter((s) => s.paths.some((p) => p === volume.path || p.startsWith(`${volume.path}/`)))
      .map((s) => ({ name: s.shortId || s.id, path: volume.path, createdAt: s.time, readOnly: true }));
  }
  if (location.location === 'local') return deps.backendFor(volume).list(volume, { signal });
  if (location.dataset) return deps.backendFor(volume).list(volume, { dataset: location.dataset, signal });
  const view = volumeAt(volume, location);
  return deps.backendFor(view).list(view, { dir: location.dir, signal });
}
