import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { healthCheck } from '../../src/core/health/index.js';
import { planRecovery } from '../../src/core/recovery/recover.js';
import { walkChangeSummary } from '../../src/core/recovery/summary.js';
import { readXattrs } from '../../src/core/restore-test/files.js';
import { runRestoreTest } from '../../src/core/restore-test/index.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'getfattr', 'setfattr', 'mkfifo']);

/** Names are bytes: one in UTF-8, one that is not UTF-8 at all, one with a newline. */
const CAFE = 'Café.txt';
const NOT_UTF8 = Buffer.from([0x61, 0xff]); // "a\xff"
const NEWLINE = 'two\nlines';

function under(dir: Buffer | string, name: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from(dir), Buffer.from('/'), Buffer.from(name)]);
}

async function seed(root: string): Promise<void> {
  await mkdir(join(root, 'data'), { recursive: true });
  await writeFile(join(root, 'data', CAFE), 'crème\n');
  await writeFile(under(join(root, 'data'), NOT_UTF8), 'not utf-8\n');
  await writeFile(join(root, 'data', NEWLINE), 'newline\n');
  await writeFile(join(root, 'data', 'plain.txt'), 'plain\n');
  execFileSync('setfattr', ['-n', 'user.label', '-v', 'kept', join(root, 'data', CAFE)]);
  // Arguments cannot carry the byte 0xff: the shell's printf makes the name.
  execFileSync('sh', ['-c', 'setfattr -n user.odd -v yes "$(printf "data/a\\377")"'], { cwd: root });
  // A folder whose name is not UTF-8 ("d\xe9", latin-1), with a file in it.
  const folder = under(join(root, 'data'), Buffer.from([0x64, 0xe9]));
  await mkdir(folder);
  await writeFile(under(folder, 'x'), 'x\n');
}

