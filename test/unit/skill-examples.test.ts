import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { connect, type Connected } from '../helpers/mcp.js';

const skill = fileURLToPath(new URL('../../skills/backup-integration/SKILL.md', import.meta.url));

// The worked examples in the skill are what an assistant copies: their tool names, argument names
// and result fields must be those the server actually has.
describe('backup-integration skill: worked examples match the tools', () => {
  let dir: string;
  let mcp: Connected;
  let tools: Record<string, Tool>;
  let blocks: Record<string, unknown>[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sg-skill-examples-'));
    const config = buildConfig(
      { contextDir: 'context', stateDir: 'state', volumes: { containers: { backend: 'dir', path: 'data' } } },
      dir,
    );
    mcp = await connect(createDeps(config, { logger: silentLogger() }));
    tools = Object.fromEntries((await mcp.client.listTools()).tools.map((t) => [t.name, t]));
    const text = await readFile(skill, 'utf8');
    blocks = [...text.matchAll(/```json\n([\s\S]*?)```/g)].map(
      (m) => JSON.parse(m[1]!) as Record<string, unknown>,
    );
  });
  afterAll(async () => {
    await mcp?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('every example is valid JSON and there are calls and results', () => {
    expect(blocks.filter((b) => 'name' in b && 'arguments' in b).length).toBeGreaterThanOrEqual(4);
    expect(blocks.filter((b) => !('arguments' in b)).length).toBeGreaterThanOrEqual(2);
  });

  it('calls name existing tools with existing arguments', () => {
    for (const block of blocks.filter((b) => 'arguments' in b)) {
      const tool = tools[block.name as string];
      expect(tool, String(block.name)).toBeDefined();
      const properties = Object.keys(tool!.inputSchema.properties ?? {});
      for (const key of Object.keys(block.arguments as object))
        expect(properties, `${tool!.name}.${key}`).toContain(key);
    }
  });

  it('results use only fields of one tool output schema', () => {
    for (const block of blocks.filter((b) => !('arguments' in b))) {
      const keys = Object.keys(block);
      const owner = Object.values(tools).find((t) =>
        keys.every((k) => Object.keys(t.outputSchema?.properties ?? {}).includes(k)),
      );
      expect(owner, `no tool has all of ${keys.join(', ')}`).toBeDefined();
    }
  });
});
