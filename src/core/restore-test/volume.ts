import type { RawSnapshot } from '../../backends/types.js';
import { SnapguardError } from '../errors.js';
import { listExternalCopies } from './external.js';
import { snapshotCopyLocations } from '../locations.js';
import type { VolumeRun, Outcome } from './run-context.js';
import { pickLocalSnapshot, testZfs, sampleLocal } from './local.js';
import { fullBtrfs } from './full-btrfs.js';
import { testRestic } from './restic.js';

export async function testVolume(run: VolumeRun): Promise<Outcome> {
  if (run.request.source === 'restic') return testRestic(run);
  const { volume, deps, request, call } = run;
  // Snapshots without a plain readable path (zfs) are opened through their backend.
  if (deps.backendFor(volume).openSnapshot) return testZfs(run);
  let sourceSnapshot: RawSnapshot;
  let referenceRoot: string;
  if (request.source === 'local') {
    sourceSnapshot = await pickLocalSnapshot(run);
    referenceRoot = sourceSnapshot.path;
  } else {
    const external = snapshotCopyLocations(volume).find((place) => place.dir);
    if (!external?.dir) {
      throw new SnapguardError(
        'PRECONDITION_FAILED',
        `Volume "${volume.id}" has no external copy of kind ${volume.backend} configured.`,
        `Add volumes.${volume.id}.external: [{ kind: ${volume.backend}, path: /path/to/received/snapshots }].`,
      );
    }
    const copies = await listExternalCopies(volume, external.dir);
    const chosen = request.snapshot ? copies.find((copy) => copy.name === request.snapshot) : copies[0];
    if (!chosen) {
      throw new SnapguardError(
        'SNAPSHOT_NOT_FOUND',
        request.snapshot
          ? `No external copy named "${request.snapshot}" under ${external.dir}.`
          : `No external copies of volume "${volume.id}" under ${external.dir}.`,
        'Replicate a snapshot there first (btrfs send | btrfs receive), or test source: local.',
      );
    }
    sourceSnapshot = chosen;
    const local = await deps.backendFor(volume).show(volume, chosen.name, { signal: call.signal });
    if (local) {
      referenceRoot = local.path;
    } else {
      referenceRoot = chosen.path;
      run.warnings.push(
        `${volume.id}: no local snapshot ${chosen.name} to compare with; the external copy was verified against itself (readability and restore only).`,
      );
    }
  }
  return request.mode === 'full'
    ? fullBtrfs(run, sourceSnapshot, referenceRoot)
    : sampleLocal(run, sourceSnapshot, referenceRoot);
}
