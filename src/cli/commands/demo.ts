import { Command, Option } from 'commander';
import { runDemo, type DemoStep } from '../../core/demo.js';
import { action, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine } from '../output.js';

export function demoCommand(): Command {
  return withCommon(
    new Command('demo')
      .description(
        'run the whole story on a throwaway sandbox (no configuration needed): btrfs on a loop image as root, else copy-based snapshots',
      )
      .addOption(
        new Option('--backend <backend>', 'force the sandbox backend')
          .choices(['auto', 'btrfs', 'dir'])
          .default('auto'),
      )
      .option('--keep', 'keep the sandbox for inspection instead of removing it'),
  ).action(
    action(async (options: CommonOptions & { backend: 'auto' | 'btrfs' | 'dir'; keep?: boolean }) => {
      const steps: DemoStep[] = [];
      const result = await runDemo({ backend: options.backend, keep: Boolean(options.keep) }, (step) => {
        steps.push(step);
        if (options.json) return;
        printLine(`== ${step.title}`);
        for (const line of step.lines) printLine(`   ${line}`);
        printLine();
      });
      if (options.json) {
        printJson({ ...result, steps });
      } else {
        printLine(
          result.ok
            ? 'Demo finished: snapshot, skip, list, complete, a failed deployment rolled back, a restore test, a health check and the history all behaved as expected.'
            : 'Demo finished with unexpected results (see above).',
        );
        printLine(
          result.kept
            ? `Sandbox kept at ${result.sandbox}${result.backend === 'btrfs' ? ' (unmount it with umount when done)' : ''}.`
            : 'Sandbox removed.',
        );
      }
      return result.ok ? 0 : 2;
    }),
  );
}
