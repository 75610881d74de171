import { readFileSync } from 'node:fs';

/**
 * The version in snapguard's package.json. The module may run from its own file in dist/core or
 * from a chunk of the bundled CLI (dist/cli/chunks), so it looks upwards for the package's manifest.
 */
function readVersion(): string {
  for (const up of ['../', '../../', '../../../']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(`${up}package.json`, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'snapguard' && pkg.version) return pkg.version;
    } catch {
      // not at this level
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
