import { SnapguardError } from '../shared/errors.js';
import type { Exec } from '../system/exec.js';
import { createBtrfsBackend } from './btrfs.js';
import { createDirBackend } from './dir.js';
import { createZfsBackend } from './zfs.js';
import { withInPlaceRecovery } from './zfs-recover.js';
import type { BackendVolume, OwnedNameTest, SnapshotBackend } from './types.js';

export type BackendResolver = (volume: BackendVolume) => SnapshotBackend;

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
