import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  readdir,
  rename,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ElicitRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import type { SnapguardError } from '../../src/core/errors.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { formatTimestamp } from '../../src/core/naming.js';
import { recover } from '../../src/core/recovery/recover.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createServer } from '../../src/mcp/server.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireBuiltCli, runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';
import { createZfsSandbox, type ZfsSandbox } from '../helpers/zfs.js';

const NOT_UTF8 = Buffer.from([0x6f, 0x64, 0x64, 0x2d, 0xff, 0xfe]); // "odd-" then two bytes that are not UTF-8

/** The suffix a restore beside the original gets for a snapshot made at `createdAt`. */
const suffixOf = (createdAt: string) => `.snapguard-${formatTimestamp(new Date(createdAt))}`;

async function snapshotOf(deps: Deps, volume: string): Promise<{ name: string; createdAt: string }> {
  const created = (await createSnapshots(deps, { volumes: [volume], type: 'manual' })).created[0]!;
  return { name: created.name, createdAt: created.createdAt };
}

const btrfs = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.runIf(btrfs)('recover beside the original on real btrfs', () => {
  let box: BtrfsSandbox;
  let deps: Deps;
  let path: string;
  let outside: string;
  let config: string;
  let snap: { name: string; createdAt: string };
  let clockTime = Date.UTC(2026, 10, 21, 14, 30, 0);

  beforeAll(async () => {
    box = await createBtrfsSandbox(256, 'beside');
    path = await box.subvolume('app');
    outside = join(box.dir, 'outside-secret');
    await writeFile(outside, 'not part of any snapshot\n');
    const volumes = { app: { backend: 'btrfs' as const, path } };
    deps = box.deps({ confirm: 'elicit-or-token', volumes }, { clock: () => new Date(clockTime) });
    config = await box.writeConfig({ confirm: 'elicit-or-token', volumes });
    await mkdir(join(path, 'conf'));
    await writeFile(join(path, 'conf', 'app.ini'), 'port = 80\n');
    await chmod(join(path, 'conf', 'app.ini'), 0o640);
    await mkdir(join(path, 'docs', 'deep'), { recursive: true });
    await writeFile(join(path, 'docs', 'deep', 'plan.md'), '# plan\n');
    await writeFile(Buffer.concat([Buffer.from(`${path}/docs/`), NOT_UTF8]), 'odd bytes\n');
    await writeFile(join(path, 'docs', 'two\nlines.txt'), 'newline name\n');
    await symlink('deep/plan.md', join(path, 'docs', 'link-to-plan'));
    await writeFile(join(path, 'new\nline.txt'), 'top-level newline\n');
    await symlink(outside, join(path, 'escape'));
    await symlink('conf/app.ini', join(path, 'inner-link'));
    clockTime += 60_000;
    snap = await snapshotOf(deps, 'app');
    // What happened after the snapshot: a changed file, a deleted folder.
    await writeFile(join(path, 'conf', 'app.ini'), 'port = 8080\n');
    await rm(join(path, 'docs'), { recursive: true });
    clockTime += 60_000;
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('writes the snapshot version next to the original, names it in the result and records it in the history', async () => {
    const result = await recover(deps, {
      volume: 'app',
      snapshot: snap.name,
      mode: 'files',
      destination: 'beside',
      paths: ['conf/app.ini'],
    });
    const written = `conf/app.ini${suffixOf(snap.createdAt)}`;
    expect(result.status).toBe('recovered');
    expect(result.written).toEqual([
      expect.objectContaining({ path: 'conf/app.ini', writtenTo: written, type: 'file' }),
    ]);
    expect(result.message).toContain(written);
    expect(await readFile(join(path, written), 'utf8')).toBe('port = 80\n');
    expect((await lstat(join(path, written))).mode & 0o7777).toBe(0o640);
    expect(await readFile(join(path, 'conf', 'app.ini'), 'utf8')).toBe('port = 8080\n');
    // No safety snapshot is made: nothing was replaced.
    expect(result.safetyBackup).toBeUndefined();
    const { history } = await deps.history.read();
    const entry = history.recoveries.find((r) => r.id === result.recoveryId);
    expect(entry).toMatchObject({
      mode: 'files',
      destination: 'beside',
      restored_snapshot: snap.name,
      paths: ['conf/app.ini'],
      written: [written],
      safety_backup: null,
      outcome: 'success',
    });
    await rm(join(path, written));
  });

  it('never overwrites: an existing target name is refused, naming it, and nothing changes', async () => {
    const target = join(path, `conf/app.ini${suffixOf(snap.createdAt)}`);
    await writeFile(target, 'mine, do not touch\n');
    const before = (await deps.history.read()).history.recoveries.length;
    const attempt = recover(deps, {
      volume: 'app',
      snapshot: snap.name,
      mode: 'files',
      destination: 'beside',
      paths: ['docs', 'conf/app.ini'],
    });
    await expect(attempt).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    await expect(attempt).rejects.toThrow(`conf/app.ini${suffixOf(snap.createdAt)}`);
    expect(await readFile(target, 'utf8')).toBe('mine, do not touch\n');
    expect(await readFile(join(path, 'conf', 'app.ini'), 'utf8')).toBe('port = 8080\n');
    // The other path was not written either: every target is checked before anything is written.
    expect((await readdir(path)).filter((n) => n.startsWith('docs'))).toEqual([]);
    expect((await deps.history.read()).history.recoveries.length).toBe(before);
    await rm(target);
  });

  it('a deleted folder comes back under a new name, odd names (not UTF-8, newline) and symlinks as they were', async () => {
    const result = await recover(deps, {
      volume: 'app',
      snapshot: snap.name,
      mode: 'files',
      destination: 'beside',
      paths: ['docs', 'new\nline.txt'],
    });
    expect(result.status).toBe('recovered');
    const folder = `docs${suffixOf(snap.createdAt)}`;
    expect(result.written?.map((w) => w.writtenTo).sort()).toEqual(
      [folder, `new\nline.txt${suffixOf(snap.createdAt)}`].sort(),
    );
    expect(await readFile(join(path, folder, 'deep', 'plan.md'), 'utf8')).toBe('# plan\n');
    expect(await readFile(join(path, folder, 'two\nlines.txt'), 'utf8')).toBe('newline name\n');
    const odd = Buffer.concat([Buffer.from(`${path}/${folder}/`), NOT_UTF8]);
    expect(await readFile(odd, 'utf8')).toBe('odd bytes\n');
    expect(await readlink(join(path, folder, 'link-to-plan'))).toBe('deep/plan.md');
    expect(await readFile(join(path, `new\nline.txt${suffixOf(snap.createdAt)}`), 'utf8')).toBe(
      'top-level newline\n',
    );
    // The original stays absent: only the new name was written.
    await expect(lstat(join(path, 'docs'))).rejects.toMatchObject({ code: 'ENOENT' });
    // Again: the names now exist, so the same restore is refused.
    await expect(
      recover(deps, {
        volume: 'app',
        snapshot: snap.name,
        mode: 'files',
        destination: 'beside',
        paths: ['docs'],
      }),
    ).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    await rm(join(path, folder), { recursive: true });
    await rm(join(path, `new\nline.txt${suffixOf(snap.createdAt)}`));
  });

  it('a symlink in the snapshot pointing outside it is refused; one pointing inside is resolved within it', async () => {
    await expect(
      recover(deps, {
        volume: 'app',
        snapshot: snap.name,
        mode: 'files',
        destination: 'beside',
        paths: ['escape'],
      }),
    ).rejects.toMatchObject({ code: 'BAD_INPUT' });
    expect((await readdir(path)).filter((n) => n.startsWith('escape'))).toEqual(['escape']);
    for (const bad of ['../x', '/etc/passwd', '.']) {
      await expect(
        recover(deps, {
          volume: 'app',
          snapshot: snap.name,
          mode: 'files',
          destination: 'beside',
          paths: [bad],
        }),
      ).rejects.toMatchObject({ code: 'BAD_INPUT' });
    }
    const result = await recover(deps, {
      volume: 'app',
      snapshot: snap.name,
      mode: 'files',
      destination: 'beside',
      paths: ['inner-link'],
    });
    const written = join(path, `inner-link${suffixOf(snap.createdAt)}`);
    expect((await lstat(written)).isFile()).toBe(true);
    expect(await readFile(written, 'utf8')).toBe('port = 80\n');
    expect(result.written?.[0]?.type).toBe('file');
    await rm(written);
  });

  it('over MCP: beside is not gated; in place asks for confirmation', async () => {
    const { server, cleanup } = createServer(deps);
    const client = new Client({ name: 'test', version: '0' }, { capabilities: { elicitation: {} } });
    const asked: string[] = [];
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(String(request.params.message));
      return { action: 'decline' };
    });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(a), client.connect(b)]);
    try {
      const beside = (await client.callTool({
        name: 'recover',
        arguments: {
          volume: 'app',
          snapshot: snap.name,
          mode: 'files',
          destination: 'beside',
          paths: ['conf/app.ini'],
        },
      })) as CallToolResult;
      expect(beside.isError).toBeFalsy();
      expect(asked).toEqual([]);
      const written = `conf/app.ini${suffixOf(snap.createdAt)}`;
      expect(beside.structuredContent).toMatchObject({
        status: 'recovered',
        written: [{ writtenTo: written }],
      });
      expect((beside.content[0] as { text: string }).text).toContain(written);
      expect(await readFile(join(path, written), 'utf8')).toBe('port = 80\n');
      await rm(join(path, written));

      const planned = (await client.callTool({
        name: 'recover',
        arguments: {
          volume: 'app',
          snapshot: snap.name,
          mode: 'files',
          destination: 'beside',
          paths: ['conf/app.ini'],
          dryRun: true,
        },
      })) as CallToolResult;
      expect(planned.structuredContent).toMatchObject({
        status: 'planned',
        written: [{ writtenTo: written }],
      });
      expect((planned.content[0] as { text: string }).text).toContain(`would write ${written}`);
      await expect(lstat(join(path, written))).rejects.toMatchObject({ code: 'ENOENT' });

      const inPlace = (await client.callTool({
        name: 'recover',
        arguments: { volume: 'app', snapshot: snap.name, mode: 'files', paths: ['conf/app.ini'] },
      })) as CallToolResult;
      expect(asked).toHaveLength(1);
      expect(inPlace.structuredContent).toMatchObject({ status: 'declined' });
      expect(await readFile(join(path, 'conf', 'app.ini'), 'utf8')).toBe('port = 8080\n');
    } finally {
      await client.close();
      await cleanup();
    }
  });

  it('reads an external copy and a foreign snapshot; in place still refuses the foreign one', async () => {
    const extDir = join(box.pool.mountPoint, 'ext-app');
    await mkdir(extDir);
    const stream = join(box.dir, 'app.send');
    await exec('btrfs', ['send', '-q', '-f', stream, join(deps.config.volumes.app!.snapshotDir, snap.name)]);
    await exec('btrfs', ['receive', '-f', stream, extDir]);
    await exec('btrfs', [
      'subvolume',
      'snapshot',
      '-r',
      path,
      join(deps.config.volumes.app!.snapshotDir, 'snapper-7'),
    ]);
    const extDeps = box.deps(
      { volumes: { app: { backend: 'btrfs', path, external: [{ kind: 'btrfs', path: extDir }] } } },
      { clock: () => new Date(clockTime) },
    );
    const fromCopy = await recover(extDeps, {
      volume: 'app',
      snapshot: `external:${snap.name}`,
      mode: 'files',
      destination: 'beside',
      paths: ['conf/app.ini'],
    });
    const written = `conf/app.ini${suffixOf(snap.createdAt)}`;
    expect(fromCopy.written?.[0]?.writtenTo).toBe(written);
    expect(fromCopy.message).toContain(`external:${snap.name}`);
    expect(await readFile(join(path, written), 'utf8')).toBe('port = 80\n');
    await rm(join(path, written));
    const fromForeign = await recover(extDeps, {
      volume: 'app',
      snapshot: 'snapper-7',
      mode: 'files',
      destination: 'beside',
      paths: ['conf/app.ini'],
    });
    const foreignName = fromForeign.written?.[0]?.writtenTo ?? '';
    expect(foreignName).toMatch(/^conf\/app\.ini\.snapguard-\d{8}-\d{6}$/);
    expect(await readFile(join(path, foreignName), 'utf8')).toBe('port = 8080\n');
    await rm(join(path, foreignName));
    await expect(
      recover(extDeps, { volume: 'app', snapshot: 'snapper-7', mode: 'files', paths: ['conf/app.ini'] }),
    ).rejects.toMatchObject({ code: 'NOT_OWNED' });
  });

  it('a symlink on the live side (a parent folder, the volume path) is refused and nothing is written through it', async () => {
    const elsewhere = join(box.dir, 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    await rename(join(path, 'conf'), join(path, 'conf-real'));
    await symlink(elsewhere, join(path, 'conf'));
    try {
      await expect(
        recover(deps, {
          volume: 'app',
          snapshot: snap.name,
          mode: 'files',
          destination: 'beside',
          paths: ['conf/app.ini'],
        }),
      ).rejects.toMatchObject({ code: 'BAD_INPUT' });
      expect(await readdir(elsewhere)).toEqual([]);
    } finally {
      await rm(join(path, 'conf'));
      await rename(join(path, 'conf-real'), join(path, 'conf'));
    }
    // The volume path replaced by a symlink after the configuration was loaded.
    const moved = `${path}-moved`;
    await rename(path, moved);
    await symlink(moved, path);
    try {
      await expect(
        recover(deps, {
          volume: 'app',
          snapshot: snap.name,
          mode: 'files',
          destination: 'beside',
          paths: ['new\nline.txt'],
        }),
      ).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
      // Its hint in each interface's words: health_check over MCP, snapguard doctor on the CLI.
      const refusal = (await recover(deps, {
        volume: 'app',
        snapshot: snap.name,
        mode: 'files',
        destination: 'beside',
        paths: ['new\nline.txt'],
      }).catch((error: unknown) => error)) as SnapguardError;
      expect(refusal.hintFor('mcp')).toContain('health_check');
      expect(refusal.hintFor('mcp')).not.toContain('snapguard doctor');
      expect(refusal.hintFor('cli')).toContain('snapguard doctor');
    } finally {
      await rm(path);
      await rename(moved, path);
    }
    expect((await readdir(path)).filter((n) => n.includes('.snapguard-'))).toEqual([]);
  });

  it('beside needs files mode and volume + snapshot', async () => {
    await expect(
      recover(deps, { volume: 'app', snapshot: snap.name, destination: 'beside' }),
    ).rejects.toMatchObject({ code: 'BAD_INPUT' });
  });

  it('CLI: recover --files PATH --beside writes without asking and prints the written path', async () => {
    requireBuiltCli();
    const args = ['recover', 'app', snap.name, '--files', 'conf/app.ini', '--beside', '--config', config];
    const dry = await runBuiltCli([...args, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`would write ${join(path, `conf/app.ini${suffixOf(snap.createdAt)}`)}`);
    await expect(lstat(join(path, `conf/app.ini${suffixOf(snap.createdAt)}`))).rejects.toMatchObject({
      code: 'ENOENT',
    });
    const run = await runBuiltCli(args);
    const written = `conf/app.ini${suffixOf(snap.createdAt)}`;
    // Off a terminal stderr carries only the plain progress lines ("recover: step ..."): no warning, no error.
    expect(run.stderr.split('\n').filter((line) => line && !line.startsWith('recover: '))).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(written);
    expect(await readFile(join(path, written), 'utf8')).toBe('port = 80\n');
    const again = await runBuiltCli(args);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(written);
    await rm(join(path, written));
  });
});

