import { lstat, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';
import { SnapguardError } from './errors.js';

/**
 * stateDir holds the recovery journals that doctor replays as root, the locks and the confirmation
 * secret; contextDir holds the history. A folder another user can write (or owns) would let that
 * user plant a journal and have root move, delete or create files: such a folder is refused.
 */

export interface PrivateDirProblem {
  key: 'stateDir' | 'contextDir';
  dir: string;
  problem: string;
}

function uid(): number {
  return process.geteuid?.() ?? 0;
}

function gid(): number {
  return process.getegid?.() ?? 0;
}

async function statOrUndefined(how: typeof stat | typeof lstat, path: string): Promise<Stats | undefined> {
  try {
    return await how(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

function ownerProblem(stats: Stats, what: string): string | undefined {
  if (stats.uid !== uid() && stats.uid !== 0)
    return `${what} is owned by uid ${stats.uid}, not by this user (uid ${uid()}) or root`;
  if (stats.mode & 0o002)
    return `${what} is writable by every user (mode ${(stats.mode & 0o7777).toString(8).padStart(4, '0')})`;
  if (stats.mode & 0o020 && stats.gid !== 0 && stats.gid !== gid())
    return `${what} is writable by group ${stats.gid} (mode ${(stats.mode & 0o7777).toString(8).padStart(4, '0')})`;
  return undefined;
}

/** What is wrong with one folder (and, when it is a symlink, with the link), or undefined. */
export async function privateDirProblem(dir: string): Promise<string | undefined> {
  const link = await statOrUndefined(lstat, dir);
  // A folder that does not exist yet is created by snapguard itself, owned by this user.
  if (!link) return undefined;
  if (link.isSymbolicLink()) {
    const problem = ownerProblem(link, 'the symlink');
    if (problem) return problem;
  }
  const target = await statOrUndefined(stat, dir);
  if (!target) return undefined;
  if (!target.isDirectory()) return 'it is not a folder';
  return ownerProblem(target, 'it');
}

/** Every problem of stateDir (and its journal folder) and contextDir. */
export async function privateDirProblems(config: Config): Promise<PrivateDirProblem[]> {
  const checks: [PrivateDirProblem['key'], string][] = [
    ['stateDir', config.stateDir],
    ['stateDir', join(config.stateDir, 'recovery')],
    ['contextDir', config.contextDir],
  ];
  const problems: PrivateDirProblem[] = [];
  for (const [key, dir] of checks) {
    const problem = await privateDirProblem(dir);
    if (problem) problems.push({ key, dir, problem });
  }
  return problems;
}

/** Refuses to go on when stateDir or contextDir could be written by another user. */
export async function assertPrivateDirs(config: Config): Promise<void> {
  const problems = await privateDirProblems(config);
  if (problems.length === 0) return;
  throw new SnapguardError(
    'UNSAFE_STATE_DIR',
    `Refusing to use ${problems.map((p) => `${p.key} ${p.dir}: ${p.problem}`).join('; ')}. Another user could plant recovery journals or history entries there that snapguard would act on.`,
    `Give the folder to this user and remove write access for others, e.g. chown root: ${problems[0]?.dir} && chmod 700 ${problems[0]?.dir}; or point ${problems[0]?.key} at a private folder. Inspect its contents before using it again.`,
    { details: { problems } },
  );
}
