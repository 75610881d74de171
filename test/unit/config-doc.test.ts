import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

// Reads the built dist (npm test builds first), like npm run gen:docs does.
describe('docs/configuration.md', () => {
  it('is the current output of npm run gen:docs (regenerate and commit when the schema changes)', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'scripts', 'gen-config-doc.mjs'), '--check'], {
      cwd: root,
    });
    expect(stdout).toMatch(/is current/);
  });

  it('documents every key with a type, its default and a meaning', async () => {
    const text = await readFile(join(root, 'docs', 'configuration.md'), 'utf8');
    expect(text).not.toContain('(undocumented)');
    expect(text).toMatch(/\| `volumes\.<id>\.backend` \| `btrfs`, `zfs`, `dir` \| \(required\) \| /);
    expect(text).toMatch(/\| `volumes\.<id>\.services\.settleTime` \| duration \| `2s` \| /);
    expect(text).toMatch(/\| `health\.restoreTestMaxAge` \| duration \| `35d` \| /);
    expect(text).toMatch(/\| `health\.maxPoolUsage` \| number \| `0\.9` \| /);
  });
});