describe('recover beside the original on the dir backend', () => {
  let dir: string;
  let volume: string;
  let deps: Deps;
  const clockTime = Date.UTC(2026, 10, 22, 9, 0, 0);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-beside-dir-'));
    volume = join(dir, 'pool', 'data');
    await mkdir(join(volume, 'docs'), { recursive: true });
    deps = createDeps(
      buildConfig(
        { contextDir: 'ctx', stateDir: 'state', volumes: { data: { backend: 'dir', path: 'pool/data' } } },
        dir,
      ),
      { logger: silentLogger(), clock: () => new Date(clockTime) },
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes beside and refuses an existing target', async () => {
    await writeFile(join(volume, 'docs', 'plan.md'), 'first\n');
    const snap = await snapshotOf(deps, 'data');
    await writeFile(join(volume, 'docs', 'plan.md'), 'second\n');
    const request = {
      volume: 'data',
      snapshot: snap.name,
      mode: 'files',
      destination: 'beside',
      paths: ['docs/plan.md'],
    };
    const result = await recover(deps, request);
    const written = join(volume, `docs/plan.md${suffixOf(snap.createdAt)}`);
    expect(result.written?.[0]?.writtenTo).toBe(`docs/plan.md${suffixOf(snap.createdAt)}`);
    expect(await readFile(written, 'utf8')).toBe('first\n');
    await writeFile(written, 'edited\n');
    await expect(recover(deps, request)).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    expect(await readFile(written, 'utf8')).toBe('edited\n');
    expect(await readFile(join(volume, 'docs', 'plan.md'), 'utf8')).toBe('second\n');
  });
});

