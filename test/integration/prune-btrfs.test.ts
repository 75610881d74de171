import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ElicitRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import type { Deps } from '../../src/core/deps.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { pinSnapshot } from '../../src/core/retention/pins.js';
import { createServer } from '../../src/mcp/server.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mount', 'umount']);
const CLI = join(process.cwd(), 'dist/cli/index.js');
const DAY = 86_400_000;
const HOUR = 3600_000;

interface Made {
  name: string;
  path: string;
}

describe.runIf(run)('prune on real btrfs', () => {
  let sandbox: BtrfsSandbox;
  let configFile: string;
  let configInput: ConfigInput;
  let deps: Deps;
  const now = new Date();
  const made = new Map<string, Made>();
  const busyMounts: string[] = [];

  async function snapshotAt(label: string, at: Date, type: 'scheduled' | 'pre-recover' = 'scheduled') {
    const past = sandbox.deps(configInput, { clock: () => at });
    const result = await createSnapshots(past, { volumes: ['data'], type });
    const created = result.created[0];
    if (!created) throw new Error('no snapshot created');
    made.set(label, { name: created.name, path: created.path });
  }

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(512, 'prune');
    const data = await sandbox.subvolume('data');
    await writeFile(join(data, 'hello.txt'), 'hello');
    const snapDir = join(sandbox.pool.mountPoint, '.snapshots/data');
    const extDir = join(sandbox.pool.mountPoint, 'external/data');
    await mkdir(extDir, { recursive: true });
    configInput = {
      volumes: {
        data: {
          backend: 'btrfs',
          path: data,
          snapshotDir: snapDir,
          retention: {
            preserveMin: 'latest',
            preserve: '2d',
            external: { preserveMin: 'latest', preserve: 'no' },
          },
          external: [{ kind: 'btrfs', path: extDir }],
        },
      },
    };
    configFile = await sandbox.writeConfig({ host: 'test-host', confirm: 'token', ...configInput });
    deps = sandbox.deps(configInput);
    const dayStart = Math.floor(now.getTime() / DAY) * DAY;
    for (let d = 10; d >= 1; d--) await snapshotAt(`day-${d}`, new Date(dayStart - d * DAY + 2 * HOUR));
    await snapshotAt('safety-old', new Date(dayStart - 9 * DAY + 5 * HOUR), 'pre-recover');
    await snapshotAt('safety-young', new Date(dayStart - 3 * DAY + 5 * HOUR), 'pre-recover');
    await snapshotAt('today-a', new Date(now.getTime() - 3 * 60_000));
    await snapshotAt('today-b', new Date(now.getTime() - 2 * 60_000));
    await snapshotAt('newest', new Date(now.getTime() - 60_000));
    // Foreign snapshots in the same folder: never touched.
    // Foreign look-alikes: another volume's name, an invalid collision suffix, a bad date.
    for (const foreign of [
      'data.20261101T0000',
      'snapper-1',
      'datax-scheduled-20200101-000000',
      'data-scheduled-20200101-000000-0',
      'data-scheduled-20200231-000000',
    ])
      await exec('btrfs', ['subvolume', 'snapshot', '-r', data, join(snapDir, foreign)]);
    // External copies, received as a backup target receives them.
    for (const label of ['day-8', 'day-7']) {
      const { path } = made.get(label) as Made;
      const stream = join(sandbox.dir, 'send.stream');
      await exec('btrfs', ['send', '-q', '-f', stream, path]);
      await exec('btrfs', ['receive', '-q', '-f', stream, extDir]);
    }
    await pinSnapshot(deps, {
      volume: 'data',
      snapshot: (made.get('day-9') as Made).name,
      reason: 'before the big upgrade',
    });
  }, 300_000);

  afterAll(async () => {
    for (const mount of busyMounts) await exec('umount', [mount]).catch(() => undefined);
    await sandbox?.cleanup();
  });

  const cli = (args: string[]) =>
    execa(process.execPath, [CLI, ...args, '--config', configFile], { reject: false, stdin: 'ignore' });
  const exists = (label: string) => existsSync((made.get(label) as Made).path);

  it('the dry run gives every snapshot a verdict and a reason and deletes nothing', async () => {
    const out = await cli(['prune', 'data', '--dry-run', '--json']);
    expect(out.exitCode).toBe(0);
    const result = JSON.parse(out.stdout) as {
      keep: { name: string; reason: string; location: string; protectedBy: string[] }[];
      delete: { name: string; reason: string; location: string }[];
    };
    const reason = (label: string, location = 'local') =>
      [...result.keep, ...result.delete].find(
        (v) => v.name === (made.get(label) as Made).name && v.location === location,
      )?.reason;
    expect(reason('day-9')).toBe('pinned: before the big upgrade');
    expect(reason('newest')).toBe('newest snapshot of the volume here');
    expect(reason('day-7')).toMatch(/incremental parent/);
    expect(reason('day-7', 'external')).toMatch(/newest snapshot of the volume here.*incremental parent/);
    expect(reason('safety-young')).toMatch(/^recovery safety snapshot, 3d old|recovery safety snapshot/);
    expect(reason('day-1')).toMatch(/^preserve daily: first of \d{4}-\d{2}-\d{2}, 1 day ago$/);
    expect(reason('today-a')).toMatch(/^preserve daily: first of .*, 0 days ago$/);
    expect(reason('day-5')).toMatch(/^not preserved/);
    expect(
      result.keep
        .filter((v) => v.protectedBy.includes('foreign'))
        .map((v) => v.name)
        .sort(),
    ).toEqual([
      'data-scheduled-20200101-000000-0',
      'data-scheduled-20200231-000000',
      'data.20261101T0000',
      'datax-scheduled-20200101-000000',
      'snapper-1',
    ]);
    expect(result.delete.map((v) => `${v.location}:${v.name}`).sort()).toEqual(
      [
        ...['day-10', 'day-8', 'day-6', 'day-5', 'day-4', 'day-3', 'safety-old', 'today-b'].map(
          (l) => `local:${(made.get(l) as Made).name}`,
        ),
        `external:${(made.get('day-8') as Made).name}`,
      ].sort(),
    );
    for (const label of made.keys()) expect(exists(label)).toBe(true);
  });

  it('without --yes and without a terminal it refuses with exit 3 and deletes nothing', async () => {
    const out = await cli(['prune', 'data']);
    expect(out.exitCode).toBe(3);
    expect(out.stderr).toMatch(/--yes/);
    expect(out.stdout).toMatch(/DELETE/);
    for (const label of made.keys()) expect(exists(label)).toBe(true);
  });

  it('a snapshot that fails to delete (a mount on it) is reported; the rest are pruned and recorded', async () => {
    const busy = made.get('day-6') as Made;
    const over = join(sandbox.dir, 'over');
    await mkdir(over, { recursive: true });
    await exec('mount', ['--bind', over, busy.path]);
    busyMounts.push(busy.path);
    const out = await cli(['prune', 'data', '--yes', '--json']);
    expect(out.exitCode).toBe(1);
    const result = JSON.parse(out.stdout) as {
      status: string;
      failures: { snapshot: string; error: string }[];
      delete: { name: string; result: string; location: string }[];
    };
    expect(result.status).toBe('partial');
    expect(result.failures.map((f) => f.snapshot)).toEqual([busy.name]);
    expect(result.failures[0]?.error).toMatch(/btrfs subvolume delete/);
    await exec('umount', [busy.path]);
    busyMounts.pop();
    expect(existsSync(busy.path)).toBe(true);
    for (const label of ['day-10', 'day-8', 'day-5', 'day-4', 'day-3', 'safety-old', 'today-b'])
      expect(exists(label), label).toBe(false);
    for (const label of ['day-9', 'day-7', 'day-2', 'day-1', 'safety-young', 'today-a', 'newest'])
      expect(exists(label), label).toBe(true);
    const snapDir = join(sandbox.pool.mountPoint, '.snapshots/data');
    expect(existsSync(join(snapDir, 'data.20261101T0000'))).toBe(true);
    expect(existsSync(join(snapDir, 'snapper-1'))).toBe(true);
    expect(existsSync(join(snapDir, 'datax-scheduled-20200101-000000'))).toBe(true);
    expect(existsSync(join(snapDir, 'data-scheduled-20200101-000000-0'))).toBe(true);
    const extDir = join(sandbox.pool.mountPoint, 'external/data');
    expect(existsSync(join(extDir, (made.get('day-8') as Made).name))).toBe(false);
    expect(existsSync(join(extDir, (made.get('day-7') as Made).name))).toBe(true);
    expect(await readFile(join(made.get('newest')?.path ?? '', 'hello.txt'), 'utf8')).toBe('hello');

    const history = JSON.parse(await readFile(join(sandbox.dir, 'context/backup-history.json'), 'utf8')) as {
      prunes: {
        location: string;
        deleted: { snapshot_name: string }[];
        failed: { snapshot_name: string }[];
      }[];
      snapshots: { snapshot_name: string; deleted_at?: string }[];
    };
    const local = history.prunes.find((p) => p.location === 'local');
    expect(local?.deleted).toHaveLength(7);
    expect(local?.failed.map((f) => f.snapshot_name)).toEqual([busy.name]);
    expect(history.prunes.find((p) => p.location === 'external')?.deleted).toHaveLength(1);
    const entry = (label: string) =>
      history.snapshots.find((s) => s.snapshot_name === (made.get(label) as Made).name);
    expect(entry('day-10')?.deleted_at).toBeDefined();
    expect(entry('day-6')?.deleted_at).toBeUndefined();
    expect(entry('day-9')?.deleted_at).toBeUndefined();
  });

  it('once the snapshot is free the next prune deletes it; a third prune has nothing to do', async () => {
    const again = await cli(['prune', 'data', '--yes']);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toMatch(/Deleted 1 snapshot/);
    expect(exists('day-6')).toBe(false);
    const third = await cli(['prune', 'data', '--yes', '--json']);
    expect(third.exitCode).toBe(0);
    expect(JSON.parse(third.stdout).status).toBe('nothing_to_do');
  });

  it('with the backup target unplugged, local prune goes on and keeps the remembered incremental parent', async () => {
    const extDir = join(sandbox.pool.mountPoint, 'external/data');
    const away = join(sandbox.pool.mountPoint, 'external/away');
    await rename(extDir, away);
    try {
      const out = await cli(['prune', 'data', '--dry-run', '--json']);
      expect(out.exitCode).toBe(1);
      const result = JSON.parse(out.stdout) as {
        warnings: string[];
        keep: { name: string; location: string; protectedBy: string[] }[];
        targets: { location: string }[];
      };
      expect(result.warnings.join('\n')).toMatch(/not available.*last known incremental parent/);
      expect(result.targets.map((t) => t.location)).toEqual(['local']);
      const parent = result.keep.find((v) => v.name === (made.get('day-7') as Made).name);
      expect(parent?.protectedBy).toContain('common-parent');
    } finally {
      await rename(away, extDir);
    }
  });

  it('unpin lets the policy decide again; pinning a foreign or missing snapshot is refused', async () => {
    const missing = await cli(['pin', 'data', 'data-manual-20200101-000000']);
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr).toMatch(/does not exist/);
    const foreign = await cli(['pin', 'data', 'snapper-1']);
    expect(foreign.exitCode).toBe(3);
    expect(foreign.stderr).toMatch(/not a snapguard snapshot/);
    const listed = await cli(['pin', 'data', '--json']);
    expect(JSON.parse(listed.stdout).pins[0].reason).toBe('before the big upgrade');
    const pins = JSON.parse(await readFile(join(sandbox.dir, 'state/pins.json'), 'utf8'));
    expect(pins.pins).toHaveLength(1);
    expect((await cli(['unpin', 'data', (made.get('day-9') as Made).name])).exitCode).toBe(0);
    const plan = JSON.parse((await cli(['prune', 'data', '--dry-run', '--json'])).stdout) as {
      delete: { name: string }[];
    };
    expect(plan.delete.map((v) => v.name)).toContain((made.get('day-9') as Made).name);
  });

  it('over MCP: the first call returns a plan and token, the token deletes once; elicitation accept deletes', async () => {
    // Fresh deletable snapshots for this test.
    const dayStart = Math.floor(now.getTime() / DAY) * DAY;
    await snapshotAt('mcp-old', new Date(dayStart - 20 * DAY + HOUR));
    const server = createServer(sandbox.deps({ ...configInput, confirm: 'elicit-or-token' }));
    const client = new Client({ name: 't', version: '0' }, { capabilities: {} });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.server.connect(a), client.connect(b)]);
    const call = async (args: Record<string, unknown>) =>
      (await client.callTool({ name: 'prune_snapshots', arguments: args })) as CallToolResult & {
        structuredContent: { status: string; confirmationToken?: string; delete: { name: string }[] };
      };
    const outside = await call({ volume: '../data' });
    expect(outside.isError).toBe(true);
    expect(JSON.stringify(outside.content)).toMatch(/volume/);
    const unknown = await call({ volume: 'nope' });
    expect(JSON.stringify(unknown.content)).toMatch(/UNKNOWN_VOLUME/);
    const first = await call({ volume: 'data', location: 'local' });
    expect(first.structuredContent.status).toBe('confirmation_required');
    expect(exists('mcp-old')).toBe(true);
    const token = first.structuredContent.confirmationToken;
    const forged = await call({ volume: 'data', location: 'local', confirmationToken: `${token}x` });
    expect(forged.isError).toBe(true);
    expect(exists('mcp-old')).toBe(true);
    const confirmed = await call({ volume: 'data', location: 'local', confirmationToken: token });
    expect(confirmed.structuredContent.status).toBe('pruned');
    expect(exists('mcp-old')).toBe(false);
    // A spent token confirms nothing else: a new deletable snapshot stays.
    await snapshotAt('mcp-old2', new Date(dayStart - 22 * DAY + HOUR));
    const reused = await call({ volume: 'data', location: 'local', confirmationToken: token });
    expect(reused.isError).toBe(true);
    expect(JSON.stringify(reused.content)).toMatch(/already used|no longer matches/);
    expect(exists('mcp-old2')).toBe(true);
    await client.close();
    await server.cleanup();

    await snapshotAt('mcp-elicit', new Date(dayStart - 21 * DAY + HOUR));
    const server2 = createServer(sandbox.deps({ ...configInput, confirm: 'elicit-or-token' }));
    const client2 = new Client({ name: 't', version: '0' }, { capabilities: { elicitation: {} } });
    const asked: string[] = [];
    client2.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(String(request.params.message));
      return { action: 'accept', content: { confirm: true } };
    });
    const [c, d] = InMemoryTransport.createLinkedPair();
    await Promise.all([server2.server.connect(c), client2.connect(d)]);
    const out = (await client2.callTool({
      name: 'prune_snapshots',
      arguments: { volume: 'data' },
    })) as CallToolResult & {
      structuredContent: { status: string };
    };
    expect(out.structuredContent.status).toBe('pruned');
    expect(asked[0]).toContain((made.get('mcp-elicit') as Made).name);
    expect(exists('mcp-elicit')).toBe(false);
    expect(exists('mcp-old2')).toBe(false);
    await client2.close();
    await server2.cleanup();
  });
});
