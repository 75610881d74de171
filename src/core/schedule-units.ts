import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface UnitOptions {
  /** argv that starts snapguard, e.g. [/usr/bin/node, /opt/snapguard/dist/cli/index.js] or [/usr/local/bin/snapguard]. */
  command: readonly string[];
  configFile?: string | undefined;
  /** OnCalendar of the restore test (default monthly, first Sunday-ish spread by RandomizedDelaySec). */
  restoreTestCalendar?: string;
  healthCalendar?: string;
}

export interface UnitFile {
  name: string;
  text: string;
}

function quoteArg(arg: string): string {
  // systemd splits ExecStart like a shell: quote anything with spaces, quotes or backslashes.
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function execLine(options: UnitOptions, args: string[]): string {
  const config = options.configFile ? ['--config', options.configFile] : [];
  return [...options.command, ...args, ...config].map(quoteArg).join(' ');
}

/**
 * systemd units for the two schedules: a monthly sample restore test of every
 * volume (spread across folders) and an hourly health check that records the pool reading for
 * the forecast and refreshes the Prometheus textfile. Both exit 1/2 on warning/critical, which
 * systemd records as a failed run (visible in `systemctl --failed` and OnFailure= hooks).
 */
export function renderUnits(options: UnitOptions): UnitFile[] {
  const hardening = ['PrivateTmp=yes', 'NoNewPrivileges=yes', 'Nice=10', 'IOSchedulingClass=idle'];
  return [
    {
      name: 'snapguard-restore-test.service',
      text: [
        '[Unit]',
        'Description=snapguard monthly restore test (proves snapshots restore)',
        'After=local-fs.target',
        '',
        '[Service]',
        'Type=oneshot',
        `ExecStart=${execLine(options, ['restore-test', '--spread'])}`,
        ...hardening,
        'TimeoutStartSec=6h',
        '',
      ].join('\n'),
    },
    {
      name: 'snapguard-restore-test.timer',
      text: [
        '[Unit]',
        'Description=Run the snapguard restore test monthly',
        '',
        '[Timer]',
        `OnCalendar=${options.restoreTestCalendar ?? 'monthly'}`,
        'RandomizedDelaySec=6h',
        'Persistent=true',
        '',
        '[Install]',
        'WantedBy=timers.target',
        '',
      ].join('\n'),
    },
    {
      name: 'snapguard-health.service',
      text: [
        '[Unit]',
        'Description=snapguard health check (snapshot age, pool, restore tests) and Prometheus metrics',
        'After=local-fs.target',
        '',
        '[Service]',
        'Type=oneshot',
        `ExecStart=${execLine(options, ['health'])}`,
        // WARNING (1) is reported, not a failed unit; CRITICAL (2) fails it.
        'SuccessExitStatus=1',
        ...hardening,
        'TimeoutStartSec=30min',
        '',
      ].join('\n'),
    },
    {
      name: 'snapguard-health.timer',
      text: [
        '[Unit]',
        'Description=Run the snapguard health check hourly',
        '',
        '[Timer]',
        `OnCalendar=${options.healthCalendar ?? 'hourly'}`,
        'RandomizedDelaySec=5min',
        'Persistent=true',
        '',
        '[Install]',
        'WantedBy=timers.target',
        '',
      ].join('\n'),
    },
  ];
}

export async function writeUnits(dir: string, units: readonly UnitFile[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const unit of units) {
    const file = join(dir, unit.name);
    await writeFile(file, unit.text, { mode: 0o644 });
    written.push(file);
  }
  return written;
}
