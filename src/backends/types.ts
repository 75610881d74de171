import type { VolumeConfig } from '../core/config.js';

/** What a backend knows about one snapshot, owned or not. */
export interface RawSnapshot {
  name: string;
  path: string;
  createdAt: Date;
  readOnly: boolean;
  /** btrfs subvolume id / generation, zfs guid: used to fingerprint state. */
  id?: string;
  generation?: number;
  uuid?: string;
  parentUuid?: string;
  /** btrfs: set on copies made by `btrfs receive` (the uuid of the sent snapshot). */
  receivedUuid?: string;
}

export interface PoolUsage {
  totalBytes: number;
  usedBytes: number;
  availableBytes: number;
  /** used / total, 0..1, the number maxPoolUsage is compared with. */
  ratio: number;
}

export interface BackendCallOptions {
  signal?: AbortSignal | undefined;
}

export interface ListOptions extends BackendCallOptions {
  /** List this folder instead of the volume's snapshotDir (external copies). */
  dir?: string;
}

export interface SnapshotBackend {
  readonly kind: 'btrfs' | 'zfs' | 'dir';
  /** Creates a read-only snapshot named `name` in the volume's snapshotDir. */
  create(volume: VolumeConfig, name: string, options?: BackendCallOptions): Promise<RawSnapshot>;
  /** Every snapshot directly in the folder, owned or foreign, in one pass (never a process per snapshot). */
  list(volume: VolumeConfig, options?: ListOptions): Promise<RawSnapshot[]>;
  /** Whether a snapshot of that name exists, without listing them all (optional: list is the fallback). */
  nameTaken?(volume: VolumeConfig, name: string): Promise<boolean>;
  show(volume: VolumeConfig, name: string, options?: BackendCallOptions): Promise<RawSnapshot | undefined>;
  delete(volume: VolumeConfig, name: string, options?: BackendCallOptions): Promise<void>;
  /**
   * Optional batch delete (prune): deletes what it can and reports every name that could not be
   * deleted with its own error; one failure never stops the others.
   */
  deleteMany?(
    volume: VolumeConfig,
    names: readonly string[],
    options?: BackendCallOptions,
  ): Promise<{ name: string; error?: unknown }[]>;
  poolUsage(volume: VolumeConfig, options?: BackendCallOptions): Promise<PoolUsage>;
  /**
   * Optional native protection for a pinned snapshot, on top of snapguard's own pin file. A ZFS
   * backend implements it with `zfs hold <tag> <dataset>@<name>` (and `zfs release`), so that not
   * even a manual `zfs destroy` removes a pinned snapshot. btrfs and dir have no such thing.
   */
  hold?(volume: VolumeConfig, name: string, tag: string, options?: BackendCallOptions): Promise<void>;
  release?(volume: VolumeConfig, name: string, tag: string, options?: BackendCallOptions): Promise<void>;
}
