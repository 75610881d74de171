import { Command } from 'commander';
import { loadConfig } from '../../core/config.js';
import { runEnvironmentChecks, worstStatus, type DoctorCheck } from '../../core/doctor/checks.js';
import { runDoctor } from '../../core/doctor.js';
import { isSnapguardError } from '../../core/errors.js';
import { action, loadDeps, withCommon, type CommonOptions } from '../common.js';
import { printJson, printLine } from '../output.js';

const MARK: Record<DoctorCheck['status'], string> = { ok: 'ok  ', warning: 'WARN', critical: 'FAIL' };

type DoctorOptions = CommonOptions & { host?: string };
type DoctorReport = Awaited<ReturnType<typeof runDoctor>>;
type Deps = Awaited<ReturnType<typeof loadDeps>>;

/** A finding that stops doctor before the other checks: printed alone, exit code 2. */
function reportBlocking(check: DoctorCheck, options: DoctorOptions): number {
  if (options.json) printJson({ overall: 'critical', checks: [check] });
  else printLine(`${MARK.critical} ${check.message}\n     fix: ${check.fix}`);
  return 2;
}

/** An invalid configuration is a finding of doctor, not a usage error. */
async function configFinding(options: DoctorOptions): Promise<DoctorCheck | undefined> {
  try {
    await loadConfig({ explicit: options.config });
    return undefined;
  } catch (error) {
    if (!isSnapguardError(error) || !['CONFIG_INVALID', 'CONFIG_NOT_FOUND'].includes(error.code)) throw error;
    return { id: 'config', status: 'critical', message: error.message, fix: error.hintFor('cli') };
  }
}

/** A stateDir others can write is a finding; nothing in it is read or replayed. */
async function depsOrFinding(options: DoctorOptions): Promise<{ deps: Deps } | { check: DoctorCheck }> {
  try {
    return { deps: await loadDeps(options) };
  } catch (error) {
    if (!isSnapguardError(error) || error.code !== 'UNSAFE_STATE_DIR') throw error;
    return {
      check: {
        id: 'dir:private',
        status: 'critical',
        message: `${error.message} doctor changed nothing.`,
        fix: error.hintFor('cli'),
      },
    };
  }
}

/** The findings of what doctor resolved: interrupted recoveries, preview leftovers, history drift. */
function resolvedChecks(report: DoctorReport): DoctorCheck[] {
  const checks: DoctorCheck[] = [];
  for (const r of report.recoveries) {
    const failed = r.outcome === 'failed' || (r.action !== 'completed' && r.action !== 'reverted');
    checks.push({
      id: `recovery:${r.recoveryId}`,
      status: failed ? 'critical' : 'warning',
      message: `unfinished recovery ${r.recoveryId} (${r.volumes.join(', ')}): ${r.action}${r.outcome ? `, outcome ${r.outcome}` : ''}: ${r.detail}`,
      ...(failed
        ? {
            fix: 'Look at the volume and the journal in stateDir; recover it from its pre-recover snapshot.',
          }
        : {}),
    });
  }
  for (const path of report.previewLeftovers)
    checks.push({
      id: 'preview-leftover',
      status: 'warning',
      message: `removed a leftover preview snapshot: ${path}`,
    });
  for (const gone of report.historyGone)
    checks.push({
      id: `history:${gone.volume}`,
      status: 'warning',
      message: `the history listed ${gone.snapshots.length} snapshot(s) of ${gone.volume} that are no longer on disk (${gone.snapshots.join(', ')}); ${gone.marked ? 'marked them deleted (deleted_at)' : 'not changed'}`,
      ...(gone.marked
        ? {}
        : { fix: 'Run snapguard doctor again with write access to contextDir to mark them deleted.' }),
    });
  if (report.historyGone.length === 0)
    checks.push({ id: 'history', status: 'ok', message: 'the history matches the snapshots on disk' });
  if (report.recoveries.length === 0)
    checks.push({ id: 'recoveries', status: 'ok', message: 'no unfinished recoveries' });
  return checks;
}

function printChecks(checks: DoctorCheck[], overall: DoctorCheck['status']): void {
  for (const check of checks) {
    printLine(`${MARK[check.status]} ${check.message}`);
    if (check.fix) printLine(`     fix: ${check.fix}`);
  }
  printLine(
    overall === 'ok'
      ? 'doctor: all checks passed.'
      : `doctor: ${checks.filter((c) => c.status !== 'ok').length} finding(s) need attention (see above).`,
  );
}

async function runDoctorCommand(options: DoctorOptions): Promise<number> {
  if (options.host !== undefined && options.host !== 'local') {
    const { doctorHosts } = await import('./fleet.js');
    return doctorHosts({ ...options, host: options.host });
  }
  const invalid = await configFinding(options);
  if (invalid) return reportBlocking(invalid, options);
  const loaded = await depsOrFinding(options);
  if ('check' in loaded) return reportBlocking(loaded.check, options);
  // Resolve interrupted recoveries first: one may have left a volume path missing until then.
  const report = await runDoctor(loaded.deps);
  const checks = await runEnvironmentChecks(loaded.deps);
  checks.push(...resolvedChecks(report));
  const overall = worstStatus(checks);
  if (options.json) printJson({ overall, checks, ...report });
  else printChecks(checks, overall);
  return overall === 'critical' ? 2 : overall === 'warning' ? 1 : 0;
}

export function doctorCommand(): Command {
  return withCommon(
    new Command('doctor')
      .description(
        'check the host and the configuration (tools, permissions, folders, volume paths, metrics folder) and resolve what an interrupted snapguard left behind (unfinished recoveries, preview leftovers); exit 0 ok, 1 warnings, 2 problems',
      )
      .option('--host <name>', 'check the connection to this host from hosts: (or * for all) and its health'),
  ).action(action(runDoctorCommand));
}
