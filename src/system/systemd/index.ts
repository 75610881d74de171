import type { Exec } from '../exec.js';
import { validateTarget } from './argv.js';
import { journal, show, type SystemdContext } from './runner.js';
import type { SystemdDriver, SystemdTarget } from './types.js';
import {
  isActive,
  listUnitFiles,
  listUnits,
  showMany,
  startUnit,
  stopUnit,
  waitUntilInactive,
} from './units.js';

// The systemd driver: systemctl and journalctl of one target (this host, a container through
// nsenter, another host through ssh), as argv arrays through system/exec.
//   types.ts      the driver's interface, targets, unit status, timeouts
//   argv.ts       unit name checks and the argv of systemctl/journalctl calls
//   parse.ts      parsers of systemctl/journalctl output
//   runner.ts     running one call (bus retries), show, journal, the status after a run
//   unit-error.ts a failed start/stop as an error with the unit's result and log
//   units.ts      the verbs: start, stop, is-active, show many, list, wait

export * from './types.js';
export {
  journalctlArgv,
  journalctlPrefix,
  showArgs,
  systemctlArgv,
  validateUnitName,
  validateUnitPattern,
} from './argv.js';
export {
  applyJournalRun,
  hasPendingJob,
  parseJournalRun,
  parseListUnitFiles,
  parseListUnits,
  parseShowManyOutput,
  parseShowOutput,
  parseTimestampUsec,
  unitRunFailed,
  unitStatusOf,
  type JournalRun,
} from './parse.js';

export function createSystemdDriver(exec: Exec, target: SystemdTarget): SystemdDriver {
  validateTarget(target);
  const frozen: SystemdTarget = Object.freeze({ systemctl: [...target.systemctl], scope: target.scope });
  const ctx: SystemdContext = {
    exec,
    target: frozen,
    label: frozen.systemctl.join(' ') + (frozen.scope === 'user' ? ' --user' : ''),
  };
  return {
    target: frozen,
    show: (unit, opts) => show(ctx, unit, opts),
    showMany: (units, opts) => showMany(ctx, units, opts),
    start: (unit, opts) => startUnit(ctx, unit, opts),
    stop: (unit, opts) => stopUnit(ctx, unit, opts),
    isActive: (unit, opts) => isActive(ctx, unit, opts),
    listUnitFiles: (patterns, opts) => listUnitFiles(ctx, patterns, opts),
    listUnits: (patterns, opts) => listUnits(ctx, patterns, opts),
    waitUntilInactive: (unit, opts) => waitUntilInactive(ctx, unit, opts),
    journal: (unit, lines, opts) => journal(ctx, unit, lines, opts),
  };
}
