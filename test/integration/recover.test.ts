import { existsSync } from 'node:fs';
import { chmod, lchown, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { SnapguardError } from '../../src/core/errors.js';
import { recover } from '../../src/core/recovery/recover.js';
import { createSnapshots, listSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';
import { treeState } from '../helpers/tree.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'getfattr', 'setfattr']);

async function seed(root: string): Promise<void> {
  await mkdir(join(root, 'app/config'), { recursive: true });
  await mkdir(join(root, 'data/blobs'), { recursive: true });
  await writeFile(join(root, 'app/config/app.yml'), 'version: 1\n');
  await writeFile(join(root, 'app/secret'), 'hunter2\n');
  await chmod(join(root, 'app/secret'), 0o600);
  await lchown(join(root, 'app/secret'), 1234, 5678);
  await writeFile(join(root, 'data/blobs/a.bin'), Buffer.alloc(70_000, 7));
  await writeFile(join(root, 'data/notes.txt'), 'notes\n');
  await symlink('config/app.yml', join(root, 'app/current'));
  await exec('setfattr', ['-n', 'user.label', '-v', 'original', join(root, 'data/notes.txt')]);
}

async function mutate(root: string): Promise<void> {
  await writeFile(join(root, 'app/config/app.yml'), 'version: 2 (broken)\n');
  await rm(join(root, 'data/blobs'), { recursive: true });
  await writeFile(join(root, 'app/new-file'), 'new\n');
  await chmod(join(root, 'app/secret'), 0o644);
  await lchown(join(root, 'app/secret'), 0, 0);
  await exec('setfattr', ['-n', 'user.label', '-v', 'changed', join(root, 'data/notes.txt')]);
  await rm(join(root, 'app/current'));
  await symlink('/etc/passwd', join(root, 'app/current'));
}

describe.runIf(run)('recover on real btrfs', () => {
  let box: BtrfsSandbox;
  let deps: Deps;
  let volumePath: string;
  // Moved forward instead of sleeping when a test needs its next snapshot in a new second.
  let laterMs = 0;

  beforeAll(async () => {
    box = await createBtrfsSandbox(512, 'recover');
    volumePath = await box.subvolume('containers');
    deps = box.deps(
      { confirm: 'never', volumes: { containers: { backend: 'btrfs', path: volumePath } } },
      { clock: () => new Date(Date.now() + laterMs) },
    );
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('rollback restores the exact tree, keeps the replaced state as a safety snapshot, and undo brings it back', async () => {
    await seed(volumePath);
    const before = await treeState(volumePath);
    const snap = (
      await createSnapshots(deps, { volumes: ['containers'], type: 'pre-deploy', operation: 'deploy-x' })
    ).created[0]!;
    await mutate(volumePath);
    const broken = await treeState(volumePath);
    expect(broken).not.toEqual(before);

    const result = await recover(deps, {
      volume: 'containers',
      snapshot: snap.name,
      mode: 'rollback',
      reason: 'broken deploy',
    });
    expect(result.status).toBe('recovered');
    expect(await treeState(volumePath)).toEqual(before);
    const safety = join(deps.config.volumes.containers!.snapshotDir, result.safetyBackup!);
    expect(result.safetyBackup).toMatch(/^containers-pre-recover-\d{8}-\d{6}(-\d+)?$/);
    expect(await treeState(safety)).toEqual(broken);
    const show = await exec('btrfs', ['property', 'get', '-ts', safety, 'ro']);
    expect(show.stdout.trim()).toBe('ro=true');
    // The moved-aside volume was a plain subvolume, not a snapshot: it is still listed as one of ours.
    const listed = await listSnapshots(deps, { volume: 'containers', type: 'pre-recover' });
    expect(listed.snapshots.map((s) => [s.name, s.readOnly, s.owned])).toEqual([
      [result.safetyBackup, true, true],
    ]);
    // The live volume is writable again.
    await writeFile(join(volumePath, 'writable-check'), 'x');
    await rm(join(volumePath, 'writable-check'));

    const { history } = await deps.history.read();
    const entry = history.recoveries.find((r) => r.id === result.recoveryId)!;
    expect(entry).toMatchObject({
      subvolume: 'containers',
      restored_snapshot: snap.name,
      mode: 'rollback',
      outcome: 'success',
      safety_backup: result.safetyBackup,
      reason: 'broken deploy',
    });
    expect(
      history.snapshots.some((s) => s.snapshot_name === result.safetyBackup && s.type === 'pre-recover'),
    ).toBe(true);
    // The moved-aside tree is kept read-only, and the history says so.
    expect(history.snapshots.find((s) => s.snapshot_name === result.safetyBackup)?.read_only).toBe(true);

    // Undo: the safety snapshot is itself a recovery target.
    laterMs += 1000; // a new second for the next safety name
    const undo = await recover(deps, {
      volume: 'containers',
      snapshot: result.safetyBackup!,
      mode: 'rollback',
      reason: 'undo',
    });
    expect(undo.status).toBe('recovered');
    expect(await treeState(volumePath)).toEqual(broken);
    expect(existsSync(join(deps.config.stateDir, 'recovery'))).toBe(true);
    expect(
      (await readdir(join(deps.config.stateDir, 'recovery'))).filter((n) => n.endsWith('.json')),
    ).toEqual([]);
  });

  it('files mode restores one file and one directory and leaves the rest untouched', async () => {
    await rm(volumePath, { recursive: true, force: true }).catch(() => undefined);
    await exec('btrfs', ['subvolume', 'delete', volumePath]).catch(() => undefined);
    await exec('btrfs', ['subvolume', 'create', volumePath]);
    await seed(volumePath);
    const before = await treeState(volumePath);
    const snap = (await createSnapshots(deps, { volumes: ['containers'], type: 'manual' })).created[0]!;
    await mutate(volumePath);
    await writeFile(join(volumePath, 'data/notes.txt'), 'edited later, must stay\n');
    const broken = await treeState(volumePath);

    const result = await recover(deps, {
      volume: 'containers',
      snapshot: snap.name,
      mode: 'files',
      paths: ['app/config/app.yml', 'data/blobs/'],
    });
    expect(result.status).toBe('recovered');
    const after = await treeState(volumePath);
    expect(after['app/config/app.yml']).toBe(before['app/config/app.yml']);
    expect(after['data/blobs']).toBe(before['data/blobs']);
    expect(after['data/blobs/a.bin']).toBe(before['data/blobs/a.bin']);
    for (const untouched of ['app/new-file', 'app/secret', 'app/current', 'data/notes.txt'])
      expect(after[untouched]).toBe(broken[untouched]);
    expect(await readFile(join(volumePath, 'data/notes.txt'), 'utf8')).toBe('edited later, must stay\n');
    // The state before the restore is kept.
    const safety = join(deps.config.volumes.containers!.snapshotDir, result.safetyBackup!);
    expect(await treeState(safety)).toEqual(broken);
    expect((await readdir(volumePath)).some((n) => n.startsWith('.snapguard-restore-'))).toBe(false);
  });

  it('path attacks in files mode are refused and nothing is written outside', async () => {
    const outside = join(box.dir, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'victim'), 'untouched\n');
    await mkdir(join(volumePath, 'attack'), { recursive: true });
    await symlink(outside, join(volumePath, 'attack/escape'));
    await writeFile(join(volumePath, 'attack/file'), 'x\n');
    const snap = (await createSnapshots(deps, { volumes: ['containers'], type: 'manual', force: true }))
      .created[0]!;
    // A symlink in the live volume that points out of it (created after the snapshot).
    await rm(join(volumePath, 'attack/file'));
    await symlink(join(outside, 'victim'), join(volumePath, 'attack/file'));
    await mkdir(join(volumePath, 'live'), { recursive: true });
    await symlink(outside, join(volumePath, 'live/out'));
    const state = await treeState(volumePath);
    // Subvolume paths only: generations move with any metadata write (atime) and are not a change.
    const subvolumes = async () =>
      (await exec('btrfs', ['subvolume', 'list', '-o', deps.config.volumes.containers!.snapshotDir])).stdout
        .split('\n')
        .map((line) => line.replace(/^.* path /, ''))
        .sort();
    const snapshotsBefore = await subvolumes();

    const attacks: [string[], RegExp][] = [
      [['../outside/victim'], /"\.\."/],
      [['app/../../outside'], /"\.\."/],
      [['/etc/passwd'], /absolute/],
      [['app/config\0/x'], /NUL/],
      [['attack/escape'], /symlink pointing outside/],
      [['attack/escape/victim'], /symlink/],
      [['attack/file'], /symlink pointing outside/],
      [['live/out/victim'], /symlink/],
    ];
    for (const [paths, pattern] of attacks) {
      const error = await recover(deps, {
        volume: 'containers',
        snapshot: snap.name,
        mode: 'files',
        paths,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, JSON.stringify(paths)).toBeInstanceOf(SnapguardError);
      expect((error as SnapguardError).code).toBe('BAD_INPUT');
      expect((error as SnapguardError).message).toMatch(pattern);
    }
    expect(await readFile(join(outside, 'victim'), 'utf8')).toBe('untouched\n');
    expect(await readdir(outside)).toEqual(['victim']);
    expect(await treeState(volumePath)).toEqual(state);
    expect(await subvolumes()).toEqual(snapshotsBefore);
  });

  it('refuses a rollback when the volume path is a mount point, explains why, and changes nothing', async () => {
    const inner = await box.subvolume('mounted');
    await writeFile(join(inner, 'file'), 'live\n');
    const mnt = join(box.dir, 'mnt', 'mounted');
    await mkdir(mnt, { recursive: true });
    await exec('mount', ['--bind', inner, mnt]);
    try {
      const mdeps = box.deps({
        confirm: 'never',
        volumes: {
          mounted: {
            backend: 'btrfs',
            path: mnt,
            snapshotDir: join(box.pool.mountPoint, '.snapshots', 'mounted'),
          },
        },
      });
      const snap = (await createSnapshots(mdeps, { volumes: ['mounted'], type: 'manual' })).created[0]!;
      await writeFile(join(mnt, 'file'), 'changed\n');
      const error = (await recover(mdeps, { volume: 'mounted', snapshot: snap.name }).catch(
        (e: unknown) => e,
      )) as SnapguardError;
      expect(error).toBeInstanceOf(SnapguardError);
      expect(error.code).toBe('PRECONDITION_FAILED');
      expect(error.message).toMatch(/mount point/);
      expect(error.message).toMatch(/Nothing was changed/);
      expect(error.hint).toMatch(/files mode/);
      expect(error.hint).toMatch(/docs\/recovery\.md/);
      expect(await readFile(join(mnt, 'file'), 'utf8')).toBe('changed\n');
      const names = await readdir(mdeps.config.volumes.mounted!.snapshotDir);
      expect(names).toEqual([snap.name]);
      // The suggested alternative works: files mode over the whole tree.
      const files = await recover(mdeps, {
        volume: 'mounted',
        snapshot: snap.name,
        mode: 'files',
        paths: ['.'],
      });
      expect(files.status).toBe('recovered');
      expect(await readFile(join(mnt, 'file'), 'utf8')).toBe('live\n');
    } finally {
      await exec('umount', [mnt]).catch(() => exec('umount', ['-l', mnt]));
    }
  });

  it('two recoveries of one volume at once never both act: one runs, the other waits and is refused or runs after', async () => {
    const snap = (await createSnapshots(deps, { volumes: ['containers'], type: 'manual', force: true }))
      .created[0]!;
    await writeFile(join(volumePath, 'concurrent'), 'after snapshot\n');
    const results = await Promise.allSettled([
      recover(deps, { volume: 'containers', snapshot: snap.name }),
      recover(deps, { volume: 'containers', snapshot: snap.name }),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const r of refused) {
      expect(
        (r.reason as SnapguardError).code,
        String((r.reason as Error).message) + (r.reason as Error).stack,
      ).toBe('CONFIRMATION_INVALID');
      expect((r.reason as SnapguardError).message).toMatch(/changed while this recovery waited/);
    }
    const { history } = await deps.history.read();
    const mine = history.recoveries.filter((e) => e.restored_snapshot === snap.name);
    expect(mine).toHaveLength(ok.length);
    // Never interleaved: each recovery's safety snapshot exists and holds a whole state.
    for (const entry of mine)
      expect(existsSync(join(deps.config.volumes.containers!.snapshotDir, entry.safety_backup!))).toBe(true);
    expect(existsSync(join(volumePath, 'concurrent'))).toBe(false);
  });
});

describe.runIf(run)('recover a whole operation, and locks', () => {
  let box: BtrfsSandbox;
  let deps: Deps;
  let a: string;
  let b: string;
  const warnings: string[] = [];

  beforeAll(async () => {
    box = await createBtrfsSandbox(384, 'recover-op');
    a = await box.subvolume('containers');
    b = await box.subvolume('config');
    const logger = (await import('pino')).pino(
      { level: 'warn' },
      { write: (line: string) => void warnings.push(line) },
    );
    deps = box.deps(
      {
        confirm: 'never',
        volumes: { containers: { backend: 'btrfs', path: a }, config: { backend: 'btrfs', path: b } },
      },
      { logger },
    );
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('operationId brings every volume of the operation back together, with one plan', async () => {
    await writeFile(join(a, 'compose.yml'), 'image: v1\n');
    await writeFile(join(b, 'proxy.conf'), 'upstream v1\n');
    const op = await createSnapshots(deps, {
      volumes: ['containers', 'config'],
      type: 'pre-deploy',
      operation: 'deploy-stack',
    });
    await writeFile(join(a, 'compose.yml'), 'image: v2\n');
    await writeFile(join(b, 'proxy.conf'), 'upstream v2\n');
    const plan = await recover(deps, { operationId: op.operationId, dryRun: true });
    expect(plan.status).toBe('planned');
    expect(plan.plan?.volumes.map((v) => v.volume)).toEqual(['config', 'containers']);
    const result = await recover(deps, { operationId: op.operationId, reason: 'deploy failed' });
    expect(result.status).toBe('recovered');
    expect(await readFile(join(a, 'compose.yml'), 'utf8')).toBe('image: v1\n');
    expect(await readFile(join(b, 'proxy.conf'), 'utf8')).toBe('upstream v1\n');
    expect(result.volumes?.map((v) => v.outcome)).toEqual(['success', 'success']);
    const { history } = await deps.history.read();
    const entries = history.recoveries.filter((r) => r.operation_id === op.operationId);
    expect(entries.map((e) => e.subvolume).sort()).toEqual(['config', 'containers']);
    // files mode and a mix of operationId with volume are refused
    await expect(recover(deps, { operationId: op.operationId, mode: 'files', paths: ['x'] })).rejects.toThrow(
      /files mode/,
    );
    await expect(recover(deps, { operationId: op.operationId, volume: 'config' })).rejects.toThrow(
      /either operationId/,
    );
  });

  it('only configured volumes and owned, existing snapshots (guardrail 1)', async () => {
    await expect(
      recover(deps, { volume: 'nope', snapshot: 'nope-manual-20261121-000000' }),
    ).rejects.toMatchObject({ code: 'UNKNOWN_VOLUME' });
    await expect(
      recover(deps, { volume: 'containers', snapshot: 'containers.20261120T0200' }),
    ).rejects.toMatchObject({ code: 'NOT_OWNED' });
    await expect(
      recover(deps, { volume: 'containers', snapshot: 'containers-manual-20200101-000000' }),
    ).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });
    await expect(recover(deps, { volume: 'containers', snapshot: '../config' })).rejects.toMatchObject({
      code: 'BAD_INPUT',
    });
  });

  it('configured validate commands run after the swap; a failing one makes the recovery failed and is named', async () => {
    const checked = await box.subvolume('checked');
    const vdeps = box.deps({
      confirm: 'never',
      volumes: {
        checked: {
          backend: 'btrfs',
          path: checked,
          validate: [{ command: ['test', '-f', 'healthy'], timeout: '5s' }],
        },
      },
    });
    const broken = (await createSnapshots(vdeps, { volumes: ['checked'], type: 'manual' })).created[0]!;
    await writeFile(join(checked, 'healthy'), 'yes\n');
    const failed = await recover(vdeps, { volume: 'checked', snapshot: broken.name });
    expect(failed.status).toBe('failed');
    expect(failed.validation).toEqual([
      expect.objectContaining({ volume: 'checked', check: 'command test -f healthy', ok: false }),
    ]);
    expect(failed.message).toMatch(/command test -f healthy/);
    // Undo with the safety snapshot, which has the file: validation passes.
    const undo = await recover(vdeps, { volume: 'checked', snapshot: failed.safetyBackup! });
    expect(undo.status).toBe('recovered');
    expect(undo.validation).toEqual([{ volume: 'checked', check: 'command test -f healthy', ok: true }]);
  });

  it('a stale lock of a dead process is taken over and logged', async () => {
    const snap = (await createSnapshots(deps, { volumes: ['containers'], type: 'manual', force: true }))
      .created[0]!;
    const lockFile = join(deps.config.stateDir, 'locks', 'volume-containers.lock');
    await mkdir(join(deps.config.stateDir, 'locks'), { recursive: true });
    const dead = await exec('sh', ['-c', 'echo $$']);
    await writeFile(
      lockFile,
      JSON.stringify({
        pid: Number(dead.stdout.trim()),
        host: (await import('node:os')).hostname(),
        procStart: '1',
        purpose: 'recover (crashed)',
        since: new Date().toISOString(),
      }),
    );
    const result = await recover(deps, { volume: 'containers', snapshot: snap.name });
    expect(result.status).toBe('recovered');
    expect(warnings.join('\n')).toMatch(/took over a stale lock from pid \d+/);
    expect(existsSync(lockFile)).toBe(false);
  });

  it('the change summary of a plan leaves no preview snapshot behind, and doctor removes one an interrupted plan left, and only that', async () => {
    const snap = (await createSnapshots(deps, { volumes: ['containers'], type: 'manual', force: true }))
      .created[0]!;
    await writeFile(join(a, 'after-plan'), 'x\n');
    const snapshotDir = deps.config.volumes.containers!.snapshotDir;
    const plan = await recover(deps, { volume: 'containers', snapshot: snap.name, dryRun: true });
    expect(plan.status).toBe('planned');
    expect(plan.plan?.volumes[0]?.changes?.removed?.first).toContain('after-plan');
    expect((await readdir(snapshotDir)).filter((n) => n.startsWith('.snapguard-preview-'))).toEqual([]);
    const before = (await readdir(snapshotDir)).sort();
    const leftover = join(snapshotDir, '.snapguard-preview-deadbeef');
    await exec('btrfs', ['subvolume', 'snapshot', '-r', a, leftover]);
    const { cleanPreviewLeftovers } = await import('../../src/core/recovery/recover.js');
    expect(await cleanPreviewLeftovers(deps)).toEqual([leftover]);
    expect((await readdir(snapshotDir)).sort()).toEqual(before);
    await rm(join(a, 'after-plan'));
  });
});
