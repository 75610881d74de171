import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { exec } from '../helpers/btrfs.js';
import { connect, type Connected } from '../helpers/mcp.js';

describe("orchestrate over this host and another: this host's progress joins the same sequence", () => {
  let dir: string;
  let controller: Connected;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-fleet-local-'));
    await mkdir(join(dir, 'data', 'app'), { recursive: true });
    const config = buildConfig(
      {
        host: 'controller',
        stateDir: join(dir, 'state'),
        contextDir: join(dir, 'context'),
        volumes: { app: { backend: 'dir', path: join(dir, 'data', 'app') } },
        orchestrate: {
          stages: [
            { name: 'quick', timeout: '1m', jobs: [{ kind: 'command', name: 'check', argv: ['true'] }] },
          ],
        },
        // A host whose command does not exist: it cannot be reached, and the call still answers.
        hosts: { gone: { command: [join(dir, 'no-such-snapguard')] } },
      },
      dir,
    );
    controller = await connect(createDeps(config, { logger: silentLogger(), exec }));
  });

  afterAll(async () => {
    await controller?.close().catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('every message names "local", the numbers only grow, and the host that could not run counts as 2', async () => {
    const seen: { progress: number; message?: string }[] = [];
    const result = await controller.client.callTool(
      { name: 'orchestrate', arguments: { host: ['local', 'gone'] } },
      undefined,
      { onprogress: (progress) => seen.push(progress) },
    );
    const data = result.structuredContent as {
      exitCode: number;
      hosts: { host: string; exitCode: number }[];
      unreachable: { host: string }[];
    };
    expect(data.exitCode).toBe(2);
    expect(data.hosts.find((h) => h.host === 'local')?.exitCode).toBe(0);
    expect(data.unreachable.map((u) => u.host)).toEqual(['gone']);
    const messages = seen.map((p) => p.message ?? '');
    expect(messages).toContain('local: stage quick: 1 job(s)');
    expect(messages).toContain('local: quick: started check');
    expect(messages.every((m) => m.startsWith('local: '))).toBe(true);
    const numbers = seen.map((p) => p.progress);
    expect(numbers).toEqual([...numbers].sort((x, y) => x - y));
    expect(new Set(numbers).size).toBe(numbers.length);
  });
});
