import type { VolumeConfig } from '../core/config.js';
import { SnapguardError } from '../core/errors.js';
import type { Exec } from '../system/exec.js';
import { createBtrfsBackend } from './btrfs.js';
import { createDirBackend } from './dir.js';
import { createZfsBackend } from './zfs.js';
import type { SnapshotBackend } from './types.js';

export type BackendResolver = (volume: VolumeConfig) => SnapshotBackend;

export function createBackendResolver(exec: Exec): BackendResolver {
  const backends: Partial<Record<VolumeConfig['backend'], SnapshotBackend>> = {
    btrfs: createBtrfsBackend(exec),
    dir: createDirBackend(exec),
    zfs: createZfsBackend(exec),
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

export type { SnapshotBackend, RawSnapshot, PoolUsage, SnapshotReader } from './types.js';
