import { describe, expect, it } from 'vitest';
import { FILES_STEPS, ROLLBACK_STEPS } from '../../src/core/recovery/journal.js';
import { FINISH_STEPS, swapOrder, swapStepsOf } from '../../src/core/recovery/steps.js';

// The plan shown to the user and the steps the journal runs come from one table (steps.ts).
describe('recovery step table', () => {
  it('each kind runs the journal steps of its mode, in their order', () => {
    const full = (kind: 'rollback' | 'files' | 'in-place') => [
      ...swapStepsOf(kind),
      ...FINISH_STEPS.map((s) => s.step),
      'record',
    ];
    expect(full('rollback')).toEqual([...ROLLBACK_STEPS]);
    expect(full('files')).toEqual([...FILES_STEPS]);
    expect(full('in-place')).toEqual([...FILES_STEPS]);
  });

  it('a rollback over btrfs and zfs volumes takes the btrfs steps first, then the zfs ones, step by step', () => {
    expect(swapOrder('rollback')).toEqual([
      'stop-services',
      'move-aside',
      'restore',
      'carry-nested',
      'protect-safety',
      'safety-snapshot',
      'copy',
    ]);
    expect(swapOrder('files')).toEqual(['stop-services', 'safety-snapshot', 'copy']);
  });
});
