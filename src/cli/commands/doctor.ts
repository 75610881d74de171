import { Command } from 'commander';
import { runDoctor } from '../../core/doctor.js';
import { action, loadDeps, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine } from '../output.js';

export function doctorCommand(): Command {
  return withCommon(
    new Command('doctor').description(
      'find and resolve what an interrupted snapguard left behind: unfinished recoveries (completed or undone), preview leftovers, missing volume paths',
    ),
  ).action(
    action(async (options: CommonOptions) => {
      const deps = await loadDeps(options);
      const report = await runDoctor(deps);
      if (options.json) {
        printJson(report);
      } else {
        if (report.recoveries.length === 0) printLine('No unfinished recoveries.');
        for (const r of report.recoveries)
          printLine(
            `Recovery ${r.recoveryId} (${r.volumes.join(', ')}): ${r.action}${r.outcome ? `, outcome ${r.outcome}` : ''}: ${r.detail}`,
          );
        for (const path of report.previewLeftovers) printLine(`Removed a leftover preview snapshot: ${path}`);
        for (const m of report.missingVolumes)
          printLine(
            `Volume ${m.volume}: its path ${m.path} does not exist. Check the configuration, or recover it from a snapshot.`,
          );
        printLine(
          report.ok ? 'doctor: all volumes are consistent.' : 'doctor: attention needed (see above).',
        );
      }
      if (!report.ok) return 2;
      return report.recoveries.length > 0 || report.previewLeftovers.length > 0 ? 1 : 0;
    }),
  );
}
