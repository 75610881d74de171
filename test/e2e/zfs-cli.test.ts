import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireComponents } from '../helpers/env.js';
import { createZfsSandbox, exec, type ZfsSandbox } from '../helpers/zfs.js';

const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
const run = requireComponents(['zfs-fuse', 'zfs', 'zpool']);

describe.skipIf(!run)('the built CLI on a zfs volume', () => {
  let sandbox: ZfsSandbox;
  let dataset: string;
  let configFile: string;

  beforeAll(async () => {
    sandbox = await createZfsSandbox('cli');
    const created = await sandbox.dataset('app');
    dataset = created.dataset;
    configFile = join(sandbox.dir, 'snapguard.yaml');
    await writeFile(
      configFile,
      [
        `contextDir: ${join(sandbox.dir, 'context')}`,
        `stateDir: ${join(sandbox.dir, 'state')}`,
        'volumes:',
        '  app:',
        '    backend: zfs',
        `    dataset: ${dataset}`,
        `    path: ${created.mountPoint}`,
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  const snapguard = (args: string[]) =>
    exec(process.execPath, [cli, ...args, '--config', configFile], {
      okExitCodes: [1, 2, 3],
      timeoutMs: 60_000,
    });

  it('snapshot create makes dataset@name, and list shows it owned next to a foreign one', async () => {
    const created = await snapguard([
      'snapshot',
      'create',
      'app',
      '--type',
      'pre-deploy',
      '--operation',
      'web',
      '--json',
    ]);
    expect(created.exitCode).toBe(0);
    const name = JSON.parse(created.stdout).created[0].name as string;
    expect(name).toMatch(/^app-pre-deploy-web-\d{8}-\d{6}$/);
    const zfsList = await exec('zfs', ['list', '-H', '-t', 'snapshot', '-o', 'name', '-r', dataset]);
    expect(zfsList.stdout.split('\n')).toContain(`${dataset}@${name}`);

    await exec('zfs', ['snapshot', `${dataset}@autosnap_2026-11-21_00:00:00_daily`]);
    const listed = await snapguard(['snapshot', 'list', 'app', '--include-foreign', '--json']);
    expect(listed.exitCode).toBe(0);
    const rows = JSON.parse(listed.stdout).snapshots as { name: string; owned: boolean }[];
    expect(rows.map((row) => `${row.name} ${row.owned}`).sort()).toEqual(
      [`${name} true`, 'autosnap_2026-11-21_00:00:00_daily false'].sort(),
    );
  });

  it('a snapshotDir on a zfs volume is a config error with exit code 3 that names the key', async () => {
    const bad = join(sandbox.dir, 'bad.yaml');
    await writeFile(
      bad,
      `volumes:\n  app:\n    backend: zfs\n    dataset: ${dataset}\n    snapshotDir: /srv/snaps\n`,
    );
    const result = await exec(process.execPath, [cli, 'snapshot', 'list', '--config', bad], {
      okExitCodes: [1, 2, 3],
    });
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toMatch(/volumes\.app\.snapshotDir: has no meaning for the zfs backend/);
  });
});
