import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist', 'cli', 'index.js');

/** What the assistant reads before its first call: tools/list, the instructions, and what they point to. */
describe('the built MCP server over stdio, as an assistant reads it', () => {
  let dir: string;
  let client: Client;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-context-'));
    for (const volume of ['data', 'media', 'mail']) {
      await mkdir(join(dir, volume), { recursive: true });
      await writeFile(join(dir, volume, 'a.txt'), volume);
    }
    const configFile = join(dir, 'snapguard.yaml');
    await writeFile(
      configFile,
      stringify({
        contextDir: 'ctx',
        stateDir: 'state',
        volumes: {
          data: { backend: 'dir', path: 'data' },
          media: { backend: 'dir', path: 'media' },
          mail: { backend: 'dir', path: 'mail' },
        },
      }),
    );
    client = new Client({ name: 'context', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [cli, 'mcp', '--config', configFile],
        stderr: 'pipe',
      }),
    );
  });
  afterAll(async () => {
    await client?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('tools/list stays under 25 KB of compact JSON and keeps every input field and every top-level output field', async () => {
    const listed = await client.listTools();
    const size = JSON.stringify(listed).length;
    expect(listed.tools).toHaveLength(14);
    expect(size).toBeLessThanOrEqual(25_000);
    const text = JSON.stringify(listed);
    expect(text).not.toContain('"$schema"');
    expect(text).not.toContain('9007199254740991');
    expect(text).not.toContain('"taskSupport":"forbidden"');
    const byName = Object.fromEntries(listed.tools.map((tool) => [tool.name, tool]));
    // Input schemas stay whole: names, types, enums, defaults, patterns and requirements.
    expect(byName.create_snapshot!.inputSchema).toMatchObject({
      properties: {
        volumes: { type: 'array', items: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' } },
        type: { type: 'string', default: 'manual', enum: expect.arrayContaining(['pre-deploy']) },
        force: { type: 'boolean', default: false },
      },
      required: ['volumes'],
    });
    expect(Object.keys(byName.plan_strategy!.inputSchema.properties ?? {})).toEqual(
      expect.arrayContaining(['hostType', 'volumes', 'disk', 'targets', 'activitySamples', 'verifyUnits']),
    );
    // Output schemas keep every top-level field, its allowed values and whether it is always there.
    expect(byName.recover!.outputSchema).toMatchObject({
      properties: {
        status: { enum: expect.arrayContaining(['confirmation_required', 'recovered']) },
        confirmationToken: {},
        plan: { type: 'object' },
      },
      required: ['status'],
    });
    expect(byName.orchestrate!.outputSchema?.properties?.['exitCode']).toEqual({ enum: [0, 1, 2] });
    expect(byName.health_check!.outputSchema?.properties?.['findings']).toMatchObject({
      type: 'array',
      description: expect.stringContaining('remedy'),
    });
    for (const tool of listed.tools) {
      expect(tool.description!.length).toBeGreaterThan(100);
      expect(tool.annotations).toBeDefined();
    }
  });

  it('the nested output fields left out of tools/list are in the snapguard://tool-outputs/{tool} resources', async () => {
    const read = async (tool: string) => {
      const first = (await client.readResource({ uri: `snapguard://tool-outputs/${tool}` })).contents[0]!;
      return 'text' in first ? first.text : '';
    };
    const recover = await read('recover');
    // Deep fields of the recovery plan, with their descriptions.
    for (const field of ['safetyBackup', 'newerSnapshots', 'metadataOnly', 'nestedSubvolumes'])
      expect(recover).toContain(`"${field}"`);
    expect(recover).toContain('the pre-recover snapshot that will keep the current state');
    expect(await read('list_snapshots')).toContain('"rollbackPointOf"');
    await expect(read('no_such_tool')).rejects.toThrow(/no_such_tool/);
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((template) => template.uriTemplate)).toContain(
      'snapguard://tool-outputs/{tool}',
    );
  });

  it('results still validate on the client against the listed output schemas', async () => {
    await client.listTools();
    const created = (await client.callTool({
      name: 'create_snapshot',
      arguments: { volumes: ['data'], type: 'pre-change', operation: 'context' },
    })) as CallToolResult;
    expect(created.isError).toBeFalsy();
    const listed = (await client.callTool({
      name: 'list_snapshots',
      arguments: { volume: 'data' },
    })) as CallToolResult;
    expect(listed.isError).toBeFalsy();
    expect((listed.structuredContent as { total: number }).total).toBe(1);
  });

  it('completion/complete offers volume ids, the snapshot names of the chosen volume and operation ids for prompt arguments', async () => {
    const complete = async (prompt: string, name: string, value: string, args?: Record<string, string>) =>
      (
        await client.complete({
          ref: { type: 'ref/prompt', name: prompt },
          argument: { name, value },
          ...(args ? { context: { arguments: args } } : {}),
        })
      ).completion.values;
    expect(client.getServerCapabilities()?.completions).toBeDefined();
    expect(await complete('disaster-recovery', 'volume', 'm')).toEqual(['mail', 'media']);
    expect(await complete('disaster-recovery', 'volume', '')).toEqual(['data', 'mail', 'media']);
    // A comma-separated list completes its last item and offers no volume twice.
    expect(await complete('safe-deploy', 'volumes', 'data,m')).toEqual(['data,mail', 'data,media']);
    expect(await complete('safe-deploy', 'volumes', 'mail,')).toEqual(['mail,data', 'mail,media']);

    const first = (await client.callTool({
      name: 'create_snapshot',
      arguments: { volumes: ['media'], type: 'pre-deploy', operation: 'first' },
    })) as CallToolResult;
    const second = (await client.callTool({
      name: 'create_snapshot',
      arguments: { volumes: ['media', 'mail'], type: 'pre-deploy', operation: 'second' },
    })) as CallToolResult;
    const names = (result: CallToolResult) =>
      (result.structuredContent as { created: { name: string; volume: string }[] }).created;
    const operationIds = [first, second].map(
      (result) => (result.structuredContent as { operationId: string }).operationId,
    );
    const mediaSnapshots = [...names(second), ...names(first)]
      .filter((snapshot) => snapshot.volume === 'media')
      .map((snapshot) => snapshot.name);
    expect(mediaSnapshots).toHaveLength(2);
    // Only the chosen volume's snapshots, newest first.
    expect(await complete('disaster-recovery', 'snapshot', '', { volume: 'media' })).toEqual(mediaSnapshots);
    const mailSnapshot = names(second).find((snapshot) => snapshot.volume === 'mail')!.name;
    expect(await complete('disaster-recovery', 'snapshot', '', { volume: 'mail' })).toEqual([mailSnapshot]);
    expect(
      await complete('disaster-recovery', 'snapshot', mediaSnapshots[1]!.slice(0, -1), { volume: 'media' }),
    ).toContain(mediaSnapshots[1]);
    // Operation ids from the history, newest first; with a volume only its operations.
    expect(await complete('disaster-recovery', 'operationId', 'op-', { volume: 'media' })).toEqual([
      operationIds[1],
      operationIds[0],
    ]);
    expect(await complete('disaster-recovery', 'operationId', '', { volume: 'mail' })).toEqual([
      operationIds[1],
    ]);
    // The prompt uses what was completed.
    const prompt = await client.getPrompt({
      name: 'disaster-recovery',
      arguments: { volume: 'media', snapshot: mediaSnapshots[1]!, operationId: operationIds[0]! },
    });
    const text = prompt.messages[0]!.content.type === 'text' ? prompt.messages[0]!.content.text : '';
    expect(text).toContain(mediaSnapshots[1]);
    expect(text).toContain(`operationId ${operationIds[0]}`);
  });

  it('initialize sends instructions on the minInterval skip and force, what an outcome means, and the confirmation gate', () => {
    const instructions = client.getInstructions() ?? '';
    expect(instructions).toMatch(/minInterval/);
    expect(instructions).toMatch(/skipped/);
    expect(instructions).toMatch(/force: true takes a new snapshot anyway/);
    expect(instructions).toMatch(/outcome .* belongs to the change made after it/);
    expect(instructions).toMatch(/failed operation holds the good state from before the change/);
    expect(instructions).toMatch(/meaning/);
    expect(instructions).toMatch(/return a plan and ask the user for confirmation/);
    expect(instructions).toMatch(/call again with the same arguments and the confirmationToken/);
    expect(instructions).toMatch(/only after the user agreed/);
    expect(instructions).toContain('snapguard://tool-outputs/{tool}');
  });

  it('initialize names the three prompts and the restore beside the original', () => {
    const instructions = client.getInstructions() ?? '';
    for (const prompt of ['safe-deploy', 'disaster-recovery', 'find-lost-file'])
      expect(instructions).toContain(prompt);
    expect(instructions).toContain('destination: "beside"');
    expect(instructions).toMatch(/overwrites nothing and needs no confirmation/);
    expect(instructions).toContain('pathsBase64');
  });

  it('the orchestrate description names the built-in stages in order', async () => {
    const { tools } = await client.listTools();
    const orchestrate = tools.find((tool) => tool.name === 'orchestrate')!;
    expect(orchestrate.description).toContain('Stages in order: 1 snapshots, 2 replication, 3 backups.');
  });
});
