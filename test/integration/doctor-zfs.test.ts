import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEnvironmentChecks, type DoctorCheck } from '../../src/core/doctor/checks.js';
import { requireComponents } from '../helpers/env.js';
import { createZfsSandbox, type ZfsSandbox } from '../helpers/zfs.js';

const enabled = requireComponents(['zfs-fuse', 'zfs', 'zpool']);

// Smoke level, as ZFS runs here through zfs-fuse.
describe.runIf(enabled)('doctor on a zfs-fuse dataset', () => {
  let sandbox: ZfsSandbox;
  let dataset: string;
  let mountPoint: string;

  const check = (checks: DoctorCheck[], id: string) => checks.find((c) => c.id === id)!;

  beforeAll(async () => {
    sandbox = await createZfsSandbox('doctor');
    ({ dataset, mountPoint } = await sandbox.dataset('containers'));
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('a dataset mounted where the config says is ok, and zfs is needed and installed', async () => {
    const checks = await runEnvironmentChecks(
      sandbox.deps({ volumes: { containers: { backend: 'zfs', dataset, path: mountPoint } } }),
    );
    expect(check(checks, 'volume:containers')).toMatchObject({ status: 'ok' });
    expect(check(checks, 'volume:containers').message).toContain(`zfs dataset ${dataset} at ${mountPoint}`);
    expect(check(checks, 'tool:zfs').message).toMatch(/^zfs: .*needed for zfs volumes/);
  });

  it('a configured path that is not the mountpoint is critical; an assumed one is a warning; a missing dataset is critical', async () => {
    const wrong = await runEnvironmentChecks(
      sandbox.deps({ volumes: { containers: { backend: 'zfs', dataset, path: '/srv/elsewhere' } } }),
    );
    expect(check(wrong, 'volume:containers')).toMatchObject({ status: 'critical' });
    expect(check(wrong, 'volume:containers').fix).toContain(`path to ${mountPoint}`);
    const assumed = await runEnvironmentChecks(
      sandbox.deps({ volumes: { containers: { backend: 'zfs', dataset } } }),
    );
    expect(check(assumed, 'volume:containers')).toMatchObject({ status: 'warning' });
    const missing = await runEnvironmentChecks(
      sandbox.deps({
        volumes: { gone: { backend: 'zfs', dataset: `${sandbox.pool.name}/gone`, path: mountPoint } },
      }),
    );
    expect(check(missing, 'volume:gone')).toMatchObject({ status: 'critical' });
    expect(check(missing, 'volume:gone').message).toMatch(/cannot be read/);
  });
});
