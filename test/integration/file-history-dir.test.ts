import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { findDeleted } from '../../src/core/file-history/deleted.js';
import { diffSnapshots } from '../../src/core/file-history/diff.js';
import { readSnapshotFile } from '../../src/core/file-history/read.js';
import { fileVersions } from '../../src/core/file-history/versions.js';
import { silentLogger } from '../../src/core/logger.js';
import { createSnapshots } from '../../src/core/snapshots.js';

describe('file history on the dir backend (copies)', () => {
  let dir: string;
  let volume: string;
  let deps: Deps;
  let clockTime = Date.UTC(2026, 10, 22, 8, 0, 0);
  const names: string[] = [];

  async function snap(): Promise<string> {
    clockTime += 60_000;
    const name = (await createSnapshots(deps, { volumes: ['data'], type: 'manual' })).created[0]!.name;
    names.push(name);
    return name;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-files-dir-'));
    volume = join(dir, 'pool', 'data');
    await mkdir(join(volume, 'docs'), { recursive: true });
    deps = createDeps(
      buildConfig(
        { contextDir: 'ctx', stateDir: 'state', volumes: { data: { backend: 'dir', path: 'pool/data' } } },
        dir,
      ),
      { logger: silentLogger(), clock: () => new Date(clockTime) },
    );
    await writeFile(join(volume, 'docs', 'plan.md'), '# plan\nfirst\n');
    await writeFile(join(volume, 'docs', 'gone.md'), 'gone\n');
    await snap();
    await snap(); // unchanged: the copy keeps size and mtime, so it groups with the first
    await writeFile(join(volume, 'docs', 'plan.md'), '# plan\nsecond draft\n');
    await rm(join(volume, 'docs', 'gone.md'));
    await snap();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('groups unchanged copies into one version', async () => {
    const result = await fileVersions(deps, { volume: 'data', path: 'docs/plan.md' });
    expect(result.versions.map((v) => v.snapshots)).toEqual([[names[2]], [names[1], names[0]]]);
    expect(result.versions[0]!.live).toBe(true);
  });

  it('finds the deleted file in the newest copy that holds it', async () => {
    const result = await findDeleted(deps, { volume: 'data' });
    expect(result.deleted).toEqual([
      expect.objectContaining({ path: 'docs/gone.md', newestSnapshot: names[1], size: 5, topLevel: true }),
    ]);
  });

  it('diffs two copies and a copy against live; reads the old text', async () => {
    const between = await diffSnapshots(deps, { volume: 'data', from: names[0]!, to: names[2]! });
    expect(between.modified.paths).toEqual(['docs/plan.md']);
    expect(between.removed.paths).toEqual(['docs/gone.md']);
    expect(between.metadata.count).toBe(0);
    const live = await diffSnapshots(deps, { volume: 'data', from: names[2]!, checksum: true });
    expect(live.added.count + live.removed.count + live.modified.count + live.metadata.count).toBe(0);
    const old = await readSnapshotFile(deps, { volume: 'data', snapshot: names[0]!, path: 'docs/plan.md' });
    expect(old.content).toBe('# plan\nfirst\n');
  });
});
