import { describe, expect, it } from 'vitest';
import { parseSubvolumeList } from '../../src/backends/btrfs.js';
import { normaliseRelativePath } from '../../src/core/recovery/paths.js';
import { parseSendDump } from '../../src/core/recovery/summary.js';
import { splitCommandLine } from '../../src/core/wrap.js';

// Captured from `btrfs receive --dump` (btrfs-progs 6.2) of `send --no-data -p now target`.
const dump = `snapshot        ./target                        uuid=e6e9 transid=7 parent_uuid=a511 parent_transid=8
mkdir           ./target/o258-7-0
rename          ./target/o258-7-0               dest=./target/d2
chown           ./target/d2                     gid=0 uid=0
chmod           ./target/d2                     mode=755
update_extent   ./target/d1/f1                  offset=0 len=2
truncate        ./target/d1/f1                  size=2
utimes          ./target/d1/f1                  atime=2026-11-21T19:58:01+0000 mtime=2026-11-21T19:58:01+0000 ctime=2026-11-21T19:58:01+0000
mkfile          ./target/o260-7-0
rename          ./target/o260-7-0               dest=./target/d2/f2
update_extent   ./target/d2/f2                  offset=0 len=2
chmod           ./target/d2/f2                  mode=644
remove_xattr    ./target/keep                   name=user.x
chmod           ./target/keep                   mode=644
utimes          ./target/ln                     atime=2026-11-21T19:58:01+0000 mtime=2026-11-21T19:58:01+0000 ctime=2026-11-21T19:58:01+0000
unlink          ./target/new
rename          ./target/nd                     dest=./target/o264-8-0
unlink          ./target/o264-8-0/sp\\ ace
rmdir           ./target/o264-8-0
rename          ./target/old\\ name              dest=./target/new\\ name
utimes          ./target/                       atime=2026-11-21T19:58:01+0000 mtime=2026-11-21T19:58:01+0000 ctime=2026-11-21T19:58:01+0000
`;

describe('change summary from a send stream dump', () => {
  it('classifies added, removed, modified and metadata-only paths, through orphan renames and escapes', () => {
    const summary = parseSendDump(dump);
    expect(summary.added.first).toEqual(['d2', 'd2/f2', 'new name']);
    expect(summary.removed.first).toEqual(['nd', 'nd/sp ace', 'new', 'old name']);
    expect(summary.modified.first).toEqual(['d1/f1']);
    expect(summary.metadataOnly.first).toEqual(['keep', 'ln']);
    expect(summary.truncated).toBe(false);
  });

  it('counts everything but lists only the first paths, and says so', () => {
    const lines = ['snapshot ./t uuid=x'];
    for (let i = 0; i < 50; i++) lines.push(`unlink ./t/file${String(i).padStart(2, '0')}`);
    const summary = parseSendDump(lines.join('\n'), 20);
    expect(summary.removed.count).toBe(50);
    expect(summary.removed.first).toHaveLength(20);
    expect(summary.truncated).toBe(true);
  });
});

describe('parsing helpers', () => {
  it('reads plain subvolumes (no otime, padded parent_uuid) from subvolume list', () => {
    const entries = parseSubvolumeList(
      'ID 261 gen 10 top level 5 parent_uuid -                                    uuid e452036c-b356 path snaps/moved\n',
    );
    expect(entries).toEqual([
      {
        id: '261',
        generation: 10,
        otime: undefined,
        parentUuid: undefined,
        uuid: 'e452036c-b356',
        path: 'snaps/moved',
      },
    ]);
  });

  it('normalises restore paths and refuses the dangerous ones', () => {
    expect(normaliseRelativePath('a//b/./c/')).toBe('a/b/c');
    expect(normaliseRelativePath('.')).toBe('.');
    for (const bad of ['', '/etc', '../x', 'a/../../b', 'a\0b', '~root', 'C:\\x'])
      expect(() => normaliseRelativePath(bad), JSON.stringify(bad)).toThrow(/refused/);
  });

  it('splits a validation command line without a shell', () => {
    expect(splitCommandLine(`curl -fsS "http://localhost:8080/a b" --header 'X: $HOME' a\\ b; rm`)).toEqual([
      'curl',
      '-fsS',
      'http://localhost:8080/a b',
      '--header',
      'X: $HOME',
      'a b;',
      'rm',
    ]);
    expect(() => splitCommandLine('echo "open')).toThrow(/unterminated/);
  });
});
