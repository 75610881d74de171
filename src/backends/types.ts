/**
 * What a backend reads of a configured volume. Core's VolumeConfig has all of these fields, so a
 * configured volume is passed as it is; backends never see the rest of the configuration.
 */
export interface BackendVolume {
  id: string;
  backend: 'btrfs' | 'zfs' | 'dir';
  /** Mount path of the volume (for zfs the dataset's mountpoint). */
  path: string;
  /** Where its snapshots live (for zfs informational: <path>/.zfs/snapshot). */
  snapshotDir: string;
  /** zfs: the dataset, e.g. tank/containers. */
  dataset?: string | undefined;
}

/** What a caller already knows of a path from its lstat (node's Stats has these). */
export interface KnownStats {
  ino: number;
  isDirectory(): boolean;
}

/**
 * Whether `name` is a snapshot snapguard made for volume `volumeId` (core's naming rule, passed in so
 * backends do not depend on core). Only such snapshots are ever changed by a backend.
 */
export type OwnedNameTest = (volumeId: string, name: string) => boolean;

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
  /** zfs: who made it, by its name (snapguard, sanoid, syncoid, foreign). */
  producer?: 'snapguard' | 'sanoid' | 'syncoid' | 'foreign';
  /** zfs: number of holds (userrefs); a held snapshot cannot be destroyed. */
  holds?: number;
  /** zfs: bytes only this snapshot references (`used`). */
  usedBytes?: number;
  /** btrfs: set on copies made by `btrfs receive` (the uuid of the sent snapshot). */
  receivedUuid?: string;
}

/** A snapshot's contents opened for reading; close() removes whatever was set up (e.g. a clone). */
export interface SnapshotReader {
  path: string;
  /** snapdir: the snapshot's own folder; clone: a temporary read-only clone. */
  via: 'snapdir' | 'clone' | 'path';
  close(): Promise<void>;
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
  /** zfs: list this dataset instead of the volume's (an external copy, e.g. a syncoid target). */
  dataset?: string;
}

