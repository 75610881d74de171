import { mkdtemp, writeFile, rm, mkdir, symlink } from 'node:fs/promises';
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

describe('configuration paths are normalised before every check', () => {
  it('normalises trailing slashes, "." and doubled slashes in every path', () => {
    const config = buildConfig(
      {
        contextDir: '/srv//ctx/',
        stateDir: '/var/./lib/snapguard/',
        volumes: {
          app: { backend: 'dir', path: '/x/./app/', snapshotDir: '//snaps//app/' },
          web: { backend: 'btrfs', path: '/x//web' },
        },
      },
      '/etc/snapguard',
    );
    expect(config.contextDir).toBe('/srv/ctx');
    expect(config.stateDir).toBe('/var/lib/snapguard');
    expect(requireVolume(config, 'app').path).toBe('/x/app');
    expect(requireVolume(config, 'app').snapshotDir).toBe('/snaps/app');
    expect(requireVolume(config, 'web').path).toBe('/x/web');
    expect(requireVolume(config, 'web').snapshotDir).toBe('/x/.snapshots/web');
  });

  it('refuses a volume at the root of the filesystem, however it is written', () => {
    for (const path of ['/', '//', '/./', '/x/..']) {
      const error = configError({ volumes: { data: { backend: 'dir', path, snapshotDir: '/snaps' } } });
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toContain('volumes.data.path');
      expect(error.message).toContain('the root of the filesystem');
    }
  });

  it('refuses a snapshot folder inside the volume when written with a trailing slash or "."', () => {
    for (const [path, snapshotDir] of [
      ['/srv/data/', '/srv/data/.snap'],
      ['/srv/./data', '/srv/data/.snap/'],
      ['/srv/data', '/srv//data/snaps'],
    ]) {
      const error = configError({ volumes: { data: { backend: 'dir', path, snapshotDir } } });
      expect(error.message).toContain('volumes.data.snapshotDir');
      expect(error.message).toContain('overlaps the volume path /srv/data');
    }
  });

  it('refuses two volumes on one path, naming both', () => {
    const error = configError({
      volumes: {
        app: { backend: 'btrfs', path: '/pool/app' },
        copy: { backend: 'btrfs', path: '/pool/./app/', snapshotDir: '/pool/.other' },
      },
    });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('volumes.app');
    expect(error.message).toContain('volumes.copy');
    expect(error.message).toContain('/pool/app');
  });

  it('refuses two zfs volumes on one dataset', () => {
    const error = configError({
      volumes: {
        a: { backend: 'zfs', dataset: 'tank/data' },
        b: { backend: 'zfs', dataset: 'tank/data' },
      },
    });
    expect(error.message).toContain('volumes.a');
    expect(error.message).toContain('volumes.b');
  });

  it('refuses a volume path that is a symlink, naming the real path', async () => {
    const real = join(dir, 'real-volume');
    const link = join(dir, 'link-volume');
    await mkdir(real, { recursive: true });
    await symlink(real, link);
    try {
      const error = configError({
        volumes: { data: { backend: 'btrfs', path: link, snapshotDir: join(dir, 'snaps') } },
      });
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toContain('volumes.data.path');
      expect(error.message).toContain('is a symlink');
      expect(error.hint).toContain(real);
    } finally {
      await rm(link, { force: true });
    }
  });

  it('refuses volume ids that prefix one another in one snapshot folder, naming both and the fix', () => {
    const error = configError({
      volumes: {
        app: { backend: 'btrfs', path: '/pool/app', snapshotDir: '/pool/.snapshots' },
        'app-manual': { backend: 'btrfs', path: '/pool/app-manual', snapshotDir: '/pool/.snapshots/' },
      },
    });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('"app"');
    expect(error.message).toContain('"app-manual"');
    expect(error.hint).toContain('snapshotDir');
  });

  it('accepts prefixing ids with their own snapshot folders, and unrelated ids sharing one', () => {
    const config = buildConfig(
      {
        volumes: {
          app: { backend: 'btrfs', path: '/pool/app' },
          'app-manual': { backend: 'btrfs', path: '/pool/app-manual' },
          web: { backend: 'btrfs', path: '/pool/web', snapshotDir: '/pool/.shared' },
          db: { backend: 'btrfs', path: '/pool/db', snapshotDir: '/pool/.shared' },
        },
      },
      '/',
    );
    expect(Object.keys(config.volumes)).toHaveLength(4);
  });

  it('shows the bad value and what was expected', () => {
    expect(configError({ health: { maxPoolUsage: '90%' } }).message).toContain(
      'health.maxPoolUsage: expected a number between 0 and 1, got "90%" (write 0.9 for 90%)',
    );
    expect(configError({ health: { maxPoolUsage: 90 } }).message).toContain(', got 90');
    expect(
      configError({ volumes: { data: { backend: 'dir', path: '/x', minInterval: true } } }).message,
    ).toContain(
      'volumes.data.minInterval: expected a duration like 30s, 5m, 1h, 7d or 4w, or a number of seconds, got true',
    );
    expect(configError({ volumes: { data: { backend: 'dir', path: 7 } } }).message).toContain(
      'volumes.data.path: expected a string, got 7',
    );
  });

  it('suggests the key or value that was probably meant', () => {
    expect(
      configError({ volumes: { data: { backend: 'dir', path: '/x', minIntervall: '1h' } } }).message,
    ).toContain('volumes.data: unknown key "minIntervall"; did you mean minInterval?');
    expect(
      configError({ volumes: { data: { backend: 'dir', path: '/x', snapshotdir: '/y' } } }).message,
    ).toContain('did you mean snapshotDir?');
    expect(configError({ helth: {} }).message).toContain('unknown key "helth"; did you mean health?');
    expect(configError({ volumes: { data: { backend: 'btfrs', path: '/x' } } }).message).toContain(
      'volumes.data.backend: must be one of btrfs, zfs, dir, got "btfrs"; did you mean btrfs?',
    );
    expect(
      configError({ volumes: { data: { backend: 'dir', path: '/x', tier: 'importnt' } } }).message,
    ).toContain('did you mean important?');
    // Nothing close: no guess.
    expect(configError({ volumes: { data: { backend: 'dir', path: '/x', colour: 1 } } }).message).toContain(
      'unknown key "colour"; remove it or check the spelling against docs/configuration.md',
    );
  });

  it('points at the indentation when a key is on the wrong level', () => {
    expect(configError({ minInterval: '1h' }).message).toContain(
      'unknown key "minInterval"; "minInterval" belongs under volumes.<id>; check its indentation',
    );
    expect(
      configError({
        volumes: { data: { backend: 'dir', path: '/x', services: { units: [], minInterval: '1h' } } },
      }).message,
    ).toContain('volumes.data.services: unknown key "minInterval"; "minInterval" belongs under volumes.<id>');
    expect(configError({ health: { maxPoolUsage: 0.8 }, maxSnapshotShare: 0.2 }).message).toContain(
      '"maxSnapshotShare" belongs under health; check its indentation',
    );
    const flat = configError({ volumes: { backend: 'dir', path: '/x' } }).message;
    expect(flat).toContain('volumes.backend: expected a mapping of keys, got "dir"');
    expect(flat).toContain('"backend" is read as a name under volumes, but it is a key of each entry');
  });
});
