import { readFile } from 'node:fs/promises';
import { SnapguardError } from '../errors.js';

export interface ActivitySample {
  time: Date;
  value: number;
}

export interface LowTrafficWindow {
  /** UTC hour the window starts at (0-23) and its length in hours. */
  startHour: number;
  hours: number;
  /** Mean of the samples inside the window and over the whole day. */
  meanInWindow: number;
  meanOverall: number;
  samples: number;
}

function bad(file: string, why: string): SnapguardError {
  return new SnapguardError(
    'BAD_INPUT',
    `Cannot read activity samples from ${file}: ${why}.`,
    'Give a CSV of timestamp,value lines (ISO time or Unix seconds) or the JSON answer of a Prometheus range query (/api/v1/query_range).',
  );
}

function parseTime(text: string): Date | undefined {
  const trimmed = text.trim().replace(/^"|"$/g, '');
  if (/^\d+(\.\d+)?$/.test(trimmed)) return new Date(Number(trimmed) * 1000);
  const time = Date.parse(trimmed);
  return Number.isNaN(time) ? undefined : new Date(time);
}

/** Parses a timestamp,value CSV (a header line is skipped) or a Prometheus range-query JSON. */
export function parseActivitySamples(text: string, file = 'the samples'): ActivitySample[] {
  const trimmed = text.trim();
  const samples: ActivitySample[] = [];
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      throw bad(file, `invalid JSON (${(error as Error).message})`);
    }
    const result = (parsed as { data?: { result?: { values?: [number, string][] }[] } }).data?.result;
    if (!Array.isArray(result)) throw bad(file, 'no data.result array (not a Prometheus range query answer)');
    // Several series (e.g. one per interface) add up to the host's activity at each instant.
    const byTime = new Map<number, number>();
    for (const series of result) {
      for (const [time, value] of series.values ?? []) {
        const number = Number(value);
        if (!Number.isFinite(number)) continue;
        byTime.set(time, (byTime.get(time) ?? 0) + number);
      }
    }
    for (const [time, value] of byTime) samples.push({ time: new Date(time * 1000), value });
  } else {
    for (const [index, line] of trimmed.split('\n').entries()) {
      if (!line.trim() || line.startsWith('#')) continue;
      const [timeText, valueText] = line.split(',');
      const time = timeText === undefined ? undefined : parseTime(timeText);
      const value = Number(valueText);
      if (!time || valueText === undefined || !Number.isFinite(value)) {
        if (index === 0) continue; // header
        throw bad(file, `line ${index + 1} is not timestamp,value: "${line.slice(0, 80)}"`);
      }
      samples.push({ time, value });
    }
  }
  if (samples.length === 0) throw bad(file, 'no samples');
  return samples;
}

export async function readActivitySamples(file: string): Promise<ActivitySample[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw bad(file, (error as Error).message);
  }
  return parseActivitySamples(text, file);
}

/**
 * The `hours`-long window of the day (UTC, wrapping at midnight) with the lowest mean activity:
 * samples are averaged per hour of day, then every start hour is tried.
 */
export function lowestTrafficWindow(samples: readonly ActivitySample[], hours = 2): LowTrafficWindow {
  const sums = new Array<number>(24).fill(0);
  const counts = new Array<number>(24).fill(0);
  for (const sample of samples) {
    const hour = sample.time.getUTCHours();
    sums[hour] = (sums[hour] ?? 0) + sample.value;
    counts[hour] = (counts[hour] ?? 0) + 1;
  }
  const mean = (hour: number) =>
    (counts[hour] ?? 0) > 0 ? (sums[hour] ?? 0) / (counts[hour] ?? 1) : undefined;
  let best: { start: number; value: number } | undefined;
  for (let start = 0; start < 24; start++) {
    const values = Array.from({ length: hours }, (_, i) => mean((start + i) % 24));
    if (values.some((v) => v === undefined)) continue;
    const value = (values as number[]).reduce((a, b) => a + b, 0) / hours;
    if (!best || value < best.value) best = { start, value };
  }
  if (!best) {
    throw new SnapguardError(
      'BAD_INPUT',
      `The activity samples do not cover ${hours} consecutive hours of the day.`,
      'Give samples spread over at least a full day (e.g. a 7-day range query with a 5m step).',
    );
  }
  const total = samples.reduce((sum, s) => sum + s.value, 0);
  return {
    startHour: best.start,
    hours,
    meanInWindow: best.value,
    meanOverall: total / samples.length,
    samples: samples.length,
  };
}
