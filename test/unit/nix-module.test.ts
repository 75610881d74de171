import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { requireWorking } from '../helpers/env.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const moduleFile = join(root, 'nix', 'module.nix');
const cli = join(root, 'dist', 'cli', 'index.js');
// nix-instantiate is often installed but unusable for a non-root user (it cannot create its
// per-user state under /nix/var): probe a trivial parse instead of trusting `command -v`.
const enabled = requireWorking('nix-instantiate', ['--parse', '--expr', '1']);

describe.runIf(enabled)('nix/module.nix', () => {
  it('parses with nix-instantiate --parse and defines services.snapguard with the orchestrator as a oneshot', async () => {
    const { stdout } = await run('nix-instantiate', ['--parse', moduleFile]);
    expect(stdout).toContain('services');
    expect(stdout).toMatch(/snapguard-orchestrate/);
    expect(stdout).toMatch(/Type = "oneshot"/);
    expect(stdout).toMatch(/"snapguard\/snapguard\.yaml"/);
  });

  it('a syntax error is caught by the same check', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sg-nix-'));
    try {
      const broken = join(dir, 'module.nix');
      await writeFile(broken, (await readFile(moduleFile, 'utf8')).replace('in\n{', 'in\n{{'));
      await expect(run('nix-instantiate', ['--parse', broken])).rejects.toThrow(/syntax error/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// Reads the module as text and asks the built CLI: needs no nix, so it runs for every user.
describe('nix/module.nix and the CLI', () => {
  it('calls only verbs and options the CLI has', async () => {
    const text = await readFile(moduleFile, 'utf8');
    const help = async (...args: string[]) => (await run(process.execPath, [cli, ...args, '--help'])).stdout;
    const calls: [string[], string[]][] = [
      [
        ['snapshot', 'create'],
        ['--type', '--config'],
      ],
      [['health'], ['--config']],
      [['restore-test'], ['--spread', '--config']],
      [['orchestrate'], ['--config']],
      [['mcp'], ['--http', '--token-file', '--no-auth']],
      [['mcp'], ['--config']],
    ];
    for (const [verb, options] of calls) {
      expect(text).toContain(`[ ${verb.map((v) => `"${v}"`).join(' ')}`);
      const shown = await help(...verb);
      for (const option of options) expect(shown, `${verb.join(' ')} ${option}`).toContain(option);
    }
  });
});
