import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const recoveryDir = fileURLToPath(new URL('../../src/core/recovery', import.meta.url));

/** Every line of src/core/recovery/*.ts that matches `pattern`, as "file:line: text". */
async function linesMatching(pattern: RegExp): Promise<string[]> {
  const hits: string[] = [];
  for (const name of (await readdir(recoveryDir)).filter((n) => n.endsWith('.ts')).sort()) {
    const lines = (await readFile(join(recoveryDir, name), 'utf8')).split('\n');
    lines.forEach((line, i) => {
      if (pattern.test(line)) hits.push(`${name}:${i + 1}: ${line.trim()}`);
    });
  }
  return hits;
}

describe('recovery asks the backend, never which storage a volume is on', () => {
  it('no file of core/recovery compares a backend name or item backend to choose what to do', async () => {
    // journal-check compares the backend recorded in a journal with the configuration: that is data.
    const hits = (await linesMatching(/backend (===|!==) '/)).filter(
      (hit) => !hit.startsWith('journal-check.ts:'),
    );
    expect(hits).toEqual([]);
  });

  it('no file of core/recovery imports a backend module other than the interface', async () => {
    const hits = await linesMatching(/from '\.\.\/\.\.\/backends\/(?!types\.js')|isZfsBackend/);
    expect(hits).toEqual([]);
  });
});
