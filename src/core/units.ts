import { SnapguardError } from './errors.js';

const durationUnits: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 };
const sizeUnits: Record<string, number> = {
  '': 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
  P: 1024 ** 5,
};

/** Parses `30s`, `5m`, `1h`, `7d`, `4w` (also `1h30m`) into seconds; returns undefined when malformed. */
export function tryParseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^(\d+(?:\.\d+)?[smhdwy])+$/.test(trimmed)) return undefined;
  let seconds = 0;
  for (const match of trimmed.matchAll(/(\d+(?:\.\d+)?)([smhdwy])/g)) {
    seconds += Number(match[1]) * (durationUnits[match[2] as string] as number);
  }
  return seconds;
}

export function parseDuration(text: string, what = 'duration'): number {
  const seconds = tryParseDuration(text);
  if (seconds === undefined) {
    throw new SnapguardError(
      'BAD_INPUT',
      `Invalid ${what} "${text}".`,
      'Use a number with a unit: 30s, 5m, 1h, 7d, 4w.',
    );
  }
  return seconds;
}

/** Parses `512M`, `2G`, `1.5T`, `4096` (bytes) into bytes; binary units. */
export function tryParseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * (sizeUnits[(match[2] ?? '').toUpperCase()] as number));
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 86_400 && s % 86_400 === 0) return `${s / 86_400}d`;
  if (s >= 3600 && s % 3600 === 0) return `${s / 3600}h`;
  if (s >= 60 && s % 60 === 0 && s < 5400) return `${s / 60}m`;
  if (s < 90) return `${s}s`;
  if (s < 5400) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** A measured duration such as an RTO estimate: like formatDuration, but "< 1s" for a sub-second one. */
export function formatMeasuredDuration(seconds: number): string {
  return seconds > 0 && seconds < 1 ? '< 1s' : formatDuration(seconds);
}
