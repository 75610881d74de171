import { open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { SnapguardError } from '../../src/core/errors.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';
import { runBuiltCli } from '../helpers/cli.js';
import { connect, textOf } from '../helpers/mcp.js';
import { stringify } from 'yaml';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

/** Writes until the filesystem really says ENOSPC: one big file for data, then small inline files for metadata. */
async function fillUp(dir: string): Promise<void> {
  const chunk = Buffer.alloc(1 << 20, 7);
  const big = await open(join(dir, 'big.bin'), 'w');
  try {
    for (;;) await big.write(chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await big.close().catch(() => undefined);
  }
  const small = Buffer.alloc(1500, 120);
  for (let i = 0; ; i++) {
    try {
      const handle = await open(join(dir, `small-${i}`), 'w');
      try {
        await handle.write(small);
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC') return;
      throw error;
    }
  }
}

describe.runIf(enabled)('a full pool (real ENOSPC on a small btrfs image)', () => {
  let sandbox: BtrfsSandbox;
  let deps: Deps;
  let historyBefore: string;
  let snapshotDir: string;

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(128, 'full');
    const data = await sandbox.subvolume('data');
    // The context folder shares the full filesystem, as it often does on a small server.
    deps = sandbox.deps({
      contextDir: join(sandbox.pool.mountPoint, 'context'),
      volumes: { data: { backend: 'btrfs', path: data } },
    });
    snapshotDir = deps.config.volumes.data!.snapshotDir;
    await createSnapshots(deps, { volumes: ['data'], type: 'manual' });
    historyBefore = await readFile(deps.history.file, 'utf8');
    await fillUp(data);
  }, 300_000);
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('refuses create_snapshot at or above maxPoolUsage, names the usage and the way out, creates nothing', async () => {
    const error = await createSnapshots(deps, {
      volumes: ['data'],
      type: 'pre-deploy',
      operation: 'upgrade',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SnapguardError);
    expect(error).toMatchObject({
      code: 'POOL_FULL',
      message: expect.stringMatching(
        /is \d+\.\d% full .* at or above maxPoolUsage 90%\. No snapshot was created\./,
      ),
    });
    expect((error as SnapguardError).hint).toContain('force: true');
    expect(await readdir(snapshotDir)).toHaveLength(1);
    expect(await readFile(deps.history.file, 'utf8')).toBe(historyBefore);
  });

  it('gives the MCP client the same refusal as an isError result with what to do', async () => {
    const mcp = await connect(deps);
    try {
      const result = await mcp.call('create_snapshot', { volumes: ['data'], type: 'pre-deploy' });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(/^\[POOL_FULL\] .*\nWhat to do: .*force: true/s);
    } finally {
      await mcp.close();
    }
  });

  it('with force, btrfs still makes the snapshot (it reserves space for it); the ENOSPC of the history write comes back clearly and the old history stays intact', async () => {
    const error = await createSnapshots(deps, { volumes: ['data'], type: 'manual', force: true }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: 'HISTORY_WRITE_FAILED',
      message: expect.stringMatching(
        /^Created data-manual-\d{8}-\d{6}(?:-\d+)? but could not record it in the history: .*no space left on device/i,
      ),
    });
    expect((error as SnapguardError).hint).toMatch(/full/);
    expect(await readdir(snapshotDir)).toHaveLength(2);
    const after = await readFile(deps.history.file, 'utf8');
    expect(after).toBe(historyBefore);
    expect(JSON.parse(after).snapshots).toHaveLength(1);
    expect((await readdir(deps.config.contextDir)).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });
  it('the built CLI with its state on the full pool: says the disk is full and what to do, not "a bug"', async () => {
    const configFile = join(sandbox.dir, 'full.yaml');
    await writeFile(
      configFile,
      stringify({
        contextDir: join(sandbox.pool.mountPoint, 'context'),
        stateDir: join(sandbox.pool.mountPoint, 'state'),
        volumes: { data: { backend: 'btrfs', path: deps.config.volumes.data!.path } },
      }),
    );
    const text = await runBuiltCli(['snapshot', 'create', 'data', '--force', '--config', configFile]);
    expect(text.code, text.stderr).toBe(2);
    expect(text.stderr).toMatch(/No space left/i);
    expect(text.stderr).toMatch(/what to do: Free space .*prune/);
    expect(text.stderr).not.toMatch(/bug/i);
    const json = await runBuiltCli([
      'snapshot',
      'create',
      'data',
      '--force',
      '--json',
      '--config',
      configFile,
    ]);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'NO_SPACE' } });
  });
});