export interface SnapshotBackend {
  readonly kind: 'btrfs' | 'zfs' | 'dir';
  /** Creates a read-only snapshot named `name` in the volume's snapshotDir. */
  create(volume: BackendVolume, name: string, options?: BackendCallOptions): Promise<RawSnapshot>;
  /** Every snapshot directly in the folder, owned or foreign, in one pass (never a process per snapshot). */
  list(volume: BackendVolume, options?: ListOptions): Promise<RawSnapshot[]>;
  /** Whether a snapshot of that name exists, without listing them all (optional: list is the fallback). */
  nameTaken?(volume: BackendVolume, name: string): Promise<boolean>;
  show(volume: BackendVolume, name: string, options?: BackendCallOptions): Promise<RawSnapshot | undefined>;
  /**
   * Whether what lies at `name` in snapshotDir is a read-only snapshot (true) or a writable one
   * (false), told without running a command; undefined when the backend cannot tell that way (then
   * show answers). `known.stats`: the caller's lstat of that path, made just before, which the
   * backend uses instead of looking again. Optional.
   */
  readOnlyAt?(
    volume: BackendVolume,
    name: string,
    known?: { stats?: KnownStats },
  ): Promise<boolean | undefined>;
  delete(volume: BackendVolume, name: string, options?: BackendCallOptions): Promise<void>;
  /**
   * Optional batch delete (prune): deletes what it can and reports every name that could not be
   * deleted with its own error; one failure never stops the others.
   */
  deleteMany?(
    volume: BackendVolume,
    names: readonly string[],
    options?: BackendCallOptions,
  ): Promise<{ name: string; error?: unknown }[]>;
  poolUsage(volume: BackendVolume, options?: BackendCallOptions): Promise<PoolUsage>;
  /** Backends with native holds (zfs): a held snapshot cannot be destroyed. Idempotent. */
  hold?(volume: BackendVolume, name: string, tag?: string, options?: BackendCallOptions): Promise<void>;
  /** Releases a hold set by hold(); releasing a tag that is not there is not an error. */
  release?(volume: BackendVolume, name: string, tag?: string, options?: BackendCallOptions): Promise<void>;
  /** Backends whose snapshots have no plain readable path everywhere (zfs): open one for reading. */
  openSnapshot?(volume: BackendVolume, name: string, options?: BackendCallOptions): Promise<SnapshotReader>;
  /**
   * Subvolumes (or datasets) nested directly inside a volume's tree, which its snapshots do not
   * contain: paths relative to `options.path` (default: the volume's path), sorted. Backends
   * without nesting leave it out.
   */
  nestedSubvolumes?(
    volume: BackendVolume,
    options?: BackendCallOptions & { path?: string },
  ): Promise<string[]>;
  /**
   * Whether the live volume is still exactly in the state this snapshot of it holds (nothing
   * written, deleted, renamed, chmod-ed or relabelled since). false whenever the backend cannot
   * tell for sure. Optional: a backend without it is treated as "changed".
   */
  unchangedSince?(volume: BackendVolume, raw: RawSnapshot, options?: BackendCallOptions): Promise<boolean>;
  /**
   * The storage's own check of a configured volume (doctor): zfs reads the dataset's mountpoint,
   * btrfs asks whether the path is a subvolume. Throws when the storage cannot read the volume.
   */
  selfCheck?(volume: BackendVolume, options?: BackendCallOptions): Promise<{ mountpoint?: string }>;
  /**
   * Bytes each snapshot holds exclusively, by snapshot id (btrfs: qgroups). Throws when the storage
   * does not account them (btrfs quotas off).
   */
  exclusiveBytes?(volume: BackendVolume, options?: BackendCallOptions): Promise<Map<string, number>>;
  /** Device error counters of the volume's pool that are not zero, e.g. { "/dev/loop3 corruption_errs": 2 }. */
  deviceErrors?(volume: BackendVolume, options?: BackendCallOptions): Promise<Record<string, number>>;
  /**
   * Full restore drill: streams a snapshot into `intoDir` (btrfs send | receive through the named
   * pipe `fifo`, which the caller made). A broken stream rejects with the error of the side that
   * failed first, not the one stopped because of it.
   */
  sendReceive?(
    snapshot: RawSnapshot,
    intoDir: string,
    options: BackendCallOptions & { fifo: string },
  ): Promise<void>;
  /** Deletes a copy made by sendReceive (a read-only received subvolume); never throws. */
  deleteReceived?(path: string, options?: BackendCallOptions): Promise<void>;
  /**
   * Replication: sends `snapshot` into the folder `targetDir` on another filesystem (incremental
   * from `parent` when the target has it), as one pipe without a shell.
   */
  replicateTo?(
    snapshot: RawSnapshot,
    targetDir: string,
    options: BackendCallOptions & { parent?: RawSnapshot | undefined; timeoutMs: number },
  ): Promise<void>;
  /** The received UUID of the copy at `path` (undefined when it was not received). */
  receivedUuidOf?(path: string, options?: BackendCallOptions): Promise<string | undefined>;

  // Recovery. Backends that swap trees (btrfs, dir) put a snapshot's tree in place as a new tree;
  // backends that never swap (zfs) replace the live files in place instead (replaceTree, restorePaths).

