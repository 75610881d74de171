import { SnapguardError } from '../errors.js';

/**
 * Retention policies in the language of btrbk: `preserveMin` (all | latest | no | <N><h|d|w|m|y>)
 * and `preserve` (`[N|*]h [N|*]d [N|*]w [N|*]m [N|*]y`), anchored by preserveHourOfDay and
 * preserveDayOfWeek. docs/retention.md states the semantics precisely.
 */
export const PERIODS = ['h', 'd', 'w', 'm', 'y'] as const;
export type Period = (typeof PERIODS)[number];

export const DAYS_OF_WEEK = [
  'sunday',
  'monday',
  'tuesday',
  'wednesday',
  'thursday',
  'friday',
  'saturday',
] as const;
export type DayOfWeek = (typeof DAYS_OF_WEEK)[number];

export type PreserveMin =
  { kind: 'all' } | { kind: 'latest' } | { kind: 'no' } | { kind: 'window'; count: number; period: Period };

/** How many periods back each "first of period" is kept; 'all' for `*`; absent when not kept. */
export type PreserveMatrix = Partial<Record<Period, number | 'all'>>;

export interface RetentionPolicy {
  preserveMin: PreserveMin;
  preserve: PreserveMatrix;
  /** Hour (0-23, UTC) at which a day starts for daily/weekly/monthly/yearly buckets. */
  hourOfDay: number;
  /** Day on which a week starts; months and years start on their first such day. */
  dayOfWeek: DayOfWeek;
}

function invalid(what: string, text: string, hint: string): SnapguardError {
  return new SnapguardError('BAD_INPUT', `Invalid ${what} "${text}".`, hint);
}

export function parsePreserveMin(text: string): PreserveMin {
  const value = text.trim();
  if (value === 'all' || value === 'latest' || value === 'no') return { kind: value };
  const match = /^(\d{1,5})([hdwmy])$/.exec(value);
  if (!match) {
    throw invalid(
      'preserveMin',
      text,
      'Write all, latest, no, or a window such as 48h, 2d, 1w, 1m, 1y (every snapshot younger than it is kept).',
    );
  }
  return { kind: 'window', count: Number(match[1]), period: match[2] as Period };
}

/** Parses `24h 7d 4w 12m 2y`, `*d`, `no`; each period at most once, in any order. */
export function parsePreserve(text: string): PreserveMatrix {
  const value = text.trim();
  if (value === 'no' || value === '') return {};
  const matrix: PreserveMatrix = {};
  for (const part of value.split(/\s+/)) {
    const match = /^(\d{1,5}|\*)([hdwmy])$/.exec(part);
    const period = match?.[2] as Period | undefined;
    if (!match || !period || matrix[period] !== undefined) {
      throw invalid(
        'preserve',
        text,
        'Write counts per period such as "24h 7d 4w 12m 2y" (h hourly, d daily, w weekly, m monthly, y yearly; * keeps every period; each period once), or "no".',
      );
    }
    matrix[period] = match[1] === '*' ? 'all' : Number(match[1]);
  }
  return matrix;
}

function formatPreserveMin(min: PreserveMin): string {
  return min.kind === 'window' ? `${min.count}${min.period}` : min.kind;
}

export function formatPreserve(matrix: PreserveMatrix): string {
  const parts = PERIODS.flatMap((period) => {
    const count = matrix[period];
    return count === undefined ? [] : [`${count === 'all' ? '*' : count}${period}`];
  });
  return parts.join(' ') || 'no';
}

export function formatPolicy(policy: RetentionPolicy): string {
  return `preserveMin ${formatPreserveMin(policy.preserveMin)}, preserve ${formatPreserve(policy.preserve)}`;
}

export interface PolicyInput {
  preserveMin?: string | undefined;
  preserve?: string | undefined;
  preserveHourOfDay?: number | undefined;
  preserveDayOfWeek?: DayOfWeek | undefined;
}

/**
 * Builds a policy from config keys. Without any retention the policy keeps everything
 * (preserveMin all), like btrbk's default; a `preserve` without `preserveMin` defaults the
 * minimum to `latest`.
 */
export function buildPolicy(input: PolicyInput | undefined, fallback?: PolicyInput): RetentionPolicy {
  const preserve = input?.preserve ?? fallback?.preserve;
  const preserveMin = input?.preserveMin ?? fallback?.preserveMin ?? (preserve ? 'latest' : 'all');
  return {
    preserveMin: parsePreserveMin(preserveMin),
    preserve: parsePreserve(preserve ?? 'no'),
    hourOfDay: input?.preserveHourOfDay ?? fallback?.preserveHourOfDay ?? 0,
    dayOfWeek: input?.preserveDayOfWeek ?? fallback?.preserveDayOfWeek ?? 'sunday',
  };
}

/** True when policy `tight` keeps no more periods than `loose` in every respect (for property tests). */
export function isTighterOrEqual(tight: RetentionPolicy, loose: RetentionPolicy): boolean {
  const rank = (n: number | 'all' | undefined) =>
    n === undefined || n === 0 ? -1 : n === 'all' ? Infinity : n;
  const minRank = (m: PreserveMin): number => {
    if (m.kind === 'all') return Infinity;
    if (m.kind === 'no') return -2;
    if (m.kind === 'latest') return -1;
    return -3; // windows compare only with the same period, see below
  };
  const minOk = (() => {
    const a = tight.preserveMin;
    const b = loose.preserveMin;
    if (b.kind === 'all') return true;
    if (a.kind === 'no') return true;
    if (a.kind === 'window' && b.kind === 'window') return a.period === b.period && a.count <= b.count;
    if (a.kind === 'window' || b.kind === 'window') return false;
    if (a.kind === 'latest') return b.kind === 'latest';
    return minRank(a) <= minRank(b);
  })();
  return (
    minOk &&
    tight.hourOfDay === loose.hourOfDay &&
    tight.dayOfWeek === loose.dayOfWeek &&
    PERIODS.every((period) => rank(tight.preserve[period]) <= rank(loose.preserve[period]))
  );
}
