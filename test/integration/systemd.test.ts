import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapguardError } from '../../src/core/errors.js';
import { createExec } from '../../src/system/exec.js';
import { createSystemdDriver, unitStatusOf, type SystemdDriver } from '../../src/system/systemd.js';
import { requireComponents } from '../helpers/env.js';
import { bootContainer, type Container } from '../helpers/nspawn.js';

const run = requireComponents(['systemd-nspawn', 'nsenter', 'debootstrap']);

describe.skipIf(!run)('systemd driver against systemd 252 in a container', () => {
  let container: Container;
  let driver: SystemdDriver;
  let hostDir: string;

  beforeAll(async () => {
    hostDir = await mkdtemp(join(tmpdir(), 'snapguard-systemd-test-'));
    await writeFile(join(hostDir, 'from-host.txt'), 'written on the host\n');
    container = await bootContainer({
      bind: [{ host: hostDir, container: '/srv/host', readOnly: false }],
    });
    await container.writeUnit(
      'sg-ok.service',
      '[Unit]\nDescription=snapguard test ok\n[Service]\nType=oneshot\nExecStart=/bin/sh -c "echo ok-line-1; echo ok-line-2"\n',
    );
    await container.writeUnit(
      'sg-fail.service',
      '[Unit]\nDescription=snapguard test fail\n[Service]\nType=oneshot\nExecStart=/bin/sh -c "echo about to fail; exit 3"\n',
    );
    await container.writeUnit(
      'sg-long.service',
      '[Unit]\nDescription=snapguard long running\n[Service]\nExecStart=/bin/sleep infinity\n',
    );
    await container.writeUnit(
      'sg-slow.service',
      '[Unit]\nDescription=snapguard slow oneshot\n[Service]\nType=oneshot\nExecStart=/bin/sh -c "sleep 1; echo done > /srv/host/slow-done"\n',
    );
    await container.writeUnit(
      'sg-slower.service',
      '[Unit]\nDescription=snapguard slower oneshot\n[Service]\nType=oneshot\nExecStart=/bin/sleep 5\n',
    );
    await container.writeUnit(
      'sg-count.service',
      '[Unit]\nDescription=snapguard counted run\n[Service]\nType=oneshot\nExecStart=/bin/sh -c "sleep 1; echo run >> /srv/host/count"\n',
    );
    await container.writeUnit(
      'sg-dormant.service',
      '[Unit]\nDescription=never loaded\n[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n',
    );
    await container.writeUnit(
      'sg-collected.service',
      '[Unit]\nDescription=snapguard collected\nCollectMode=inactive-or-failed\n[Service]\nType=oneshot\nExecStart=/bin/sh -c "exit 7"\n',
    );
    // Enabled (wanted by multi-user.target), so systemd keeps it loaded after a successful run:
    // an unreferenced oneshot is unloaded at once and its timestamps are gone.
    await container.writeUnit(
      'sg-stamped.service',
      '[Unit]\nDescription=snapguard referenced oneshot\n[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n',
    );
    await container.run(['systemctl', 'enable', 'sg-stamped.service']);
    await container.daemonReload();
    driver = createSystemdDriver(createExec(), { systemctl: container.systemctl, scope: 'system' });
  });

  afterAll(async () => {
    await container?.stop();
    if (hostDir) await rm(hostDir, { recursive: true, force: true });
  });

  it('starts a oneshot that succeeds and reports Result success, status 0', async () => {
    const status = await driver.start('sg-ok.service');
    expect(status).toMatchObject({
      unit: 'sg-ok.service',
      loadState: 'loaded',
      activeState: 'inactive',
      result: 'success',
      execMainStatus: 0,
      type: 'oneshot',
    });
    // systemd unloaded the unit right after the run; the times come from the manager's journal.
    expect(status.execMainStartTimestampUsec).toBeGreaterThan(Date.parse('2020-01-01') * 1000);
    expect(status.execMainExitTimestampUsec).toBeGreaterThanOrEqual(status.execMainStartTimestampUsec!);
  });

  it('keeps the run timestamps of a oneshot that systemd keeps loaded', async () => {
    const before = Date.now() * 1000;
    const status = await driver.start('sg-stamped.service');
    expect(status).toMatchObject({ unit: 'sg-stamped.service', result: 'success', execMainStatus: 0 });
    // Container and host share the clock; allow 1 s for rounding between the two reads.
    expect(status.execMainStartTimestampUsec).toBeGreaterThan(before - 1_000_000);
    expect(status.execMainExitTimestampUsec).toBeGreaterThanOrEqual(status.execMainStartTimestampUsec!);
  });

  it('reports a failing oneshot with its unit, Result exit-code and exit status 3', async () => {
    const error = await driver.start('sg-fail.service').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapguardError);
    const failure = error as SnapguardError;
    expect(failure.code).toBe('COMMAND_FAILED');
    expect(failure.message).toContain('sg-fail.service');
    expect(failure.message).toContain('exit status 3');
    expect(unitStatusOf(failure)).toMatchObject({
      unit: 'sg-fail.service',
      activeState: 'failed',
      result: 'exit-code',
      execMainStatus: 3,
    });
    expect(failure.details?.['journal']).toContain('about to fail');
    expect(await driver.show('sg-fail.service')).toMatchObject({ result: 'exit-code', execMainStatus: 3 });
  });

  it('keeps the exit status of a failed unit that systemd unloads at once (CollectMode=inactive-or-failed)', async () => {
    const error = await driver.start('sg-collected.service').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapguardError);
    expect((error as SnapguardError).message).toContain('sg-collected.service');
    expect(unitStatusOf(error)).toMatchObject({ result: 'exit-code', execMainStatus: 7 });
    // What `show` alone says afterwards: the unit file's defaults, no trace of the failure.
    expect(await driver.show('sg-collected.service')).toMatchObject({
      activeState: 'inactive',
      execMainStatus: 0,
    });
  });

  it('stops a long-running service', async () => {
    const started = await driver.start('sg-long.service');
    expect(started).toMatchObject({ activeState: 'active', subState: 'running', type: 'simple' });
    expect(await driver.isActive('sg-long.service')).toBe(true);
    const stopped = await driver.stop('sg-long.service');
    expect(stopped.activeState).toBe('inactive');
    expect(await driver.isActive('sg-long.service')).toBe(false);
  });

  it('lists units by glob, including a unit file that is not loaded', async () => {
    const units = await driver.listUnits(['sg-*.service']);
    const names = units.map((unit) => unit.unit);
    expect(names).toEqual(
      expect.arrayContaining(['sg-ok.service', 'sg-fail.service', 'sg-long.service', 'sg-dormant.service']),
    );
    expect(units.find((unit) => unit.unit === 'sg-fail.service')).toMatchObject({
      loadState: 'loaded',
      activeState: 'failed',
      description: 'snapguard test fail',
    });
    expect(units.find((unit) => unit.unit === 'sg-dormant.service')).toMatchObject({
      activeState: 'inactive',
    });
    expect(await driver.listUnits(['sg-nothing-*'])).toEqual([]);
    const files = await driver.listUnitFiles(['sg-d?rmant.service']);
    expect(files).toEqual([{ unit: 'sg-dormant.service', state: 'disabled' }]);
  });

  it('waits for a oneshot started with --no-block to finish', async () => {
    const queued = await driver.start('sg-slow.service', { noBlock: true });
    expect(['activating', 'inactive']).toContain(queued.activeState);
    const finished = await driver.waitUntilInactive('sg-slow.service', { timeoutMs: 30_000 });
    expect(finished).toMatchObject({ activeState: 'inactive', result: 'success', execMainStatus: 0 });
    // The unit's own work is visible through the bind mount on the host.
    expect(await readFile(join(hostDir, 'slow-done'), 'utf8')).toBe('done\n');
  });

  it('gives up waiting with TIMEOUT while the unit is still running', async () => {
    await driver.start('sg-long.service');
    const error = await driver
      .waitUntilInactive('sg-long.service', { timeoutMs: 500 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapguardError);
    expect((error as SnapguardError).code).toBe('TIMEOUT');
    expect(unitStatusOf(error)?.activeState).toBe('active');
    await driver.stop('sg-long.service');
  });

  it('says the job keeps running when a blocking start times out, and keeps the status', async () => {
    const error = await driver.start('sg-slower.service', { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapguardError);
    expect((error as SnapguardError).code).toBe('TIMEOUT');
    expect((error as SnapguardError).message).toContain('keeps running');
    // The unit runs for 5 s: still activating means the call came back without waiting for it.
    expect(unitStatusOf(error)?.activeState).toBe('activating');
    // Cancelling the wait leaves the unit alone as well.
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const cancelled = await driver
      .waitUntilInactive('sg-slower.service', { timeoutMs: 30_000, signal: controller.signal })
      .catch((e: unknown) => e);
    expect((cancelled as SnapguardError).code).toBe('CANCELLED');
    expect((await driver.show('sg-slower.service')).activeState).toBe('activating');
    await driver.stop('sg-slower.service');
  });

  it('cancels a blocking start through nsenter at once, leaving the job to systemd', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const error = await driver
      .start('sg-slower.service', { signal: controller.signal })
      .catch((e: unknown) => e);
    expect((error as SnapguardError).code).toBe('CANCELLED');
    expect((await driver.show('sg-slower.service')).activeState).toBe('activating');
    await driver.stop('sg-slower.service');
  });

  it('joins a oneshot that is already running instead of running it a second time', async () => {
    await driver.start('sg-count.service', { noBlock: true });
    const status = await driver.start('sg-count.service');
    expect(status).toMatchObject({ result: 'success', execMainStatus: 0 });
    expect(await readFile(join(hostDir, 'count'), 'utf8')).toBe('run\n');
  });

  it('reads journal lines of a unit', async () => {
    await driver.start('sg-ok.service');
    const lines = await driver.journal('sg-ok.service', 50);
    expect(lines).toContain('ok-line-1');
    expect(lines).toContain('ok-line-2');
    expect(await driver.journal('sg-never-ran.service', 5)).toEqual([]);
  });

  it('names a unit that does not exist', async () => {
    const error = await driver.start('sg-missing.service').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapguardError);
    expect((error as SnapguardError).message).toContain('sg-missing.service does not exist');
    expect(unitStatusOf(error)?.loadState).toBe('not-found');
  });

  it('refuses unit names that could be options or shell', async () => {
    for (const bad of [
      '--root=/',
      '-x.service',
      'a b.service',
      'x;reboot',
      '$(reboot)',
      'sg-*.service',
      '',
    ]) {
      const error = await driver.start(bad).catch((e: unknown) => e);
      expect(error, bad).toBeInstanceOf(SnapguardError);
      expect((error as SnapguardError).code, bad).toBe('BAD_INPUT');
    }
    // The container is still running: nothing of the above reached systemctl.
    expect((await container.run(['systemctl', 'is-system-running'])).stdout.trim()).toMatch(
      /running|degraded/,
    );
  });

  it('returns no journal lines, and no error, when journald is unavailable', async () => {
    await container.run([
      'systemctl',
      'mask',
      '--now',
      'systemd-journald.service',
      'systemd-journald.socket',
      'systemd-journald-dev-log.socket',
    ]);
    await container.run(['rm', '-rf', '/var/log/journal', '/run/log/journal']);
    expect(await driver.isActive('systemd-journald.service')).toBe(false);
    expect(await driver.journal('sg-ok.service', 10)).toEqual([]);
    // The unit still runs and reports without the journal.
    expect(await driver.start('sg-ok.service')).toMatchObject({ result: 'success', execMainStatus: 0 });
  });

  it('sees host files through a bind mount', async () => {
    const result = await container.run(['cat', '/srv/host/from-host.txt']);
    expect(result).toEqual({ stdout: 'written on the host\n', exitCode: 0 });
  });
});
