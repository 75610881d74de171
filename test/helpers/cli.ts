import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built CLI (npm test builds before it runs the tests). */
export const cliPath = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));

/**
 * Fails (never skips) when the CLI is not built: a test of the built CLI that skipped without dist/
 * would report a green run that checked nothing. npm test builds first.
 */
export function requireBuiltCli(): void {
  if (!existsSync(cliPath)) {
    throw new Error(
      `${cliPath} is missing: run npm run build first (npm test and npm run test:unit build it).`,
    );
  }
}

export interface CliRun {
  /** Exit code; null when a signal ended the process. */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  /** Added to this process's environment. */
  env?: Record<string, string>;
  cwd?: string | undefined;
  timeoutMs?: number;
}

/** Runs `node dist/cli/index.js ...args` and reports how it ended; never rejects. */
export function runBuiltCli(args: string[], options: CliRunOptions = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliPath, ...args],
      { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 120_000 },
      (error, stdout, stderr) => {
        const failed = error as (Error & { code?: number | string; signal?: string | null }) | null;
        resolve({
          code: failed ? (typeof failed.code === 'number' ? failed.code : null) : 0,
          signal: failed?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
  });
}
