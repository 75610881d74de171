import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { pruneSnapshots } from '../../src/core/retention/prune.js';
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

describe('pins file', () => {
  it('a pin file that does not parse stops prune instead of being read as "no pins"', async () => {
    const base = join(dir, 'corrupt');
    await mkdir(join(base, 'state'), { recursive: true });
    await mkdir(join(base, 'vol'), { recursive: true });
    await mkdir(join(base, '.snapshots', 'vol', 'vol-manual-20200101-000000'), { recursive: true });
    await mkdir(join(base, '.snapshots', 'vol', 'vol-manual-20200102-000000'), { recursive: true });
    await writeFile(join(base, 'state', 'pins.json'), '{"version":1,"pins":[');
    const deps = createDeps(
      buildConfig(
        {
          contextDir: join(base, 'ctx'),
          stateDir: join(base, 'state'),
          volumes: { vol: { backend: 'dir', path: join(base, 'vol'), retention: '1d' } },
        },
        base,
      ),
      { logger: silentLogger() },
    );
    await expect(pruneSnapshots(deps, { dryRun: false }, { gate: async () => true })).rejects.toMatchObject({
      code: 'PRECONDITION_FAILED',
      message: expect.stringMatching(/pins\.json does not parse/),
    });
    expect(existsSync(join(base, '.snapshots', 'vol', 'vol-manual-20200101-000000'))).toBe(true);
  });
});
