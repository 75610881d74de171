import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBuiltCli } from '../helpers/cli.js';

// Start-up cost is measured in `npm run bench`; these tests check what decides it: which code a
// verb loads, and that the bundled CLI still knows its own version.
describe('CLI start-up', () => {
  let dir: string;
  let loadLog: string;
  let hook: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-startup-'));
    loadLog = join(dir, 'loaded.txt');
    // A module hook that writes every module URL the process loads, one per line.
    await writeFile(
      join(dir, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(process.env.SNAPGUARD_TEST_LOAD_LOG, url + '\\n');
  return next(url, context);
}
`,
    );
    hook = join(dir, 'register.mjs');
    await writeFile(
      hook,
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`,
    );
    await writeFile(
      join(dir, 'snapguard.yaml'),
      'contextDir: ctx\nstateDir: state\nvolumes:\n  data: { backend: dir, path: data }\n',
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function loadedFiles(args: string[]): Promise<{ code: number | null; files: string[] }> {
    await rm(loadLog, { force: true });
    const run = await runBuiltCli(args, {
      cwd: dir,
      env: { NODE_OPTIONS: `--import ${hook}`, SNAPGUARD_TEST_LOAD_LOG: loadLog, SNAPGUARD_CONFIG: '' },
    });
    const urls = (await readFile(loadLog, 'utf8')).split('\n').filter((url) => url.startsWith('file:'));
    return { code: run.code, files: urls.map((url) => new URL(url).pathname) };
  }

  async function loadsMcpStack(files: string[]): Promise<boolean> {
    for (const file of files) {
      if (file.includes('@modelcontextprotocol')) return true;
      if (/\bMcpServer\b|StreamableHTTPServerTransport/.test(await readFile(file, 'utf8'))) return true;
    }
    return false;
  }

  it('--version prints the version of package.json', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const run = await runBuiltCli(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(pkg.version);
  });

  it('history and snapshot list load neither the MCP SDK nor the HTTP transport; mcp --help does', async () => {
    const history = await loadedFiles(['history', '--config', 'snapguard.yaml']);
    expect(history.code).toBe(0);
    expect(await loadsMcpStack(history.files)).toBe(false);
    const list = await loadedFiles(['snapshot', 'list', '--config', 'snapguard.yaml']);
    expect(list.code).toBe(0);
    expect(await loadsMcpStack(list.files)).toBe(false);
    // The check is able to see the stack when it is loaded.
    const mcp = await loadedFiles(['mcp', '--help']);
    expect(mcp.code).toBe(0);
    expect(await loadsMcpStack(mcp.files)).toBe(true);
  });

  it('--version loads no command module and no dependency but commander', async () => {
    const version = await loadedFiles(['--version']);
    expect(version.code).toBe(0);
    const own = version.files.filter((file) => !file.includes('/node_modules/') && !file.endsWith('.mjs'));
    // The entry, the commander chunk and the version chunk (or, unbundled, index.js and version.js).
    expect(own.length).toBeLessThanOrEqual(3);
    for (const file of own) expect(await readFile(file, 'utf8')).not.toMatch(/createSnapshots|loadConfig/);
  });

  it('snapshot create loads the recovery code only when an interrupted recovery is journaled', async () => {
    await mkdir(join(dir, 'data'), { recursive: true });
    await writeFile(join(dir, 'data', 'f.txt'), 'one\n');
    const create = await loadedFiles(['snapshot', 'create', 'data', '--config', 'snapguard.yaml']);
    expect(create.code).toBe(0);
    const own = create.files.filter((file) => !file.includes('/node_modules/') && !file.endsWith('.mjs'));
    const recoveryLoaded = async (files: string[]) => {
      for (const file of files)
        if (/function resolveUnfinishedRecoveries\b/.test(await readFile(file, 'utf8'))) return true;
      return false;
    };
    expect(await recoveryLoaded(own)).toBe(false);
    // The snapshot was taken all the same.
    const list = await runBuiltCli(['snapshot', 'list', 'data', '--json', '--config', 'snapguard.yaml'], {
      cwd: dir,
      env: { SNAPGUARD_CONFIG: '' },
    });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/"volume":\s*"data"/);
  });

  it('help still lists every verb', async () => {
    const run = await runBuiltCli(['--help']);
    expect(run.code).toBe(0);
    for (const verb of [
      'snapshot',
      'complete',
      'history',
      'mcp',
      'demo',
      'init',
      'recover',
      'wrap',
      'doctor',
    ]) {
      expect(run.stdout).toContain(verb);
    }
    for (const verb of [
      'orchestrate',
      'restore-test',
      'health',
      'units',
      'prune',
      'pin',
      'unpin',
      'plan',
      'report',
    ]) {
      expect(run.stdout).toContain(verb);
    }
  });
});
