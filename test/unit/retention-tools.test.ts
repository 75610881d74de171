import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { createServer } from '../../src/mcp/server.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapguard-retention-tools-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function toolsOf(readOnly: boolean) {
  const deps = createDeps(
    buildConfig({ contextDir: join(dir, 'c'), stateDir: join(dir, 's'), readOnly }, dir),
    {
      logger: silentLogger(),
    },
  );
  const created = createServer(deps);
  const client = new Client({ name: 't', version: '0' });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([created.server.connect(a), client.connect(b)]);
  const { tools } = await client.listTools();
  await client.close();
  await created.cleanup();
  return new Map(tools.map((tool) => [tool.name, tool]));
}

describe('retention and planning tools', () => {
  it('prune is destructive, pin is not, plan is read-only; readOnly mode keeps only plan_strategy', async () => {
    const all = await toolsOf(false);
    expect(all.get('prune_snapshots')?.annotations).toMatchObject({
      destructiveHint: true,
      readOnlyHint: false,
    });
    expect(all.get('pin_snapshot')?.annotations).toMatchObject({
      destructiveHint: false,
      readOnlyHint: false,
    });
    expect(all.get('plan_strategy')?.annotations).toMatchObject({ readOnlyHint: true });
    const readOnly = await toolsOf(true);
    expect(readOnly.has('plan_strategy')).toBe(true);
    expect(readOnly.has('prune_snapshots')).toBe(false);
    expect(readOnly.has('pin_snapshot')).toBe(false);
  });
});
