import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/core/deps.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { renderHistory } from '../../src/cli/commands/history.js';
import { healthCheck } from '../../src/core/health/index.js';
import { renderHtmlReport, summarizeHistory } from '../../src/core/report/html.js';
import { createServer } from '../../src/mcp/server.js';
import { recover } from '../../src/core/recovery/recover.js';
import { completeOperation, createSnapshots, listSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, exec, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.runIf(enabled)('snapshots on real btrfs', () => {
  let sandbox: BtrfsSandbox;
  let deps: Deps;
  let volumePath: string;
  let clockTime = Date.UTC(2026, 10, 21, 14, 30, 0);

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'snap');
    volumePath = await sandbox.subvolume('containers');
    await writeFile(join(volumePath, 'compose.yml'), 'image: v1\n');
    deps = sandbox.deps(
      { volumes: { containers: { backend: 'btrfs', path: volumePath, minInterval: '1h' } } },
      { clock: () => new Date(clockTime) },
    );
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('creates, lists and completes: a read-only snapshot, a history entry, an outcome', async () => {
    const created = await createSnapshots(deps, {
      volumes: ['containers'],
      type: 'pre-deploy',
      operation: 'deploy-immich',
    });
    expect(created.created).toHaveLength(1);
    const snap = created.created[0]!;
    expect(snap.name).toBe('containers-pre-deploy-deploy-immich-20261121-143000');
    expect(snap.path).toBe(join(sandbox.pool.mountPoint, '.snapshots', 'containers', snap.name));
    // Really read-only, really a snapshot of the data at that moment.
    expect((await exec('btrfs', ['property', 'get', '-ts', snap.path, 'ro'])).stdout.trim()).toBe('ro=true');
    await expect(writeFile(join(snap.path, 'x'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    await writeFile(join(volumePath, 'compose.yml'), 'image: v2\n');
    expect(await readFile(join(snap.path, 'compose.yml'), 'utf8')).toBe('image: v1\n');

    const listed = await listSnapshots(deps, { volume: 'containers' });
    expect(listed.total).toBe(1);
    expect(listed.snapshots[0]).toMatchObject({
      name: snap.name,
      type: 'pre-deploy',
      operation: 'deploy-immich',
      owned: true,
      readOnly: true,
      outcome: 'pending',
      operationId: created.operationId,
      location: 'local',
    });

    const completed = await completeOperation(deps, {
      operationId: created.operationId,
      outcome: 'success',
      notes: 'validated',
    });
    expect(completed.snapshots.map((s) => s.outcome)).toEqual(['success']);
    const history = JSON.parse(await readFile(deps.history.file, 'utf8'));
    expect(history.snapshots).toHaveLength(1);
    expect(history.snapshots[0]).toMatchObject({
      subvolume: 'containers',
      type: 'pre-deploy',
      operation: 'deploy-immich',
      operation_id: created.operationId,
      snapshot_name: snap.name,
      path: snap.path,
      outcome: 'success',
      notes: 'validated',
      host: 'test-host',
    });
  });

  it('skips a pre-change snapshot within minInterval only when the volume is unchanged since the newest one; force takes a new one', async () => {
    clockTime += 10 * 60_000;
    // compose.yml changed after the pre-deploy snapshot: that one is not the state before this change.
    const changed = await createSnapshots(deps, {
      volumes: ['containers'],
      type: 'pre-change',
      operation: 'edit-compose',
    });
    expect(changed.skipped).toEqual([]);
    expect(changed.created.map((s) => s.name)).toEqual([
      'containers-pre-change-edit-compose-20261121-144000',
    ]);
    clockTime += 60_000;
    const skipped = await createSnapshots(deps, {
      volumes: ['containers'],
      type: 'pre-change',
      operation: 'edit-traefik',
    });
    expect(skipped.created).toEqual([]);
    expect(skipped.skipped).toEqual([
      expect.objectContaining({
        volume: 'containers',
        existing: expect.objectContaining({ name: 'containers-pre-change-edit-compose-20261121-144000' }),
      }),
    ]);
    expect(skipped.skipped[0]!.reason).toContain('minInterval 1h');
    // manual snapshots are not pre-change snapshots: minInterval does not apply
    const manual = await createSnapshots(deps, { volumes: ['containers'], type: 'manual' });
    expect(manual.created).toHaveLength(1);
    const forced = await createSnapshots(deps, {
      volumes: ['containers'],
      type: 'pre-change',
      operation: 'edit-traefik',
      force: true,
    });
    expect(forced.created).toHaveLength(1);
  });

  it('gives a second snapshot in the same second the -2 suffix', async () => {
    clockTime += 3 * 3600_000;
    const first = await createSnapshots(deps, { volumes: ['containers'], type: 'manual' });
    const second = await createSnapshots(deps, { volumes: ['containers'], type: 'manual' });
    expect(second.created[0]!.name).toBe(`${first.created[0]!.name}-2`);
    const listed = await listSnapshots(deps, { volume: 'containers', type: 'manual', limit: 1 });
    expect(listed.snapshots[0]!.name).toBe(`${first.created[0]!.name}-2`);
  });

  it('lists snapshots of other tools only when asked, as foreign, and never counts them as owned', async () => {
    const snapshotDir = deps.config.volumes.containers!.snapshotDir;
    for (const name of ['containers.20261120T0200', 'autosnap_2026-11-21_14:00:00_hourly']) {
      await exec('btrfs', ['subvolume', 'snapshot', '-r', volumePath, join(snapshotDir, name)]);
    }
    // a plain folder is not a snapshot and is not listed
    await mkdir(join(snapshotDir, 'notes'));
    const ownedOnly = await listSnapshots(deps, { volume: 'containers' });
    expect(ownedOnly.snapshots.every((s) => s.owned)).toBe(true);
    const withForeign = await listSnapshots(deps, { volume: 'containers', includeForeign: true });
    const foreign = withForeign.snapshots.filter((s) => !s.owned);
    expect(foreign.map((s) => s.name).sort()).toEqual([
      'autosnap_2026-11-21_14:00:00_hourly',
      'containers.20261120T0200',
    ]);
    expect(foreign.every((s) => s.type === undefined && s.readOnly)).toBe(true);
    expect(withForeign.total).toBe(ownedOnly.total + 2);
  });

  it('dry run reports the names it would create and changes nothing', async () => {
    const before = await listSnapshots(deps, { volume: 'containers', includeForeign: true });
    const historyBefore = await readFile(deps.history.file, 'utf8');
    const dry = await createSnapshots(deps, { volumes: ['containers'], type: 'manual', dryRun: true });
    expect(dry.planned).toHaveLength(1);
    expect(dry.created).toEqual([]);
    expect((await listSnapshots(deps, { volume: 'containers', includeForeign: true })).total).toBe(
      before.total,
    );
    expect(await readFile(deps.history.file, 'utf8')).toBe(historyBefore);
  });

  it('lists received copies under an external target (btrfs send | receive) as location external', async () => {
    const external = join(sandbox.pool.mountPoint, 'backup', 'containers');
    await mkdir(external, { recursive: true });
    const [newest] = (await listSnapshots(deps, { volume: 'containers', limit: 1 })).snapshots;
    // The pipe stands in for a replication job; snapguard itself never runs a shell.
    await exec('sh', ['-c', 'btrfs send -q "$1" | btrfs receive "$2"', 'sh', newest!.path, external]);
    const withExternal = sandbox.deps(
      {
        volumes: {
          containers: { backend: 'btrfs', path: volumePath, external: [{ kind: 'btrfs', path: external }] },
        },
      },
      { clock: () => new Date(clockTime) },
    );
    const listed = await listSnapshots(withExternal, { volume: 'containers', location: 'external' });
    expect(listed.snapshots).toEqual([
      expect.objectContaining({
        name: newest!.name,
        location: 'external',
        owned: true,
        readOnly: true,
        createdAt: newest!.createdAt,
      }),
    ]);
    const all = await listSnapshots(withExternal, { volume: 'containers', location: 'all' });
    expect(
      all.snapshots
        .filter((s) => s.name === newest!.name)
        .map((s) => s.location)
        .sort(),
    ).toEqual(['external', 'local']);
  });

  it('filters by since, operation and type', async () => {
    const recent = await listSnapshots(deps, { volume: 'containers', since: '2h' });
    expect(recent.snapshots.every((s) => s.ageSeconds <= 7200)).toBe(true);
    expect(recent.total).toBeGreaterThan(0);
    const byOperation = await listSnapshots(deps, { operation: 'edit-traefik' });
    expect(byOperation.snapshots.map((s) => s.type)).toEqual(['pre-change']);
  });
});

describe.runIf(enabled)('the rollback point of a change is the state just before it (real btrfs)', () => {
  let box: BtrfsSandbox;
  let deps: Deps;
  let app: string;
  let db: string;
  let clockTime = Date.UTC(2026, 11, 1, 10, 0, 0);
  const tick = (minutes: number) => {
    clockTime += minutes * 60_000;
  };

  beforeAll(async () => {
    box = await createBtrfsSandbox(384, 'rollback-point');
    app = await box.subvolume('app');
    db = await box.subvolume('db');
    await writeFile(join(app, 'conf'), 'v1\n');
    await writeFile(join(db, 'rows'), 'r1\n');
    deps = box.deps(
      {
        confirm: 'never',
        volumes: {
          app: { backend: 'btrfs', path: app, minInterval: '1h' },
          db: { backend: 'btrfs', path: db, minInterval: '1h' },
        },
      },
      { clock: () => new Date(clockTime) },
    );
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('btrfs unchangedSince: taking the snapshot is no change; a write, delete, rename, chmod and xattr change each are', async () => {
    const volume = deps.config.volumes.app!;
    const backend = deps.backendFor(volume);
    await writeFile(join(app, 'a'), 'a\n');
    const changes: [string, () => Promise<unknown>][] = [
      ['write', () => writeFile(join(app, 'a'), 'a2\n')],
      ['delete', () => rm(join(app, 'a'))],
      ['create', () => writeFile(join(app, 'b'), 'b\n')],
      ['rename', () => rename(join(app, 'b'), join(app, 'c'))],
      ['chmod', () => chmod(join(app, 'c'), 0o600)],
      ['xattr', () => exec('setfattr', ['-n', 'user.label', '-v', 'x', join(app, 'c')])],
    ];
    for (const [what, change] of changes) {
      tick(1);
      const made = (await createSnapshots(deps, { volumes: ['app'], type: 'manual' })).created[0]!;
      const raw = (await backend.show(volume, made.name))!;
      expect(await backend.unchangedSince!(volume, raw), `right after ${made.name}`).toBe(true);
      await change();
      expect(await backend.unchangedSince!(volume, raw), `after a ${what}`).toBe(false);
    }
  });

  it('a pre-change snapshot within minInterval is taken anew when the volume changed since the newest one', async () => {
    tick(1);
    await writeFile(join(app, 'conf'), 'v2\n');
    const first = await createSnapshots(deps, { volumes: ['app'], type: 'pre-change', operation: 'edit-1' });
    expect(first.created).toHaveLength(1);
    tick(2);
    await writeFile(join(app, 'conf'), 'v3 (latest work)\n');
    const second = await createSnapshots(deps, { volumes: ['app'], type: 'pre-change', operation: 'edit-2' });
    expect(second.skipped).toEqual([]);
    expect(second.created).toHaveLength(1);
    expect(await readFile(join(second.created[0]!.path, 'conf'), 'utf8')).toBe('v3 (latest work)\n');
    // Unchanged since: skipped, and the text says which snapshot, how old, and that nothing changed.
    tick(3);
    const third = await createSnapshots(deps, { volumes: ['app'], type: 'pre-change', operation: 'edit-3' });
    expect(third.created).toEqual([]);
    expect(third.skipped[0]!.existing!.name).toBe(second.created[0]!.name);
    expect(third.skipped[0]!.reason).toContain(second.created[0]!.name);
    expect(third.skipped[0]!.reason).toMatch(/3m old/);
    expect(third.skipped[0]!.reason).toMatch(/has not changed since/);
  });

  it('a file restored minutes earlier is kept: the next pre-change snapshot is not the pre-recover one, and recovering that operation brings the restored file back', async () => {
    tick(60);
    await writeFile(join(app, 'conf'), 'good\n');
    const before = await createSnapshots(deps, { volumes: ['app'], type: 'pre-change', operation: 'edit-a' });
    await writeFile(join(app, 'conf'), 'broken\n');
    const restored = await recover(deps, {
      volume: 'app',
      snapshot: before.created[0]!.name,
      mode: 'files',
      paths: ['conf'],
    });
    expect(restored.status).toBe('recovered');
    expect(await readFile(join(app, 'conf'), 'utf8')).toBe('good\n');
    tick(2);
    const next = await createSnapshots(deps, { volumes: ['app'], type: 'pre-change', operation: 'edit-b' });
    expect(next.skipped).toEqual([]);
    expect(next.created[0]!.name).not.toBe(restored.safetyBackup);
    await writeFile(join(app, 'conf'), 'broken again\n');
    const back = await recover(deps, { operationId: next.operationId });
    expect(back.status).toBe('recovered');
    expect(await readFile(join(app, 'conf'), 'utf8')).toBe('good\n');
    // The pre-recover snapshot says what it holds; nobody should mistake it for a rollback point.
    const listed = await listSnapshots(deps, { volume: 'app', type: 'pre-recover' });
    const safety = listed.snapshots.find((s) => s.name === restored.safetyBackup)!;
    expect(safety.meaning).toBe(
      `the state replaced by recovery ${restored.recoveryId}; recover it only to undo that recovery`,
    );
  });

  it('a skipped volume belongs to the operation: complete_operation, recover by operationId of every volume, health deployments', async () => {
    tick(120);
    const first = await createSnapshots(deps, {
      volumes: ['app', 'db'],
      type: 'pre-deploy',
      operation: 'v1',
    });
    expect(first.created).toHaveLength(2);
    await completeOperation(deps, { operationId: first.operationId, outcome: 'success' });
    const deploymentsBefore = (await healthCheck(deps, {})).summary.deployments;
    tick(5);
    await writeFile(join(app, 'conf'), 'app before v2\n');
    const op = await createSnapshots(deps, { volumes: ['app', 'db'], type: 'pre-deploy', operation: 'v2' });
    expect(op.created.map((s) => s.volume)).toEqual(['app']);
    expect(op.skipped.map((s) => s.volume)).toEqual(['db']);
    const dbPoint = op.skipped[0]!.existing!.name;
    expect(dbPoint).toBe(first.created.find((s) => s.volume === 'db')!.name);

    // The deployment breaks both volumes and fails.
    await writeFile(join(app, 'conf'), 'app broken by v2\n');
    await writeFile(join(db, 'rows'), 'db broken by v2\n');
    const completed = await completeOperation(deps, { operationId: op.operationId, outcome: 'failed' });
    expect(completed.snapshots.map((s) => [s.volume, s.name, s.outcome])).toEqual([
      ['app', op.created[0]!.name, 'failed'],
      ['db', dbPoint, 'failed'],
    ]);
    expect(completed.snapshots[1]!.meaning).toMatch(/good state to return to.*not changed since/);
    // The earlier operation that made db's snapshot keeps its own outcome.
    const listed = await listSnapshots(deps, { volume: 'db' });
    const dbSnap = listed.snapshots.find((s) => s.name === dbPoint)!;
    expect(dbSnap.outcome).toBe('success');
    expect(dbSnap.rollbackPointOf).toEqual([op.operationId]);
    const appSnap = (await listSnapshots(deps, { volume: 'app' })).snapshots.find(
      (s) => s.name === op.created[0]!.name,
    )!;
    expect(appSnap.meaning).toBe(
      `the state just before "v2" (${op.operationId}), which failed (failed): the good state to return to`,
    );

    const back = await recover(deps, { operationId: op.operationId, reason: 'v2 failed' });
    expect(back.status).toBe('recovered');
    expect(back.volumes!.map((v) => [v.volume, v.snapshot])).toEqual([
      ['app', op.created[0]!.name],
      ['db', dbPoint],
    ]);
    expect(await readFile(join(app, 'conf'), 'utf8')).toBe('app before v2\n');
    expect(await readFile(join(db, 'rows'), 'utf8')).toBe('r1\n');

    expect((await healthCheck(deps, {})).summary.deployments).toBe(deploymentsBefore + 1);
  });

  it('two snapshots in the same second: the one the volume is unchanged since is reused, whichever the listing gives first', async () => {
    tick(90);
    const a = await createSnapshots(deps, {
      volumes: ['db'],
      type: 'pre-change',
      operation: 'a',
      force: true,
    });
    const b = await createSnapshots(deps, {
      volumes: ['db'],
      type: 'pre-change',
      operation: 'b',
      force: true,
    });
    expect(a.created[0]!.createdAt).toBe(b.created[0]!.createdAt);
    const c = await createSnapshots(deps, { volumes: ['db'], type: 'pre-change', operation: 'c' });
    expect(c.created).toEqual([]);
    expect(c.skipped[0]!.existing!.name).toBe(b.created[0]!.name);
  });

  it('history, the report and the list_snapshots text say what each snapshot holds: failed means the change failed', async () => {
    const { history } = await deps.history.read();
    const table = renderHistory(history, ['snapshots'], 100);
    expect(table).toContain('good state before failed v2');
    expect(table).toContain('rollback point of v2 (failed: return here)');
    expect(table).toMatch(/state replaced by rec-\d{8}-\d{6}-[0-9a-f]{6}/);
    const html = renderHtmlReport(
      history,
      summarizeHistory(history, { host: 'test-host', now: new Date(clockTime) }),
    );
    expect(html).toContain('good state before failed v2');
    // A snapshot row is never marked failed: the change was, not the snapshot.
    expect(html).not.toMatch(/<td>snapshot<\/td><td>[a-z]+<\/td><td><span class="fail">/);

    const { server, cleanup } = createServer(deps);
    const client = new Client({ name: 'test', version: '0' });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(a), client.connect(b)]);
    try {
      const listed = (await client.callTool({
        name: 'list_snapshots',
        arguments: { volume: 'app', type: 'pre-deploy', limit: 1 },
      })) as CallToolResult;
      expect((listed.content[0] as { text: string }).text).toContain(
        'which failed (failed): the good state to return to',
      );
      const recovered = (await client.callTool({
        name: 'list_snapshots',
        arguments: { volume: 'app', type: 'pre-recover', limit: 1 },
      })) as CallToolResult;
      expect((recovered.content[0] as { text: string }).text).toMatch(/the state replaced by recovery rec-/);
    } finally {
      await client.close();
      await cleanup();
    }
  });
});

describe.runIf(enabled)('create_snapshot calls at once (real btrfs)', () => {
  let sandbox: BtrfsSandbox;
  const input = {
    volumes: {
      web: { backend: 'btrfs' as const, path: '' },
      db: { backend: 'btrfs' as const, path: '' },
    },
  };

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(256, 'snap-at-once');
    input.volumes.web.path = await sandbox.subvolume('web');
    input.volumes.db.path = await sandbox.subvolume('db');
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('two writers (two stores stand for two processes) creating on shared volumes: every snapshot made is recorded once, nothing left behind', async () => {
    const one = sandbox.deps(input);
    const two = sandbox.deps(input);
    const results = await Promise.all([
      ...[0, 1, 2].map(() => createSnapshots(one, { volumes: ['web'], type: 'manual' })),
      ...[0, 1, 2].map(() => createSnapshots(two, { volumes: ['db'], type: 'manual' })),
      ...[0, 1].map(() => createSnapshots(two, { volumes: ['web', 'db'], type: 'manual' })),
    ]);
    const made = results.flatMap((r) => r.created.map((s) => `${s.volume}/${s.name}`)).sort();
    expect(made).toHaveLength(10);
    expect(new Set(made).size).toBe(10);
    const history = JSON.parse(await readFile(one.history.file, 'utf8'));
    const recorded = history.snapshots
      .map((e: { subvolume: string; snapshot_name: string }) => `${e.subvolume}/${e.snapshot_name}`)
      .sort();
    expect(recorded).toEqual(made);
    for (const result of results)
      for (const snapshot of result.created)
        expect((await exec('btrfs', ['property', 'get', '-ts', snapshot.path, 'ro'])).stdout.trim()).toBe(
          'ro=true',
        );
    const listed = await listSnapshots(two, {});
    expect(listed.snapshots.map((s) => `${s.volume}/${s.name}`).sort()).toEqual(made);
    expect(
      (await readdir(one.config.contextDir)).filter((n) => n.includes('.tmp-') || n.endsWith('.lock')),
    ).toEqual([]);
  });
});
