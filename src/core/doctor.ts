import { lstat } from 'node:fs/promises';
import type { Deps } from './deps.js';
import {
  cleanPreviewLeftovers,
  resolveUnfinishedRecoveries,
  type RecoverContext,
} from './recovery/recover.js';
import type { ResolvedRecovery } from './recovery/schemas.js';

export interface DoctorReport {
  /** Interrupted recoveries found, and whether each was completed or reverted. */
  recoveries: ResolvedRecovery[];
  /** Temporary preview snapshots left by an interrupted preview, removed. */
  previewLeftovers: string[];
  /** Volumes whose path does not exist (after resolving recoveries). */
  missingVolumes: { volume: string; path: string }[];
  ok: boolean;
}

/** `snapguard doctor`: finds what an interrupted snapguard left behind and puts it right. */
export async function runDoctor(deps: Deps, context: RecoverContext = {}): Promise<DoctorReport> {
  const recoveries = await resolveUnfinishedRecoveries(deps, { context });
  const previewLeftovers = await cleanPreviewLeftovers(deps);
  const missingVolumes: DoctorReport['missingVolumes'] = [];
  for (const volume of Object.values(deps.config.volumes)) {
    if (volume.backend === 'zfs') continue;
    try {
      await lstat(volume.path);
    } catch {
      missingVolumes.push({ volume: volume.id, path: volume.path });
    }
  }
  const ok =
    missingVolumes.length === 0 &&
    recoveries.every((r) => r.action === 'completed' || r.action === 'reverted') &&
    recoveries.every((r) => r.outcome !== 'failed');
  return { recoveries, previewLeftovers, missingVolumes, ok };
}
