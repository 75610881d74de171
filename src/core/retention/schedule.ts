import { DAYS_OF_WEEK, formatPreserve, type Period, type RetentionPolicy } from './policy.js';

/** One dated item to schedule: a snapshot's time and its collision sequence (-2, -3...). */
export interface ScheduleItem {
  key: string;
  createdAt: Date;
  sequence?: number;
}

export interface ScheduleVerdict {
  key: string;
  keep: boolean;
  /** Why it is kept ("preserve daily: first of 2026-11-20 ...") or deleted. */
  reason: string;
  /** The rule that kept it: min, hourly, daily, weekly, monthly, yearly, future. */
  rule?: 'min' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly' | 'future';
}

const HOUR = 3600_000;

interface Placed {
  item: ScheduleItem;
  deltaHours: number;
  deltaDays: number;
  deltaWeeks: number;
  deltaMonths: number;
  deltaYears: number;
  /** Start of the snapshot's day (at hourOfDay) and week, for the reasons. */
  dayStart: Date;
  weekStart: Date;
  /** Calendar month/year the snapshot counts for (months start on their first dayOfWeek). */
  month: number;
  year: number;
}

function pad(value: number): string {
  return String(value).padStart(2, '0');
}

function isoDay(date: Date): string {
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
}

function isoHour(date: Date): string {
  return `${isoDay(date)} ${pad(date.getUTCHours())}:00`;
}

function truncateToHour(date: Date): number {
  return Math.floor(date.getTime() / HOUR) * HOUR;
}

/**
 * Places an item in its hour, day, week, month and year relative to `now`, all in UTC:
 * - a day starts at hourOfDay; a week on dayOfWeek at hourOfDay;
 * - a month (a year) starts on the first dayOfWeek of the month (of January): a snapshot taken
 *   in the first days of a month, before that month's first week has started, counts for the
 *   previous month;
 * - counts are whole periods back from `now` (0 = the current period); `now` itself is not
 *   shifted by hourOfDay for months and years.
 */
function place(item: ScheduleItem, now: Date, policy: RetentionPolicy): Placed {
  const t = item.createdAt;
  const weekStartDay = DAYS_OF_WEEK.indexOf(policy.dayOfWeek);
  let hoursIntoDay = t.getUTCHours() - policy.hourOfDay;
  let daysIntoWeek = t.getUTCDay() - weekStartDay;
  if (hoursIntoDay < 0) {
    hoursIntoDay += 24;
    daysIntoWeek -= 1;
  }
  if (daysIntoWeek < 0) daysIntoWeek += 7;
  let month = t.getUTCMonth();
  let year = t.getUTCFullYear();
  if (t.getUTCDate() <= daysIntoWeek) {
    month -= 1;
    if (month < 0) {
      month = 11;
      year -= 1;
    }
  }
  const deltaHours = Math.trunc((truncateToHour(now) - truncateToHour(t)) / HOUR);
  const deltaDays = Math.trunc((deltaHours + hoursIntoDay) / 24);
  const deltaWeeks = Math.trunc((deltaDays + daysIntoWeek) / 7);
  const deltaYears = now.getUTCFullYear() - year;
  const deltaMonths = deltaYears * 12 + (now.getUTCMonth() - month);
  const dayStart = new Date(truncateToHour(t) - hoursIntoDay * HOUR);
  const weekStart = new Date(dayStart.getTime() - daysIntoWeek * 24 * HOUR);
  return {
    item,
    deltaHours,
    deltaDays,
    deltaWeeks,
    deltaMonths,
    deltaYears,
    dayStart,
    weekStart,
    month: month + 1,
    year,
  };
}

/** A count of 0 keeps nothing, the same as leaving the period out (as in btrbk). */
function within(limit: number | 'all' | undefined, delta: number): boolean {
  return limit !== undefined && limit !== 0 && (limit === 'all' || delta <= limit);
}

function ago(count: number, unit: string): string {
  return `${count} ${unit}${count === 1 ? '' : 's'} ago`;
}

type Rule = NonNullable<ScheduleVerdict['rule']>;
type Keep = (p: Placed, rule: Rule, reason: string) => void;

/** preserveMin: everything, everything within a window, or the newest. */
function keepMinimum(placed: readonly Placed[], min: RetentionPolicy['preserveMin'], keep: Keep): void {
  for (const p of placed) {
    if (min.kind === 'all') keep(p, 'min', 'preserve min: all');
    else if (min.kind === 'window') {
      const delta = {
        h: p.deltaHours,
        d: p.deltaDays,
        w: p.deltaWeeks,
        m: p.deltaMonths,
        y: p.deltaYears,
      }[min.period];
      const unit = { h: 'hour', d: 'day', w: 'week', m: 'month', y: 'year' }[min.period];
      if (delta <= min.count)
        keep(p, 'min', `preserve min: within ${min.count}${min.period} (${ago(delta, unit)})`);
    }
  }
  const newest = placed[placed.length - 1];
  if (min.kind === 'latest' && newest) keep(newest, 'min', 'preserve min: latest');
}

