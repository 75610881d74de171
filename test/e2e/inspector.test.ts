import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist', 'cli', 'index.js');
const inspector = join(root, 'node_modules', '.bin', 'mcp-inspector');
const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

interface ToolResult {
  isError?: boolean;
  content: { type: string; text: string }[];
  structuredContent: Record<string, unknown>;
}

// The MCP Inspector CLI (0.15.0) starts the built server over stdio for each call: a client
// written elsewhere, and a new server process per call (so the confirmation token must survive one).
describe.runIf(enabled)('the MCP Inspector CLI drives snapguard end to end', () => {
  let sandbox: BtrfsSandbox;
  let configFile: string;
  let volume: string;

  async function inspect(method: string, ...args: string[]): Promise<unknown> {
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
        method,
        ...args,
      ],
      { timeout: 90_000, cwd: sandbox.dir },
    );
    return JSON.parse(stdout);
  }
  const call = async (tool: string, args: Record<string, unknown>) =>
    (await inspect(
      'tools/call',
      '--tool-name',
      tool,
      ...Object.entries(args).flatMap(([k, v]) => [
        '--tool-arg',
        `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`,
      ]),
    )) as ToolResult;

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'inspector');
    volume = await sandbox.subvolume('containers');
    await writeFile(join(volume, 'compose.yml'), 'image: immich:v1\n');
    configFile = join(sandbox.dir, 'snapguard.yaml');
    await writeFile(
      configFile,
      stringify({
        contextDir: 'context',
        stateDir: 'state',
        host: 'inspector',
        volumes: { containers: { backend: 'btrfs', path: volume, tier: 'critical' } },
      }),
    );
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('tools/list shows the tools with their annotations', async () => {
    const { tools } = (await inspect('tools/list')) as {
      tools: { name: string; annotations?: { destructiveHint?: boolean } }[];
    };
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(Object.keys(byName)).toEqual(
      expect.arrayContaining(['create_snapshot', 'list_snapshots', 'recover']),
    );
    expect(byName.recover!.annotations?.destructiveHint).toBe(true);
  });

  it('resources/list shows the history and the config', async () => {
    const { resources } = (await inspect('resources/list')) as { resources: { uri: string }[] };
    expect(resources.map((r) => r.uri).sort()).toEqual(['snapguard://config', 'snapguard://history']);
  });

  it('create_snapshot, then recover: the first call returns a token and changes nothing, the second with it rolls back', async () => {
    const created = await call('create_snapshot', {
      volumes: ['containers'],
      type: 'pre-deploy',
      operation: 'inspector',
    });
    expect(created.isError).toBeFalsy();
    const snapshot = (created.structuredContent.created as { name: string }[])[0]!.name;
    await writeFile(join(volume, 'compose.yml'), 'image: immich:v2-broken\n');

    const args = { volume: 'containers', snapshot, mode: 'rollback', reason: 'inspector e2e' };
    const first = await call('recover', args);
    expect(first.isError).toBeFalsy();
    expect(first.structuredContent.status).toBe('confirmation_required');
    const token = first.structuredContent.confirmationToken as string;
    expect(token.length).toBeGreaterThan(20);
    expect(await readFile(join(volume, 'compose.yml'), 'utf8')).toBe('image: immich:v2-broken\n');

    const second = await call('recover', { ...args, confirmationToken: token });
    expect(second.isError, JSON.stringify(second.content)).toBeFalsy();
    expect(second.structuredContent.status).toBe('recovered');
    expect(await readFile(join(volume, 'compose.yml'), 'utf8')).toBe('image: immich:v1\n');
    const safety = second.structuredContent.safetyBackup as string;
    expect(await readdir(join(sandbox.pool.mountPoint, '.snapshots', 'containers'))).toContain(
      safety.split('/').pop(),
    );

    // The token was single-use.
    const replay = await call('recover', { ...args, confirmationToken: token });
    expect(replay.isError).toBe(true);
    expect(replay.content[0]!.text).toMatch(/CONFIRMATION_INVALID/);
    const history = JSON.parse(await readFile(join(sandbox.dir, 'context', 'backup-history.json'), 'utf8'));
    expect(history.recoveries).toHaveLength(1);
    expect(history.recoveries[0]).toMatchObject({ restored_snapshot: snapshot, outcome: 'success' });
  }, 180_000);
});
