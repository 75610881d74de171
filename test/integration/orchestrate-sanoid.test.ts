import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { orchestrate } from '../../src/core/orchestrate/index.js';
import { createExec } from '../../src/system/exec.js';
import { requireComponents } from '../helpers/env.js';
import { ensureZfsDaemon, retryBusy } from '../helpers/zfs.js';

const run = requireComponents(['zfs-fuse', 'zpool', 'zfs', 'sanoid']);
const exec = createExec({ defaultTimeoutMs: 60_000 });

describe.skipIf(!run)('orchestrate: zfs-fuse + sanoid smoke', () => {
  let dir: string;
  let pool: string;
  let created = false;

  beforeAll(async () => {
    await ensureZfsDaemon();
    dir = await mkdtemp(join(tmpdir(), 'snapguard-test-orch-sanoid-'));
    pool = `sgorch${randomBytes(3).toString('hex')}`;
    await exec('truncate', ['-s', '100M', join(dir, 'pool.img')]);
    await mkdir(join(dir, 'mnt'));
    await exec('zpool', ['create', '-m', join(dir, 'mnt'), pool, join(dir, 'pool.img')]);
    created = true;
    await exec('zfs', ['create', `${pool}/data`]);
  });
  afterAll(async () => {
    if (created) {
      // zfs-fuse reports fresh mounts busy for a while: retry the destroy.
      await retryBusy(() => exec('zpool', ['destroy', '-f', pool]));
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('stage 1 runs sanoid through its PATH shim and the snapshot exists', async () => {
    const configDir = join(dir, 'sanoid');
    const shim = join(dir, 'bin');
    for (const d of [configDir, shim, join(dir, 'cache'), join(dir, 'run')])
      await mkdir(d, { recursive: true });
    await copyFile('/usr/share/sanoid/sanoid.defaults.conf', join(configDir, 'sanoid.defaults.conf'));
    await writeFile(
      join(configDir, 'sanoid.conf'),
      [
        `[${pool}/data]`,
        '  use_template = predeploy',
        '[template_predeploy]',
        '  frequently = 0',
        '  hourly = 1',
        '  daily = 1',
        '  monthly = 0',
        '  yearly = 0',
        '  autosnap = yes',
        '  autoprune = no',
        '',
      ].join('\n'),
    );
    // zfs-fuse has no `zfs get -t`: the shim answers sanoid's snapshot-cache query without it.
    await writeFile(
      join(shim, 'zfs'),
      [
        '#!/bin/sh',
        'if [ "$1" = get ] && [ "$2" = -Hrpt ] && [ "$3" = snapshot ]; then',
        '  shift 3',
        '  /usr/sbin/zfs get -Hrp "$@" | grep "@"',
        '  exit 0',
        'fi',
        'exec /usr/sbin/zfs "$@"',
        '',
      ].join('\n'),
    );
    await chmod(join(shim, 'zfs'), 0o755);
    const deps = createDeps(
      buildConfig(
        {
          contextDir: join(dir, 'context'),
          stateDir: join(dir, 'state'),
          orchestrate: {
            stages: [
              {
                name: 'snapshots',
                timeout: '2m',
                critical: true,
                jobs: [
                  {
                    kind: 'command',
                    name: 'sanoid',
                    argv: [
                      'sanoid',
                      `--configdir=${configDir}`,
                      `--cache-dir=${join(dir, 'cache')}`,
                      `--run-dir=${join(dir, 'run')}`,
                      '--take-snapshots',
                      '--verbose',
                    ],
                    env: { PATH: `${shim}:/usr/sbin:/usr/bin:/sbin:/bin` },
                  },
                ],
              },
            ],
          },
        },
        dir,
      ),
      { logger: silentLogger(), exec },
    );
    const result = await orchestrate(deps, {});
    expect(result.exitCode).toBe(0);
    expect(result.stages[0]!.jobs[0]).toMatchObject({ id: 'sanoid', result: 'succeeded-unverified' });
    const { stdout } = await exec('zfs', [
      'list',
      '-H',
      '-o',
      'name',
      '-t',
      'snapshot',
      '-r',
      `${pool}/data`,
    ]);
    const snapshots = stdout.split('\n').filter(Boolean);
    expect(
      snapshots.some((name) => name.startsWith(`${pool}/data@autosnap_`) && name.endsWith('_hourly')),
    ).toBe(true);
    expect(snapshots.some((name) => name.endsWith('_daily'))).toBe(true);
  });
});
