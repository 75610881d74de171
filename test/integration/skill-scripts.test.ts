import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const execFileP = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const scripts = join(root, 'skills', 'homelab-deployment', 'scripts');
const enabled = requireComponents(['btrfs', 'mkfs.btrfs', 'jq']);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe.runIf(enabled)('homelab-deployment scripts on a real btrfs volume', () => {
  let sandbox: BtrfsSandbox;
  let volumePath: string;
  let configFile: string;
  let fullConfigFile: string;
  let env: NodeJS.ProcessEnv;

  async function script(name: string, args: string[], config = configFile): Promise<Run> {
    try {
      const { stdout, stderr } = await execFileP(join(scripts, name), args, {
        env: { ...env, SNAPGUARD_CONFIG: config },
        cwd: sandbox.dir,
        timeout: 90_000,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failure = error as { code: number; stdout: string; stderr: string };
      return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
    }
  }

  async function history(): Promise<{
    snapshots: { operation: string; type: string; outcome: string; snapshot_name: string }[];
    recoveries: { restored_snapshot: string; outcome: string }[];
  }> {
    return JSON.parse(await readFile(join(sandbox.dir, 'context', 'backup-history.json'), 'utf8'));
  }

  const file = (name: string) => readFile(join(volumePath, name), 'utf8');

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(512, 'skills');
    volumePath = await sandbox.subvolume('containers');
    await writeFile(join(volumePath, 'app.conf'), 'mode=good\n');
    await writeFile(join(volumePath, 'version'), 'v1\n');
    const base = {
      contextDir: join(sandbox.dir, 'context'),
      stateDir: join(sandbox.dir, 'state'),
      host: 'skills',
      confirm: 'never',
      volumes: { containers: { backend: 'btrfs', path: volumePath, tier: 'critical' } },
    };
    configFile = join(sandbox.dir, 'snapguard.yaml');
    await writeFile(configFile, stringify(base));
    // A pool at 1% already counts as full for this config: a real critical pre-flight finding.
    fullConfigFile = join(sandbox.dir, 'full.yaml');
    await writeFile(fullConfigFile, stringify({ ...base, health: { maxPoolUsage: 0.0001 } }));
    // `snapguard` on PATH is the built CLI, as after a global install.
    const bin = join(sandbox.dir, 'bin');
    await mkdir(bin);
    await writeFile(
      join(bin, 'snapguard'),
      `#!/bin/sh\nexec "${process.execPath}" "${join(root, 'dist', 'cli', 'index.js')}" "$@"\n`,
    );
    await chmod(join(bin, 'snapguard'), 0o755);
    env = { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('deploy-with-snapshot: a validated deployment keeps the change and marks the pre-deploy snapshot success', async () => {
    const result = await script('deploy-with-snapshot.sh', [
      '--volume',
      'containers',
      '--service',
      'Immich',
      '--validate',
      `grep -q v2 ${join(volumePath, 'version')}`,
      '--',
      'sh',
      '-c',
      `echo v2 > ${join(volumePath, 'version')}`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(await file('version')).toBe('v2\n');
    const entry = (await history()).snapshots.find((s) => s.operation === 'deploy-immich');
    expect(entry).toMatchObject({ type: 'pre-deploy', outcome: 'success' });
    expect(result.stderr).toMatch(/immich|Immich/);
  });

  it('deploy-with-snapshot: a deployment that fails validation is rolled back to the pre-deploy state', async () => {
    const result = await script('deploy-with-snapshot.sh', [
      '--volume',
      'containers',
      '--service',
      'jellyfin',
      '--force',
      '--validate',
      `grep -q mode=good ${join(volumePath, 'app.conf')}`,
      '--',
      'sh',
      '-c',
      `echo mode=broken > ${join(volumePath, 'app.conf')}; echo v3 > ${join(volumePath, 'version')}`,
    ]);
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBe(3);
    expect(await file('app.conf')).toBe('mode=good\n');
    expect(await file('version')).toBe('v2\n');
    const h = await history();
    const entry = h.snapshots.find((s) => s.operation === 'deploy-jellyfin');
    expect(entry).toMatchObject({ type: 'pre-deploy', outcome: 'failed' });
    expect(h.recoveries.map((r) => r.restored_snapshot)).toContain(entry!.snapshot_name);
    expect(result.stderr).toMatch(/rolled back/);
  });

  it('deploy-with-snapshot: a critical pre-flight health check stops before anything runs (exit 2)', async () => {
    const marker = join(sandbox.dir, 'deploy-ran');
    const before = (await history()).snapshots.length;
    const result = await script(
      'deploy-with-snapshot.sh',
      ['--volume', 'containers', '--service', 'nextcloud', '--', 'touch', marker],
      fullConfigFile,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/pre-flight health check of containers is critical/);
    await expect(readFile(marker)).rejects.toThrow(/ENOENT/);
    expect((await history()).snapshots.length).toBe(before);
  });

  it('protect-config-change: a new file that fails validation is undone; one that passes is kept', async () => {
    const target = join(volumePath, 'app.conf');
    const bad = join(sandbox.dir, 'bad.conf');
    const good = join(sandbox.dir, 'good.conf');
    await writeFile(bad, 'mode=typo\n');
    await writeFile(good, 'mode=good\nworkers=4\n');
    const validate = `grep -q ^mode=good ${target}`;
    const failed = await script('protect-config-change.sh', [
      '--volume',
      'containers',
      '--file',
      target,
      '--from',
      bad,
      '--validate',
      validate,
    ]);
    expect(failed.code).not.toBe(0);
    expect(failed.code).not.toBe(3);
    expect(await file('app.conf')).toBe('mode=good\n');
    expect(failed.stderr).toMatch(/rolled back/);

    const passed = await script('protect-config-change.sh', [
      '--volume',
      'containers',
      '--file',
      target,
      '--from',
      good,
      '--validate',
      validate,
    ]);
    expect(passed.code, passed.stderr).toBe(0);
    expect(await file('app.conf')).toBe('mode=good\nworkers=4\n');
    const entries = (await history()).snapshots.filter((s) => s.operation === 'config-app.conf');
    expect(entries.map((e) => [e.type, e.outcome])).toEqual([
      ['pre-change', 'failed'],
      ['pre-change', 'success'],
    ]);
  });

  it('protect-config-change: an in-place edit command is protected the same way', async () => {
    const target = join(volumePath, 'app.conf');
    const result = await script('protect-config-change.sh', [
      '--volume',
      'containers',
      '--file',
      target,
      '--name',
      'raise-workers',
      '--validate',
      `grep -q ^workers=8 ${target}`,
      '--',
      'sed',
      '-i',
      's/workers=4/workers=8/',
      target,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(await file('app.conf')).toBe('mode=good\nworkers=8\n');
  });

  it('refuses bad usage with exit 3 and changes nothing', async () => {
    const before = JSON.stringify(await history());
    expect((await script('deploy-with-snapshot.sh', ['--volume', 'containers', '--', 'true'])).code).toBe(3);
    expect(
      (await script('deploy-with-snapshot.sh', ['--volume', 'containers', '--service', 'a b', '--', 'true']))
        .code,
    ).toBe(3);
    expect(
      (
        await script('protect-config-change.sh', [
          '--volume',
          'containers',
          '--file',
          join(volumePath, 'app.conf'),
          '--validate',
          'true',
        ])
      ).code,
    ).toBe(3);
    expect(JSON.stringify(await history())).toBe(before);
  });
});
