import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSnapshotName, SNAPSHOT_TYPES } from '../../src/core/naming.js';
import {
  DAYS_OF_WEEK,
  formatPreserve,
  isTighterOrEqual,
  PERIODS,
  type PreserveMatrix,
  type PreserveMin,
  type RetentionPolicy,
} from '../../src/core/retention/policy.js';
import { decideTarget, type TargetDecisionInput } from '../../src/core/retention/prune.js';

const NOW = new Date('2026-11-21T19:30:00Z');
const VOLUME = 'data';

const countArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constant('all' as const) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 40 }) },
);
const matrixArb: fc.Arbitrary<PreserveMatrix> = fc
  .tuple(countArb, countArb, countArb, countArb, countArb)
  .map((counts) => {
    const matrix: PreserveMatrix = {};
    PERIODS.forEach((period, i) => {
      if (counts[i] !== undefined) matrix[period] = counts[i];
    });
    return matrix;
  });
const minArb: fc.Arbitrary<PreserveMin> = fc.oneof(
  fc.constant({ kind: 'latest' } as const),
  fc.constant({ kind: 'no' } as const),
  fc.constant({ kind: 'all' } as const),
  fc.record({
    kind: fc.constant('window' as const),
    count: fc.integer({ min: 0, max: 30 }),
    period: fc.constantFrom(...PERIODS),
  }),
);
const policyArb: fc.Arbitrary<RetentionPolicy> = fc.record({
  preserveMin: minArb,
  preserve: matrixArb,
  hourOfDay: fc.integer({ min: 0, max: 23 }),
  dayOfWeek: fc.constantFrom(...DAYS_OF_WEEK),
});

/** Snapshot sets: owned names of every type, some foreign ones, up to two years back and a bit ahead. */
const snapshotsArb = fc
  .array(
    fc.record({
      minutesAgo: fc.oneof(
        fc.integer({ min: -120, max: 72 * 60 }),
        fc.integer({ min: 0, max: 2 * 365 * 24 * 60 }),
      ),
      type: fc.constantFrom(...SNAPSHOT_TYPES),
      foreign: fc.nat(9).map((n) => n < 2),
    }),
    { minLength: 0, maxLength: 80 },
  )
  .map((specs) => {
    const taken = new Set<string>();
    return specs.flatMap(({ minutesAgo, type, foreign }) => {
      const createdAt = new Date(Math.floor((NOW.getTime() - minutesAgo * 60_000) / 1000) * 1000);
      let name = foreign
        ? `data.${createdAt.toISOString().replace(/[-:]/g, '').slice(0, 13)}`
        : formatSnapshotName(VOLUME, type, undefined, createdAt);
      for (let n = 2; taken.has(name); n++)
        name = foreign ? `${name}_${n}` : formatSnapshotName(VOLUME, type, undefined, createdAt, n);
      taken.add(name);
      return [{ name, createdAt }];
    });
  });

function input(
  snapshots: TargetDecisionInput['snapshots'],
  policy: RetentionPolicy,
  extra: Partial<TargetDecisionInput> = {},
): TargetDecisionInput {
  return {
    volumeId: VOLUME,
    location: 'local',
    locationPath: '/pool/.snapshots/data',
    snapshots,
    policy,
    now: NOW,
    pins: [],
    unfinishedRecovery: [],
    commonParents: [],
    keepRecoverySafetySeconds: 7 * 86_400,
    ...extra,
  };
}

const deleted = (verdicts: ReturnType<typeof decideTarget>) =>
  new Set(verdicts.filter((v) => v.action === 'delete').map((v) => v.name));

