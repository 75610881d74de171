import { mkdir, readFile, rm, symlink, writeFile, chmod, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { findDeleted } from '../../src/core/file-history/deleted.js';
import { diffSnapshots } from '../../src/core/file-history/diff.js';
import { readSnapshotFile } from '../../src/core/file-history/read.js';
import { fileVersions } from '../../src/core/file-history/versions.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';
import { connect, textOf } from '../helpers/mcp.js';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs', 'getfattr', 'setfattr']);

describe.runIf(enabled)('file history on real btrfs', () => {
  let sandbox: BtrfsSandbox;
  let deps: Deps;
  const paths: Record<string, string> = {};
  let clockTime = Date.UTC(2026, 10, 21, 10, 0, 0);

  /** A snapshot one minute after the previous one; returns its name. */
  async function snap(volume: string): Promise<string> {
    clockTime += 60_000;
    const result = await createSnapshots(deps, { volumes: [volume], type: 'manual' });
    return result.created[0]!.name;
  }

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'files');
    for (const id of ['notes', 'photos', 'app']) paths[id] = await sandbox.subvolume(id);
    const volumes = Object.fromEntries(
      Object.entries(paths).map(([id, path]) => [id, { backend: 'btrfs' as const, path }]),
    );
    deps = sandbox.deps({ volumes }, { clock: () => new Date(clockTime) });
    await writeFile(
      join(sandbox.dir, 'snapguard.yaml'),
      JSON.stringify({
        contextDir: join(sandbox.dir, 'context'),
        stateDir: join(sandbox.dir, 'state'),
        volumes,
      }),
    );
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  describe('versions of one file', () => {
    const names: string[] = [];
    beforeAll(async () => {
      const file = join(paths.notes!, 'notes.txt');
      for (const content of ['one\n', 'two two\n', 'three three three\n', null, 'four\n']) {
        if (content !== null) await writeFile(file, content);
        names.push(await snap('notes'));
      }
      // Only in the newest two snapshots and live.
      await writeFile(join(paths.notes!, 'late.txt'), 'late\n');
    });

    it('lists 4 versions, newest first, the identical pair grouped and live marked', async () => {
      const result = await fileVersions(deps, { volume: 'notes', path: 'notes.txt' });
      expect(result.total).toBe(4);
      expect(result.versions.map((v) => v.snapshots)).toEqual([
        [names[4]],
        [names[3], names[2]],
        [names[1]],
        [names[0]],
      ]);
      expect(result.versions[0]!.live).toBe(true);
      expect(result.versions.slice(1).every((v) => v.live === undefined)).toBe(true);
      expect(result.versions.map((v) => v.size)).toEqual([5, 18, 8, 4]);
      expect(result.versions[0]).toMatchObject({ type: 'file', mode: '0644', owner: '0:0' });
      expect(result.absent).toEqual([]);
    });

    it('reports the snapshots where a path is absent', async () => {
      const result = await fileVersions(deps, { volume: 'notes', path: './late.txt' });
      expect(result.versions).toHaveLength(1);
      expect(result.versions[0]).toMatchObject({ live: true, snapshots: [] });
      expect(result.absent.sort()).toEqual([...names].sort());
    });

    it('hashes versions only where size and mtime cannot tell them apart; checksum hashes all', async () => {
      const plain = await fileVersions(deps, { volume: 'notes', path: 'notes.txt' });
      expect(plain.versions.every((v) => v.sha256 === undefined)).toBe(true);
      const hashed = await fileVersions(deps, { volume: 'notes', path: 'notes.txt', checksum: true });
      expect(hashed.total).toBe(4);
      expect(hashed.versions.every((v) => /^[0-9a-f]{64}$/.test(v.sha256 ?? ''))).toBe(true);
    });

    it('over MCP: a read-only tool with structured versions, and read_snapshot_file returns the old text', async () => {
      const mcp = await connect(deps);
      try {
        const listed = await mcp.client.listTools();
        for (const name of ['file_versions', 'find_deleted', 'diff_snapshots', 'read_snapshot_file']) {
          const tool = listed.tools.find((t) => t.name === name);
          expect(tool?.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false });
          expect(tool?.outputSchema).toBeDefined();
        }
        const versions = await mcp.call('file_versions', { volume: 'notes', path: 'notes.txt' });
        expect(versions.isError).toBeFalsy();
        expect((versions.structuredContent as { total: number }).total).toBe(4);
        const read = await mcp.call('read_snapshot_file', {
          volume: 'notes',
          snapshot: names[1],
          path: 'notes.txt',
        });
        expect(read.structuredContent).toMatchObject({
          content: 'two two\n',
          binary: false,
          truncated: false,
        });
        const bad = await mcp.call('read_snapshot_file', {
          volume: 'notes',
          snapshot: names[1],
          path: '../x',
        });
        expect(bad.isError).toBe(true);
        expect(textOf(bad)).toContain('..');
      } finally {
        await mcp.close();
      }
    });

    it('the built CLI prints the versions as a table and as JSON', async () => {
      const config = join(sandbox.dir, 'snapguard.yaml');
      const human = await runBuiltCli(['versions', 'notes', 'notes.txt', '--config', config]);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain(`${names[3]}, ${names[2]}`);
      expect(human.stdout).toContain(`live, ${names[4]}`);
      const json = await runBuiltCli(['versions', 'notes', 'notes.txt', '--config', config, '--json']);
      expect(JSON.parse(json.stdout).total).toBe(4);
      const unknown = await runBuiltCli(['versions', 'nope', 'notes.txt', '--config', config]);
      expect(unknown.code).toBe(3);
      const missing = await runBuiltCli(['versions', 'notes', 'never.txt', '--config', config]);
      expect(missing.code).toBe(1);
      const cat = await runBuiltCli(['cat', 'notes', names[0]!, 'notes.txt', '--config', config]);
      expect(cat).toMatchObject({ code: 0, stdout: 'one\n' });
      const escape = await runBuiltCli(['cat', 'notes', names[0]!, '/etc/hostname', '--config', config]);
      expect(escape.code).toBe(3);
      expect(escape.stdout).toBe('');
    });
  });

  describe('deleted files', () => {
    let older: string;
    let newer: string;
    beforeAll(async () => {
      const root = paths.photos!;
      await mkdir(join(root, 'album', '2024'), { recursive: true });
      await writeFile(join(root, 'album', '2024', 'a.jpg'), 'aaaa');
      await writeFile(join(root, 'album', '2024', 'early.jpg'), 'early');
      await writeFile(join(root, 'album', 'index.txt'), 'index');
      await writeFile(join(root, 'kept.txt'), 'kept');
      await writeFile(join(root, 'old.txt'), 'old');
      await writeFile(Buffer.concat([Buffer.from(`${root}/odd-`), Buffer.from([0xff])]), 'x');
      await writeFile(join(root, 'new\nline.txt'), 'nl');
      older = await snap('photos');
      await rm(join(root, 'old.txt'));
      await rm(join(root, 'album', '2024', 'early.jpg'));
      await writeFile(join(root, 'album', '2024', 'b.jpg'), 'bbbbbb');
      newer = await snap('photos');
      await rm(join(root, 'album'), { recursive: true });
      await rm(Buffer.concat([Buffer.from(`${root}/odd-`), Buffer.from([0xff])]));
      await rm(join(root, 'new\nline.txt'));
    });

    it('finds every entry under a folder deleted live, each with the newest snapshot holding it', async () => {
      const result = await findDeleted(deps, { volume: 'photos' });
      const byPath = new Map(result.deleted.map((d) => [d.path, d]));
      expect([...byPath.keys()].sort()).toEqual(
        [
          'album',
          'album/2024',
          'album/2024/a.jpg',
          'album/2024/b.jpg',
          'album/2024/early.jpg',
          'album/index.txt',
          'new\\nline.txt',
          'odd-\\xff',
          'old.txt',
        ].sort(),
      );
      expect(result.total).toBe(9);
      expect(result.truncated).toBe(false);
      expect(byPath.get('album')).toMatchObject({ type: 'folder', newestSnapshot: newer, topLevel: true });
      expect(byPath.get('album/2024/b.jpg')).toMatchObject({
        newestSnapshot: newer,
        size: 6,
        topLevel: false,
      });
      expect(byPath.get('album/2024/early.jpg')).toMatchObject({ newestSnapshot: older, size: 5 });
      expect(byPath.get('old.txt')).toMatchObject({ newestSnapshot: older, topLevel: true });
      expect(Buffer.from(byPath.get('odd-\\xff')!.pathBase64!, 'base64')).toEqual(
        Buffer.from([...Buffer.from('odd-'), 0xff]),
      );
      expect(byPath.has('kept.txt')).toBe(false);
    });

    it('narrows to a folder, bounds the list and still counts everything', async () => {
      const below = await findDeleted(deps, { volume: 'photos', path: 'album/2024' });
      expect(below.deleted.map((d) => d.path).sort()).toEqual([
        'album/2024',
        'album/2024/a.jpg',
        'album/2024/b.jpg',
        'album/2024/early.jpg',
      ]);
      const bounded = await findDeleted(deps, { volume: 'photos', limit: 2 });
      expect(bounded).toMatchObject({ total: 9, truncated: true });
      expect(bounded.deleted).toHaveLength(2);
    });

    it('since searches only newer snapshots', async () => {
      const createdNewer = (await findDeleted(deps, { volume: 'photos' })).deleted.find(
        (d) => d.newestSnapshot === newer,
      )!.snapshotCreatedAt;
      const recent = await findDeleted(deps, { volume: 'photos', since: createdNewer });
      expect(recent.snapshotsChecked).toBe(1);
      expect(recent.deleted.map((d) => d.path)).not.toContain('old.txt');
      expect(recent.deleted.map((d) => d.path)).toContain('album/2024/b.jpg');
    });

    it('a diff against live counts every removed entry and bounds the list', async () => {
      const result = await diffSnapshots(deps, { volume: 'photos', from: older, limit: 2 });
      expect(result.removed.count).toBe(8);
      expect(result.removed.paths).toHaveLength(2);
      expect(result.removed.truncated).toBe(true);
      expect(result.added.count).toBe(0);
    });

    it('the built CLI lists them and over MCP the result is structured', async () => {
      const config = join(sandbox.dir, 'snapguard.yaml');
      const run = await runBuiltCli(['deleted', 'photos', 'album', '--config', config]);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('album/2024/early.jpg');
      expect(run.stdout).toContain(older);
      const mcp = await connect(deps);
      try {
        const messages: string[] = [];
        const result = await mcp.client.callTool(
          { name: 'find_deleted', arguments: { volume: 'photos', path: 'album' } },
          undefined,
          { onprogress: (progress) => messages.push(progress.message ?? '') },
        );
        expect((result.structuredContent as { total: number }).total).toBe(6);
        expect(messages[0]).toMatch(/^searching photos-manual-/);
      } finally {
        await mcp.close();
      }
    });
  });

  describe('diff between snapshots and against live', () => {
    let before: string;
    let after: string;
    beforeAll(async () => {
      const root = paths.app!;
      await mkdir(join(root, 'conf'));
      for (const name of ['keep.txt', 'remove.txt', 'perm.txt', 'xattr.txt', 'atime.txt'])
        await writeFile(join(root, name), `${name}\n`);
      await writeFile(join(root, 'conf', 'app.ini'), 'port = 80\nname = app\n');
      before = await snap('app');
      await writeFile(join(root, 'conf', 'app.ini'), 'port = 8080\nname = app\n');
      await rm(join(root, 'remove.txt'));
      await writeFile(join(root, 'new.txt'), 'new\n');
      await chmod(join(root, 'perm.txt'), 0o600);
      await exec('setfattr', ['-n', 'user.tag', '-v', 'blue', join(root, 'xattr.txt')]);
      const mtimeBefore = (await stat(join(root, 'atime.txt'), { bigint: true })).mtimeNs;
      await exec('touch', ['-a', '-d', '2020-01-01', join(root, 'atime.txt')]);
      const touched = await stat(join(root, 'atime.txt'), { bigint: true });
      expect(touched.mtimeNs).toBe(mtimeBefore);
      expect(touched.atime.getUTCFullYear()).toBe(2020);
      after = await snap('app');
      await writeFile(join(root, 'keep.txt'), 'changed live\n');
    });

    it('between two snapshots: added, removed, modified and metadata; an atime-only change is no change', async () => {
      const result = await diffSnapshots(deps, { volume: 'app', from: before, to: after });
      expect(result.added).toEqual({ count: 1, paths: ['new.txt'], truncated: false });
      expect(result.removed).toEqual({ count: 1, paths: ['remove.txt'], truncated: false });
      expect(result.modified).toEqual({ count: 1, paths: ['conf/app.ini'], truncated: false });
      expect(result.metadata.changes).toEqual([
        { path: 'perm.txt', fields: ['mode'] },
        { path: 'xattr.txt', fields: ['xattrs'] },
      ]);
      expect(result.metadata.count).toBe(2);
      // Between two btrfs snapshots the metadata-only send stream names the candidates.
      expect(result.method).toBe('btrfs-send');
    });

    it('the send stream and the tree walk agree on renamed, new and removed folders and a path filter', async () => {
      const root = paths.app!;
      await mkdir(join(root, 'tree', 'old', 'sub'), { recursive: true });
      await mkdir(join(root, 'tree', 'gone'), { recursive: true });
      for (const rel of ['old/a.txt', 'old/sub/b.txt', 'gone/c.txt', 'same.txt'])
        await writeFile(join(root, 'tree', rel), `${rel}\n`);
      const one = await snap('app');
      await exec('mv', [join(root, 'tree', 'old'), join(root, 'tree', 'renamed')]);
      await rm(join(root, 'tree', 'gone'), { recursive: true });
      await mkdir(join(root, 'tree', 'fresh', 'deep'), { recursive: true });
      await writeFile(join(root, 'tree', 'fresh', 'deep', 'd.txt'), 'd\n');
      const two = await snap('app');
      const sent = await diffSnapshots(deps, { volume: 'app', from: one, to: two });
      // checksum compares content, which only the walk does.
      const walked = await diffSnapshots(deps, { volume: 'app', from: one, to: two, checksum: true });
      expect(sent.method).toBe('btrfs-send');
      expect(walked.method).toBe('walk');
      for (const list of ['added', 'removed', 'modified'] as const) expect(sent[list]).toEqual(walked[list]);
      expect(sent.metadata.changes).toEqual(walked.metadata.changes);
      expect(sent.added.paths).toEqual([
        'tree/fresh',
        'tree/fresh/deep',
        'tree/fresh/deep/d.txt',
        'tree/renamed',
        'tree/renamed/a.txt',
        'tree/renamed/sub',
        'tree/renamed/sub/b.txt',
      ]);
      expect(sent.removed.paths).toEqual([
        'tree/gone',
        'tree/gone/c.txt',
        'tree/old',
        'tree/old/a.txt',
        'tree/old/sub',
        'tree/old/sub/b.txt',
      ]);
      const only = await diffSnapshots(deps, { volume: 'app', from: one, to: two, path: 'tree/fresh' });
      expect(only.added.paths).toEqual(['tree/fresh', 'tree/fresh/deep', 'tree/fresh/deep/d.txt']);
      expect(only.removed.count).toBe(0);
      await rm(join(root, 'tree'), { recursive: true });
    });

    it('against the live volume when to is left out', async () => {
      const result = await diffSnapshots(deps, { volume: 'app', from: after });
      expect(result.to).toBe('live');
      expect(result.method).toBe('walk');
      expect(result.modified.paths).toEqual(['keep.txt']);
      expect(result.added.count + result.removed.count + result.metadata.count).toBe(0);
    });

    it('a unified diff for one small text file, through the built CLI with -- PATH', async () => {
      const result = await diffSnapshots(deps, {
        volume: 'app',
        from: before,
        to: after,
        path: 'conf/app.ini',
        patch: true,
      });
      expect(result.patch).toContain('-port = 80\n');
      expect(result.patch).toContain('+port = 8080\n');
      const config = join(sandbox.dir, 'snapguard.yaml');
      const run = await runBuiltCli([
        'diff',
        'app',
        before,
        '--patch',
        '--config',
        config,
        '--',
        'conf/app.ini',
      ]);
      expect(run.code).toBe(0);
      // Without TO the path after -- is compared with the live volume.
      expect(run.stdout).toContain(`${before} -> live (conf/app.ini)`);
      expect(run.stdout).toContain('+port = 8080');
      const two = await runBuiltCli(['diff', 'app', before, after, '--json', '--config', config]);
      expect(JSON.parse(two.stdout).added.paths).toEqual(['new.txt']);
    });
  });

  describe('reading one file from a snapshot', () => {
    let name: string;
    beforeAll(async () => {
      const root = paths.notes!;
      await symlink('/etc/hostname', join(root, 'escape'));
      await symlink('notes.txt', join(root, 'inner'));
      await symlink('/etc', join(root, 'etcdir'));
      await writeFile(join(root, 'blob.bin'), Buffer.from([1, 2, 0, 3]));
      await writeFile(join(root, 'big.txt'), 'é'.repeat(100));
      await exec('mkfifo', [join(root, 'pipe')]);
      name = await snap('notes');
    });

    it('refuses "..", absolute paths and symlinks that leave the snapshot', async () => {
      for (const path of ['../notes/notes.txt', '/etc/hostname', 'escape', 'etcdir/hostname']) {
        await expect(readSnapshotFile(deps, { volume: 'notes', snapshot: name, path })).rejects.toMatchObject(
          {
            code: 'BAD_INPUT',
          },
        );
      }
    });

    it('follows a symlink inside the snapshot, refuses folders, returns binary as size and sha256', async () => {
      const inner = await readSnapshotFile(deps, { volume: 'notes', snapshot: name, path: 'inner' });
      expect(inner.content).toBe(await readFile(join(paths.notes!, 'notes.txt'), 'utf8'));
      const blob = await readSnapshotFile(deps, { volume: 'notes', snapshot: name, path: 'blob.bin' });
      expect(blob).toMatchObject({ binary: true, size: 4 });
      expect(blob.content).toBeUndefined();
      expect(blob.sha256).toMatch(/^[0-9a-f]{64}$/);
      await expect(
        readSnapshotFile(deps, { volume: 'notes', snapshot: name, path: '.' }),
      ).rejects.toMatchObject({
        code: 'BAD_INPUT',
      });
    });

    it('refuses a FIFO without opening it', async () => {
      await expect(
        readSnapshotFile(deps, { volume: 'notes', snapshot: name, path: 'pipe' }),
      ).rejects.toMatchObject({ code: 'BAD_INPUT', message: expect.stringContaining('not a regular file') });
    });

    it('cuts text at maxBytes without breaking a character', async () => {
      const cut = await readSnapshotFile(deps, {
        volume: 'notes',
        snapshot: name,
        path: 'big.txt',
        maxBytes: 7,
      });
      expect(cut).toMatchObject({ content: 'ééé', truncated: true, size: 200 });
    });

    it('refuses a snapshot that does not exist', async () => {
      await expect(
        readSnapshotFile(deps, {
          volume: 'notes',
          snapshot: 'notes-manual-20200101-000000',
          path: 'notes.txt',
        }),
      ).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });
    });
  });

  describe('external copies, foreign snapshots and entries that are not files', () => {
    it('lists versions held by an external copy and a foreign snapshot, and reads the copy', async () => {
      const root = paths.notes!;
      const latest = await snap('notes');
      const extDir = join(sandbox.pool.mountPoint, 'ext-notes');
      await mkdir(extDir);
      const stream = join(sandbox.dir, 'notes.send');
      await exec('btrfs', ['send', '-q', '-f', stream, join(deps.config.volumes.notes!.snapshotDir, latest)]);
      await exec('btrfs', ['receive', '-f', stream, extDir]);
      await exec('btrfs', [
        'subvolume',
        'snapshot',
        '-r',
        root,
        join(deps.config.volumes.notes!.snapshotDir, 'snapper-1'),
      ]);
      const extDeps = sandbox.deps(
        { volumes: { notes: { backend: 'btrfs', path: root, external: [{ kind: 'btrfs', path: extDir }] } } },
        { clock: () => new Date(clockTime) },
      );
      const result = await fileVersions(extDeps, {
        volume: 'notes',
        path: 'notes.txt',
        location: 'all',
        includeForeign: true,
      });
      expect(result.versions[0]!.live).toBe(true);
      expect(result.versions[0]!.snapshots).toEqual(
        expect.arrayContaining([latest, `external:${latest}`, 'snapper-1']),
      );
      const copy = await readSnapshotFile(extDeps, {
        volume: 'notes',
        snapshot: `external:${latest}`,
        path: 'notes.txt',
      });
      expect(copy.snapshot).toBe(`external:${latest}`);
      expect(copy.content).toBe(await readFile(join(root, 'notes.txt'), 'utf8'));
    });

    it('reports a symlink and a FIFO as what they are', async () => {
      const link = await fileVersions(deps, { volume: 'notes', path: 'inner' });
      expect(link.versions[0]).toMatchObject({ type: 'symlink', target: 'notes.txt', live: true });
      const pipe = await fileVersions(deps, { volume: 'notes', path: 'pipe' });
      expect(pipe.versions[0]).toMatchObject({ type: 'fifo', live: true });
    });
  });
});
