import { Command, Option } from 'commander';
import { cleanDemoSandbox, keptSandboxes, runDemo, type DemoStep } from '../../core/demo.js';
import { action, withCommon, type CommonOptions } from '../common.js';
import { refuseOtherHost, withHereOnlyHost } from '../remote.js';
import { printJson, printLine } from '../output.js';

interface DemoOptions extends CommonOptions {
  host?: string;
  backend: 'auto' | 'btrfs' | 'dir';
  keep?: boolean;
  clean?: string | boolean;
}

async function clean(options: DemoOptions): Promise<number> {
  const sandboxes = typeof options.clean === 'string' ? [options.clean] : await keptSandboxes();
  for (const sandbox of sandboxes) await cleanDemoSandbox(sandbox);
  if (options.json) printJson({ removed: sandboxes });
  else
    printLine(
      sandboxes.length > 0
        ? `Removed ${sandboxes.length} demo sandbox(es): ${sandboxes.join(', ')}.`
        : 'No kept demo sandbox to remove.',
    );
  return 0;
}

export function demoCommand(): Command {
  return withHereOnlyHost(
    withCommon(
      new Command('demo')
        .description(
          'run the whole story on a throwaway sandbox (no configuration needed): btrfs on a loop image as root, else copy-based snapshots',
        )
        .addOption(
          new Option('--backend <backend>', 'force the sandbox backend')
            .choices(['auto', 'btrfs', 'dir'])
            .default('auto'),
        )
        .option('--keep', 'keep the sandbox and a configuration to continue with; prints the next commands')
        .option(
          '--clean [sandbox]',
          'remove a sandbox kept by --keep (unmount its image, remove the folder); all of them without a folder',
        ),
    ),
    'demo',
  ).action(
    action(async (options: DemoOptions) => {
      await refuseOtherHost(options, 'demo', 'builds its sandbox on the host it runs on', false);
      if (options.clean !== undefined) return clean(options);
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
        if (result.kept) {
          printLine(
            `\nSandbox kept at ${result.sandbox}${result.backend === 'btrfs' ? ' (its btrfs image stays mounted)' : ''}, with the configuration ${result.config}.`,
          );
          printLine('Continue with:');
          for (const line of result.next ?? []) printLine(`  ${line}`);
          printLine('Remove it when done:');
          const [verb, ...byHand] = result.cleanup ?? [];
          if (verb) printLine(`  ${verb}`);
          if (byHand.length > 0)
            printLine(
              `  or by hand: ${byHand.join(' && ')}${result.backend === 'btrfs' ? '   (the loop device detaches itself when unmounted)' : ''}`,
            );
        } else printLine('Sandbox removed.');
      }
      return result.ok ? 0 : 2;
    }),
  );
}
