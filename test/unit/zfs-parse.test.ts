import { describe, expect, it } from 'vitest';
import {
  classifyZfsSnapshot,
  parseZfsGet,
  snapshotsFromList,
  snapshotsFromRows,
} from '../../src/backends/zfs.js';
import { normaliseRelativePath } from '../../src/shared/relative-path.js';
import { buildConfig } from '../../src/core/config.js';
import { isOwnedSnapshotName } from '../../src/core/naming.js';

describe('zfs output parsing', () => {
  const getOutput = [
    'tank/data\tcreation\t1795290999',
    'tank/data\tguid\t3810450871433072777',
    'tank/data\tuserrefs\t-',
    'tank/data/child\tcreation\t1795291001',
    'tank/data@s1\tcreation\t1795291000',
    'tank/data@s1\tguid\t11459368047346422058',
    'tank/data@s1\tused\t86016',
    'tank/data@s1\tuserrefs\t1',
    'tank/data/child@c1\tcreation\t1795291002',
    'tank/data@autosnap_2026-11-21_19:57:36_hourly\tcreation\t1795291056',
    '',
  ].join('\n');

  it('keeps only the snapshots of the dataset itself, with exact numbers', () => {
    const snaps = snapshotsFromRows('tank/data', parseZfsGet(getOutput));
    expect(snaps.map((s) => s.name)).toEqual(['s1', 'autosnap_2026-11-21_19:57:36_hourly']);
    expect(snaps[0]).toMatchObject({
      createdAt: new Date(1795291000 * 1000),
      guid: '11459368047346422058',
      usedBytes: 86016,
      userrefs: 1,
    });
  });

  it('does not mistake a sibling dataset with the same prefix for the dataset', () => {
    const rows = parseZfsGet('tank/data2@x\tcreation\t1\ntank/data@y\tcreation\t2\n');
    expect(snapshotsFromRows('tank/data', rows).map((s) => s.name)).toEqual(['y']);
  });

  it('parses `zfs list -H -p` rows', () => {
    const snaps = snapshotsFromList(
      'tank/data',
      'tank/data@a\t1700000000\t42\t0\t0\ntank/data@b\t1700000060\t43\t4096\t2\n',
    );
    expect(snaps.map((s) => [s.name, s.createdAt.toISOString(), s.userrefs])).toEqual([
      ['a', '2023-11-14T22:13:20.000Z', 0],
      ['b', '2023-11-14T22:14:20.000Z', 2],
    ]);
  });

  it('tells snapguard, sanoid, syncoid and other snapshots apart', () => {
    expect(classifyZfsSnapshot('data', 'data-manual-20261121-143000', isOwnedSnapshotName)).toBe('snapguard');
    expect(classifyZfsSnapshot('data', 'other-manual-20261121-143000', isOwnedSnapshotName)).toBe('foreign');
    expect(classifyZfsSnapshot('data', 'autosnap_2026-11-21_19:57:36_hourly', isOwnedSnapshotName)).toBe(
      'sanoid',
    );
    expect(
      classifyZfsSnapshot('data', 'syncoid_host_2026-11-21:19:57:32-GMT00:00', isOwnedSnapshotName),
    ).toBe('syncoid');
    expect(classifyZfsSnapshot('data', 'zfs-auto-snap_daily-2026-11-21-0000', isOwnedSnapshotName)).toBe(
      'foreign',
    );
  });

  it('asks the owned-name test it is given, not a naming rule of its own', () => {
    const ownsNothing = () => false;
    expect(classifyZfsSnapshot('data', 'data-manual-20261121-143000', ownsNothing)).toBe('foreign');
    const asked: [string, string][] = [];
    const ownsEverything = (volumeId: string, name: string) => {
      asked.push([volumeId, name]);
      return true;
    };
    expect(classifyZfsSnapshot('data', 'autosnap_2026-11-21_19:57:36_hourly', ownsEverything)).toBe(
      'snapguard',
    );
    expect(asked).toEqual([['data', 'autosnap_2026-11-21_19:57:36_hourly']]);
  });
});

describe('zfs volume configuration', () => {
  it('refuses snapshotDir on a zfs volume and says why', () => {
    expect(() =>
      buildConfig({ volumes: { data: { backend: 'zfs', dataset: 'tank/data', snapshotDir: '/x' } } }, '/tmp'),
    ).toThrow(/volumes\.data\.snapshotDir: has no meaning for the zfs backend/);
  });

  it('derives path from the dataset and points snapshotDir at .zfs/snapshot', () => {
    const config = buildConfig({ volumes: { data: { backend: 'zfs', dataset: 'tank/data' } } }, '/tmp');
    expect(config.volumes.data).toMatchObject({
      path: '/tank/data',
      snapshotDir: '/tank/data/.zfs/snapshot',
    });
  });

  it('requires a dataset for a zfs volume', () => {
    expect(() => buildConfig({ volumes: { data: { backend: 'zfs', path: '/x' } } }, '/tmp')).toThrow(
      /volumes\.data\.dataset: is required for the zfs backend/,
    );
  });
});

describe('restore path validation', () => {
  // The zfs backend's path restore uses core's validator: the same paths are refused.
  it.each(['..', '../etc', 'a/../../b', '/etc/passwd', 'a\0b', ''])('refuses %j', (path) => {
    expect(() => normaliseRelativePath(path)).toThrow(/not a relative path inside the volume/);
  });

  it('normalises a harmless relative path; "." is the whole tree, as in a file restore', () => {
    expect(normaliseRelativePath('dir/./sub//file')).toBe('dir/sub/file');
    expect(normaliseRelativePath('dir/sub/')).toBe('dir/sub');
    expect(normaliseRelativePath('.')).toBe('.');
    expect(normaliseRelativePath('./')).toBe('.');
  });
});
