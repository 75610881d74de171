import { describe, expect, it } from 'vitest';
import { formatSnapshotName, nextFreeName, parseSnapshotName } from '../../src/core/naming.js';

const at = new Date(Date.UTC(2026, 10, 21, 14, 30, 0));

describe('snapshot names', () => {
  it('formats the documented layout in UTC', () => {
    expect(formatSnapshotName('containers', 'pre-deploy', 'immich', at)).toBe(
      'containers-pre-deploy-immich-20261121-143000',
    );
    expect(formatSnapshotName('containers', 'manual', undefined, at)).toBe(
      'containers-manual-20261121-143000',
    );
    expect(formatSnapshotName('containers', 'manual', undefined, at, 2)).toBe(
      'containers-manual-20261121-143000-2',
    );
  });

  it('parses what it formats, including volumes and operations with dashes', () => {
    for (const [volume, operation, seq] of [
      ['containers', 'deploy-immich', 1],
      ['subvol7-containers', 'deploy-immich-v2', 3],
      ['a.b_c', undefined, 1],
      ['x', '20261121-143000', 2],
    ] as const) {
      const name = formatSnapshotName(volume, 'pre-change', operation, at, seq);
      expect(parseSnapshotName(volume, name)).toEqual({
        volume,
        type: 'pre-change',
        operation,
        createdAt: at,
        sequence: seq,
      });
    }
  });

  it('reads names of other tools and other volumes as not owned', () => {
    for (const name of [
      'containers.20261120T0200', // btrbk
      'autosnap_2026-11-21_14:00:00_hourly', // sanoid
      '1', // snapper
      'containers-pre-deploy', // no time
      'containers-weekly-20261121-143000', // unknown type
      'other-pre-deploy-x-20261121-143000', // other volume
      'containers-pre-deploy-x-20261321-143000', // month 13
      'containers-pre-deploy-x-20260230-143000', // 30 February
      'containers-manual-20261121-143000-1', // suffix 1 is never written
      'containers-manual-20261121-143000-02',
      'containers-manual--20261121-143000',
    ]) {
      expect(parseSnapshotName('containers', name), name).toBeUndefined();
    }
  });

  it('gives a second snapshot in the same second a -2 suffix, then -3', () => {
    const first = formatSnapshotName('v', 'manual', undefined, at);
    expect(nextFreeName('v', 'manual', undefined, at, new Set())).toBe(first);
    expect(nextFreeName('v', 'manual', undefined, at, new Set([first]))).toBe(`${first}-2`);
    expect(nextFreeName('v', 'manual', undefined, at, new Set([first, `${first}-2`]))).toBe(`${first}-3`);
  });
});
