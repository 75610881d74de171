import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const script = join(root, 'scripts', 'check-layers.mjs');

async function check(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [script, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

const made: string[] = [];
afterEach(async () => {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A throwaway tree with src/ files given by path under src/. */
async function tree(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'snapguard-layers-'));
  made.push(dir);
  for (const [path, text] of Object.entries(files)) {
    const full = join(dir, 'src', path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, text);
  }
  return dir;
}

const clean = {
  'shared/errors.ts': 'export class SnapguardError extends Error {}\n',
  'system/exec.ts':
    "import { SnapguardError } from '../shared/errors.js';\nexport const e = SnapguardError;\n",
  'backends/types.ts': 'export interface BackendVolume { id: string }\n',
  'backends/zfs.ts':
    "import type { BackendVolume } from './types.js';\nimport { e } from '../system/exec.js';\nexport const z = (v: BackendVolume) => [v, e];\n",
  'core/errors.ts': "export * from '../shared/errors.js';\n",
  'core/snapshots.ts': "import { z } from '../backends/zfs.js';\nexport const s = z;\n",
  'mcp/server.ts': "import { s } from '../core/snapshots.js';\nexport const server = s;\n",
  'mcp/transports/stdio.ts': "import { server } from '../server.js';\nexport const serveStdio = server;\n",
  'cli/commands/mcp.ts':
    "import { serveStdio } from '../../mcp/transports/stdio.js';\nimport { s } from '../../core/snapshots.js';\nexport const m = [serveStdio, s];\n",
};

describe('check-layers (scripts/check-layers.mjs, run by npm run lint)', () => {
  it('passes on the real src/ tree: no import against cli|mcp -> core -> backends -> system, no cycle', async () => {
    const result = await check([]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/0 import\(s\) against the layer direction, 0 cycle\(s\)/);
    expect(result.code).toBe(0);
  });

  it('passes a tree whose imports all flow down, with cli starting an MCP transport', async () => {
    const result = await check(['--root', await tree(clean)]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('fails on upward imports (also type-only, re-exports and dynamic ones) and names each', async () => {
    const dir = await tree({
      ...clean,
      'system/exec.ts':
        "import { SnapguardError } from '../core/errors.js';\nexport const e = SnapguardError;\n",
      'backends/types.ts':
        "import type { s } from '../core/snapshots.js';\nexport type BackendVolume = typeof s;\n",
      'backends/index.ts': "export { s } from '../core/snapshots.js';\n",
      'core/doctor.ts': "export const load = () => import('../mcp/server.js');\n",
      'mcp/tools.ts':
        "import { serveStdio } from './transports/stdio.js';\nimport '../cli/commands/mcp.js';\nexport const t = serveStdio;\n",
      'cli/index.ts': "import { server } from '../mcp/server.js';\nexport const i = server;\n",
      'shared/util.ts': "import { e } from '../system/exec.js';\nexport const u = e;\n",
    });
    const result = await check(['--root', dir]);
    expect(result.code).toBe(1);
    const lines = result.stderr.split('\n');
    const expected = [
      'src/system/exec.ts:1: imports src/core/errors.ts: system may import only system, shared',
      'src/backends/types.ts:1: imports src/core/snapshots.ts (type only): backends may import only backends, system, shared',
      'src/backends/index.ts:1: imports src/core/snapshots.ts: backends may import only backends, system, shared',
      'src/core/doctor.ts:1: imports src/mcp/server.ts: core may import only core, backends, system, shared',
      'src/mcp/tools.ts:2: imports src/cli/commands/mcp.ts: mcp may import only mcp, core, shared',
      'src/cli/index.ts:1: imports src/mcp/server.ts: cli may import only cli, core, shared and mcp/transports/',
      'src/shared/util.ts:1: imports src/system/exec.ts: shared may import only shared',
    ];
    for (const line of expected) expect(lines).toContain(line);
    expect(result.stderr).toMatch(/7 import\(s\) against the layer direction/);
  });

  it('fails on a cycle inside one layer and shows its path', async () => {
    const dir = await tree({
      ...clean,
      'core/volume-locks.ts': "import { resume } from './recovery/resume.js';\nexport const lock = resume;\n",
      'core/recovery/resume.ts':
        "import { lock } from '../volume-locks.js';\nexport const resume = () => lock;\n",
    });
    const result = await check(['--root', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'cycle of 2 files: src/core/recovery/resume.ts -> src/core/volume-locks.ts -> src/core/recovery/resume.ts',
    );
    expect(result.stderr).toMatch(/0 import\(s\) against the layer direction, 1 cycle\(s\)/);
  });

  it('finds a longer cycle, and one made by a type-only import', async () => {
    const dir = await tree({
      ...clean,
      'core/a.ts': "import { b } from './b.js';\nexport const a = b;\n",
      'core/b.ts': "import { c } from './c/index.js';\nexport const b = c;\n",
      'core/c/index.ts': "import type { a } from '../a.js';\nexport const c: typeof a | 1 = 1;\n",
    });
    const result = await check(['--root', dir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'cycle of 3 files: src/core/a.ts -> src/core/b.ts -> src/core/c/index.ts -> src/core/a.ts',
    );
  });
});
