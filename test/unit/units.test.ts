import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, tryParseSize } from '../../src/core/units.js';

describe('durations and sizes', () => {
  it('parses the documented duration units', () => {
    expect(parseDuration('30s')).toBe(30);
    expect(parseDuration('5m')).toBe(300);
    expect(parseDuration('1h')).toBe(3600);
    expect(parseDuration('7d')).toBe(604_800);
    expect(parseDuration('4w')).toBe(2_419_200);
    expect(parseDuration('1h30m')).toBe(5400);
  });

  it('rejects malformed durations with a hint', () => {
    for (const bad of ['', '5', 'h', '1x', '-1h', '1h 2m', '1 h']) {
      expect(() => parseDuration(bad), bad).toThrow(
        expect.objectContaining({ hint: expect.stringContaining('Use a number with a unit') }),
      );
    }
  });

  it('parses sizes in binary units', () => {
    expect(tryParseSize('512M')).toBe(512 * 1024 ** 2);
    expect(tryParseSize('2G')).toBe(2 * 1024 ** 3);
    expect(tryParseSize('1.5T')).toBe(1.5 * 1024 ** 4);
    expect(tryParseSize('4096')).toBe(4096);
    expect(tryParseSize('2GiB')).toBe(2 * 1024 ** 3);
    expect(tryParseSize('lots')).toBeUndefined();
  });

  it('formats durations in the largest exact unit', () => {
    expect(formatDuration(3600)).toBe('1h');
    expect(formatDuration(86_400 * 7)).toBe('7d');
    expect(formatDuration(45)).toBe('45s');
  });
});
