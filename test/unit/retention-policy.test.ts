import { describe, expect, it } from 'vitest';
import { buildConfig, type ConfigInput } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { formatPolicy, parsePreserve, parsePreserveMin } from '../../src/core/retention/policy.js';
import { policyFor } from '../../src/core/retention/prune.js';
import { schedule } from '../../src/core/retention/schedule.js';

const deps = (input: ConfigInput) =>
  createDeps(buildConfig({ contextDir: '/tmp/x', stateDir: '/tmp/y', ...input }, '/tmp'), {
    logger: silentLogger(),
  });
const volume = { backend: 'dir' as const, path: '/srv/a', snapshotDir: '/srv/.snapshots/a' };

describe('retention language', () => {
  it('parses preserve and preserveMin and refuses what btrbk would refuse, with a hint', () => {
    expect(parsePreserve('24h 7d 4w 12m 2y')).toEqual({ h: 24, d: 7, w: 4, m: 12, y: 2 });
    expect(parsePreserve('*d 2w')).toEqual({ d: 'all', w: 2 });
    expect(parsePreserve('no')).toEqual({});
    expect(parsePreserveMin('2d')).toEqual({ kind: 'window', count: 2, period: 'd' });
    expect(() => parsePreserve('7d 3d')).toThrow(
      expect.objectContaining({ code: 'BAD_INPUT', hint: expect.stringMatching(/each period once/) }),
    );
    expect(() => parsePreserve('7x')).toThrow(/Invalid preserve "7x"/);
    expect(() => parsePreserveMin('forever')).toThrow(
      expect.objectContaining({ hint: expect.stringMatching(/all, latest, no/) }),
    );
  });

  it('a bad policy in the config names the key', () => {
    expect(() =>
      buildConfig({ volumes: { a: { ...volume, retention: { preserve: '7days' } } } }, '/tmp'),
    ).toThrow(/volumes\.a\.retention/);
  });

  it('resolves per volume and location, key by key', () => {
    const d = deps({
      retention: { preserveHourOfDay: 2, external: { preserve: '30d' } },
      volumes: {
        a: {
          ...volume,
          retention: { preserve: '24h 7d', preserveDayOfWeek: 'monday', external: { preserveMin: '1w' } },
        },
        // One volume per path: each gets its own (the config refuses two volumes on one path).
        b: { ...volume, path: '/srv/b', retention: '7d 4w' },
        c: { ...volume, path: '/srv/c' },
      },
    });
    const a = d.config.volumes.a;
    const b = d.config.volumes.b;
    const c = d.config.volumes.c;
    if (!a || !b || !c) throw new Error('volumes');
    expect(policyFor(d, a, 'local')).toMatchObject({ hourOfDay: 2, dayOfWeek: 'monday' });
    expect(formatPolicy(policyFor(d, a, 'local'))).toBe('preserveMin latest, preserve 24h 7d');
    expect(formatPolicy(policyFor(d, a, 'external'))).toBe('preserveMin 1w, preserve 30d');
    expect(policyFor(d, a, 'external')).toMatchObject({ dayOfWeek: 'monday', hourOfDay: 2 });
    expect(formatPolicy(policyFor(d, b, 'local'))).toBe('preserveMin latest, preserve 7d 4w');
    expect(formatPolicy(policyFor(d, b, 'external'))).toBe('preserveMin latest, preserve 30d');
    // No retention anywhere for local: keep everything.
    expect(formatPolicy(policyFor(d, c, 'local'))).toBe('preserveMin all, preserve no');
  });
});

describe('schedule reasons', () => {
  const now = new Date('2026-11-21T19:30:00Z'); // a Saturday
  const at = (iso: string) => ({ key: iso, createdAt: new Date(iso) });
  const policy = {
    preserveMin: { kind: 'latest' as const },
    preserve: parsePreserve('2h 2d 2w 2m'),
    hourOfDay: 0,
    dayOfWeek: 'sunday' as const,
  };

  it('says which period each kept snapshot is the first of', () => {
    const verdicts = schedule(
      [
        at('2026-11-21T19:10:00Z'),
        at('2026-11-21T19:20:00Z'),
        at('2026-11-21T08:00:00Z'),
        at('2026-11-21T09:00:00Z'),
        at('2026-11-20T10:00:00Z'),
        at('2026-11-15T10:00:00Z'),
        at('2026-11-03T10:00:00Z'),
        at('2026-10-05T10:00:00Z'),
        at('2026-10-01T10:00:00Z'),
      ],
      policy,
      now,
    );
    const reason = (iso: string) => verdicts.find((v) => v.key === iso)?.reason;
    expect(reason('2026-11-21T19:10:00Z')).toBe('preserve hourly: first of 2026-11-21 19:00, 0 hours ago');
    expect(reason('2026-11-21T19:20:00Z')).toBe('preserve min: latest');
    expect(reason('2026-11-21T08:00:00Z')).toBe('preserve daily: first of 2026-11-21, 0 days ago');
    expect(reason('2026-11-21T09:00:00Z')).toMatch(/^not preserved/);
    expect(reason('2026-11-20T10:00:00Z')).toBe('preserve daily: first of 2026-11-20, 1 day ago');
    expect(reason('2026-11-15T10:00:00Z')).toBe(
      'preserve weekly: first of the week from sunday 2026-11-15, 0 weeks ago',
    );
    expect(reason('2026-11-03T10:00:00Z')).toBe('preserve monthly: first weekly of 2026-11, 0 months ago');
    // 1 October 2026 is a Thursday: before the first Sunday of October, so it counts for September.
    expect(reason('2026-10-01T10:00:00Z')).toBe('preserve monthly: first weekly of 2026-09, 2 months ago');
    expect(reason('2026-10-05T10:00:00Z')).toBe('preserve monthly: first weekly of 2026-10, 1 month ago');
  });
});
