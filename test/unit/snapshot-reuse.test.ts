import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDirBackend } from '../../src/backends/dir.js';
import { buildConfig } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createExec } from '../../src/system/exec.js';

// A backend that always answers "unchanged" (a fake: on real btrfs a rollback makes a new
// subvolume, so a pre-recover snapshot never looks unchanged there and this rule cannot be reached).
describe('reuse of a recent snapshot, with a fake backend that always says "unchanged"', () => {
  let dir: string;
  let deps: Deps;
  let clock = Date.UTC(2026, 11, 1, 12, 0, 0);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-reuse-'));
    await mkdir(join(dir, 'pool', 'data'), { recursive: true });
    await writeFile(join(dir, 'pool', 'data', 'f'), 'x');
    const real = createDirBackend(createExec());
    const alwaysUnchanged = { ...real, unchangedSince: async () => true };
    deps = createDeps(
      buildConfig(
        {
          contextDir: 'ctx',
          stateDir: 'state',
          volumes: { data: { backend: 'dir', path: 'pool/data', minInterval: '1h' } },
        },
        dir,
      ),
      { logger: silentLogger(), backendFor: () => alwaysUnchanged, clock: () => new Date(clock) },
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reuses a recent pre-change snapshot the backend calls unchanged', async () => {
    const first = await createSnapshots(deps, { volumes: ['data'], type: 'pre-change', operation: 'one' });
    clock += 60_000;
    const second = await createSnapshots(deps, { volumes: ['data'], type: 'pre-change', operation: 'two' });
    expect(second.created).toEqual([]);
    expect(second.skipped[0]!.existing!.name).toBe(first.created[0]!.name);
  });

  it('never reuses a pre-recover snapshot, even when the backend calls the volume unchanged', async () => {
    clock += 60_000;
    const safety = await createSnapshots(deps, { volumes: ['data'], type: 'pre-recover' });
    expect(safety.created).toHaveLength(1);
    clock += 60_000;
    const next = await createSnapshots(deps, { volumes: ['data'], type: 'pre-change', operation: 'three' });
    expect(next.skipped).toEqual([]);
    expect(next.created.map((s) => s.operation)).toEqual(['three']);
  });
});
