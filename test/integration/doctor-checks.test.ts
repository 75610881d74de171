import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEnvironmentChecks, worstStatus, type DoctorCheck } from '../../src/core/doctor/checks.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.runIf(enabled)('doctor: environment and configuration checks on a real btrfs pool', () => {
  let sandbox: BtrfsSandbox;
  let subvolume: string;
  let plainFolder: string;

  const byId = (checks: DoctorCheck[]) => Object.fromEntries(checks.map((c) => [c.id, c]));

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'doctor');
    subvolume = await sandbox.subvolume('containers');
    plainFolder = join(sandbox.pool.mountPoint, 'plain');
    await mkdir(plainFolder);
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('a correct configuration: every check ok, tool versions shown', async () => {
    const metrics = join(sandbox.dir, 'textfile');
    await mkdir(metrics);
    const checks = await runEnvironmentChecks(
      sandbox.deps({
        volumes: { containers: { backend: 'btrfs', path: subvolume } },
        metrics: { textfile: join(metrics, 'snapguard.prom') },
      }),
    );
    const found = byId(checks);
    expect(checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(worstStatus(checks)).toBe('ok');
    expect(found['tool:btrfs']!.message).toMatch(/^btrfs: btrfs-progs v\d+\.\d+.*needed for btrfs volumes/);
    expect(found['tool:systemctl']!.message).toMatch(/not needed/);
    expect(found['permissions']!.message).toBe('running as root');
    expect(found['volume:containers']!.message).toContain(`btrfs subvolume ${subvolume}`);
    expect(found['dir:metrics']!.status).toBe('ok');
    expect(found['dir:stateDir']!.message).toMatch(/will be created|is writable/);
  });

  it('a btrfs volume whose path is a plain folder, or missing, is critical with a fix', async () => {
    const checks = await runEnvironmentChecks(
      sandbox.deps({
        volumes: {
          plain: { backend: 'btrfs', path: plainFolder },
          gone: { backend: 'btrfs', path: join(sandbox.pool.mountPoint, 'gone') },
        },
      }),
    );
    const found = byId(checks);
    expect(found['volume:plain']).toMatchObject({ status: 'critical' });
    expect(found['volume:plain']!.message).toMatch(/is not the root of a btrfs subvolume/);
    expect(found['volume:plain']!.fix).toMatch(/btrfs subvolume create/);
    expect(found['volume:gone']!.message).toMatch(/does not exist \(ENOENT\)/);
    expect(worstStatus(checks)).toBe('critical');
  });

  it('a stateDir below a file and a missing metrics folder are reported', async () => {
    const file = join(sandbox.dir, 'a-file');
    await writeFile(file, 'x');
    const checks = await runEnvironmentChecks(
      sandbox.deps({
        stateDir: join(file, 'state'),
        volumes: { containers: { backend: 'btrfs', path: subvolume } },
        metrics: { textfile: join(sandbox.dir, 'no-such-folder', 'snapguard.prom') },
      }),
    );
    const found = byId(checks);
    expect(found['dir:stateDir']).toMatchObject({ status: 'critical' });
    expect(found['dir:stateDir']!.message).toMatch(/not a folder|not writable/);
    expect(found['dir:metrics']).toMatchObject({ status: 'warning' });
    expect(found['dir:metrics']!.fix).toMatch(/Create/);
  });

  it('a dir volume needs no privileges and no btrfs', async () => {
    const folder = join(sandbox.dir, 'dir-volume');
    await mkdir(folder);
    const checks = await runEnvironmentChecks(
      sandbox.deps({ volumes: { app: { backend: 'dir', path: folder } } }),
    );
    const found = byId(checks);
    expect(found['tool:btrfs']!.message).toMatch(/not needed/);
    expect(found['volume:app']).toMatchObject({ status: 'ok' });
  });
});
