import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const recoveryDir = fileURLToPath(new URL('../../src/core/recovery', import.meta.url));

const BACKEND_NAME_COMPARED = /backend (===|!==) '/;
const BACKEND_MODULE_IMPORTED = /from '\.\.\/\.\.\/backends\/(?!types\.js')|isZfsBackend/;

/** The .ts files of src/core/recovery, sorted. */
async function recoveryFiles(): Promise<string[]> {
  return (await readdir(recoveryDir)).filter((n) => n.endsWith('.ts')).sort();
}

/** Every line of src/core/recovery/*.ts that matches `pattern`, as "file:line: text". */
async function linesMatching(pattern: RegExp): Promise<string[]> {
  const hits: string[] = [];
  for (const name of await recoveryFiles()) {
    const lines = (await readFile(join(recoveryDir, name), 'utf8')).split('\n');
    lines.forEach((line, i) => {
      if (pattern.test(line)) hits.push(`${name}:${i + 1}: ${line.trim()}`);
    });
  }
  return hits;
}

describe('recovery asks the backend, never which storage a volume is on', () => {
  it('the scan reads the recovery modules, and its patterns catch the forms they forbid', async () => {
    // Without this, an emptied or moved directory or a pattern that never matches would pass below.
    expect(await recoveryFiles()).toEqual(
      expect.arrayContaining(['engine.ts', 'journal-check.ts', 'recover.ts']),
    );
    expect(BACKEND_NAME_COMPARED.test("if (volume.backend === 'zfs') {")).toBe(true);
    expect(BACKEND_NAME_COMPARED.test("if (item.backend !== 'btrfs') return;")).toBe(true);
    expect(BACKEND_MODULE_IMPORTED.test("import { createZfsBackend } from '../../backends/zfs.js';")).toBe(
      true,
    );
    expect(BACKEND_MODULE_IMPORTED.test('if (isZfsBackend(backend)) {')).toBe(true);
    expect(
      BACKEND_MODULE_IMPORTED.test("import type { SnapshotBackend } from '../../backends/types.js';"),
    ).toBe(false);
  });

  it('no file of core/recovery compares a backend name or item backend to choose what to do', async () => {
    // journal-check compares the backend recorded in a journal with the configuration: that is data.
    const hits = (await linesMatching(BACKEND_NAME_COMPARED)).filter(
      (hit) => !hit.startsWith('journal-check.ts:'),
    );
    expect(hits).toEqual([]);
  });

  it('no file of core/recovery imports a backend module other than the interface', async () => {
    const hits = await linesMatching(BACKEND_MODULE_IMPORTED);
    expect(hits).toEqual([]);
  });

  it('no file of core outside configuration, planning and discovery branches on which storage a volume is on', async () => {
    // config.ts validates per backend, the planner plans per backend and init.ts classifies what it
    // discovered: configuration data. journal-check compares a journal's recorded backend with the config.
    const allowed = /^(planner\/|config\.ts:|init\.ts:|locations\.ts:|recovery\/journal-check\.ts:)/;
    const coreDir = fileURLToPath(new URL('../../src/core', import.meta.url));
    const hits: string[] = [];
    const entries = await readdir(coreDir, { recursive: true, withFileTypes: true });
    for (const entry of entries.filter((e) => e.isFile() && e.name.endsWith('.ts'))) {
      const rel = join(entry.parentPath, entry.name).slice(coreDir.length + 1);
      const lines = (await readFile(join(entry.parentPath, entry.name), 'utf8')).split('\n');
      lines.forEach((line, i) => {
        if (/\b(backend|backend\.kind)\s*(===|!==)\s*'(btrfs|zfs|dir)'/.test(line))
          hits.push(`${rel}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(entries.length).toBeGreaterThan(50);
    expect(hits.filter((hit) => !allowed.test(hit))).toEqual([]);
  });
});