  /**
   * Puts the tree of snapshot `name` (in the volume's snapshotDir) at `destination` as a new
   * writable tree, which appears there only when complete. Redoing it after a crash is safe.
   */
  restoreTree?(
    volume: BackendVolume,
    name: string,
    destination: string,
    options?: BackendCallOptions,
  ): Promise<void>;
  /** Removes what an interrupted restoreTree into `destination` left behind; nothing there is fine. */
  discardPartialTree?(destination: string): Promise<void>;
  /**
   * Makes a tree read-only or writable again (btrfs: the subvolume's ro property). Backends whose
   * trees have no such flag (dir) leave it out.
   */
  setReadOnly?(path: string, readOnly: boolean, options?: BackendCallOptions): Promise<void>;
  /** Removes a whole tree made by restoreTree (or moved aside by a recovery), nested content included. */
  removeTree?(path: string, options?: BackendCallOptions): Promise<void>;
  /**
   * In-place recovery: replaces every file of the live volume with the tree of snapshot `name`,
   * without taking a safety snapshot (the caller has one). Idempotent.
   */
  replaceTree?(volume: BackendVolume, name: string, options?: BackendCallOptions): Promise<void>;
  /**
   * In-place file restore: the relative `paths` of the live volume become those of snapshot `name`,
   * after the current state is kept as snapshot `safetyName` (reused when it exists). Idempotent.
   */
  restorePaths?(
    volume: BackendVolume,
    name: string,
    paths: readonly string[],
    safetyName: string,
    options?: BackendCallOptions,
  ): Promise<void>;
  /**
   * In-place recovery's check of the live volume before anything is planned (zfs: the dataset is
   * mounted at the volume's path). With `nested: 'refuse'` (a whole-tree rollback) it also refuses
   * other filesystems mounted inside, whose files are in no snapshot of the volume: the backend then
   * owns that check, and core does not look for nested mounts itself.
   */
  checkInPlace?(
    volume: BackendVolume,
    options?: BackendCallOptions & { nested?: 'refuse' | 'allow' },
  ): Promise<void>;
  /**
   * What an in-place recovery to snapshot `name` does to the volume's other snapshots, for the plan
   * shown before it runs (zfs: every newer one stays unchanged). Refuses what checkInPlace refuses and
   * a target that does not exist.
   */
  planInPlace?(
    volume: BackendVolume,
    name: string,
    safetyName: string,
    options?: BackendCallOptions & { nested?: 'refuse' | 'allow' },
  ): Promise<InPlacePlan>;
  /**
   * What differs between the live volume and the snapshot at `targetPath`, metadata only, as the
   * text of a dumped send stream (one operation a line: `mkfile`, `unlink`, `rename`, `write`...).
   * Its cost follows the size of the difference. Anything it makes for this (a temporary snapshot
   * named PREVIEW_PREFIX…, a stream file in `workDir`) is removed before it returns. Backends
   * without it are compared by walking both trees. With `parentPath` (a read-only snapshot of the
   * same volume), the stream turns that snapshot into the target instead, and the live volume is
   * not read.
   */
  changeDump?(
    volume: BackendVolume,
    targetPath: string,
    options: BackendCallOptions & { workDir: string; parentPath?: string },
  ): Promise<string>;
  /** list() fills each snapshot's usedBytes with the bytes only it holds (zfs `used`): health sums them. */
  readonly listsUsedBytes?: true;
  /**
   * Its snapshots are plain folders that no flag makes read-only (dir): a writable one with an
   * owned name is still a snapshot. Without it, only read-only snapshots count as snapguard's.
   */
  readonly writableSnapshots?: true;
  /**
   * What a folder at a snapshot's name is when show() finds no snapshot there, in words for the
   * refusal (btrfs: a plain folder, not a subvolume). Without it, such a name is not found.
   */
  readonly folderNotSnapshot?: string;
  /**
   * The volume is a dataset in a pool, not a folder of its own (zfs): its path is a mountpoint and
   * its snapshots are listed from the pool, whether or not snapshotDir exists.
   */
  readonly volumeInPool?: true;
  /**
   * Doctor's check of how the storage holds a configured volume. A result with `final` is the whole
   * verdict on the volume (zfs: the dataset's mountpoint); one with a status other than ok is a
   * problem found; an ok one is the line doctor prints once its own folder checks passed. Nothing
   * back: the storage found nothing to say (the path is missing or no folder, which doctor reports).
   */
  checkVolume?(volume: BackendVolume, options?: BackendCallOptions): Promise<VolumeCheck | undefined>;
  /**
   * The first of `names` (folders in the volume's snapshotDir, newest first) that is a read-only
   * snapshot, shown: finds the newest snapshot without listing them all.
   */
  firstReadOnly?(
    volume: BackendVolume,
    names: readonly string[],
    options?: BackendCallOptions,
  ): Promise<RawSnapshot | undefined>;
  /**
   * A snapshot keeps each file's change time (ctime) as the volume had it, so two trees with equal
   * ctimes have equal metadata (btrfs, zfs). Copy-based snapshots (dir) give every copy a new one.
   */
  readonly ctimeTrusted?: true;
  /** Snapshots and rollbacks need root or CAP_SYS_ADMIN (btrfs, zfs); dir volumes need neither. */
  readonly needsRoot?: true;
  /** How many names deleteMany removes with one command: prune hands it batches of this size. */
  readonly deleteBatch?: number;
}

/** What an in-place recovery leaves of the volume's other snapshots (planInPlace). */
export interface InPlacePlan {
  /** Every snapshot newer than the target, and what the recovery does to it. */
  newerSnapshots: { name: string; producer?: RawSnapshot['producer']; effect: 'kept unchanged' }[];
  /** One sentence on what happens to the newer snapshots, for the confirmation gate. */
  newerSnapshotsEffect: string;
}

/** What a backend's checkVolume found (doctor adds the check's id). */
export interface VolumeCheck {
  status: 'ok' | 'warning' | 'critical';
  message: string;
  fix?: string;
  /** The whole verdict: doctor checks no folders of this volume. */
  final?: true;
}

/** Temporary snapshots a changeDump takes of the live tree start with this; doctor removes leftovers. */
export const PREVIEW_PREFIX = '.snapguard-preview-';
