import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { createLogger } from '../../src/core/logger.js';
import { INSTRUCTIONS } from '../../src/mcp/server.js';
import { connect, type Connected } from '../helpers/mcp.js';

// Every tool of the contract (README.md lists them); a prompt may only name these.
const CONTRACT_TOOLS = [
  'create_snapshot',
  'list_snapshots',
  'recover',
  'complete_operation',
  'health_check',
  'run_restore_test',
  'orchestrate',
  'prune_snapshots',
  'plan_strategy',
  'file_versions',
  'find_deleted',
  'diff_snapshots',
  'read_snapshot_file',
];

describe('MCP prompts', () => {
  let dir: string;
  let mcp: Connected;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sg-prompts-'));
    const config = buildConfig(
      {
        contextDir: 'context',
        stateDir: 'state',
        volumes: {
          containers: { backend: 'dir', path: 'data/containers' },
          media: { backend: 'dir', path: 'data/media' },
        },
      },
      dir,
    );
    mcp = await connect(createDeps(config, { logger: createLogger({ level: 'silent' }) }));
  });
  afterAll(async () => {
    await mcp?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists safe-deploy and disaster-recovery with titles, descriptions and arguments', async () => {
    const { prompts } = await mcp.client.listPrompts();
    const byName = Object.fromEntries(prompts.map((p) => [p.name, p]));
    expect(Object.keys(byName).sort()).toEqual(['disaster-recovery', 'find-lost-file', 'safe-deploy']);
    expect(byName['safe-deploy']!.arguments).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'service', required: true }),
        expect.objectContaining({ name: 'volumes', required: false }),
      ]),
    );
    expect(byName['disaster-recovery']!.arguments!.map((a) => a.name).sort()).toEqual([
      'operationId',
      'problem',
      'snapshot',
      'volume',
    ]);
    expect(byName['disaster-recovery']!.arguments!.every((a) => !a.required)).toBe(true);
    for (const prompt of prompts) expect(prompt.description!.length).toBeGreaterThan(60);
  });

  it('safe-deploy walks through health_check, create_snapshot, complete_operation and a confirmed recover', async () => {
    const result = await mcp.client.getPrompt({
      name: 'safe-deploy',
      arguments: { service: 'Immich', volumes: 'containers' },
    });
    const text = (result.messages[0]!.content as { text: string }).text;
    const order = ['health_check', 'create_snapshot', 'complete_operation', 'recover'].map((t) =>
      text.indexOf(t),
    );
    expect(order.every((i) => i >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(text).toContain('operation "deploy-immich"');
    expect(text).toContain('volumes [containers]');
    expect(text).toMatch(/confirmationToken/);
  });

  it('disaster-recovery names the configured volumes when none is given and requires confirmation', async () => {
    const result = await mcp.client.getPrompt({ name: 'disaster-recovery', arguments: {} });
    const text = (result.messages[0]!.content as { text: string }).text;
    expect(text).toContain('containers, media');
    for (const tool of ['health_check', 'list_snapshots', 'recover', 'run_restore_test'])
      expect(text).toContain(tool);
    expect(text).toMatch(/wait for my explicit yes/);
  });

  it('names only tools of the contract in prompts and instructions', async () => {
    const texts = [INSTRUCTIONS];
    for (const name of ['safe-deploy', 'disaster-recovery']) {
      const result = await mcp.client.getPrompt({ name, arguments: { service: 'x' } });
      texts.push((result.messages[0]!.content as { text: string }).text);
    }
    const named = new Set(texts.join('\n').match(/\b[a-z]+(?:_[a-z]+)+\b/g));
    for (const tool of named) expect(CONTRACT_TOOLS).toContain(tool);
  });

  it('find-lost-file walks from the lost path to the right version and a restore beside it (or in place, confirmed)', async () => {
    const { prompts } = await mcp.client.listPrompts();
    const prompt = prompts.find((p) => p.name === 'find-lost-file');
    expect(prompt?.arguments).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'volume', required: true }),
        expect.objectContaining({ name: 'path', required: true }),
        expect.objectContaining({ name: 'when', required: false }),
      ]),
    );
    const result = await mcp.client.getPrompt({
      name: 'find-lost-file',
      arguments: { volume: 'containers', path: 'traefik/traefik.yml', when: 'before Tuesday' },
    });
    const text = (result.messages[0]!.content as { text: string }).text;
    expect(text).toContain('"containers"');
    expect(text).toContain('"traefik/traefik.yml"');
    expect(text).toContain('before Tuesday');
    const order = ['find_deleted', 'file_versions', 'read_snapshot_file', 'diff_snapshots', 'recover'].map(
      (t) => text.indexOf(t),
    );
    expect(order.every((i) => i >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(text).toContain('destination "beside"');
    expect(text).toMatch(/confirmationToken/);
    // Without "when" the text does not invent a time.
    const plain = await mcp.client.getPrompt({
      name: 'find-lost-file',
      arguments: { volume: 'media', path: 'photos/2026' },
    });
    const plainText = (plain.messages[0]!.content as { text: string }).text;
    expect(plainText).toContain('"photos/2026"');
    expect(plainText).not.toContain('undefined');
    await expect(
      mcp.client.getPrompt({ name: 'find-lost-file', arguments: { volume: 'media' } }),
    ).rejects.toThrow(/path/);
  });

  it('refuses safe-deploy without the service argument', async () => {
    await expect(mcp.client.getPrompt({ name: 'safe-deploy', arguments: {} })).rejects.toThrow(/service/);
  });
});
