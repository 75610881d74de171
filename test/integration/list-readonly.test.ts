import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { createBackendResolver } from '../../src/backends/index.js';
import { isOwnedSnapshotName } from '../../src/core/naming.js';
import { createSnapshots, listSnapshots } from '../../src/core/snapshots.js';
import type { Exec } from '../../src/system/exec.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

// The read-only flag of each listed subvolume decides ownership (a writable subvolume with a
// snapshot's name is not one of ours), so the listing must get it right whichever way it reads it.
describe.runIf(enabled)('btrfs listing: read-only flags, received copies, btrfs runs (real btrfs)', () => {
  let box: BtrfsSandbox;
  let deps: Deps;
  let app: string;
  let snapshotDir: string;
  let external: string;
  const btrfsRuns: string[][] = [];
  // The real exec, with a record of the btrfs commands it ran.
  const recording: Exec = (command, args, options) => {
    if (command === 'btrfs') btrfsRuns.push([...args]);
    return exec(command, args, options);
  };

  beforeAll(async () => {
    box = await createBtrfsSandbox(256, 'listro');
    app = await box.subvolume('app');
    await writeFile(join(app, 'file'), 'v1\n');
    external = join(box.pool.mountPoint, 'backup', 'app');
    await mkdir(external, { recursive: true });
    deps = box.deps(
      { volumes: { app: { backend: 'btrfs', path: app, external: [{ kind: 'btrfs', path: external }] } } },
      { exec: recording, backendFor: createBackendResolver(recording, isOwnedSnapshotName) },
    );
    snapshotDir = deps.config.volumes.app!.snapshotDir;
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('lists read-only snapshots with one btrfs run, with their ids and uuids', async () => {
    const created = (await createSnapshots(deps, { volumes: ['app'], type: 'manual' })).created[0]!;
    // a plain folder is no subvolume and needs no second listing
    await mkdir(join(snapshotDir, 'notes'));
    btrfsRuns.length = 0;
    const listed = await listSnapshots(deps, { volume: 'app', location: 'local' });
    expect(listed.snapshots.map((s) => [s.name, s.readOnly, s.owned])).toEqual([[created.name, true, true]]);
    expect(btrfsRuns).toHaveLength(1);
    const [raw] = await deps.backendFor(deps.config.volumes.app!).list(deps.config.volumes.app!);
    const shown = (await exec('btrfs', ['subvolume', 'show', created.path])).stdout;
    expect(shown).toMatch(new RegExp(`Subvolume ID:\\s+${raw!.id}\\n`));
    expect(shown).toMatch(new RegExp(`\\bUUID:\\s+${raw!.uuid}\\n`));
    expect(raw!.parentUuid).toBeTruthy();
  });

  it('reports a writable subvolume as writable and not owned, beside the read-only snapshots', async () => {
    await exec('btrfs', ['subvolume', 'create', join(snapshotDir, 'scratch')]);
    await exec('btrfs', ['subvolume', 'create', join(snapshotDir, 'app-manual-20300101-000000')]);
    const listed = await listSnapshots(deps, { volume: 'app', location: 'local', includeForeign: true });
    const flags = Object.fromEntries(listed.snapshots.map((s) => [s.name, [s.readOnly, s.owned]]));
    expect(flags).toEqual({
      scratch: [false, false],
      'app-manual-20300101-000000': [false, false],
      [listed.snapshots.find((s) => s.type === 'manual' && s.owned)!.name]: [true, true],
    });
    const raws = await deps.backendFor(deps.config.volumes.app!).list(deps.config.volumes.app!);
    expect(raws.every((raw) => /^\d+$/.test(raw.id ?? '') && raw.uuid)).toBe(true);
  });

  it('notices a snapshot made writable, and read-only again', async () => {
    const [owned] = (await listSnapshots(deps, { volume: 'app', location: 'local' })).snapshots;
    await exec('btrfs', ['property', 'set', '-ts', owned!.path, 'ro', 'false']);
    let listed = await listSnapshots(deps, { volume: 'app', location: 'local', includeForeign: true });
    expect(listed.snapshots.find((s) => s.name === owned!.name)).toMatchObject({
      readOnly: false,
      owned: false,
    });
    expect((await listSnapshots(deps, { volume: 'app', location: 'local' })).total).toBe(0);
    await exec('btrfs', ['property', 'set', '-ts', owned!.path, 'ro', 'true']);
    listed = await listSnapshots(deps, { volume: 'app', location: 'local' });
    expect(listed.snapshots.map((s) => [s.name, s.readOnly])).toEqual([[owned!.name, true]]);
  });

  it('lists received copies (read-only) and a copy still being received (writable) on the target', async () => {
    const [owned] = (await listSnapshots(deps, { volume: 'app', location: 'local' })).snapshots;
    // The pipe stands in for a replication job; snapguard itself never runs a shell.
    await exec('sh', ['-c', 'btrfs send -q "$1" | btrfs receive "$2"', 'sh', owned!.path, external]);
    const partial = 'app-manual-20300101-000001';
    await exec('btrfs', ['subvolume', 'create', join(external, partial)]);
    const listed = await listSnapshots(deps, { volume: 'app', location: 'external' });
    expect(Object.fromEntries(listed.snapshots.map((s) => [s.name, [s.readOnly, s.location]]))).toEqual({
      [owned!.name]: [true, 'external'],
      [partial]: [false, 'external'],
    });
    const raws = await deps
      .backendFor(deps.config.volumes.app!)
      .list(deps.config.volumes.app!, { dir: external });
    expect(raws.find((raw) => raw.name === owned!.name)?.receivedUuid).toBe(
      (await deps.backendFor(deps.config.volumes.app!).list(deps.config.volumes.app!)).find(
        (raw) => raw.name === owned!.name,
      )?.uuid,
    );
  });
});
