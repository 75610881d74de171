import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSnapshotName } from '../../src/core/naming.js';
import { requireComponents } from '../helpers/env.js';

// `script` gives the CLI a real pseudo-terminal, so prune asks y/N as it does for a person.
const run = requireComponents(['script'], false);
const CLI = join(process.cwd(), 'dist/cli/index.js');

describe.runIf(run)('snapguard prune on a terminal asks before deleting', () => {
  let dir: string;
  let config: string;
  let old: string;
  let newest: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-prune-tty-'));
    const snapshots = join(dir, '.snapshots', 'vol');
    await mkdir(join(dir, 'vol'), { recursive: true });
    old = join(
      snapshots,
      formatSnapshotName('vol', 'scheduled', undefined, new Date(Date.now() - 30 * 86_400_000)),
    );
    newest = join(
      snapshots,
      formatSnapshotName('vol', 'scheduled', undefined, new Date(Date.now() - 3_600_000)),
    );
    await mkdir(old, { recursive: true });
    await mkdir(newest, { recursive: true });
    config = join(dir, 'snapguard.yaml');
    await writeFile(
      config,
      JSON.stringify({
        contextDir: join(dir, 'ctx'),
        stateDir: join(dir, 'state'),
        volumes: { vol: { backend: 'dir', path: join(dir, 'vol'), retention: '2d' } },
      }),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const onTerminal = (answer: string) =>
    execa('script', ['-qec', `${process.execPath} ${CLI} prune --config ${config}`, '/dev/null'], {
      input: `${answer}\n`,
      reject: false,
    });

  it('answering n deletes nothing; answering y deletes what the table showed', async () => {
    const no = await onTerminal('n');
    expect(no.stdout).toMatch(/DELETE\s+not preserved/);
    expect(no.stdout).toMatch(/Delete 1 snapshot\(s\)\? \[y\/N\]/);
    expect(no.stdout).toContain('Nothing deleted.');
    expect(existsSync(old)).toBe(true);
    const yes = await onTerminal('y');
    expect(yes.stdout).toContain('Deleted 1 snapshot(s).');
    expect(existsSync(old)).toBe(false);
    expect(existsSync(newest)).toBe(true);
  });
});
