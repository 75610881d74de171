import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { CallToolResultSchema, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createServer } from '../../src/mcp/server.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'getfattr', 'setfattr']);

async function connect(sandbox: BtrfsSandbox, input: ConfigInput) {
  const { server, cleanup } = createServer(sandbox.deps(input));
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'test', version: '1.0.0' });
  await client.connect(clientSide);
  return {
    client,
    close: async () => {
      await client.close();
      await cleanup();
    },
  };
}

describe.runIf(run)('MCP tools run_restore_test and health_check', () => {
  let sandbox: BtrfsSandbox;
  let input: ConfigInput;
  let scratch: string;

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'mcp-rt');
    const path = await sandbox.subvolume('data');
    for (let d = 0; d < 4; d++) {
      await mkdir(join(path, `dir-${d}`));
      for (let f = 0; f < 20; f++)
        await writeFile(join(path, `dir-${d}`, `f-${f}.txt`), `${d}/${f}\n`.repeat(200));
    }
    scratch = join(sandbox.dir, 'scratch');
    await mkdir(scratch);
    input = {
      volumes: { data: { backend: 'btrfs', path, tier: 'important' } },
      restoreTest: { scratchDir: scratch },
    };
    await createSnapshots(sandbox.deps(input), { volumes: ['data'] });
  });

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('lists both tools with their annotations; readOnly mode keeps only health_check', async () => {
    const full = await connect(sandbox, input);
    const { tools } = await full.client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect(byName.get('run_restore_test')?.annotations).toMatchObject({
      readOnlyHint: false,
      destructiveHint: false,
    });
    expect(byName.get('health_check')?.annotations).toMatchObject({ readOnlyHint: true });
    await full.close();
    const readOnly = await connect(sandbox, { ...input, readOnly: true });
    const names = (await readOnly.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('health_check');
    expect(names).not.toContain('run_restore_test');
    await readOnly.close();
  });

  it('run_restore_test sends progress notifications and returns structured results', async () => {
    const { client, close } = await connect(sandbox, input);
    const progress: Progress[] = [];
    const result = await client.callTool(
      { name: 'run_restore_test', arguments: { volume: 'data', sampleSize: 40, seed: 11, spread: true } },
      CallToolResultSchema,
      { onprogress: (p) => progress.push(p) },
    );
    await close();
    expect(result.isError).toBeFalsy();
    const structured = result.structuredContent as { overall: string; results: { checkedPaths: string[] }[] };
    expect(structured.overall).toBe('PASS');
    // spread: 40 files from 4 folders, 10 from each
    const perDir = new Map<string, number>();
    for (const p of structured.results[0]?.checkedPaths ?? [])
      perDir.set(p.split('/')[0] as string, (perDir.get(p.split('/')[0] as string) ?? 0) + 1);
    expect([...perDir.values()]).toEqual([10, 10, 10, 10]);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < progress.length; i++)
      expect(progress[i]?.progress).toBeGreaterThan(progress[i - 1]?.progress as number);
  });

  it('a cancelled run_restore_test leaves no scratch folder behind', async () => {
    const { client, close } = await connect(sandbox, input);
    const controller = new AbortController();
    const call = client.callTool(
      { name: 'run_restore_test', arguments: { volume: 'data', sampleSize: 80, seed: 3 } },
      CallToolResultSchema,
      { signal: controller.signal, onprogress: () => controller.abort('user pressed stop') },
    );
    // Rejected by our own cancel (its reason), not by a tool error or a closed connection.
    await expect(call).rejects.toThrow(/user pressed stop/);
    // The server notices the cancellation at its next step and removes the scratch folder.
    for (let i = 0; i < 50 && (await readdir(scratch)).length > 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(await readdir(scratch)).toEqual([]);
    await close();
  });

  it('health_check returns the overall status with findings and remedies', async () => {
    const { client, close } = await connect(sandbox, input);
    const result = await client.callTool({ name: 'health_check', arguments: { volume: 'data' } });
    await close();
    const structured = result.structuredContent as {
      overall: string;
      findings: { code: string; remedy: string }[];
    };
    expect(['GOOD', 'WARNING']).toContain(structured.overall);
    expect(structured.findings.every((f) => f.remedy.length > 0)).toBe(true);
    expect((result.content as { text: string }[])[0]?.text).toContain('Overall');
  });

  it('bad input is an isError result naming the field', async () => {
    const { client, close } = await connect(sandbox, input);
    const result = await client.callTool({ name: 'run_restore_test', arguments: { volume: 'nope' } });
    await close();
    expect(result.isError).toBe(true);
    expect((result.content as { text: string }[])[0]?.text).toContain('UNKNOWN_VOLUME');
  });
});
