import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { recover } from '../../src/core/recovery/recover.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';
import { bootContainer, type Container } from '../helpers/nspawn.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'systemd-nspawn', 'nsenter', 'debootstrap']);

async function waitFor(read: () => Promise<string>, expected: string): Promise<string> {
  let last = '';
  for (let i = 0; i < 100; i++) {
    last = await read();
    if (last === expected) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  return last;
}

describe.runIf(run)('recovery stops and starts services (real systemd 252 in a container)', () => {
  let box: BtrfsSandbox;
  let container: Container;
  let deps: Deps;
  let app: string;
  let app2: string;

  beforeAll(async () => {
    box = await createBtrfsSandbox(384, 'recover-svc');
    app = await box.subvolume('app');
    app2 = await box.subvolume('app2');
    container = await bootContainer({ bind: [{ host: box.pool.mountPoint, container: '/pool' }] });
    await container.writeUnit(
      'sg-app.service',
      '[Service]\nExecStart=/bin/sh -c "cat /pool/app/version > /run/seen-at-start; exec sleep infinity"\nExecStop=/bin/sh -c "cat /pool/app/version >> /pool/stop-log"\n',
    );
    await container.writeUnit(
      'sg-needs-ok.service',
      '[Service]\nExecStart=/bin/sh -c "test -f /pool/app2/ok && exec sleep infinity"\n',
    );
    await container.daemonReload();
    const services = (units: string[]) => ({
      units,
      scope: 'system' as const,
      systemctl: container.systemctl,
      settleTime: 1,
    });
    deps = box.deps({
      confirm: 'never',
      volumes: {
        app: { backend: 'btrfs', path: app, services: services(['sg-app.service']) },
        app2: { backend: 'btrfs', path: app2, services: services(['sg-needs-ok.service']) },
      },
    });
  });
  afterAll(async () => {
    await container?.stop();
    await box?.cleanup();
  });

  it('stops the units before the swap and starts them after; every check is recorded', async () => {
    await writeFile(join(app, 'version'), 'v1\n');
    const snap = (await createSnapshots(deps, { volumes: ['app'], type: 'pre-deploy', operation: 'up' }))
      .created[0]!;
    await writeFile(join(app, 'version'), 'v2-broken\n');
    await container.run(['systemctl', 'start', 'sg-app.service']);
    const seen = async () => (await container.run(['cat', '/run/seen-at-start'])).stdout;
    expect(await waitFor(seen, 'v2-broken\n')).toBe('v2-broken\n');

    const result = await recover(deps, { volume: 'app', snapshot: snap.name });
    expect(result.status, JSON.stringify(result)).toBe('recovered');
    // Stopped while the old state was still in place ...
    expect(await readFile(join(box.pool.mountPoint, 'stop-log'), 'utf8')).toBe('v2-broken\n');
    // ... and started on the restored one.
    expect(await waitFor(seen, 'v1\n')).toBe('v1\n');
    expect((await container.run(['systemctl', 'is-active', 'sg-app.service'])).stdout.trim()).toBe('active');
    expect(result.validation).toEqual([{ volume: 'app', check: 'unit sg-app.service active', ok: true }]);
    const { history } = await deps.history.read();
    expect(history.recoveries.find((r) => r.id === result.recoveryId)?.validation).toEqual([
      { check: 'unit sg-app.service active', ok: true },
    ]);
  });

  it('a unit that does not come up makes the recovery failed, names the unit, and deletes nothing', async () => {
    const snap = (await createSnapshots(deps, { volumes: ['app2'], type: 'manual' })).created[0]!; // no "ok" file
    await writeFile(join(app2, 'ok'), 'yes\n');
    await container.run(['systemctl', 'start', 'sg-needs-ok.service']);
    expect((await container.run(['systemctl', 'is-active', 'sg-needs-ok.service'])).stdout.trim()).toBe(
      'active',
    );

    const result = await recover(deps, { volume: 'app2', snapshot: snap.name, reason: 'test' });
    expect(result.status).toBe('failed');
    const failed = result.validation?.find((c) => !c.ok);
    expect(failed?.check).toBe('unit sg-needs-ok.service active');
    expect(failed?.detail).toMatch(/sg-needs-ok\.service is (failed|inactive)/);
    expect(result.message).toMatch(/sg-needs-ok\.service/);
    expect(result.message).toMatch(/Nothing was deleted/);
    const dir = deps.config.volumes.app2!.snapshotDir;
    expect(existsSync(join(dir, snap.name))).toBe(true);
    expect(await readFile(join(dir, result.safetyBackup!, 'ok'), 'utf8')).toBe('yes\n');
    const { history } = await deps.history.read();
    expect(history.recoveries.find((r) => r.id === result.recoveryId)).toMatchObject({
      outcome: 'failed',
      safety_backup: result.safetyBackup,
    });
  });
});