const zfs = requireComponents(['zfs-fuse', 'zfs', 'zpool']);

describe.runIf(zfs)('recover beside the original on a zfs volume (zfs-fuse smoke)', () => {
  let sandbox: ZfsSandbox;
  let deps: Deps;
  let mountPoint: string;
  const clockTime = Date.UTC(2026, 10, 23, 9, 0, 0);

  beforeAll(async () => {
    sandbox = await createZfsSandbox('beside');
    const made = await sandbox.dataset('data');
    mountPoint = made.mountPoint;
    deps = sandbox.deps(
      { volumes: { data: { backend: 'zfs', dataset: made.dataset, path: mountPoint } } },
      { clock: () => new Date(clockTime) },
    );
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('writes the snapshot version beside the original through the zfs reader', async () => {
    await writeFile(join(mountPoint, 'app.conf'), 'v=1\n');
    const snap = await snapshotOf(deps, 'data');
    await writeFile(join(mountPoint, 'app.conf'), 'v=2\n');
    const result = await recover(deps, {
      volume: 'data',
      snapshot: snap.name,
      mode: 'files',
      destination: 'beside',
      paths: ['app.conf'],
    });
    expect(result.status).toBe('recovered');
    expect(await readFile(join(mountPoint, `app.conf${suffixOf(snap.createdAt)}`), 'utf8')).toBe('v=1\n');
    expect(await readFile(join(mountPoint, 'app.conf'), 'utf8')).toBe('v=2\n');
  });
});

describe.runIf(btrfs)('recover a deleted file whose name is not UTF-8 (pathsBase64) on real btrfs', () => {
  let box: BtrfsSandbox;
  let deps: Deps;
  let path: string;
  let snap: { name: string; createdAt: string };
  const NAME = Buffer.from([0x61, 0xff]); // printf 'a\xff'
  const live = () => Buffer.concat([Buffer.from(`${path}/`), NAME]);

  beforeAll(async () => {
    box = await createBtrfsSandbox(256, 'bytes');
    path = await box.subvolume('app');
    deps = box.deps({ confirm: 'elicit-or-token', volumes: { app: { backend: 'btrfs' as const, path } } });
    await writeFile(live(), 'bytes in the name\n');
    snap = await snapshotOf(deps, 'app');
    await rm(live());
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('find_deleted gives pathBase64; recover with pathsBase64 writes it beside; in place takes UTF-8 names behind the gate and refuses others', async () => {
    const { server, cleanup } = createServer(deps);
    const client = new Client({ name: 'test', version: '0' }, { capabilities: { elicitation: {} } });
    const asked: string[] = [];
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(String(request.params.message));
      return { action: 'accept', content: { confirm: true } };
    });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(a), client.connect(b)]);
    try {
      const deleted = (await client.callTool({
        name: 'find_deleted',
        arguments: { volume: 'app' },
      })) as CallToolResult;
      expect(deleted.isError).toBeFalsy();
      const entries = (deleted.structuredContent as { deleted: { path: string; pathBase64?: string }[] })
        .deleted;
      const entry = entries.find((e) => e.pathBase64 === NAME.toString('base64'));
      expect(entry).toBeDefined();

      const beside = (await client.callTool({
        name: 'recover',
        arguments: {
          volume: 'app',
          snapshot: snap.name,
          mode: 'files',
          destination: 'beside',
          pathsBase64: [entry!.pathBase64],
        },
      })) as CallToolResult;
      expect(beside.isError).toBeFalsy();
      expect(asked).toEqual([]);
      const besideName = Buffer.concat([NAME, Buffer.from(suffixOf(snap.createdAt))]);
      expect(beside.structuredContent).toMatchObject({
        status: 'recovered',
        written: [
          {
            path: 'a\\xff',
            writtenTo: `a\\xff${suffixOf(snap.createdAt)}`,
            writtenToBase64: besideName.toString('base64'),
          },
        ],
      });
      expect(await readFile(Buffer.concat([Buffer.from(`${path}/`), besideName]), 'utf8')).toBe(
        'bytes in the name\n',
      );
      await expect(lstat(live())).rejects.toMatchObject({ code: 'ENOENT' });

      // In place handles UTF-8 names only: refused before any gate, pointing at beside.
      const inPlace = (await client.callTool({
        name: 'recover',
        arguments: { volume: 'app', snapshot: snap.name, mode: 'files', pathsBase64: [entry!.pathBase64] },
      })) as CallToolResult;
      expect(inPlace.isError).toBe(true);
      expect(asked).toEqual([]);
      expect((inPlace.content[0] as { text: string }).text).toContain('destination: "beside"');
      await expect(lstat(live())).rejects.toMatchObject({ code: 'ENOENT' });

      // A UTF-8 name given as base64 is restored in place behind the gate.
      await writeFile(join(path, 'plain.txt'), 'v1\n');
      const second = await snapshotOf(deps, 'app');
      await writeFile(join(path, 'plain.txt'), 'v2\n');
      const utf8InPlace = (await client.callTool({
        name: 'recover',
        arguments: {
          volume: 'app',
          snapshot: second.name,
          mode: 'files',
          pathsBase64: [Buffer.from('plain.txt').toString('base64')],
        },
      })) as CallToolResult;
      expect(utf8InPlace.isError).toBeFalsy();
      expect(asked).toHaveLength(1);
      expect(utf8InPlace.structuredContent).toMatchObject({ status: 'recovered' });
      expect(await readFile(join(path, 'plain.txt'), 'utf8')).toBe('v1\n');
    } finally {
      await client.close();
      await cleanup();
    }
  });

  it('pathsBase64 is validated like paths: "..", absolute, NUL and bad base64 are refused, nothing written', async () => {
    const before = (await readdir(path)).sort();
    // The message names pathsBase64 and the decoded path: a request whose pathsBase64 were dropped
    // would be refused too (no paths at all), but with another message.
    for (const [bad, shown] of [
      ['../etc/passwd', '../etc/passwd'],
      ['/etc/passwd', '/etc/passwd'],
      ['a\0b', 'a\\0b'],
    ] as const) {
      await expect(
        recover(deps, {
          volume: 'app',
          snapshot: snap.name,
          mode: 'files',
          destination: 'beside',
          pathsBase64: [Buffer.from(bad).toString('base64')],
        }),
      ).rejects.toMatchObject({
        code: 'BAD_INPUT',
        message: expect.stringContaining(`pathsBase64: "${shown}" is refused`),
      });
    }
    await expect(
      recover(deps, { volume: 'app', snapshot: snap.name, mode: 'files', pathsBase64: ['not base64!'] }),
    ).rejects.toMatchObject({
      code: 'BAD_INPUT',
      message: expect.stringContaining('pathsBase64: "not base64!" is not base64 of a path'),
    });
    expect((await readdir(path)).sort()).toEqual(before);
  });
});