describe('retention properties over random snapshot sets and policies', () => {
  it('never deletes a foreign, newest, pinned, young safety, recovery-referenced or common-parent snapshot', () => {
    fc.assert(
      fc.property(
        snapshotsArb,
        policyArb,
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 3 }),
        fc.array(fc.nat(), { maxLength: 2 }),
        (snapshots, policy, pinPicks, recoveryPicks, parentPicks) => {
          const pick = (picks: number[]) =>
            snapshots.length
              ? picks.map((i) => (snapshots[i % snapshots.length] as { name: string }).name)
              : [];
          const pinned = pick(pinPicks);
          const unfinished = pick(recoveryPicks);
          const parents = pick(parentPicks);
          const verdicts = decideTarget(
            input(snapshots, policy, {
              pins: pinned.map((snapshot) => ({
                volume: VOLUME,
                snapshot,
                reason: null,
                pinnedAt: NOW.toISOString(),
              })),
              unfinishedRecovery: unfinished,
              commonParents: parents,
            }),
          );
          expect(verdicts).toHaveLength(snapshots.length);
          const gone = deleted(verdicts);
          const owned = snapshots.filter((s) => s.name.startsWith('data-'));
          // The newest time may be shared by two snapshots (two types in one second): one of them is kept.
          const ownedVerdicts = verdicts.filter((v) => v.owned);
          const newestTime = ownedVerdicts
            .map((v) => v.createdAt)
            .sort()
            .at(-1);
          const newestTied = ownedVerdicts.filter((v) => v.createdAt === newestTime);
          for (const s of snapshots) if (!s.name.startsWith('data-')) expect(gone.has(s.name)).toBe(false);
          if (newestTied.length) expect(newestTied.some((v) => !gone.has(v.name))).toBe(true);
          for (const name of [...pinned, ...unfinished, ...parents]) expect(gone.has(name)).toBe(false);
          for (const s of owned) {
            const young = NOW.getTime() - s.createdAt.getTime() < 7 * 86_400_000;
            if (s.name.startsWith('data-pre-recover-') && young) expect(gone.has(s.name)).toBe(false);
          }
          for (const v of verdicts) expect(v.reason.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('pruning twice deletes nothing more', () => {
    fc.assert(
      fc.property(
        snapshotsArb,
        policyArb,
        fc.array(fc.nat(), { maxLength: 4 }),
        (snapshots, policy, pinPicks) => {
          const pins = snapshots.length
            ? pinPicks.map((i) => ({
                volume: VOLUME,
                snapshot: (snapshots[i % snapshots.length] as { name: string }).name,
                reason: null,
                pinnedAt: NOW.toISOString(),
              }))
            : [];
          const first = deleted(decideTarget(input(snapshots, policy, { pins })));
          const remaining = snapshots.filter((s) => !first.has(s.name));
          const second = deleted(decideTarget(input(remaining, policy, { pins })));
          expect([...second]).toEqual([]);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('keeps a subset when the policy tightens (the kept set shrinks monotonically)', () => {
    const tighten = (policy: RetentionPolicy, factor: number): RetentionPolicy => {
      const preserve: PreserveMatrix = {};
      for (const period of PERIODS) {
        const count = policy.preserve[period];
        if (count === undefined) continue;
        if (factor === 0) continue; // drop the period altogether
        preserve[period] = count === 'all' ? 'all' : Math.floor(count * factor);
      }
      const min = policy.preserveMin;
      const preserveMin: PreserveMin =
        min.kind === 'window' ? { ...min, count: Math.floor(min.count * factor) } : min;
      return { ...policy, preserve, preserveMin };
    };
    fc.assert(
      fc.property(snapshotsArb, policyArb, fc.constantFrom(0, 0.25, 0.5, 0.9), (snapshots, loose, factor) => {
        const tight = tighten(loose, factor);
        expect(isTighterOrEqual(tight, loose)).toBe(true);
        const keptBy = (policy: RetentionPolicy) =>
          new Set(
            decideTarget(input(snapshots, policy))
              .filter((v) => v.action === 'keep')
              .map((v) => v.name),
          );
        const looseKept = keptBy(loose);
        for (const name of keptBy(tight)) {
          if (!looseKept.has(name))
            throw new Error(
              `${name} kept by ${formatPreserve(tight.preserve)} but not by ${formatPreserve(loose.preserve)}`,
            );
        }
      }),
      { numRuns: 400 },
    );
  });
});
