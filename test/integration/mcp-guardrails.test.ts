import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { requireOwnedSnapshot } from '../../src/core/snapshots.js';
import { tools } from '../../src/mcp/tools/index.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';
import { connect, textOf, type Connected } from '../helpers/mcp.js';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.runIf(enabled)('MCP tools: bad input is refused clearly and changes nothing', () => {
  let sandbox: BtrfsSandbox;
  let deps: Deps;
  let mcp: Connected;
  const audit: Record<string, unknown>[] = [];

  /** Everything a call could change: snapshot folders, the history file, the pool's subvolumes. */
  async function state(): Promise<string> {
    const snapshotDir = deps.config.volumes.containers!.snapshotDir;
    const names = await readdir(snapshotDir).catch(() => []);
    const history = await readFile(deps.history.file, 'utf8').catch(() => '');
    const subvolumes = (await exec('btrfs', ['subvolume', 'list', sandbox.pool.mountPoint])).stdout;
    const outside = await readdir(sandbox.dir);
    return JSON.stringify({ names, history, subvolumes, outside });
  }

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'mcp');
    const path = await sandbox.subvolume('containers');
    await writeFile(join(path, 'file'), 'x');
    const logger = pino(
      { level: 'info' },
      new Writable({ write: (chunk, _e, done) => (audit.push(JSON.parse(String(chunk))), done()) }),
    );
    deps = sandbox.deps({ volumes: { containers: { backend: 'btrfs', path } } }, { logger });
    mcp = await connect(deps);
    await mcp.call('create_snapshot', { volumes: ['containers'], type: 'manual' });
  });
  afterAll(async () => {
    await mcp?.close();
    await sandbox?.cleanup();
  });

  const cases: [string, string, Record<string, unknown>, RegExp][] = [
    [
      'an unknown volume',
      'create_snapshot',
      { volumes: ['media'] },
      /UNKNOWN_VOLUME.*Volume "media" is not configured.*Use one of: containers/s,
    ],
    [
      'a ../ volume',
      'create_snapshot',
      { volumes: ['../containers'] },
      /BAD_INPUT.*volume ids are lowercase.*volumes\[0\]/s,
    ],
    [
      'an absolute volume path',
      'create_snapshot',
      { volumes: ['/mnt/pool/containers'] },
      /BAD_INPUT.*volume ids are lowercase.*volumes\[0\]/s,
    ],
    ['a NUL in a volume id', 'create_snapshot', { volumes: ['contain\0ers'] }, /BAD_INPUT/],
    [
      'shell metacharacters in operation',
      'create_snapshot',
      { volumes: ['containers'], operation: 'x; rm -rf / #' },
      /BAD_INPUT.*operation/s,
    ],
    [
      'command substitution in operation',
      'create_snapshot',
      { volumes: ['containers'], operation: '$(touch /tmp/pwned)' },
      /BAD_INPUT.*operation/s,
    ],
    [
      'a path in operation',
      'create_snapshot',
      { volumes: ['containers'], operation: '../../etc' },
      /BAD_INPUT.*operation/s,
    ],
    [
      'an overlong operation',
      'create_snapshot',
      { volumes: ['containers'], operation: 'a'.repeat(65) },
      /BAD_INPUT.*at most 64/s,
    ],
    ['an overlong volume id', 'create_snapshot', { volumes: ['a'.repeat(10_000)] }, /BAD_INPUT/],
    [
      'an unknown type',
      'create_snapshot',
      { volumes: ['containers'], type: 'pre-everything' },
      /BAD_INPUT.*type/s,
    ],
    ['volumes as a string', 'create_snapshot', { volumes: 'containers' }, /BAD_INPUT.*volumes/s],
    ['no volumes', 'create_snapshot', { volumes: [] }, /BAD_INPUT.*at least one volume/s],
    ['force as a string', 'create_snapshot', { volumes: ['containers'], force: 'yes' }, /BAD_INPUT.*force/s],
    [
      'a malformed operation id',
      'complete_operation',
      { operationId: '../op', outcome: 'success' },
      /BAD_INPUT.*operationId/s,
    ],
    [
      'an operation id that does not exist',
      'complete_operation',
      { operationId: 'op-20261121-000000-abcdef', outcome: 'success' },
      /OPERATION_NOT_FOUND/,
    ],
    [
      'an unknown outcome',
      'complete_operation',
      { operationId: 'op-20261121-000000-abcdef', outcome: 'meh' },
      /BAD_INPUT.*outcome/s,
    ],
    [
      'a since that is neither duration nor time',
      'list_snapshots',
      { since: 'yesterday; ls' },
      /BAD_INPUT.*since/s,
    ],
    ['a traversal in the operation filter', 'list_snapshots', { operation: '../x' }, /BAD_INPUT.*operation/s],
    ['a negative limit', 'list_snapshots', { limit: -1 }, /BAD_INPUT.*limit/s],
  ];

  it.each(cases)('refuses %s', async (_label, tool, args, expected) => {
    const before = await state();
    const result = await mcp.call(tool, args);
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(expected);
    expect(textOf(result)).toMatch(/What to do: /);
    expect(await state()).toBe(before);
  });

  it('refuses snapshot names it does not own, paths and names that do not exist (guardrail 1)', async () => {
    const volume = deps.config.volumes.containers!;
    await exec('btrfs', [
      'subvolume',
      'snapshot',
      '-r',
      volume.path,
      join(volume.snapshotDir, 'containers.20261120T0200'),
    ]);
    await expect(requireOwnedSnapshot(deps, volume, 'containers.20261120T0200')).rejects.toMatchObject({
      code: 'NOT_OWNED',
    });
    await expect(
      requireOwnedSnapshot(deps, volume, 'containers-manual-20200101-000000'),
    ).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });
    for (const name of ['../containers', '/mnt/x', 'a/b', '..', 'x\0y', 'a'.repeat(300)]) {
      await expect(requireOwnedSnapshot(deps, volume, name), name).rejects.toMatchObject({
        code: 'BAD_INPUT',
      });
    }
  });

  it('writes one audit line per tool call, for refused calls too, on the log and never on stdout', async () => {
    audit.length = 0;
    await mcp.call('list_snapshots', { volume: 'containers' });
    await mcp.call('create_snapshot', { volumes: ['nope'] });
    await mcp.call('create_snapshot', { volumes: 'wrong-type' });
    const lines = audit.filter((line) => line.audit === true);
    expect(lines.map((l) => [l.tool, l.volume, l.outcome, l.errorCode])).toEqual([
      ['list_snapshots', 'containers', 'ok', undefined],
      ['create_snapshot', 'nope', 'error', 'UNKNOWN_VOLUME'],
      ['create_snapshot', 'wrong-type', 'error', 'BAD_INPUT'],
    ]);
    expect(lines.every((l) => typeof l.durationMs === 'number')).toBe(true);
  });

  it('notifies subscribers of snapguard://history after each write and serves the file', async () => {
    const updates: string[] = [];
    mcp.client.setNotificationHandler(
      ResourceUpdatedNotificationSchema,
      (n) => void updates.push(n.params.uri),
    );
    await mcp.client.subscribeResource({ uri: 'snapguard://history' });
    const created = await mcp.call('create_snapshot', {
      volumes: ['containers'],
      type: 'manual',
      force: true,
    });
    expect(created.isError).toBeFalsy();
    await expect.poll(() => updates.length).toBeGreaterThan(0);
    expect(updates[0]).toBe('snapguard://history');
    const read = await mcp.client.readResource({ uri: 'snapguard://history' });
    const history = JSON.parse(String((read.contents[0] as { text: string }).text));
    expect(history.snapshots.at(-1).snapshot_name).toBe(
      (created.structuredContent as { created: { name: string }[] }).created[0]!.name,
    );
  });
});

describe.runIf(enabled)('readOnly: true (guardrail 8)', () => {
  let sandbox: BtrfsSandbox;
  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(128, 'ro');
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('registers only the read-only tools, so mutating ones cannot be called at all', async () => {
    const path = await sandbox.subvolume('data');
    const mcp = await connect(
      sandbox.deps({ readOnly: true, volumes: { data: { backend: 'btrfs', path } } }),
    );
    try {
      const listed = await mcp.client.listTools();
      const readOnlyNames = tools.filter((t) => t.readOnly).map((t) => t.name);
      expect(listed.tools.map((t) => t.name).sort()).toEqual([...readOnlyNames].sort());
      expect(listed.tools.map((t) => t.name)).toContain('list_snapshots');
      expect(listed.tools.map((t) => t.name)).not.toContain('create_snapshot');
      expect(listed.tools.every((t) => t.annotations?.readOnlyHint === true)).toBe(true);
      const result = await mcp.call('create_snapshot', { volumes: ['data'] });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain('create_snapshot not found');
      expect(await readdir(sandbox.pool.mountPoint)).toEqual(['data']);
    } finally {
      await mcp.close();
    }
  });
});
