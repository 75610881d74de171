import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import type { Deps } from '../../src/core/deps.js';
import { runRestoreTest } from '../../src/core/restore-test/index.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'mkfifo']);

describe.runIf(run)('restore tests report drift and RTO as they are (real btrfs)', () => {
  let box: BtrfsSandbox;
  let deps: Deps;
  let path: string;
  let input: ConfigInput;
  let configFile: string;

  beforeAll(async () => {
    box = await createBtrfsSandbox(256, 'drift');
    path = await box.subvolume('data');
    await mkdir(join(path, 'old'), { recursive: true });
    for (let i = 0; i < 5; i++) await writeFile(join(path, 'old', `f${i}.txt`), `file ${i}\n`);
    input = { volumes: { data: { backend: 'btrfs', path, tier: 'important' } } };
    deps = box.deps(input);
    configFile = await box.writeConfig({ host: 'test-host', ...input });
    await createSnapshots(deps, { volumes: ['data'], type: 'manual' });
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('drift also lists what was added on the live volume since the snapshot (a new folder once, a new file)', async () => {
    await mkdir(join(path, 'new-app/conf'), { recursive: true });
    await writeFile(join(path, 'new-app/conf/a.yml'), 'a: 1\n');
    await writeFile(join(path, 'old', 'added.txt'), 'added later\n');
    const result = await runRestoreTest(deps, { volume: 'data', sampleSize: 10, seed: 1 });
    expect(result.overall).toBe('PASS');
    const added = result.results[0]!.drift.filter((d) => d.change === 'added').map((d) => d.path);
    expect(added.sort()).toEqual(['new-app', 'old/added.txt']);
    // The files that were already in the snapshot are not reported as added.
    expect(result.results[0]!.drift.map((d) => d.path)).not.toContain('old/f1.txt');
  });

  it('a full drill of a small volume reports its sub-second RTO, not 0, in the result, the history and the CLI', async () => {
    const result = await runRestoreTest(deps, { volume: 'data', mode: 'full', seed: 2 });
    expect(result.overall).toBe('PASS');
    const rto = result.results[0]!.rtoEstimateSeconds as number;
    expect(rto).toBeGreaterThan(0);
    const history = JSON.parse(await readFile(deps.history.file, 'utf8'));
    expect(history.restore_tests.at(-1).rto_estimate_seconds).toBe(rto);
    const cli = await runBuiltCli(['restore-test', 'data', '--full', '--config', configFile]);
    expect(cli.code).toBe(0);
    const row = cli.stdout.split('\n').find((line) => line.startsWith('data '))!;
    expect(row).toBeDefined();
    // The last column is the RTO: never "0s" for a drill that took time.
    expect(
      row
        .trim()
        .split(/\s{2,}/)
        .at(-1),
    ).not.toBe('0s');
  });

  it('names that are not UTF-8 and are in the snapshot too are not reported as added', async () => {
    await writeFile(Buffer.concat([Buffer.from(join(path, 'old', 'odd')), Buffer.from([0xff])]), 'odd\n');
    const made = await createSnapshots(deps, { volumes: ['data'], type: 'manual', force: true });
    // Changed after the snapshot (ctime moves), but not added.
    await chmod(Buffer.concat([Buffer.from(join(path, 'old', 'odd')), Buffer.from([0xff])]), 0o600);
    const result = await runRestoreTest(deps, {
      volume: 'data',
      snapshot: made.created[0]!.name,
      sampleSize: 10,
      seed: 3,
    });
    expect(result.overall).toBe('PASS');
    expect(result.results[0]!.drift.filter((d) => d.change === 'added')).toEqual([]);
  });
});
