import { execFile, spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist', 'cli', 'index.js');
const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.runIf(enabled)('the built CLI as an MCP server over stdio', () => {
  let sandbox: BtrfsSandbox;
  let configFile: string;
  let snapshotDir: string;
  let contextDir: string;

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(512, 'e2e');
    const path = await sandbox.subvolume('containers');
    await writeFile(join(path, 'compose.yml'), 'x');
    configFile = join(sandbox.dir, 'snapguard.yaml');
    contextDir = join(sandbox.dir, 'context');
    snapshotDir = join(sandbox.pool.mountPoint, '.snapshots', 'containers');
    await writeFile(
      configFile,
      stringify({
        contextDir: 'context',
        stateDir: 'state',
        host: 'e2e',
        volumes: { containers: { backend: 'btrfs', path, tier: 'critical' } },
      }),
    );
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  async function client(): Promise<{ client: Client; close: () => Promise<void> }> {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [cli, 'mcp', '--config', configFile],
      stderr: 'pipe',
    });
    const c = new Client({ name: 'e2e', version: '1.0.0' });
    await c.connect(transport);
    return { client: c, close: () => c.close() };
  }

  it('lists the tools with input and output schemas, annotations and descriptions', async () => {
    const { client: c, close } = await client();
    try {
      const { tools } = await c.listTools();
      const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
      expect(Object.keys(byName).sort()).toEqual(
        expect.arrayContaining(['complete_operation', 'create_snapshot', 'list_snapshots']),
      );
      expect(byName.create_snapshot!.annotations).toMatchObject({
        readOnlyHint: false,
        destructiveHint: false,
      });
      expect(byName.list_snapshots!.annotations).toMatchObject({ readOnlyHint: true });
      expect(byName.create_snapshot!.inputSchema.properties).toHaveProperty('volumes');
      expect(byName.create_snapshot!.outputSchema?.properties).toHaveProperty('operationId');
      expect(byName.list_snapshots!.outputSchema?.properties).toHaveProperty('snapshots');
      for (const tool of tools) expect(tool.description!.length).toBeGreaterThan(100);
      const created = (await c.callTool({
        name: 'create_snapshot',
        arguments: { volumes: ['containers'], type: 'pre-deploy', operation: 'e2e' },
      })) as CallToolResult;
      expect(created.isError).toBeFalsy();
      const operationId = (created.structuredContent as { operationId: string }).operationId;
      const done = (await c.callTool({
        name: 'complete_operation',
        arguments: { operationId, outcome: 'success' },
      })) as CallToolResult;
      expect((done.structuredContent as { snapshots: { outcome: string }[] }).snapshots[0]!.outcome).toBe(
        'success',
      );
    } finally {
      await close();
    }
  });

  it('puts only protocol messages on stdout; logs and audit lines go to stderr', async () => {
    const child = spawn(process.execPath, [cli, 'mcp', '--config', configFile], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const send = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`);
    send({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    });
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'list_snapshots', arguments: {} } });
    send({
      jsonrpc: '2.0',
      id: 4,
      method: 'tools/call',
      params: { name: 'create_snapshot', arguments: { volumes: ['nope'] } },
    });
    await expect.poll(() => stdout.split('\n').filter(Boolean).length, { timeout: 20_000 }).toBe(4);
    child.stdin.end();
    await new Promise((resolve) => child.on('exit', resolve));
    const lines = stdout.split('\n').filter(Boolean);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });
    expect(lines.map((l) => JSON.parse(l).id).sort()).toEqual([1, 2, 3, 4]);
    const logLines = stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(
      logLines
        .filter((l) => l.audit)
        .map((l) => [l.tool, l.outcome])
        .sort(),
    ).toEqual([
      ['create_snapshot', 'error'],
      ['list_snapshots', 'ok'],
    ]);
  });

  it('20 create_snapshot calls over 4 concurrent server processes: 20 snapshots, 20 history entries, valid JSON', async () => {
    const before = (await readdir(snapshotDir)).length;
    const historyBefore = JSON.parse(await readFile(join(contextDir, 'backup-history.json'), 'utf8'))
      .snapshots.length;
    const clients = await Promise.all([1, 2, 3, 4].map(() => client()));
    try {
      const results = await Promise.all(
        clients.flatMap(({ client: c }, p) =>
          [1, 2, 3, 4, 5].map(
            async (i) =>
              (await c.callTool({
                name: 'create_snapshot',
                arguments: { volumes: ['containers'], type: 'manual', operation: `p${p}-c${i}` },
              })) as CallToolResult,
          ),
        ),
      );
      expect(results.filter((r) => r.isError).map((r) => JSON.stringify(r.content))).toEqual([]);
    } finally {
      await Promise.all(clients.map(({ close }) => close()));
    }
    expect((await readdir(snapshotDir)).length).toBe(before + 20);
    const history = JSON.parse(await readFile(join(contextDir, 'backup-history.json'), 'utf8'));
    expect(history.snapshots.length).toBe(historyBefore + 20);
    expect(new Set(history.snapshots.map((e: { snapshot_name: string }) => e.snapshot_name)).size).toBe(
      history.snapshots.length,
    );
  });

  it('answers the MCP Inspector CLI (0.15.0), a client written elsewhere', async () => {
    const inspector = join(root, 'node_modules', '.bin', 'mcp-inspector');
    const { stdout } = await run(
      inspector,
      [
        '--cli',
        '-e',
        `SNAPGUARD_CONFIG=${configFile}`,
        process.execPath,
        cli,
        'mcp',
        '--method',
        'tools/list',
      ],
      { timeout: 90_000, cwd: sandbox.dir },
    );
    const listed = JSON.parse(stdout);
    expect(listed.tools.map((t: { name: string }) => t.name)).toEqual(
      expect.arrayContaining(['create_snapshot', 'list_snapshots', 'complete_operation']),
    );
    const call = await run(
      inspector,
      [
        '--cli',
        '-e',
        `SNAPGUARD_CONFIG=${configFile}`,
        process.execPath,
        cli,
        'mcp',
        '--method',
        'tools/call',
        '--tool-name',
        'list_snapshots',
        '--tool-arg',
        'volume=containers',
      ],
      { timeout: 90_000, cwd: sandbox.dir },
    );
    expect(JSON.parse(call.stdout).structuredContent.total).toBeGreaterThan(0);
  });
});
