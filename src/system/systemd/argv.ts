import { SnapguardError } from '../../shared/errors.js';
import type { SystemdTarget } from './types.js';

/** Unit names: guardrail 2 (no shell, vetted arguments). A leading '-' would be read as an option. */
const unitNamePattern = /^[A-Za-z0-9@:._\\-]+$/;
const unitPatternPattern = /^[A-Za-z0-9@:._\\\-*?[\]]+$/;
const maxUnitNameLength = 256;

export function validateUnitName(unit: string, what = 'unit name'): string {
  if (typeof unit !== 'string' || unit.length === 0 || unit.length > maxUnitNameLength) {
    throw new SnapguardError(
      'BAD_INPUT',
      `Invalid ${what} ${JSON.stringify(unit)}: it must be 1-${maxUnitNameLength} characters.`,
      'Give a systemd unit name such as backup-db.service.',
    );
  }
  if (!unitNamePattern.test(unit) || unit.startsWith('-')) {
    throw new SnapguardError(
      'BAD_INPUT',
      `Invalid ${what} ${JSON.stringify(unit)}: only letters, digits and @ : . _ \\ - are allowed, and it must not start with '-'.`,
      'Give a plain systemd unit name such as backup-db.service (globs are only accepted where units are listed).',
    );
  }
  return unit;
}

export function validateUnitPattern(pattern: string): string {
  if (
    typeof pattern !== 'string' ||
    pattern.length === 0 ||
    pattern.length > maxUnitNameLength ||
    !unitPatternPattern.test(pattern) ||
    pattern.startsWith('-')
  ) {
    throw new SnapguardError(
      'BAD_INPUT',
      `Invalid unit pattern ${JSON.stringify(pattern)}: only letters, digits, @ : . _ \\ - and the globs * ? [ ] are allowed, and it must not start with '-'.`,
      'Give a pattern such as backup-*.service.',
    );
  }
  return pattern;
}

export function validateTarget(target: SystemdTarget): void {
  if (!Array.isArray(target.systemctl) || target.systemctl.length === 0) {
    throw new SnapguardError(
      'BAD_INPUT',
      'The systemctl command prefix is empty.',
      "Use ['systemctl'], ['nsenter', '-t', PID, '-a', 'systemctl'] or ['ssh', HOST, 'systemctl'].",
    );
  }
  if (target.scope !== 'system' && target.scope !== 'user') {
    throw new SnapguardError(
      'BAD_INPUT',
      `Unknown systemd scope ${JSON.stringify(target.scope)}.`,
      "Use 'system' or 'user'.",
    );
  }
}

/** argv (file first) for one systemctl call on the target. */
export function systemctlArgv(target: SystemdTarget, args: readonly string[]): string[] {
  return [...target.systemctl, ...(target.scope === 'user' ? ['--user'] : []), ...args];
}

/** The journalctl prefix that matches a systemctl prefix: its last element becomes journalctl. */
export function journalctlPrefix(target: SystemdTarget): string[] {
  const prefix = [...target.systemctl];
  const last = prefix[prefix.length - 1] ?? 'systemctl';
  prefix[prefix.length - 1] = last.endsWith('systemctl')
    ? `${last.slice(0, -'systemctl'.length)}journalctl`
    : 'journalctl';
  return prefix;
}

export function journalctlArgv(target: SystemdTarget, unit: string, lines: number): string[] {
  return [
    ...journalctlPrefix(target),
    ...(target.scope === 'user' ? ['--user'] : []),
    '-u',
    unit,
    '-n',
    String(lines),
    '--no-pager',
    '-o',
    'cat',
  ];
}

const showProperties = [
  'Id',
  'LoadState',
  'ActiveState',
  'SubState',
  'Result',
  'ExecMainStatus',
  'ExecMainStartTimestamp',
  'ExecMainExitTimestamp',
  'Type',
  'Job',
  'InvocationID',
] as const;

export function showArgs(unit: string): string[] {
  return ['show', '--timestamp=us+utc', '-p', showProperties.join(','), '--', unit];
}
