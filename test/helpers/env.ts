import { execFileSync } from 'node:child_process';

/**
 * Integration tests need root and the real components. Outside CI they skip with the reason;
 * with CI=true a missing component is a failure, not a skip.
 */
export function missingComponents(commands: string[], needRoot = true): string[] {
  const missing: string[] = [];
  if (needRoot && process.getuid?.() !== 0) missing.push('root');
  for (const command of commands) {
    try {
      execFileSync('sh', ['-c', `command -v "$1"`, 'sh', command], { stdio: 'ignore' });
    } catch {
      missing.push(command);
    }
  }
  return missing;
}

export const inCI = process.env.CI === 'true' || process.env.CI === '1';

/** Returns true when the suite should run; throws in CI when something is missing. */
export function requireComponents(commands: string[], needRoot = true): boolean {
  const missing = missingComponents(commands, needRoot);
  if (missing.length === 0) return true;
  const reason = `integration test needs ${missing.join(', ')}`;
  if (inCI) throw new Error(`${reason} (CI=true: a missing component is a failure; .ci/run installs them)`);
  console.warn(`skipping: ${reason}`);
  return false;
}
