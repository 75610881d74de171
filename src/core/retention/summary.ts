import type { InterfaceHint } from '../errors.js';
import { buildPolicy, formatPolicy } from './policy.js';
import type { PruneSnapshotsResult, PruneVerdict } from './prune.js';

/**
 * When nothing is deleted because no retention is configured (the default keeps every snapshot):
 * which volumes that is, and how to set a retention, in the words of each interface.
 */
export function noRetentionHint(
  result: Pick<PruneSnapshotsResult, 'delete' | 'targets'>,
): InterfaceHint | undefined {
  if (result.delete.length > 0) return undefined;
  const keepAll = formatPolicy(buildPolicy(undefined));
  const volumes = [...new Set(result.targets.filter((t) => t.policy === keepAll).map((t) => t.volume))];
  if (volumes.length === 0) return undefined;
  const which = `${volumes.length > 1 ? 'volumes' : 'volume'} ${volumes.join(', ')}`;
  const said = `No retention is configured for ${which}, so every snapshot is kept. Set one in snapguard.yaml, at the top level for all volumes or under volumes.<id>, e.g. \`retention: { preserve: 24h 7d 4w 12m }\` (docs/retention.md)`;
  return {
    mcp: `${said}; then call prune_snapshots with dryRun: true to see what would go.`,
    cli: `${said}; then \`snapguard prune --dry-run\` shows what would go.`,
  };
}

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
