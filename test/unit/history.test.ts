import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { historyJsonSchema, type SnapshotEntry } from '../../src/core/history/schema.js';
import { HistoryStore } from '../../src/core/history/store.js';

const run = promisify(execFile);
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapguard-history-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function entry(i: number, year = 2026): SnapshotEntry {
  return {
    id: `snap-${i}`,
    timestamp: `${year}-01-01T00:00:${String(i % 60).padStart(2, '0')}.000Z`,
    host: 'h',
    subvolume: 'data',
    type: 'manual',
    operation: null,
    operation_id: `op-${i}`,
    snapshot_name: `data-manual-${i}`,
    path: `/x/${i}`,
    outcome: 'pending',
    size_mb: null,
  };
}

describe('history store', () => {
  it('writes the snake_case layout that jq readers expect', async () => {
    const store = new HistoryStore({ contextDir: dir });
    await store.update((h) => void h.snapshots.push(entry(1)));
    const text = JSON.parse(await readFile(join(dir, 'backup-history.json'), 'utf8'));
    expect(Object.keys(text)).toEqual([
      'version',
      'snapshots',
      'recoveries',
      'restore_tests',
      'orchestrations',
    ]);
    expect(text.snapshots[0]).toMatchObject({
      snapshot_name: 'data-manual-1',
      operation_id: 'op-1',
      size_mb: null,
    });
  });

  it('moves a file that does not parse aside, never overwriting it, and reports where', async () => {
    const broken = '{"version":1,"snapshots":[{"id":"precious"';
    await writeFile(join(dir, 'backup-history.json'), broken);
    const store = new HistoryStore({
      contextDir: dir,
      clock: () => new Date(Date.UTC(2026, 10, 21, 12, 0, 0)),
    });
    expect((await store.read()).corrupt).toBeDefined();
    const { movedAside } = await store.update((h) => void h.snapshots.push(entry(2)));
    expect(movedAside).toBe(join(dir, 'backup-history.json.corrupt-20261121-120000'));
    expect(await readFile(movedAside!, 'utf8')).toBe(broken);
    expect(await store.corruptFiles()).toEqual([movedAside]);
    expect((await store.read()).history.snapshots.map((e) => e.id)).toEqual(['snap-2']);
  });

  it('two corrupt files set aside within one second are both kept under different names', async () => {
    const store = new HistoryStore({
      contextDir: dir,
      clock: () => new Date(Date.UTC(2026, 10, 21, 12, 0, 0)),
    });
    const file = join(dir, 'backup-history.json');
    await writeFile(file, '{"first":');
    const first = (await store.update((h) => void h.snapshots.push(entry(1)))).movedAside;
    await writeFile(file, '{"second":');
    const second = (await store.update((h) => void h.snapshots.push(entry(2)))).movedAside;
    expect(first).toBe(join(dir, 'backup-history.json.corrupt-20261121-120000'));
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    expect(await readFile(first!, 'utf8')).toBe('{"first":');
    expect(await readFile(second!, 'utf8')).toBe('{"second":');
    expect((await store.corruptFiles()).sort()).toEqual([first, second].sort());
  });

  it('keeps entries it does not know (written by a newer version) through a rewrite', async () => {
    await writeFile(
      join(dir, 'backup-history.json'),
      JSON.stringify({
        version: 1,
        snapshots: [{ ...entry(1), future_field: 42 }],
        recoveries: [],
        restore_tests: [],
        orchestrations: [],
        future_section: [1],
      }),
    );
    const store = new HistoryStore({ contextDir: dir });
    await store.update((h) => void h.snapshots.push(entry(2)));
    const text = JSON.parse(await readFile(join(dir, 'backup-history.json'), 'utf8'));
    expect(text.snapshots[0].future_field).toBe(42);
    expect(text.future_section).toEqual([1]);
  });

  it('moves the oldest entries to yearly archives and loses none', async () => {
    const store = new HistoryStore({ contextDir: dir, liveEntries: 20 });
    for (let i = 0; i < 50; i++)
      await store.update((h) => void h.snapshots.push(entry(i, i < 10 ? 2025 : 2026)));
    const live = (await store.read()).history.snapshots;
    expect(live.length).toBeLessThanOrEqual(20);
    expect(live.at(-1)?.id).toBe('snap-49');
    const archives = await store.readArchives();
    expect(await readdir(join(dir, 'backup-history.d'))).toEqual([
      'backup-history-2025.json',
      'backup-history-2026.json',
    ]);
    const all = [...archives.flatMap((a) => a.snapshots), ...live].map((e) => e.id);
    expect(new Set(all).size).toBe(50);
    expect(all.length).toBe(50);
  });

  it('leaves the previous file intact when the mutation throws', async () => {
    const store = new HistoryStore({ contextDir: dir });
    await store.update((h) => void h.snapshots.push(entry(1)));
    const before = await readFile(store.file, 'utf8');
    await expect(
      store.update(() => {
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(await readFile(store.file, 'utf8')).toBe(before);
  });

  it('a throwing mutation leaves nothing of its change behind for the next write', async () => {
    const store = new HistoryStore({ contextDir: dir });
    await store.update((h) => void h.snapshots.push(entry(1)));
    await expect(
      store.update((h) => {
        h.snapshots.push(entry(2));
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    await store.update((h) => void h.snapshots.push(entry(3)));
    const ids = JSON.parse(await readFile(store.file, 'utf8')).snapshots.map((e: SnapshotEntry) => e.id);
    expect(ids).toEqual(['snap-1', 'snap-3']);
    expect((await store.read()).history.snapshots.map((e) => e.id)).toEqual(['snap-1', 'snap-3']);
  });

  it("sees another writer's entries in its next read and write (two stores stand for two processes)", async () => {
    const mine = new HistoryStore({ contextDir: dir });
    const theirs = new HistoryStore({ contextDir: dir });
    await mine.update((h) => void h.snapshots.push(entry(1)));
    await theirs.update((h) => void h.snapshots.push(entry(2)));
    expect((await mine.read()).history.snapshots.map((e) => e.id)).toEqual(['snap-1', 'snap-2']);
    await mine.update((h) => void h.snapshots.push(entry(3)));
    await Promise.all([
      ...[4, 5, 6].map((i) => mine.update((h) => void h.snapshots.push(entry(i)))),
      ...[7, 8, 9].map((i) => theirs.update((h) => void h.snapshots.push(entry(i)))),
    ]);
    const ids = (await theirs.read()).history.snapshots.map((e) => e.id);
    expect(ids.slice(0, 3)).toEqual(['snap-1', 'snap-2', 'snap-3']);
    expect([...ids].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => `snap-${i}`));
  });

  it('a staged write shows nothing until commit, and a writer of another store waits for it (two stores stand for two processes)', async () => {
    const mine = new HistoryStore({ contextDir: dir });
    const theirs = new HistoryStore({ contextDir: dir });
    await mine.update((h) => void h.snapshots.push(entry(1)));
    const before = await readFile(mine.file, 'utf8');
    const staged = await mine.stage((h) => void h.snapshots.push(entry(2)));
    let theirsDone = false;
    const theirWrite = theirs
      .update((h) => void h.snapshots.push(entry(3)))
      .then(() => {
        theirsDone = true;
      });
    // Nothing a reader sees has changed, and the other writer is held by the lock.
    expect(await readFile(mine.file, 'utf8')).toBe(before);
    expect((await theirs.read()).history.snapshots.map((e) => e.id)).toEqual(['snap-1']);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(theirsDone).toBe(false);
    await staged.commit();
    await theirWrite;
    const ids = JSON.parse(await readFile(mine.file, 'utf8')).snapshots.map((e: SnapshotEntry) => e.id);
    expect(ids).toEqual(['snap-1', 'snap-2', 'snap-3']);
    expect((await readdir(dir)).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('an abandoned staged write leaves the file as it was, no temporary file, and the lock free', async () => {
    const store = new HistoryStore({ contextDir: dir });
    await store.update((h) => void h.snapshots.push(entry(1)));
    const before = await readFile(store.file, 'utf8');
    const staged = await store.stage((h) => void h.snapshots.push(entry(2)));
    expect((await readdir(dir)).filter((name) => name.includes('.tmp-'))).toHaveLength(1);
    await staged.abandon();
    expect(await readFile(store.file, 'utf8')).toBe(before);
    expect((await readdir(dir)).filter((name) => name.includes('.tmp-') || name.endsWith('.lock'))).toEqual(
      [],
    );
    // The next write starts from the file, not from the abandoned change.
    await store.update((h) => void h.snapshots.push(entry(3)));
    expect((await store.read()).history.snapshots.map((e) => e.id)).toEqual(['snap-1', 'snap-3']);
  });

  it('sees an edit in place that keeps the size of the file (a hand edit or another tool)', async () => {
    const store = new HistoryStore({ contextDir: dir });
    await store.update((h) => void h.snapshots.push(entry(1)));
    expect((await store.read()).history.snapshots[0]?.outcome).toBe('pending');
    const text = await readFile(store.file, 'utf8');
    // "pending" and "success" have the same length: same inode, same size, maybe the same mtime.
    await writeFile(store.file, text.replace('"outcome":"pending"', '"outcome":"success"'));
    expect((await store.read()).history.snapshots[0]?.outcome).toBe('success');
    await store.update((h) => void h.snapshots.push(entry(2)));
    const written = JSON.parse(await readFile(store.file, 'utf8'));
    expect(written.snapshots.map((e: SnapshotEntry) => [e.id, e.outcome])).toEqual([
      ['snap-1', 'success'],
      ['snap-2', 'pending'],
    ]);
  });

  it('writes compact JSON, one line, that jq reads', async () => {
    const store = new HistoryStore({ contextDir: dir });
    await store.update((h) => void h.snapshots.push(entry(1), entry(2)));
    const text = await readFile(store.file, 'utf8');
    expect(text.split('\n')).toEqual([JSON.stringify(JSON.parse(text)), '']);
    const { stdout } = await run('jq', ['-r', '.snapshots[].snapshot_name', store.file]);
    expect(stdout).toBe('data-manual-1\ndata-manual-2\n');
  });

  it('loses no entry when 4 processes append 25 entries each at once', async () => {
    const script = `
      const { HistoryStore } = await import(${JSON.stringify(new URL('../../dist/core/history/store.js', import.meta.url).href)});
      const store = new HistoryStore({ contextDir: process.argv[1] });
      for (let i = 0; i < 25; i++) {
        await store.update((h) => { h.snapshots.push({ id: process.pid + '-' + i, timestamp: new Date().toISOString(), host: 'h', subvolume: 'v', type: 'manual', operation: null, operation_id: null, snapshot_name: 'n', path: '/p', outcome: 'pending', size_mb: null }); });
      }`;
    await Promise.all(
      [1, 2, 3, 4].map(() => run(process.execPath, ['--input-type=module', '-e', script, dir])),
    );
    const text = await readFile(join(dir, 'backup-history.json'), 'utf8');
    const ids = JSON.parse(text).snapshots.map((e: { id: string }) => e.id);
    expect(ids.length).toBe(100);
    expect(new Set(ids).size).toBe(100);
    expect((await readdir(dir)).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('has a committed JSON schema that matches the zod schema (run npm run gen:schema when this fails)', async () => {
    const committed = JSON.parse(
      await readFile(new URL('../../context/backup-history.schema.json', import.meta.url), 'utf8'),
    );
    expect(committed).toEqual(JSON.parse(JSON.stringify(historyJsonSchema())));
  });
});