/** The rules from hourly to yearly: each one's period, how items group into it and why one is kept. */
function levelsOf(policy: RetentionPolicy): {
  period: Period;
  rule: Rule;
  bucket: (p: Placed) => number;
  reason: (p: Placed) => string;
}[] {
  return [
    {
      period: 'h',
      rule: 'hourly',
      bucket: (p) => p.deltaHours,
      reason: (p) => `preserve hourly: first of ${isoHour(p.item.createdAt)}, ${ago(p.deltaHours, 'hour')}`,
    },
    {
      period: 'd',
      rule: 'daily',
      bucket: (p) => p.deltaDays,
      reason: (p) =>
        `preserve daily: first of ${isoDay(p.dayStart)}${policy.hourOfDay ? ` (day starts ${pad(policy.hourOfDay)}:00 UTC)` : ''}, ${ago(p.deltaDays, 'day')}`,
    },
    {
      period: 'w',
      rule: 'weekly',
      bucket: (p) => p.deltaWeeks,
      reason: (p) =>
        `preserve weekly: first of the week from ${policy.dayOfWeek} ${isoDay(p.weekStart)}, ${ago(p.deltaWeeks, 'week')}`,
    },
    {
      period: 'm',
      rule: 'monthly',
      bucket: (p) => p.deltaMonths,
      reason: (p) =>
        `preserve monthly: first weekly of ${p.year}-${pad(p.month)}, ${ago(p.deltaMonths, 'month')}`,
    },
    {
      period: 'y',
      rule: 'yearly',
      bucket: (p) => p.deltaYears,
      reason: (p) => `preserve yearly: first weekly of ${p.year}, ${ago(p.deltaYears, 'year')}`,
    },
  ];
}

/** Each level's candidates are the firsts of the level below, grouped by the coarser period. */
function firstBy(candidates: readonly Placed[], bucket: (p: Placed) => number): Placed[] {
  const seen = new Map<number, Placed>();
  for (const p of candidates) if (!seen.has(bucket(p))) seen.set(bucket(p), p);
  return [...seen.values()];
}

/** The hourly to yearly rules, coarser after finer, within the counts of `preserve`. */
function keepLevels(placed: Placed[], policy: RetentionPolicy, keep: Keep): void {
  const preserve = policy.preserve;
  let candidates = placed;
  for (const level of levelsOf(policy)) {
    candidates = firstBy(candidates, level.bucket);
    const limit = preserve[level.period];
    for (const p of candidates) {
      // A coarser period's reason replaces a finer one, like the order btrbk reports them in.
      if (within(limit, level.bucket(p))) keep(p, level.rule, level.reason(p));
    }
  }
}

/**
 * Decides keep/delete for every item under `policy` at time `now`. The first (oldest) item of
 * each hour is a candidate for hourly; the first hourly candidate of each day for daily; the first
 * daily candidate of each week for weekly; the first weekly candidate of each month for monthly;
 * the first monthly candidate of each year for yearly. A candidate is kept when its period lies
 * within the count of its rule. preserveMin keeps items regardless. Items dated in the future are
 * kept. Pure: no clock, no I/O.
 */
export function schedule(
  items: readonly ScheduleItem[],
  policy: RetentionPolicy,
  now: Date,
): ScheduleVerdict[] {
  const sorted = [...items].sort(
    (a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.sequence ?? 1) - (b.sequence ?? 1),
  );
  const placed = sorted.map((item) => place(item, now, policy));
  const kept = new Map<Placed, { reason: string; rule: Rule }>();
  const keep: Keep = (p, rule, reason) => kept.set(p, { rule, reason });

  keepMinimum(placed, policy.preserveMin, keep);
  keepLevels(placed, policy, keep);
  for (const p of placed) {
    if (p.deltaHours < 0) keep(p, 'future', `preserve forced: dated ${-p.deltaHours} hours in the future`);
  }

  const preserve = policy.preserve;
  const scheme = `preserve ${formatPreserve(preserve)}`;
  return placed.map((p) => {
    const verdict = kept.get(p);
    return verdict
      ? { key: p.item.key, keep: true, reason: verdict.reason, rule: verdict.rule }
      : {
          key: p.item.key,
          keep: false,
          reason: `not preserved: not the first of a period kept by ${scheme}${policy.preserveMin.kind === 'window' ? ` and older than preserveMin ${policy.preserveMin.count}${policy.preserveMin.period}` : ''}`,
        };
  });
}
