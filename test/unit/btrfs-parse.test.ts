import { describe, expect, it } from 'vitest';
import { parseSubvolumeList, timeFromName } from '../../src/backends/btrfs.js';

describe('btrfs subvolume list parsing', () => {
  it('reads the -s form with otime (UTC when TZ=UTC)', () => {
    const [entry] = parseSubvolumeList(
      'ID 257 gen 7 cgen 7 top level 5 otime 2026-11-21 19:50:46 parent_uuid 15c6d108-7b4d-9442-be1d-c1b99cde8877 uuid c1d1218e-b786-7442-9f90-c085ffb807d3 path .snapshots/data/x\n',
    );
    expect(entry).toEqual({
      id: '257',
      generation: 7,
      otime: new Date('2026-11-21T19:50:46Z'),
      parentUuid: '15c6d108-7b4d-9442-be1d-c1b99cde8877',
      receivedUuid: undefined,
      uuid: 'c1d1218e-b786-7442-9f90-c085ffb807d3',
      path: '.snapshots/data/x',
    });
  });

  it('reads the -u -q -R form of a received copy, with padded "-" fields', () => {
    const [received, local] = parseSubvolumeList(
      [
        'ID 256 gen 9 top level 5 parent_uuid -                                    received_uuid 8e715ace-f725-ec4f-bbec-e90b4bedb5c7 uuid 42f5f679-2441-1143-ac9d-f886c8f0e184 path ext/d-manual-20261121-100000',
        'ID 257 gen 9 top level 5 parent_uuid 42f5f679-2441-1143-ac9d-f886c8f0e184 received_uuid -                                    uuid 4bda8162-da84-a546-9ee5-3ad9ac8c3a66 path ext/rw copy with spaces',
      ].join('\n'),
    );
    expect(received).toMatchObject({
      id: '256',
      parentUuid: undefined,
      receivedUuid: '8e715ace-f725-ec4f-bbec-e90b4bedb5c7',
      uuid: '42f5f679-2441-1143-ac9d-f886c8f0e184',
      otime: undefined,
    });
    expect(local).toMatchObject({
      parentUuid: '42f5f679-2441-1143-ac9d-f886c8f0e184',
      receivedUuid: undefined,
      path: 'ext/rw copy with spaces',
    });
  });

  it('ignores lines that are not subvolume entries', () => {
    expect(parseSubvolumeList('\nWARNING: something\nID x\n')).toEqual([]);
  });

  it('reads the time at the end of a name, with or without a -N after it, and nothing else', () => {
    const cases: [string, string | undefined][] = [
      ['data-manual-20260101-120000', '2026-01-01T12:00:00.000Z'],
      ['data-manual-20260101-120000-2', '2026-01-01T12:00:00.000Z'],
      ['data-pre-op-x-20261231-235959-1234', '2026-12-31T23:59:59.000Z'],
      ['20260101-120000', '2026-01-01T12:00:00.000Z'],
      ['x20260101-120000', '2026-01-01T12:00:00.000Z'],
      ['data-20261301-000000', '2027-01-01T00:00:00.000Z'],
      ['data-20260101-12000', undefined],
      ['data-2026010-120000', undefined],
      ['data-20260101_120000', undefined],
      ['data-20260101-120000-', undefined],
      ['data-20260101-120000-x', undefined],
      ['data-20260101-120000-2-3', undefined],
      ['@home', undefined],
      ['', undefined],
      ['-', undefined],
    ];
    for (const [name, expected] of cases) {
      expect(timeFromName(name)?.toISOString(), name).toBe(expected);
      // The same answers as the regular expression it replaces.
      const m = /(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?:-\d+)?$/.exec(name);
      const byRegex = m
        ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)).toISOString()
        : undefined;
      expect(byRegex, name).toBe(expected);
    }
  });
});
