import { FILES_STEPS, ROLLBACK_STEPS } from '../../src/core/recovery/journal.js';

/** Every point a recovery can be killed at: each step of a rollback and of a file restore, before and after it. */
export const crashCases = [
  ...ROLLBACK_STEPS.flatMap((step) =>
    (['before', 'after'] as const).map((when) => ['rollback', when, step] as const),
  ),
  ...FILES_STEPS.flatMap((step) =>
    (['before', 'after'] as const).map((when) => ['files', when, step] as const),
  ),
];

/**
 * What doctor must do, known from the step alone: the swap begins when the current state is put
 * into the safety snapshot (move-aside for a rollback, safety-snapshot for a file restore). Killed
 * before that, nothing had changed and the recovery is undone; from then on it is completed.
 */
export function expectedAction(mode: 'rollback' | 'files', when: 'before' | 'after', step: string) {
  const steps: readonly string[] = mode === 'rollback' ? ROLLBACK_STEPS : FILES_STEPS;
  const swap = steps.indexOf(mode === 'rollback' ? 'move-aside' : 'safety-snapshot');
  const at = steps.indexOf(step);
  return at > swap || (at === swap && when === 'after') ? 'completed' : 'reverted';
}
