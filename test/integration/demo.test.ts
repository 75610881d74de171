import { describe, expect, it } from 'vitest';
import { runDemo, type DemoStep } from '../../src/core/demo.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.runIf(run)('snapguard demo', () => {
  it.each(['btrfs', 'dir'] as const)(
    '%s: a broken deployment is rolled back and the history shows it',
    async (backend) => {
      const steps: DemoStep[] = [];
      const result = await runDemo({ backend }, (step) => steps.push(step));
      expect(result.ok).toBe(true);
      const wrapStep = steps.find((s) => s.title.includes('auto-rollback'))!;
      expect(wrapStep.lines.join('\n')).toMatch(/validation failed/);
      expect(wrapStep.lines.join('\n')).toMatch(/ports: \["2283:2283"\]/);
      expect(result.history.recoveries).toHaveLength(1);
      expect(result.history.recoveries[0]).toMatchObject({
        reason: 'validation-failed',
        outcome: 'success',
        mode: 'rollback',
      });
    },
  );
});
