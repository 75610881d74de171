import { lstat, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { orchestrate } from '../../src/core/orchestrate/index.js';
import { pruneSnapshots } from '../../src/core/retention/prune.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.runIf(run)('retention-parents.json is never written through a symlink (real btrfs)', () => {
  let box: BtrfsSandbox;
  let deps: Deps;
  let stateDir: string;
  let victim: string;

  beforeAll(async () => {
    box = await createBtrfsSandbox(256, 'state-files');
    const data = await box.subvolume('data');
    await writeFile(join(data, 'hello.txt'), 'hello');
    const extDir = join(box.pool.mountPoint, 'external/data');
    await mkdir(extDir, { recursive: true });
    deps = box.deps({
      volumes: {
        data: {
          backend: 'btrfs',
          path: data,
          retention: { preserveMin: 'all' },
          external: [{ kind: 'btrfs', path: extDir }],
        },
      },
    });
    stateDir = deps.config.stateDir;
    await mkdir(stateDir, { recursive: true });
    victim = join(box.dir, 'victim');
    await writeFile(victim, 'precious\n', { mode: 0o644 });
    // A copy on the backup target, as it receives it: the incremental parent prune remembers.
    const made = (await createSnapshots(deps, { volumes: ['data'], type: 'manual' })).created[0]!;
    const stream = join(box.dir, 'send.stream');
    await exec('btrfs', ['send', '-q', '-f', stream, made.path]);
    await exec('btrfs', ['receive', '-q', '-f', stream, extDir]);
    await rm(stream);
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('prune replaces symlinks planted at the file and at its old temp name; what they point at is unchanged', async () => {
    const file = join(stateDir, 'retention-parents.json');
    // The temp name prune used before: predictable from the pid.
    await symlink(victim, `${file}.tmp-${process.pid}`);
    await symlink(victim, file);
    const result = await pruneSnapshots(deps, { volume: 'data' }, { gate: async () => true });
    expect(result.status).toBe('nothing_to_do');
    expect(await readFile(victim, 'utf8')).toBe('precious\n');
    expect((await stat(victim)).mode & 0o777).toBe(0o644);
    expect((await lstat(file)).isFile()).toBe(true);
    expect(Object.values(JSON.parse(await readFile(file, 'utf8')) as Record<string, string>)).toHaveLength(1);
  });

  it("orchestrate's write probe of a backup target does not write through a symlink planted at its old name", async () => {
    const target = join(box.pool.mountPoint, 'external/probe');
    await mkdir(target, { recursive: true });
    // The probe name used before: predictable from the pid.
    const planted = join(target, `.snapguard-write-test-${process.pid}`);
    await symlink(victim, planted);
    const data = deps.config.volumes.data!;
    const orchestrated = box.deps({
      volumes: { data: { backend: 'btrfs', path: data.path, external: [{ kind: 'btrfs', path: target }] } },
      orchestrate: {
        stages: [{ name: 'replication', timeout: '5m', jobs: [{ kind: 'replicate' }] }],
      },
    });
    const result = await orchestrate(orchestrated, {});
    expect(result.preflight.find((check) => check.check === `target ${target}`)?.ok).toBe(true);
    expect(await readFile(victim, 'utf8')).toBe('precious\n');
    expect((await stat(victim)).mode & 0o777).toBe(0o644);
    expect((await lstat(planted)).isSymbolicLink()).toBe(true);
  });
});
