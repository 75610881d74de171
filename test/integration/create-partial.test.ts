import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import { SnapguardError } from '../../src/core/errors.js';
import { createSnapshots, listSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs']);

/**
 * create_snapshot over two volumes where the second snapshot fails for real (its snapshotDir is a
 * read-only subvolume): the first snapshot is kept, recorded in the history and named in the error.
 */
describe.runIf(run)('create_snapshot: the second of two volumes fails', () => {
  let sandbox: BtrfsSandbox;
  let input: ConfigInput;
  let blockedDir: string;

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'create-partial');
    const first = await sandbox.subvolume('first');
    const second = await sandbox.subvolume('second');
    await writeFile(join(first, 'a.txt'), 'a\n');
    await writeFile(join(second, 'b.txt'), 'b\n');
    // The second volume's snapshot folder is a read-only subvolume: snapshots into it fail with EROFS.
    blockedDir = await sandbox.subvolume('second-snapshots');
    await exec('btrfs', ['property', 'set', '-ts', blockedDir, 'ro', 'true']);
    input = {
      volumes: {
        first: { backend: 'btrfs', path: first },
        second: { backend: 'btrfs', path: second, snapshotDir: blockedDir },
      },
    };
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('keeps and records the first snapshot, names it in the error, and records nothing for the second', async () => {
    const deps = sandbox.deps(input);
    const error = await createSnapshots(deps, {
      volumes: ['first', 'second'],
      type: 'pre-deploy',
      operation: 'upgrade',
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SnapguardError);
    const failure = error as SnapguardError;
    expect(failure.code).toBe('READ_ONLY_FS');
    const made = /already created and recorded: (\S+)\)/.exec(failure.message)?.[1];
    expect(made).toMatch(/^first-pre-deploy-upgrade-\d{8}-\d{6}$/);

    // The first snapshot is on disk, read-only, and listed.
    const path = join(deps.config.volumes.first!.snapshotDir, made!);
    expect(existsSync(join(path, 'a.txt'))).toBe(true);
    const listed = await listSnapshots(deps, { volume: 'first' });
    expect(listed.snapshots.map((s) => s.name)).toEqual([made]);

    // The history has the first one (pending, with the operation) and nothing of the second.
    const { history } = await deps.history.read();
    expect(history.snapshots).toEqual([
      expect.objectContaining({
        subvolume: 'first',
        snapshot_name: made,
        operation: 'upgrade',
        outcome: 'pending',
        read_only: true,
      }),
    ]);
    expect((await listSnapshots(deps, { volume: 'second' })).snapshots).toEqual([]);

    // The locks were released: once the folder is writable the same call goes through for both.
    await exec('btrfs', ['property', 'set', '-ts', blockedDir, 'ro', 'false']);
    const again = await createSnapshots(deps, {
      volumes: ['first', 'second'],
      type: 'pre-deploy',
      operation: 'upgrade',
      force: true,
    });
    expect(again.created.map((c) => c.volume)).toEqual(['first', 'second']);
  });
});
