import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { orchestrate } from '../../src/core/orchestrate/index.js';
import { listSnapshots } from '../../src/core/snapshots.js';
import { createLoopBtrfs, type LoopBtrfs } from '../../src/system/loop.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.skipIf(!run)('orchestrate: snapshot + replicate between two loop images', () => {
  let sandbox: BtrfsSandbox;
  let backup: LoopBtrfs;
  let deps: Deps;
  let data: string;
  let target: string;
  // Moved forward instead of sleeping when a test needs its next snapshot in a new second.
  let laterMs = 0;

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'orch-repl');
    backup = await createLoopBtrfs(exec, sandbox.dir, 256 * 1024 * 1024, 'backup');
    data = await sandbox.subvolume('data');
    target = join(backup.mountPoint, '.snapshots', 'data');
    await mkdir(target, { recursive: true });
    deps = sandbox.deps(
      {
        volumes: { data: { backend: 'btrfs', path: data, external: [{ kind: 'btrfs', path: target }] } },
        orchestrate: {
          stages: [
            { name: 'snapshots', timeout: '5m', critical: true, jobs: [{ kind: 'snapshot' }] },
            { name: 'replication', timeout: '10m', jobs: [{ kind: 'replicate' }] },
          ],
        },
      },
      { clock: () => new Date(Date.now() + laterMs) },
    );
  });
  afterAll(async () => {
    await backup?.cleanup();
    await sandbox?.cleanup();
  });

  it('sends the first snapshot in full and the second incrementally, each verified on the target', async () => {
    await writeFile(join(data, 'one.txt'), 'first');
    const first = await orchestrate(deps, {});
    expect(first.exitCode).toBe(0);
    const [snap1] = first.stages[0]!.jobs;
    const [repl1] = first.stages[1]!.jobs;
    expect(snap1).toMatchObject({ id: 'snapshot:data', result: 'verified' });
    expect(repl1).toMatchObject({ id: 'replicate:data', result: 'verified' });
    expect(repl1!.detail).toContain('full (no common parent on the target)');

    // The next snapshot name must differ: names carry the second.
    laterMs += 1000;
    await writeFile(join(data, 'two.txt'), 'second');
    const second = await orchestrate(deps, {});
    expect(second.exitCode).toBe(0);
    const [repl2] = second.stages[1]!.jobs;
    expect(repl2!.result).toBe('verified');
    expect(repl2!.detail).toMatch(/incremental from data-pre-deploy-orchestrate-\d{8}-\d{6}/);

    const copies = (await readdir(target)).sort();
    expect(copies).toHaveLength(2);
    const newestPath = join(target, copies[1]!);
    expect(await readFile(join(newestPath, 'two.txt'), 'utf8')).toBe('second');
    expect(await readFile(join(newestPath, 'one.txt'), 'utf8')).toBe('first');
    const shown = await exec('btrfs', ['subvolume', 'show', newestPath]);
    expect(shown.stdout).toMatch(/Received UUID:\s+[0-9a-f-]{36}/);

    const history = JSON.parse(
      await readFile(join(sandbox.dir, 'context', 'backup-history.json'), 'utf8'),
    ) as {
      snapshots: {
        location?: string;
        path: string;
        incremental_parent?: string | null;
        operation_id: string | null;
      }[];
    };
    const recorded = history.snapshots.filter((s) => s.location === 'external');
    expect(recorded.map((c) => c.path)).toEqual(copies.map((name) => join(target, name)));
    expect(recorded[0]!.incremental_parent).toBeNull();
    expect(recorded[1]!.incremental_parent).toBe(copies[0]);
    // Each copy carries the operation of the local snapshot it was sent from.
    const localOps = history.snapshots.filter((s) => s.location !== 'external').map((s) => s.operation_id);
    expect(recorded.map((c) => c.operation_id)).toEqual(localOps);
    expect(localOps.every((op) => op?.startsWith('op-'))).toBe(true);
    // The local listing still shows the local snapshots' own outcome, not the copies'.
    const local = await listSnapshots(deps, { location: 'local' });
    expect(local.snapshots.map((s) => s.outcome)).toEqual(['pending', 'pending']);
  });

  it('a third run with nothing new to send reports the copy that is already there', async () => {
    const third = await orchestrate(deps, { stages: ['replication'] });
    expect(third.stages).toHaveLength(1);
    expect(third.stages[0]!.jobs[0]).toMatchObject({ result: 'verified', started: false });
    expect(third.stages[0]!.jobs[0]!.detail).toContain('is already on');
  });

  it('the snapshot job within minInterval snapshots the live state when the volume changed, and keeps the newest one only when it did not', async () => {
    const live = await sandbox.subvolume('live');
    const withInterval = sandbox.deps({
      volumes: { live: { backend: 'btrfs', path: live, minInterval: '1h' } },
      orchestrate: {
        stages: [{ name: 'snapshots', timeout: '5m', critical: true, jobs: [{ kind: 'snapshot' }] }],
      },
    });
    await writeFile(join(live, 'app.conf'), 'v1');
    const first = await orchestrate(withInterval, {});
    expect(first.exitCode).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await writeFile(join(live, 'app.conf'), 'v2, the state to deploy over');
    const second = await orchestrate(withInterval, {});
    expect(second.exitCode).toBe(0);
    expect(second.stages[0]!.jobs[0]!.detail).toMatch(/^created live-pre-deploy-orchestrate-/);
    const [newest] = (await listSnapshots(withInterval, { volume: 'live', limit: 1 })).snapshots;
    expect(await readFile(join(newest!.path, 'app.conf'), 'utf8')).toBe('v2, the state to deploy over');
    const third = await orchestrate(withInterval, {});
    expect(third.exitCode).toBe(0);
    expect(third.stages[0]!.jobs[0]!.detail).toContain(`kept ${newest!.name}`);
    expect(third.stages[0]!.jobs[0]!.detail).toContain('has not changed since');
  });
});
