import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { reportCommand } from '../../src/cli/commands/report.js';
import { createExclusive, writeFileAtomic } from '../../src/core/atomic-file.js';
import { issueToken } from '../../src/core/confirm.js';

// Every state file is written without following a symlink: a symlink planted where snapguard
// writes is replaced (or makes the write fail), and the file it points at stays as it was.

let dir: string;
let victim: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapguard-state-files-'));
  victim = join(dir, 'elsewhere', 'victim');
  await mkdir(join(dir, 'elsewhere'));
  await writeFile(victim, 'precious\n', { mode: 0o644 });
});
afterEach(async () => {
  process.exitCode = undefined;
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

async function expectVictimUntouched(): Promise<void> {
  expect(await readFile(victim, 'utf8')).toBe('precious\n');
  expect((await stat(victim)).mode & 0o777).toBe(0o644);
}

describe('state files are never written through a symlink', () => {
  it('the atomic writer replaces a symlink at the target with the new file', async () => {
    const file = join(dir, 'state.json');
    await symlink(victim, file);
    await writeFileAtomic(file, '{"new":true}\n', { mode: 0o600 });
    expect((await lstat(file)).isFile()).toBe(true);
    expect(await readFile(file, 'utf8')).toBe('{"new":true}\n');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await expectVictimUntouched();
  });

  it('an exclusive create refuses a planted symlink (EEXIST) and leaves its target alone', async () => {
    const file = join(dir, 'probe');
    await symlink(victim, file);
    await expect(createExclusive(file, 0o600)).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(writeFileAtomic(file, 'x', { exclusive: true })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readlink(file)).toBe(victim);
    await expectVictimUntouched();
  });

  it('the confirmation secret: a symlink in its place is replaced by a new 0600 secret, its target untouched', async () => {
    const stateDir = join(dir, 'state');
    await mkdir(join(stateDir, 'confirm'), { recursive: true });
    const secret = join(stateDir, 'confirm', 'secret');
    await symlink(victim, secret);
    await issueToken(stateDir, { tool: 'recover', args: { volume: 'v' }, fingerprint: 'f' }, new Date());
    await expectVictimUntouched();
    const info = await lstat(secret);
    expect(info.isFile()).toBe(true);
    expect(info.mode & 0o777).toBe(0o600);
    expect(await readFile(secret, 'utf8')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('snapguard report --html does not write through a symlink planted at its temp name', async () => {
    const configFile = join(dir, 'snapguard.yaml');
    const volume = join(dir, 'vol');
    await mkdir(volume);
    await writeFile(
      configFile,
      stringify({
        contextDir: join(dir, 'context'),
        stateDir: join(dir, 'state'),
        host: 'h',
        volumes: { data: { backend: 'dir', path: volume, snapshotDir: join(dir, 'snaps') } },
      }),
    );
    const target = join(dir, 'report.html');
    // The name the report used for its temp file before: predictable from the pid.
    await symlink(victim, `${target}.tmp-${process.pid}`);
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    await reportCommand().parseAsync(['--html', target, '--config', configFile], { from: 'user' });
    expect(process.exitCode).toBe(0);
    await expectVictimUntouched();
    expect(await readFile(target, 'utf8')).toMatch(/<html/i);
  });
});
