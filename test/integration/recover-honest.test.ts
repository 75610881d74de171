import { existsSync, watch } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { SnapguardError } from '../../src/core/errors.js';
import { recover } from '../../src/core/recovery/recover.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';
import { runBuiltCli } from '../helpers/cli.js';
import { connect, textOf } from '../helpers/mcp.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'chattr', 'mount']);

/** Writes into `dir` until its filesystem says ENOSPC for real. */
async function fill(dir: string): Promise<void> {
  const filler = await open(join(dir, 'filler'), 'w');
  try {
    for (;;) await filler.write(Buffer.alloc(64 * 1024, 1));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await filler.close();
  }
}

/** Result reports that say what happened, also when a recovery stops halfway. */
describe.runIf(run)('recover reports what really happened (real btrfs)', () => {
  let box: BtrfsSandbox;
  let counter = 0;

  beforeAll(async () => {
    box = await createBtrfsSandbox(512, 'honest');
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  async function volume(confirm: 'never' | 'token' = 'never', contextDir?: string) {
    const id = `v${++counter}`;
    const path = await box.subvolume(id);
    const deps = box.deps({
      confirm,
      ...(contextDir ? { contextDir } : {}),
      volumes: { [id]: { backend: 'btrfs', path } },
    });
    return { id, path, deps };
  }

  const journals = async (deps: Deps) =>
    (await readdir(join(deps.config.stateDir, 'recovery')).catch(() => [] as string[])).filter((n) =>
      n.endsWith('.json'),
    );

  it('a multi-path file restore that fails after its first path puts that path back and says so', async () => {
    const { id, path, deps } = await volume();
    await mkdir(join(path, 'data'), { recursive: true });
    await writeFile(join(path, 'data/f1.txt'), 'f1 old\n');
    await writeFile(join(path, 'data/f2.txt'), 'f2 old\n');
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'manual' })).created[0]!;
    await writeFile(join(path, 'data/f1.txt'), 'f1 new\n');
    await writeFile(join(path, 'data/f2.txt'), 'f2 new\n');
    // An immutable file cannot be renamed: the copy of the second path fails for real (EPERM).
    await exec('chattr', ['+i', join(path, 'data/f2.txt')]);
    try {
      const error = await recover(deps, {
        volume: id,
        snapshot: snap.name,
        mode: 'files',
        paths: ['data/f1.txt', 'data/f2.txt'],
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SnapguardError);
      const message = (error as SnapguardError).message;
      expect(message).toMatch(/The recovery was undone: .*data\/f1\.txt.* put back as they were/);
      expect(message).toMatch(/data\/f2\.txt\) not touched/);
      // The first path is as it was before the restore, not the snapshot's version.
      expect(await readFile(join(path, 'data/f1.txt'), 'utf8')).toBe('f1 new\n');
      expect(await readFile(join(path, 'data/f2.txt'), 'utf8')).toBe('f2 new\n');
      expect((await readdir(path)).filter((n) => n.startsWith('.snapguard-restore-'))).toEqual([]);
      const { history } = await deps.history.read();
      expect(history.recoveries.at(-1)).toMatchObject({ subvolume: id, outcome: 'reverted' });
      expect(await journals(deps)).toEqual([]);
    } finally {
      await exec('chattr', ['-i', join(path, 'data/f2.txt')]).catch(() => undefined);
    }
  });

  it('a multi-path file restore cancelled once its first path is in place puts that path back', async () => {
    const { id, path, deps } = await volume();
    await mkdir(join(path, 'a'), { recursive: true });
    await writeFile(join(path, 'a/first.txt'), 'first old\n');
    // The second path is a folder of many files: its copy is still running when the cancel arrives.
    await mkdir(join(path, 'b/many'), { recursive: true });
    for (let i = 0; i < 3000; i++) await writeFile(join(path, 'b/many', `f${i}`), `${i}\n`);
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'manual' })).created[0]!;
    await writeFile(join(path, 'a/first.txt'), 'first new\n');
    await writeFile(join(path, 'b/many/f1'), 'changed\n');
    const controller = new AbortController();
    // inotify on the live folder: cancel when the restored first path is renamed into place.
    const watcher = watch(join(path, 'a'), (_event, name) => {
      if (name === 'first.txt') controller.abort();
    });
    try {
      const error = await recover(
        deps,
        { volume: id, snapshot: snap.name, mode: 'files', paths: ['a/first.txt', 'b'] },
        { signal: controller.signal },
      ).catch((e: unknown) => e);
      expect(controller.signal.aborted).toBe(true);
      expect(error).toMatchObject({ code: 'CANCELLED' });
      expect((error as SnapguardError).message).toMatch(
        /The recovery was undone: .*a\/first\.txt.* put back/,
      );
      expect(await readFile(join(path, 'a/first.txt'), 'utf8')).toBe('first new\n');
      expect(await readFile(join(path, 'b/many/f1'), 'utf8')).toBe('changed\n');
      expect(await readdir(join(path, 'b/many'))).toHaveLength(3000);
      expect((await readdir(path)).filter((n) => n.startsWith('.snapguard-restore-'))).toEqual([]);
      const { history } = await deps.history.read();
      expect(history.recoveries.at(-1)).toMatchObject({ subvolume: id, outcome: 'reverted' });
    } finally {
      watcher.close();
    }
  });

  it('a rollback that succeeds while the history cannot be written is reported done, with a warning, and the journal is closed', async () => {
    // contextDir on its own tiny tmpfs, filled up: the history write fails with a real ENOSPC.
    const small = await mkdtemp(join(tmpdir(), 'snapguard-ctx-'));
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', small]);
    try {
      const { id, path, deps } = await volume('never', small);
      await writeFile(join(path, 'conf'), 'good\n');
      const snap = (await createSnapshots(deps, { volumes: [id], type: 'manual' })).created[0]!;
      await writeFile(join(path, 'conf'), 'broken\n');
      const historyBefore = await readFile(deps.history.file, 'utf8');
      await fill(small);

      const result = await recover(deps, { volume: id, snapshot: snap.name, mode: 'rollback' });
      expect(result.status).toBe('recovered');
      expect(result.volumes?.[0]?.outcome).toBe('success');
      expect(result.warnings?.[0]).toMatch(/could not be recorded in backup-history\.json .*no space left/i);
      expect(result.message).toMatch(/^Recovered .*Warning: the recovery could not be recorded/);
      expect(await readFile(join(path, 'conf'), 'utf8')).toBe('good\n');
      expect(existsSync(join(deps.config.volumes[id]!.snapshotDir, result.safetyBackup!))).toBe(true);
      expect(await journals(deps)).toEqual([]);
      expect(await readFile(deps.history.file, 'utf8')).toBe(historyBefore);

      // The CLI says the same and exits 1 (a warning), not 2 (failed).
      await new Promise((r) => setTimeout(r, 1100));
      const configFile = join(box.dir, `${id}-cli.json`);
      await writeFile(
        configFile,
        JSON.stringify({
          contextDir: small,
          stateDir: deps.config.stateDir,
          host: 'test-host',
          confirm: 'never',
          volumes: { [id]: { backend: 'btrfs', path } },
        }),
      );
      await writeFile(join(path, 'conf'), 'broken again\n');
      const cli = await runBuiltCli(['recover', id, snap.name, '--yes', '--config', configFile]);
      expect(cli.stdout).toMatch(/^Recovered .*Warning: the recovery could not be recorded/m);
      expect(cli.code).toBe(1);
      expect(await readFile(join(path, 'conf'), 'utf8')).toBe('good\n');
      expect(await journals(deps)).toEqual([]);

      // The volume is not stuck: once there is room again, the next recovery runs and is recorded.
      await rm(join(small, 'filler'));
      await new Promise((r) => setTimeout(r, 1100));
      const undo = await recover(deps, { volume: id, snapshot: result.safetyBackup!, mode: 'rollback' });
      expect(undo.status).toBe('recovered');
      expect(undo.resolved ?? []).toEqual([]);
      expect(await readFile(join(path, 'conf'), 'utf8')).toBe('broken\n');
      const { history } = await deps.history.read();
      expect(history.recoveries.map((r) => r.id)).toEqual([undo.recoveryId]);
    } finally {
      await exec('umount', [small]).catch(() => undefined);
      await rm(small, { recursive: true, force: true });
    }
  });

  it('doctor completes a killed rollback even when the history cannot be written, and closes the journal', async () => {
    const small = await mkdtemp(join(tmpdir(), 'snapguard-ctx-'));
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', small]);
    try {
      const { id, path, deps } = await volume('never', small);
      await writeFile(join(path, 'conf'), 'good\n');
      const snap = (await createSnapshots(deps, { volumes: [id], type: 'manual' })).created[0]!;
      await writeFile(join(path, 'conf'), 'broken\n');
      const configFile = join(box.dir, `${id}.json`);
      await writeFile(
        configFile,
        JSON.stringify({
          contextDir: small,
          stateDir: deps.config.stateDir,
          host: 'test-host',
          confirm: 'never',
          volumes: { [id]: { backend: 'btrfs', path } },
        }),
      );
      const killed = await runBuiltCli(
        ['recover', id, snap.name, '--yes', '--json', '--config', configFile],
        {
          env: { SNAPGUARD_TEST_FAULT: 'after:restore' },
        },
      );
      expect(killed.signal).toBe('SIGKILL');
      expect(await journals(deps)).toHaveLength(1);
      await fill(small);
      const doctor = await runBuiltCli(['doctor', '--json', '--config', configFile]);
      const report = JSON.parse(doctor.stdout) as { recoveries: { action: string; detail: string }[] };
      expect(report.recoveries).toHaveLength(1);
      expect(report.recoveries[0]).toMatchObject({ action: 'completed' });
      expect(report.recoveries[0]?.detail).toMatch(/could not be recorded in backup-history\.json/);
      expect(await readFile(join(path, 'conf'), 'utf8')).toBe('good\n');
      expect(await journals(deps)).toEqual([]);
    } finally {
      await exec('umount', [small]).catch(() => undefined);
      await rm(small, { recursive: true, force: true });
    }
  });

  it('the result of a file restore says which paths were restored from which snapshot', async () => {
    const { id, path, deps } = await volume();
    await mkdir(join(path, 'data'), { recursive: true });
    await writeFile(join(path, 'data/f7.bin'), 'seven\n');
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'manual' })).created[0]!;
    await writeFile(join(path, 'data/f7.bin'), 'changed\n');
    const result = await recover(deps, {
      volume: id,
      snapshot: snap.name,
      mode: 'files',
      paths: ['data/f7.bin'],
    });
    expect(result.status).toBe('recovered');
    expect(result.message).toBe(
      `Restored 1 path (data/f7.bin) from ${snap.name}; the replaced state is kept in ${result.safetyBackup} (recover it to undo).`,
    );
    expect(await readFile(join(path, 'data/f7.bin'), 'utf8')).toBe('seven\n');
  });

  it('a token for a whole-tree file restore is void once a folder appears after the preview; the folder stays', async () => {
    const { id, path, deps } = await volume('token');
    await writeFile(join(path, 'a.txt'), 'a\n');
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'manual' })).created[0]!;
    await writeFile(join(path, 'a.txt'), 'a changed\n');
    const args = { volume: id, snapshot: snap.name, mode: 'files', paths: ['.'] };
    const mcp = await connect(deps);
    try {
      const preview = await mcp.call('recover', args);
      const data = preview.structuredContent as { status: string; confirmationToken: string };
      expect(data.status).toBe('confirmation_required');
      await mkdir(join(path, 'made-after-preview'));
      await writeFile(join(path, 'made-after-preview/keep.txt'), 'precious\n');
      const stale = await mcp.call('recover', { ...args, confirmationToken: data.confirmationToken });
      expect(stale.isError).toBe(true);
      expect(textOf(stale)).toMatch(/CONFIRMATION_INVALID.*state changed/s);
      expect(await readFile(join(path, 'made-after-preview/keep.txt'), 'utf8')).toBe('precious\n');
      expect(await readFile(join(path, 'a.txt'), 'utf8')).toBe('a changed\n');
    } finally {
      await mcp.close();
    }
  });

  it('a token for a file restore is void once a touched file changes after the preview', async () => {
    const { id, path, deps } = await volume('token');
    await writeFile(join(path, 'a.txt'), 'a\n');
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'manual' })).created[0]!;
    const args = { volume: id, snapshot: snap.name, mode: 'files', paths: ['a.txt'] };
    const mcp = await connect(deps);
    try {
      const preview = await mcp.call('recover', args);
      const token = (preview.structuredContent as { confirmationToken: string }).confirmationToken;
      await writeFile(join(path, 'a.txt'), 'written after the preview, longer\n');
      const stale = await mcp.call('recover', { ...args, confirmationToken: token });
      expect(stale.isError).toBe(true);
      expect(textOf(stale)).toMatch(/state changed/);
      expect(await readFile(join(path, 'a.txt'), 'utf8')).toBe('written after the preview, longer\n');
    } finally {
      await mcp.close();
    }
  });

  it('a user who accepted a whole-tree file restore after which a folder appeared gets a refusal, not a removal', async () => {
    const { id, path, deps } = await volume('token');
    await writeFile(join(path, 'a.txt'), 'a\n');
    const snap = (await createSnapshots(deps, { volumes: [id], type: 'manual' })).created[0]!;
    await writeFile(join(path, 'a.txt'), 'a changed\n');
    // The gate callback is where the user is asked (elicitation); the folder appears while they read the plan.
    const error = await recover(
      deps,
      { volume: id, snapshot: snap.name, mode: 'files', paths: ['.'] },
      {
        confirm: async () => {
          await mkdir(join(path, 'made-while-asking'));
          return true;
        },
      },
    ).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CONFIRMATION_INVALID' });
    expect((error as SnapguardError).message).toMatch(/paths the restore touches.*Nothing was changed/);
    expect(existsSync(join(path, 'made-while-asking'))).toBe(true);
    expect(await readFile(join(path, 'a.txt'), 'utf8')).toBe('a changed\n');
  });
});
