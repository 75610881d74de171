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

/**
 * Like requireComponents for a command that is installed but may not work for this user (nix as
 * non-root cannot set up its per-user state): runs `probe` once; when it fails the suite skips with the
 * command's own complaint outside CI and fails in CI.
 */
export function requireWorking(command: string, probe: string[]): boolean {
  if (!requireComponents([command], false)) return false;
  try {
    execFileSync(command, probe, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
    return true;
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer | string }).stderr ?? '').trim();
    const lines = stderr.split('\n').filter((line) => line.trim() !== '');
    const said = lines.find((line) => line.startsWith('error:')) ?? lines[0] ?? String(error);
    const reason = `${command} ${probe.join(' ')} does not work here (uid ${process.getuid?.() ?? '?'}): ${said}`;
    if (inCI) throw new Error(`${reason} (CI=true: a component that cannot run is a failure)`);
    console.warn(`skipping: ${reason}`);
    return false;
  }
}