describe.runIf(run)('odd file names and sparse files on real btrfs', () => {
  let box: BtrfsSandbox;
  let deps: Deps;
  let volumePath: string;
  let scratchBase: string;

  beforeAll(async () => {
    box = await createBtrfsSandbox(512, 'odd-names');
    volumePath = await box.subvolume('vol');
    scratchBase = join(box.dir, 'scratch');
    await mkdir(scratchBase);
    deps = box.deps({
      confirm: 'never',
      volumes: { vol: { backend: 'btrfs', path: volumePath } },
      restoreTest: { scratchDir: scratchBase },
    });
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('the change summary shows UTF-8 names as they are, other bytes as \\xNN, and a files preview counts them', async () => {
    await rm(join(volumePath, 'data'), { recursive: true, force: true });
    await seed(volumePath);
    const snap = (await createSnapshots(deps, { volumes: ['vol'], type: 'manual' })).created[0]!;
    await writeFile(join(volumePath, 'data', CAFE), 'changed\n');
    await writeFile(under(join(volumePath, 'data'), NOT_UTF8), 'changed too\n');
    await writeFile(join(volumePath, 'data', NEWLINE), 'and this\n');

    const all = await planRecovery(deps, { volume: 'vol', snapshot: snap.name }, { withChanges: true });
    const changes = all.plan.volumes[0]!.changes!;
    expect(changes.modified.first).toEqual(['data/a\\xff', 'data/Café.txt', `data/${NEWLINE}`].sort());
    expect(changes.modified.count).toBe(3);

    const preview = await planRecovery(
      deps,
      { volume: 'vol', snapshot: snap.name, mode: 'files', paths: [`data/${CAFE}`] },
      { withChanges: true },
    );
    const files = preview.plan.volumes[0]!.changes!;
    expect(files.modified).toEqual({ count: 1, first: [`data/${CAFE}`] });
    expect(files.added.count + files.removed.count + files.metadataOnly.count).toBe(0);
  });

  it('the walk summary (dir and zfs volumes) keeps every byte of a name', async () => {
    const before = join(box.dir, 'walk-before');
    const after = join(box.dir, 'walk-after');
    await seed(before);
    execFileSync('cp', ['-a', before, after]);
    await writeFile(under(join(after, 'data'), NOT_UTF8), 'different length\n');
    const summary = await walkChangeSummary(after, before);
    expect(summary.modified).toEqual({ count: 1, first: ['data/a\\xff'] });
    expect(summary.added.count + summary.removed.count).toBe(0);
  });

  it('a sample restore test of names that are not UTF-8 passes and shows them escaped', async () => {
    await rm(join(volumePath, 'data'), { recursive: true, force: true });
    await seed(volumePath);
    const snap = (await createSnapshots(deps, { volumes: ['vol'], type: 'manual' })).created[0]!;
    const result = await runRestoreTest(deps, { volume: 'vol', snapshot: snap.name, sampleSize: 100 });
    const only = result.results[0]!;
    expect(only.failures).toEqual([]);
    expect(only.outcome).toBe('PASS');
    expect([...only.checkedPaths].sort()).toEqual(
      ['data/a\\xff', `data/${CAFE}`, `data/${NEWLINE}`, 'data/plain.txt', 'data/d\\xe9/x'].sort(),
    );
    expect(await readdir(scratchBase)).toEqual([]);
    // The xattrs compared are really read, also of the name that is not UTF-8.
    const snapshotPath = join(deps.config.volumes.vol!.snapshotDir, snap.name);
    const odd = `data/${NOT_UTF8.toString('latin1')}`;
    const cafe = Buffer.from(`data/${CAFE}`).toString('latin1');
    const { byPath } = await readXattrs(exec, snapshotPath, [odd, cafe]);
    expect(byPath.get(odd)?.get('user.odd')).toBe('0x796573');
    expect(byPath.get(cafe)?.get('user.label')).toBe('0x6b657074');
  });

  it('a full drill of a tree with names that are not UTF-8 passes', async () => {
    const snap = (await createSnapshots(deps, { volumes: ['vol'], type: 'manual' })).created[0]!;
    const result = await runRestoreTest(deps, {
      volume: 'vol',
      snapshot: snap.name,
      mode: 'full',
      sampleSize: 100,
    });
    expect(result.results[0]!.failures).toEqual([]);
    expect(result.results[0]!.outcome).toBe('PASS');
  });

  it('health_check reads a file whose name is not UTF-8 and does not call it unreadable', async () => {
    const path = await box.subvolume('only-odd');
    await writeFile(under(path, NOT_UTF8), 'readable\n');
    const oddDeps = box.deps({ volumes: { odd: { backend: 'btrfs', path } } });
    await createSnapshots(oddDeps, { volumes: ['odd'], type: 'manual' });
    const report = await healthCheck(oddDeps, { volume: 'odd' });
    const unreadable = report.findings.filter((finding) => finding.code === 'SNAPSHOT_UNREADABLE');
    expect(unreadable).toEqual([]);
  });

  it('a sample restore test of a 2 GiB sparse file passes with a 64 MiB scratch folder (holes stay holes)', async () => {
    await rm(join(volumePath, 'data'), { recursive: true, force: true });
    await mkdir(join(volumePath, 'data'));
    execFileSync('truncate', ['-s', '2G', join(volumePath, 'data', 'sparse.img')]);
    execFileSync(
      'sh',
      [
        '-c',
        'printf "data in the middle" | dd of=data/sparse.img bs=1 seek=1073741824 conv=notrunc status=none',
      ],
      {
        cwd: volumePath,
      },
    );
    const snap = (await createSnapshots(deps, { volumes: ['vol'], type: 'manual' })).created[0]!;
    // A scratch folder that cannot hold 2 GiB: a copy that writes the holes out fails with ENOSPC.
    const small = join(box.dir, 'small-scratch');
    await mkdir(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'snapguard-test', small]);
    try {
      const smallDeps = box.deps({
        confirm: 'never',
        volumes: { vol: { backend: 'btrfs', path: volumePath } },
        restoreTest: { scratchDir: small },
      });
      const result = await runRestoreTest(smallDeps, { volume: 'vol', snapshot: snap.name, sampleSize: 10 });
      expect(result.results[0]!.failures).toEqual([]);
      expect(result.results[0]!.checkedPaths).toEqual(['data/sparse.img']);
      expect(result.results[0]!.bytesRestored).toBe(2 * 1024 ** 3);
      expect(await readdir(small)).toEqual([]);
    } finally {
      execFileSync('umount', [small]);
    }
    await rm(join(volumePath, 'data', 'sparse.img'));
  });
});
