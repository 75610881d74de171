import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { connect } from '../helpers/mcp.js';

describe('the orchestrate tool description', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sg-orchestrate-description-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names the configured stages in their order, as numbers and names stages accepts', async () => {
    const config = buildConfig(
      {
        contextDir: 'context',
        stateDir: 'state',
        volumes: { data: { backend: 'dir', path: 'data' } },
        orchestrate: {
          stages: [
            { name: 'dumps', timeout: '10m', jobs: [{ kind: 'command', name: 'dump', argv: ['true'] }] },
            { name: 'local', timeout: '5m', jobs: [{ kind: 'snapshot', volumes: ['data'] }] },
          ],
        },
      },
      dir,
    );
    const mcp = await connect(createDeps(config, { logger: silentLogger() }));
    try {
      const { tools } = await mcp.client.listTools();
      const description = tools.find((tool) => tool.name === 'orchestrate')!.description!;
      expect(description).toContain('Stages in order: 1 dumps, 2 local.');
      expect(description).not.toContain('3 backups');
    } finally {
      await mcp.close();
    }
  });
});
