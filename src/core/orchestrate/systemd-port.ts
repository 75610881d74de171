import { existsSync, readFileSync } from 'node:fs';
import type { Exec } from '../../system/exec.js';
import { createSystemdDriver, type SystemdDriver } from '../../system/systemd.js';

export type { UnitStatus } from '../../system/systemd.js';

/** The orchestrator reaches systemd only through the systemd driver. */
export type SystemdPort = SystemdDriver;

export type SystemdFactory = (systemctl: string[], scope: 'system' | 'user') => SystemdPort;

export function createSystemdPort(exec: Exec, systemctl: string[], scope: 'system' | 'user'): SystemdPort {
  return createSystemdDriver(exec, { systemctl, scope });
}

/** Whether this host runs systemd as PID 1 (sd_booted: /run/systemd/system exists), and what PID 1 is. */
export interface InitSystem {
  systemd: boolean;
  /** The name of PID 1 (/proc/1/comm), when readable. */
  pid1: string | undefined;
}

export function localInitSystem(): InitSystem {
  let pid1: string | undefined;
  try {
    pid1 = readFileSync('/proc/1/comm', 'utf8').trim() || undefined;
  } catch {
    pid1 = undefined;
  }
  return { systemd: existsSync('/run/systemd/system'), pid1 };
}
