import { SnapguardError } from '../shared/errors.js';
import type { Exec } from './exec.js';
import { redactUrls } from '../shared/redact.js';

export interface ResticTarget {
  repository: string;
  /** File holding the repository password; passed to restic as RESTIC_PASSWORD_FILE, never logged. */
  passwordFile?: string | undefined;
  cacheDir?: string | undefined;
}

export interface ResticSnapshot {
  id: string;
  shortId: string;
  time: Date;
  paths: string[];
  hostname?: string;
}

export interface ResticNode {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: string;
  linktarget?: string;
}

export function resticEnv(target: ResticTarget): Record<string, string> {
  return {
    RESTIC_REPOSITORY: target.repository,
    ...(target.passwordFile ? { RESTIC_PASSWORD_FILE: target.passwordFile } : {}),
    ...(target.cacheDir ? { RESTIC_CACHE_DIR: target.cacheDir } : {}),
  };
}

/** A restic caller bound to one repository: every call gets the repository and password through env. */
export function createRestic(exec: Exec, target: ResticTarget) {
  const env = resticEnv(target);
  const run = (args: string[], options: { signal?: AbortSignal | undefined; okExitCodes?: number[] } = {}) =>
    exec('restic', args, {
      env,
      signal: options.signal,
      timeoutMs: 6 * 3600_000,
      okExitCodes: options.okExitCodes,
    });
  return {
    async snapshots(signal?: AbortSignal): Promise<ResticSnapshot[]> {
      const { stdout } = await run(['snapshots', '--json', '--no-lock'], { signal });
      let parsed: unknown;
      try {
        parsed = JSON.parse(stdout);
      } catch {
        throw new SnapguardError(
          'COMMAND_FAILED',
          `restic snapshots --json printed something that is not JSON for ${redactUrls(target.repository)}.`,
          'Run `restic snapshots` by hand to see what it says.',
        );
      }
      return ((parsed as Record<string, unknown>[] | null) ?? []).map((entry) => ({
        id: String(entry.id),
        shortId: String(entry.short_id ?? String(entry.id).slice(0, 8)),
        time: new Date(String(entry.time)),
        paths: (entry.paths as string[] | undefined) ?? [],
        ...(entry.hostname ? { hostname: String(entry.hostname) } : {}),
      }));
    },
    /** Every node of a snapshot (NDJSON from `restic ls --json`). */
    async ls(snapshotId: string, signal?: AbortSignal): Promise<ResticNode[]> {
      const { stdout } = await run(['ls', '--json', '--no-lock', snapshotId], { signal });
      const nodes: ResticNode[] = [];
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.struct_type !== 'node') continue;
        nodes.push({
          path: String(entry.path),
          type: String(entry.type),
          mode: Number(entry.mode ?? 0),
          uid: Number(entry.uid ?? 0),
          gid: Number(entry.gid ?? 0),
          size: Number(entry.size ?? 0),
          mtime: String(entry.mtime ?? ''),
          ...(entry.linktarget ? { linktarget: String(entry.linktarget) } : {}),
        });
      }
      return nodes;
    },
    /** Restores a snapshot (or only `includes`) under `target`; exit 1 (some files failed) is returned, not thrown. */
    async restore(snapshotId: string, targetDir: string, includes: readonly string[], signal?: AbortSignal) {
      const args = ['restore', snapshotId, '--target', targetDir];
      for (const include of includes) args.push('--include', include);
      return run(args, { signal, okExitCodes: [1] });
    },
  };
}
