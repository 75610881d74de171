import { execFile } from 'node:child_process';
import {
  access,
  constants,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
};

// npm pack of the built tree, then a global install into a private prefix. --prefer-offline: the
// dependencies come from npm's cache when they are there and from the registry when not, so a fresh
// user or a cache another install has pruned does not fail the test (plain --offline did, ENOTCACHED).
describe('npm pack and a global install', () => {
  let dir: string;
  let tarball: string;
  let prefix: string;
  let files: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sg-package-'));
    // --ignore-scripts: npm test built dist/ already, and the prepack build would replace dist/
    // under the tests that run the CLI at the same time. The prepack build is tested on a copy below.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
      cwd: root,
      timeout: 120_000,
    });
    const [packed] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    tarball = join(dir, packed.filename);
    files = packed.files.map((f) => f.path);
    prefix = join(dir, 'prefix');
    try {
      await run(
        'npm',
        ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
        {
          cwd: dir,
          timeout: 180_000,
        },
      );
    } catch (error) {
      throw new Error(
        `npm install -g of the packed tarball failed: ${String((error as { stderr?: string }).stderr ?? error)}`,
      );
    }
  }, 300_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('packs the built CLI, the skills, the docs and the history schema, and no tests or sources', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'dist/cli/index.js',
        'skills/backup-integration/SKILL.md',
        'skills/homelab-deployment/scripts/deploy-with-snapshot.sh',
        'docs/configuration.md',
        'context/backup-history.schema.json',
        'README.md',
        'package.json',
      ]),
    );
    expect(
      files.filter(
        (f) => f.startsWith('test/') || f.startsWith('src/') || (f.endsWith('.ts') && !f.endsWith('.d.ts')),
      ),
    ).toEqual([]);
  });

  it('installs a snapguard bin that runs: --version, and a snapshot on a plain folder', async () => {
    const bin = join(prefix, 'bin', 'snapguard');
    await access(bin, constants.X_OK);
    expect((await run(bin, ['--version'])).stdout.trim()).toBe(pkg.version);
    const data = join(dir, 'data', 'app');
    await mkdir(data, { recursive: true });
    await writeFile(join(data, 'settings.json'), '{"a":1}');
    const config = join(dir, 'snapguard.yaml');
    await writeFile(
      config,
      stringify({
        contextDir: 'context',
        stateDir: 'state',
        volumes: { app: { backend: 'dir', path: 'data/app' } },
      }),
    );
    const { stdout } = await run(
      bin,
      ['snapshot', 'create', 'app', '--type', 'manual', '--json', '--config', config],
      {
        cwd: dir,
      },
    );
    const created = JSON.parse(stdout).created[0];
    expect(await readFile(join(created.path, 'settings.json'), 'utf8')).toBe('{"a":1}');
    expect(await readdir(join(dir, 'context'))).toContain('backup-history.json');
  });

  it('installs the skill scripts executable, every one the source tree has', async () => {
    const relative = join('skills', 'homelab-deployment', 'scripts');
    const shipped = (await readdir(join(root, relative))).sort();
    // The list comes from the source tree, so a check over an empty folder would prove nothing.
    expect(shipped).toEqual(expect.arrayContaining(['deploy-with-snapshot.sh', 'protect-config-change.sh']));
    const installed = join(prefix, 'lib', 'node_modules', pkg.name, relative);
    expect((await readdir(installed)).sort()).toEqual(shipped);
    for (const script of shipped) await access(join(installed, script), constants.X_OK);
  });

  it('npm pack builds dist/ first (prepack): a tree without dist/ packs the built CLI', async () => {
    // A copy of the sources without dist/, sharing node_modules: what a fresh clone packs.
    const copy = join(dir, 'tree');
    await mkdir(copy);
    for (const entry of [
      'src',
      'scripts',
      'context',
      'docs',
      'skills',
      'package.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'README.md',
      'CHANGELOG.md',
    ])
      await cp(join(root, entry), join(copy, entry), { recursive: true });
    await symlink(await realpath(join(root, 'node_modules')), join(copy, 'node_modules'));
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: copy, timeout: 300_000 });
    const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as [{ files: { path: string }[] }];
    const paths = packed.files.map((f) => f.path);
    expect(paths).toContain('dist/cli/index.js');
    expect(paths.some((p) => p.startsWith('dist/cli/chunks/'))).toBe(true);
  }, 360_000);
});
