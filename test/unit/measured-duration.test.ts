import { describe, expect, it } from 'vitest';
import { roundRto } from '../../src/core/restore-test/index.js';
import { formatMeasuredDuration } from '../../src/core/units.js';

describe('sub-second measured durations', () => {
  it('an RTO estimate keeps its fraction below 10 s and whole seconds above', () => {
    expect(roundRto(0.4321)).toBe(0.43);
    expect(roundRto(0.004)).toBe(0.004);
    expect(roundRto(3.26)).toBe(3.3);
    expect(roundRto(12.6)).toBe(13);
  });

  it('prints "< 1s" for a sub-second duration, as formatDuration otherwise', () => {
    expect(formatMeasuredDuration(0.4)).toBe('< 1s');
    expect(formatMeasuredDuration(0)).toBe('0s');
    expect(formatMeasuredDuration(42)).toBe('42s');
    expect(formatMeasuredDuration(7200)).toBe('2h');
  });
});
