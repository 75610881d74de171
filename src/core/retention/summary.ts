import type { PruneSnapshotsResult, PruneVerdict } from './prune.js';

/** A few lines of text for a prune plan: what goes, what stays and why; shown when asking the user. */
export function summarizePrunePlan(
  result: Pick<PruneSnapshotsResult, 'delete' | 'keep' | 'targets'>,
): string {
  const lines: string[] = [];
  for (const target of result.targets) {
    lines.push(
      `${target.volume} (${target.location}, ${target.locationPath}): ${target.policy}; keep ${target.kept}, delete ${target.toDelete}`,
    );
  }
  const show = (verdict: PruneVerdict) => `  ${verdict.volume}/${verdict.name}: ${verdict.reason}`;
  if (result.delete.length > 0) {
    lines.push(`Delete ${result.delete.length} snapshot(s):`);
    lines.push(...result.delete.slice(0, 40).map(show));
    if (result.delete.length > 40) lines.push(`  ... and ${result.delete.length - 40} more`);
  } else {
    lines.push('Nothing to delete.');
  }
  const protectedOnes = result.keep.filter((v) => v.protectedBy.length > 0 && v.owned);
  if (protectedOnes.length > 0) {
    lines.push(`Kept by never-delete rules: ${protectedOnes.length}:`);
    lines.push(...protectedOnes.slice(0, 10).map(show));
  }
  return lines.join('\n');
}
