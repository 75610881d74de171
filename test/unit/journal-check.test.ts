import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { journalProblems } from '../../src/core/recovery/journal-check.js';

const config = buildConfig(
  {
    volumes: {
      app: { backend: 'btrfs', path: '/pool/app', services: { units: ['app.service'] } },
    },
  },
  '/',
);
const file = '/var/lib/snapguard/recovery/rec-20261121-143000-abc.json';

function journal(item: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  return {
    version: 1,
    recoveryId: 'rec-20261121-143000-abc',
    mode: 'files',
    startedAt: '2026-11-21T14:30:00Z',
    pid: 123,
    reason: null,
    operationId: null,
    items: [
      {
        volume: 'app',
        backend: 'btrfs',
        path: '/pool/app',
        snapshotDir: '/pool/.snapshots/app',
        target: 'app-manual-20261121-120000',
        safety: 'app-pre-recover-20261121-143000',
        paths: ['etc/app.yml', '.'],
        units: ['app.service'],
        done: [],
        ...item,
      },
    ],
    ...top,
  };
}

describe('a recovery journal is replayed only when it describes a configured volume', () => {
  it('accepts the journal a recovery of this configuration writes', () => {
    expect(journalProblems(config, journal(), file)).toEqual([]);
  });

  it.each([
    ['an unknown volume', { volume: 'other' }, /volume "other" is not configured/],
    ['another path', { path: '/etc' }, /path \/etc is not the configured \/pool\/app/],
    ['another snapshotDir', { snapshotDir: '/tmp/x' }, /snapshotDir \/tmp\/x is not the configured/],
    ['another backend', { backend: 'dir' }, /backend "dir"/],
    ['a foreign target', { target: '../../etc' }, /target/],
    ['a safety name that is not pre-recover', { safety: 'app-manual-20261121-143000' }, /safety/],
    ['a path with ..', { paths: ['../../etc/shadow'] }, /paths holds a path/],
    ['an absolute path', { paths: ['/etc/shadow'] }, /paths holds a path/],
    ['a unit that is not configured', { units: ['sshd.service'] }, /units are not/],
  ])('refuses %s', (_what, item, pattern) => {
    expect(journalProblems(config, journal(item), file).join('; ')).toMatch(pattern);
  });

  it('refuses a recoveryId that does not match the file name, and an empty journal', () => {
    expect(journalProblems(config, journal({}, { recoveryId: 'rec-other' }), file).join()).toMatch(
      /recoveryId/,
    );
    expect(journalProblems(config, journal({}, { items: [] }), file).join()).toMatch(/names no volume/);
    expect(journalProblems(config, null, file)).toEqual(['the journal is not an object']);
  });
});
