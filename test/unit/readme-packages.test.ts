import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The package names of every `apt-get install` line in a text (options and version pins dropped). */
function aptPackages(text: string): Set<string> {
  const names = new Set<string>();
  const joined = text.replace(/\\\n/g, ' ');
  for (const line of joined.split('\n')) {
    const at = line.indexOf('apt-get install');
    if (at < 0) continue;
    for (const word of line
      .slice(at + 'apt-get install'.length)
      .trim()
      .split(/\s+/)) {
      if (!word || word.startsWith('-')) continue;
      // An option's argument such as DPkg::Lock::Timeout=300 fails the name pattern below.
      const name = word.replace(/^"/, '').replace(/=.*$/, '');
      if (/^[a-z0-9][a-z0-9.+-]*$/.test(name)) names.add(name);
    }
  }
  return names;
}

describe('the README names the packages the tests use', () => {
  it('its apt-get line installs exactly what .ci/run installs', async () => {
    const readme = aptPackages(await readFile(`${root}/README.md`, 'utf8'));
    const ci = aptPackages(await readFile(`${root}/.ci/run`, 'utf8'));
    expect(ci.size).toBeGreaterThan(10);
    expect([...readme].sort()).toEqual([...ci].sort());
  });
});
