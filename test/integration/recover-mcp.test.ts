import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ElicitRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createServer } from '../../src/mcp/server.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.runIf(run)('recover over MCP with the SDK client: the confirmation gate', () => {
  let box: BtrfsSandbox;
  let deps: Deps;
  let path: string;
  let offsetMs = 0;
  // Moved forward instead of sleeping when a test needs its next snapshot in a new second.
  let laterMs = 0;

  beforeAll(async () => {
    box = await createBtrfsSandbox(384, 'recover-mcp');
    path = await box.subvolume('app');
    deps = box.deps(
      { confirm: 'elicit-or-token', volumes: { app: { backend: 'btrfs', path } } },
      { clock: () => new Date(Date.now() + laterMs + offsetMs) },
    );
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  async function connect(answer?: 'accept' | 'decline' | 'cancel') {
    const { server, cleanup } = createServer(deps);
    const client = new Client(
      { name: 'test', version: '0' },
      { capabilities: answer ? { elicitation: {} } : {} },
    );
    const asked: string[] = [];
    if (answer)
      client.setRequestHandler(ElicitRequestSchema, async (request) => {
        asked.push(String(request.params.message));
        return answer === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: answer };
      });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(a), client.connect(b)]);
    const progress: string[] = [];
    const call = async (args: Record<string, unknown>) => {
      const result = (await client.callTool({ name: 'recover', arguments: args }, undefined, {
        onprogress: (p) => void progress.push(String(p.message)),
      })) as CallToolResult;
      return {
        result,
        text: (result.content[0] as { text: string }).text,
        data: result.structuredContent as Record<string, unknown> & {
          plan?: { volumes: { changes?: Record<string, { count: number; first: string[] }> }[] };
        },
      };
    };
    return {
      call,
      asked,
      progress,
      close: async () => {
        await client.close();
        await cleanup();
      },
    };
  }

  async function scenario() {
    await rm(join(path, 'data'), { recursive: true, force: true });
    await mkdir(join(path, 'data'), { recursive: true });
    await writeFile(join(path, 'data/conf'), 'v1\n');
    await writeFile(join(path, 'data/gone'), 'comes back\n');
    await writeFile(join(path, 'data/mode'), 'same\n');
    await chmod(join(path, 'data/mode'), 0o644);
    const snap = (await createSnapshots(deps, { volumes: ['app'], type: 'manual' })).created[0]!;
    await writeFile(join(path, 'data/conf'), 'v2 broken\n');
    await rm(join(path, 'data/gone'));
    await writeFile(join(path, 'data/added'), 'new\n');
    await chmod(join(path, 'data/mode'), 0o600);
    return snap.name;
  }

  it('the tool is destructive, and the first call returns the plan with a truthful change summary and a token', async () => {
    const snapshot = await scenario();
    const t = await connect();
    const { result } = await t.call({ volume: 'app', snapshot, dryRun: true });
    expect(result.isError).toBeFalsy();
    const first = await t.call({ volume: 'app', snapshot });
    expect(first.data.status).toBe('confirmation_required');
    expect(typeof first.data.confirmationToken).toBe('string');
    expect(Date.parse(String(first.data.expiresAt)) - Date.now()).toBeGreaterThan(9 * 60_000);
    const changes = first.data.plan!.volumes[0]!.changes!;
    expect(changes.modified!.first).toEqual(['data/conf']);
    expect(changes.added!.first).toEqual(['data/gone']);
    expect(changes.removed!.first).toEqual(['data/added']);
    expect(changes.metadataOnly!.first).toContain('data/mode');
    expect(first.text).toMatch(/Show this plan to the user/);
    expect(await readFile(join(path, 'data/conf'), 'utf8')).toBe('v2 broken\n');
    const { tools } = await (async () => {
      const c = new Client({ name: 'l', version: '0' });
      const { server, cleanup } = createServer(deps);
      const [a, b] = InMemoryTransport.createLinkedPair();
      await Promise.all([server.connect(a), c.connect(b)]);
      const listed = await c.listTools();
      await c.close();
      await cleanup();
      return listed;
    })();
    expect(tools.find((tool) => tool.name === 'recover')?.annotations).toMatchObject({
      destructiveHint: true,
      readOnlyHint: false,
    });
    await t.close();
  });

  it('token path: works once; reuse, changed arguments, changed state and expiry are refused', async () => {
    const snapshot = await scenario();
    const t = await connect();
    const token = String((await t.call({ volume: 'app', snapshot })).data.confirmationToken);

    const otherArgs = await t.call({
      volume: 'app',
      snapshot,
      mode: 'files',
      paths: ['data/conf'],
      confirmationToken: token,
    });
    expect(otherArgs.result.isError).toBe(true);
    expect(otherArgs.text).toMatch(/CONFIRMATION_INVALID.*different arguments/s);
    expect(await readFile(join(path, 'data/conf'), 'utf8')).toBe('v2 broken\n');

    const done = await t.call({ volume: 'app', snapshot, confirmationToken: token });
    expect(done.data.status, done.text).toBe('recovered');
    expect(t.progress).toEqual(expect.arrayContaining(['app: move-aside', 'app: restore']));
    expect(await readFile(join(path, 'data/conf'), 'utf8')).toBe('v1\n');
    expect(done.data.safetyBackup).toMatch(/^app-pre-recover-/);

    const reuse = await t.call({ volume: 'app', snapshot, confirmationToken: token });
    expect(reuse.text).toMatch(/already used/);

    // A new snapshot between plan and confirmation changes the state.
    await writeFile(join(path, 'data/conf'), 'v3\n');
    const token2 = String((await t.call({ volume: 'app', snapshot })).data.confirmationToken);
    await createSnapshots(deps, { volumes: ['app'], type: 'manual', force: true });
    const stale = await t.call({ volume: 'app', snapshot, confirmationToken: token2 });
    expect(stale.result.isError).toBe(true);
    expect(stale.text).toMatch(/state changed/);
    expect(await readFile(join(path, 'data/conf'), 'utf8')).toBe('v3\n');

    const token3 = String((await t.call({ volume: 'app', snapshot })).data.confirmationToken);
    offsetMs = 11 * 60_000;
    try {
      const expired = await t.call({ volume: 'app', snapshot, confirmationToken: token3 });
      expect(expired.text).toMatch(/expired/);
    } finally {
      offsetMs = 0;
    }
    expect(await readFile(join(path, 'data/conf'), 'utf8')).toBe('v3\n');
    await t.close();
  });

  it('the safety snapshot named in the plan is the one made, also when the clock moved to the next second (token and elicitation)', async () => {
    const snapshot = await scenario();
    const t = await connect();
    const first = await t.call({ volume: 'app', snapshot });
    const planned = (first.data.plan as unknown as { volumes: { safetyBackup: string }[] }).volumes[0]!
      .safetyBackup;
    offsetMs = 2000;
    try {
      const done = await t.call({ volume: 'app', snapshot, confirmationToken: first.data.confirmationToken });
      expect(done.data.status, done.text).toBe('recovered');
      expect(done.data.safetyBackup).toBe(planned);
      expect(done.text).toContain(planned);
    } finally {
      offsetMs = 0;
    }
    await t.close();

    // Asked directly: the clock moves on while the user reads the plan.
    const again = await scenario();
    const { server, cleanup } = createServer(deps);
    const client = new Client({ name: 'test', version: '0' }, { capabilities: { elicitation: {} } });
    let shown = '';
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      shown = String(request.params.message);
      offsetMs = 2000;
      return { action: 'accept', content: { confirm: true } };
    });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(a), client.connect(b)]);
    try {
      const result = (await client.callTool({
        name: 'recover',
        arguments: { volume: 'app', snapshot: again },
      })) as CallToolResult;
      const data = result.structuredContent as { status: string; safetyBackup: string };
      expect(data.status).toBe('recovered');
      expect(shown).toContain(`as ${data.safetyBackup} (kept read-only`);
    } finally {
      offsetMs = 0;
      await client.close();
      await cleanup();
    }
  });

  it('elicitation path: accept acts; decline and cancel change nothing', async () => {
    for (const answer of ['decline', 'cancel'] as const) {
      const snapshot = await scenario();
      const t = await connect(answer);
      const out = await t.call({ volume: 'app', snapshot });
      expect(out.data.status).toBe(answer === 'decline' ? 'declined' : 'cancelled');
      expect(t.asked[0]).toMatch(/Roll back app to/);
      expect(t.asked[0]).toMatch(/1 added, 1 removed, 1 modified/);
      expect(await readFile(join(path, 'data/conf'), 'utf8')).toBe('v2 broken\n');
      await t.close();
      laterMs += 1000; // next snapshot in a new second
    }
    const snapshot = await scenario();
    const t = await connect('accept');
    const out = await t.call({ volume: 'app', snapshot });
    expect(out.data.status, out.text).toBe('recovered');
    expect(await readFile(join(path, 'data/conf'), 'utf8')).toBe('v1\n');
    await t.close();
  });
});
