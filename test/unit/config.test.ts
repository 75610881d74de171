import { mkdtemp, writeFile, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig, findConfigFile, loadConfig, requireVolume } from '../../src/core/config.js';
import { SnapguardError } from '../../src/core/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapguard-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function configError(raw: unknown): SnapguardError {
  try {
    buildConfig(raw, '/etc/snapguard', '/etc/snapguard/snapguard.yaml');
  } catch (error) {
    return error as SnapguardError;
  }
  throw new Error('expected the config to be refused');
}

describe('configuration', () => {
  it('applies defaults and resolves relative paths against the config folder', () => {
    const config = buildConfig(
      {
        contextDir: 'ctx',
        volumes: { containers: { backend: 'btrfs', path: 'pool/containers', minInterval: '1h' } },
      },
      '/srv/sg',
    );
    expect(config.contextDir).toBe('/srv/sg/ctx');
    expect(config.stateDir).toBe('/var/lib/snapguard');
    expect(config.confirm).toBe('elicit-or-token');
    expect(config.health.maxPoolUsage).toBe(0.9);
    expect(config.health.restoreTestMaxAge).toBe(35 * 86_400);
    const volume = requireVolume(config, 'containers');
    expect(volume.path).toBe('/srv/sg/pool/containers');
    expect(volume.snapshotDir).toBe('/srv/sg/pool/.snapshots/containers');
    expect(volume.minInterval).toBe(3600);
    expect(volume.tier).toBe('standard');
  });

  it('names the key and the fix for a wrong value', () => {
    const error = configError({ volumes: { containers: { backend: 'xfs', path: '/x' } } });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('volumes.containers.backend: must be one of btrfs, zfs, dir');
    expect(error.hint).toContain('/etc/snapguard/snapguard.yaml');
  });

  it('names unknown keys instead of ignoring a typo', () => {
    const error = configError({ volumes: { data: { backend: 'dir', path: '/x', snapshotdir: '/y' } } });
    expect(error.message).toContain('volumes.data: unknown key "snapshotdir"');
  });

  it('explains bad durations, ratios, volume ids and missing fields', () => {
    expect(
      configError({ volumes: { data: { backend: 'dir', path: '/x', minInterval: 'soon' } } }).message,
    ).toContain('volumes.data.minInterval: "soon" is not a duration');
    expect(configError({ health: { maxPoolUsage: 90 } }).message).toContain(
      'health.maxPoolUsage: must be a ratio of at most 1',
    );
    expect(configError({ volumes: { 'Bad Id': { backend: 'dir', path: '/x' } } }).message).toContain(
      'volume ids are lowercase',
    );
    expect(configError({ volumes: { tank: { backend: 'zfs' } } }).message).toContain(
      'volumes.tank.dataset: is required for the zfs backend',
    );
    expect(configError({ volumes: { data: { backend: 'btrfs' } } }).message).toContain(
      'volumes.data.path: is required for the btrfs backend',
    );
  });

  it('refuses a snapshot folder inside the volume (it would snapshot itself)', () => {
    const error = configError({
      volumes: { data: { backend: 'dir', path: '/srv/data', snapshotDir: '/srv/data/.snap' } },
    });
    expect(error.message).toContain('volumes.data.snapshotDir');
  });

  it('finds the config in the documented order', async () => {
    const cwd = join(dir, 'cwd');
    await mkdir(cwd, { recursive: true });
    await writeFile(join(cwd, 'snapguard.yaml'), 'volumes: {}\n');
    expect(findConfigFile({ explicit: 'x.yaml', env: { SNAPGUARD_CONFIG: '/e.yaml' }, cwd })?.file).toBe(
      join(cwd, 'x.yaml'),
    );
    expect(findConfigFile({ env: { SNAPGUARD_CONFIG: '/e.yaml' }, cwd })?.file).toBe('/e.yaml');
    expect(findConfigFile({ env: {}, cwd })?.file).toBe(join(cwd, 'snapguard.yaml'));
  });

  it('reports YAML syntax errors and missing files clearly', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'volumes: [\n');
    await expect(loadConfig({ explicit: file })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('is not valid YAML'),
    });
    await expect(loadConfig({ explicit: join(dir, 'missing.yaml') })).rejects.toMatchObject({
      code: 'CONFIG_NOT_FOUND',
    });
  });

  it('refuses unknown and malformed volume ids at call time', () => {
    const config = buildConfig({ volumes: { data: { backend: 'dir', path: '/x' } } }, '/');
    expect(() => requireVolume(config, 'other')).toThrow(/not configured/);
    expect(() => requireVolume(config, '../data')).toThrow(/not a valid volume id/);
  });
});
