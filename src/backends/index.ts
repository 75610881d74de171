import { SnapguardError } from '../shared/errors.js';
import type { Exec, ExecResult } from '../system/exec.js';
import { createBtrfsBackend } from './btrfs.js';
import { createDirBackend } from './dir.js';
import { createZfsBackend } from './zfs.js';
import { withInPlaceRecovery } from './zfs-recover.js';
import type { BackendVolume, OwnedNameTest, SnapshotBackend } from './types.js';

export type BackendResolver = (volume: BackendVolume) => SnapshotBackend;

/** The command-line tool a kind of storage drives; doctor asks each one for its version. */
export interface StorageTool {
  kind: 'btrfs' | 'zfs';
  command: string;
  /** The tool's version output. Exit codes 1 and 2 count as an answer: zfs-fuse has no version command. */
  version(exec: Exec): Promise<ExecResult>;
}

const versionOf =
  (command: string, args: readonly string[]) =>
  (exec: Exec): Promise<ExecResult> =>
    exec(command, args, { timeoutMs: 15_000, okExitCodes: [0, 1, 2] });

export const STORAGE_TOOLS: readonly StorageTool[] = [
  { kind: 'btrfs', command: 'btrfs', version: versionOf('btrfs', ['--version']) },
  { kind: 'zfs', command: 'zfs', version: versionOf('zfs', ['version']) },
];

/** `isOwned` is core's test of a snapshot name (backends do not read core's naming themselves). */
export function createBackendResolver(exec: Exec, isOwned: OwnedNameTest): BackendResolver {
  const backends: Partial<Record<BackendVolume['backend'], SnapshotBackend>> = {
    btrfs: createBtrfsBackend(exec),
    dir: createDirBackend(exec),
    zfs: withInPlaceRecovery(createZfsBackend(exec, isOwned), exec),
  };
  return (volume) => {
    const backend = backends[volume.backend];
    if (!backend) {
      throw new SnapguardError(
        'NOT_SUPPORTED',
        `The ${volume.backend} backend is not available in this build.`,
        'Use backend: btrfs or dir for this volume.',
      );
    }
    return backend;
  };
}

export type {
  BackendVolume,
  OwnedNameTest,
  SnapshotBackend,
  RawSnapshot,
  PoolUsage,
  SnapshotReader,
} from './types.js';
