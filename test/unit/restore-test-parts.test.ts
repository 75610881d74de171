import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDeviceStats, parseQgroupShow } from '../../src/backends/btrfs.js';
import { renderMetrics } from '../../src/core/metrics.js';
import { compareEntry, parseGetfattrDump, type FileReference } from '../../src/core/restore-test/files.js';
import { ReservoirSampler, sampleTree } from '../../src/core/restore-test/sampler.js';

describe('reservoir sampling', () => {
  it('picks every item about equally often (uniform over the stream)', () => {
    const counts = new Array<number>(20).fill(0);
    for (let seed = 0; seed < 4000; seed++) {
      const sampler = new ReservoirSampler(5, seed);
      for (let i = 0; i < 20; i++) sampler.offer(String(i));
      for (const item of sampler.result()) counts[Number(item)] = (counts[Number(item)] ?? 0) + 1;
    }
    // Expected 4000 * 5 / 20 = 1000 per item.
    for (const count of counts) expect(Math.abs(count - 1000)).toBeLessThan(120);
  });

  it('returns the whole population when it is smaller than the sample', () => {
    const sampler = new ReservoirSampler(50, 1);
    for (const item of ['a', 'b', 'c']) sampler.offer(item);
    expect(sampler.result().sort()).toEqual(['a', 'b', 'c']);
    expect(sampler.population).toBe(3);
  });
});

describe('sampleTree', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'snapguard-test-sample-'));
    for (const dir of ['a', 'b/c', 'b/d']) {
      await mkdir(join(root, dir), { recursive: true });
      for (let i = 0; i < 10; i++) await writeFile(join(root, dir, `${i}.txt`), 'x');
    }
    await writeFile(join(root, 'top.txt'), 'x');
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('counts the population and is reproducible per seed', async () => {
    const one = await sampleTree(root, 7, { seed: 99 });
    const two = await sampleTree(root, 7, { seed: 99 });
    expect(one.population).toBe(31);
    expect(one.directories).toBe(5);
    expect(one.paths).toEqual(two.paths);
    expect(new Set(one.paths).size).toBe(7);
  });
});

describe('parsers and comparisons', () => {
  it('parses getfattr dumps with escaped names', () => {
    const dump = [
      '# file: a\\040b.txt',
      'security.selinux=0x73797374656d5f7500',
      'user.note=0x6b656570',
      '',
      '# file: dir/c',
      'user.x=0x01',
      '',
    ].join('\n');
    const parsed = parseGetfattrDump(dump);
    expect(parsed.get('a b.txt')?.get('security.selinux')).toBe('0x73797374656d5f7500');
    expect(parsed.get('dir/c')?.get('user.x')).toBe('0x01');
  });

  it('names each differing check with expected and actual', () => {
    const base: FileReference = {
      kind: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtimeUs: 1_000_000,
      size: 3,
      sha256: 'aa',
    };
    const failures = compareEntry(
      'x',
      { ...base, xattrs: new Map([['security.selinux', '0x01']]) },
      {
        ...base,
        mode: 0o600,
        gid: 5,
        sha256: 'bb',
        mtimeUs: 2_000_000,
        xattrs: new Map(),
      },
    );
    expect(failures.map((f) => f.check)).toEqual([
      'mode',
      'sha256',
      'gid',
      'mtime',
      'xattr:security.selinux',
    ]);
    expect(failures[0]).toEqual({ path: 'x', check: 'mode', expected: '0644', actual: '0600' });
  });

  it('reads non-zero btrfs device counters and qgroup exclusive sizes', () => {
    expect(
      parseDeviceStats(
        '[/dev/loop3].write_io_errs    0\n[/dev/loop3].corruption_errs  2\n[/dev/loop3].generation_errs  0\n',
      ),
    ).toEqual({ '/dev/loop3 corruption_errs': 2 });
    const sizes = parseQgroupShow(
      'qgroupid         rfer         excl \n--------         ----         ---- \n0/5             16384        16384 \n0/257         1048576        40960 \n',
    );
    expect(sizes.get('257')).toBe(40960);
  });

  it('escapes label values in the exposition format', () => {
    const text = renderMetrics([
      {
        name: 'snapguard_x',
        help: 'h',
        type: 'gauge',
        samples: [{ labels: { volume: 'a"b\\c' }, value: 1 }],
      },
    ]);
    expect(text).toBe('# HELP snapguard_x h\n# TYPE snapguard_x gauge\nsnapguard_x{volume="a\\"b\\\\c"} 1\n');
  });
});
