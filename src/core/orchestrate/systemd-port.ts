import type { Exec } from '../../system/exec.js';
import { createSystemdDriver, type SystemdDriver } from '../../system/systemd.js';

export type { UnitStatus } from '../../system/systemd.js';

/** The orchestrator reaches systemd only through the systemd driver. */
export type SystemdPort = SystemdDriver;

export type SystemdFactory = (systemctl: string[], scope: 'system' | 'user') => SystemdPort;

export function createSystemdPort(exec: Exec, systemctl: string[], scope: 'system' | 'user'): SystemdPort {
  return createSystemdDriver(exec, { systemctl, scope });
}
