import { execFile } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist', 'cli', 'index.js');
const enabled = requireComponents(['btrfs', 'mkfs.btrfs', 'restic']);

describe.runIf(enabled)('snapguard doctor', () => {
  let sandbox: BtrfsSandbox;
  let subvolume: string;

  async function doctor(config: object, extra: string[] = [], env: NodeJS.ProcessEnv = process.env) {
    const file = join(sandbox.dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, stringify(config));
    try {
      const { stdout } = await run(process.execPath, [cli, 'doctor', '--config', file, ...extra], {
        cwd: sandbox.dir,
        env,
        timeout: 60_000,
      });
      return { code: 0, stdout };
    } catch (error) {
      const failure = error as { code: number; stdout: string };
      return { code: failure.code, stdout: failure.stdout };
    }
  }
  const base = () => ({
    contextDir: 'context',
    stateDir: 'state',
    volumes: { containers: { backend: 'btrfs', path: subvolume } },
  });

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'doctor-cli');
    subvolume = await sandbox.subvolume('containers');
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('exit 0 when everything is right; --json lists every check', async () => {
    const text = await doctor(base());
    expect(text.code, text.stdout).toBe(0);
    expect(text.stdout).toMatch(/^ok {3}btrfs: btrfs-progs v/m);
    expect(text.stdout).toContain('doctor: all checks passed.');
    const json = await doctor(base(), ['--json']);
    const report = JSON.parse(json.stdout);
    expect(report.overall).toBe('ok');
    expect(report.checks.map((c: { id: string }) => c.id)).toEqual(
      expect.arrayContaining([
        'config',
        'tool:btrfs',
        'permissions',
        'dir:stateDir',
        'dir:contextDir',
        'volume:containers',
        'recoveries',
      ]),
    );
  });

  it('exit 1 with a warning: the metrics folder does not exist', async () => {
    const result = await doctor({
      ...base(),
      metrics: { textfile: join(sandbox.dir, 'missing', 'snapguard.prom') },
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^WARN metrics folder .*missing/m);
    expect(result.stdout).toMatch(/fix: Create/);
  });

  it('exit 2 when a volume path is not what the config says', async () => {
    const folder = join(sandbox.pool.mountPoint, 'not-a-subvolume');
    await mkdir(folder, { recursive: true });
    const result = await doctor({ ...base(), volumes: { containers: { backend: 'btrfs', path: folder } } });
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/^FAIL containers: .* is not the root of a btrfs subvolume/m);
  });

  it('exit 2 when a tool the config needs is missing (restic for a restic external copy)', async () => {
    const bin = join(sandbox.dir, 'only-btrfs');
    await mkdir(bin, { recursive: true });
    const btrfs = (await run('sh', ['-c', 'command -v btrfs'])).stdout.trim();
    await symlink(btrfs, join(bin, 'btrfs')).catch(() => undefined);
    const config = base();
    (config.volumes.containers as Record<string, unknown>).external = [
      { kind: 'restic', repository: join(sandbox.dir, 'repo') },
    ];
    const result = await doctor(config, [], { PATH: bin });
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/^FAIL restic: not installed; needed for restic external copies/m);
    expect(result.stdout).toMatch(/fix: Install restic/);
  });

  it('exit 2 with an invalid configuration, naming the key', async () => {
    const result = await doctor({ ...base(), retension: '7d' }, ['--json']);
    expect(result.code).toBe(2);
    const report = JSON.parse(result.stdout);
    expect(report.overall).toBe('critical');
    expect(report.checks[0].message).toMatch(/unknown key "retension"/);
  });
});
