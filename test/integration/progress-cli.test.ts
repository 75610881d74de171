import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { cliPath, requireBuiltCli, runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mount', 'umount', 'script']);
const ESC = String.fromCharCode(27);
const HOUR = 3600_000;

/** The built CLI on a pseudo-terminal (script(1)), as in a user's shell; stdout and stderr both arrive here. */
function onTerminal(args: string[]): Promise<{ code: number; output: string }> {
  const quoted = args.map((arg) => `'${arg.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((done) => {
    execFile(
      'script',
      ['-q', '-e', '-c', `stty cols 120; ${process.execPath} ${cliPath} ${quoted}`, '/dev/null'],
      { timeout: 120_000 },
      (error, stdout) => done({ code: error ? Number(error.code) : 0, output: stdout }),
    );
  });
}

describe.runIf(run)('progress of long CLI work (built CLI, real btrfs)', () => {
  let sandbox: BtrfsSandbox;
  let configFile: string;
  let snapDir: string;
  const SNAPSHOTS = 230;

  beforeAll(async () => {
    requireBuiltCli();
    sandbox = await createBtrfsSandbox(512, 'progress');
    const data = await sandbox.subvolume('data');
    await mkdir(join(data, 'docs'));
    for (let i = 0; i < 400; i++)
      await writeFile(join(data, 'docs', `note-${i}.txt`), `note ${i}\n`.repeat(20));
    snapDir = join(sandbox.pool.mountPoint, '.snapshots/data');
    const volumes: ConfigInput['volumes'] = {
      data: {
        backend: 'btrfs',
        path: data,
        snapshotDir: snapDir,
        // Everything but the newest goes: a prune of more snapshots than one batch delete takes.
        retention: { preserveMin: 'latest', preserve: 'no' },
      },
    };
    configFile = await sandbox.writeConfig({ host: 'test-host', confirm: 'token', volumes });
    const start = Date.now() - (SNAPSHOTS + 1) * HOUR;
    for (let i = 0; i < SNAPSHOTS; i++) {
      const at = new Date(start + i * HOUR);
      await createSnapshots(sandbox.deps({ volumes }, { clock: () => at }), {
        volumes: ['data'],
        type: 'scheduled',
      });
    }
  }, 600_000);

  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('restore-test on a terminal draws a bar with counts on stderr, then clears it before the table', async () => {
    const result = await onTerminal(['restore-test', 'data', '--config', configFile, '--sample-size', '300']);
    expect(result.code).toBe(0);
    // The bar (cli-progress): redrawn at the line start, block glyphs, "done/total"; no terminal mode
    // (hidden cursor, no line wrap) that an interrupted run would leave behind.
    expect(result.output).toContain(`${ESC}[1G`);
    expect(result.output).not.toContain(`${ESC}[?25l`);
    expect(result.output).not.toContain(`${ESC}[?7l`);
    expect(result.output).toMatch(/restore-test [█░]{24} \d+\/600 \d+%/);
    expect(result.output).toMatch(/VOLUME\s+SNAPSHOT\s+SOURCE\s+MODE\s+RESULT/);
    expect(result.output).toContain('Overall PASS');
    // The bar's line is cleared before the table.
    expect(result.output).toMatch(new RegExp(`${ESC}\\[2K[^]*VOLUME`));
  });

  it('--no-progress on a terminal draws no bar', async () => {
    const result = await onTerminal(['restore-test', 'data', '--config', configFile, '--no-progress']);
    expect(result.code).toBe(0);
    expect(result.output).not.toMatch(/[█░]/);
    expect(result.output).toContain('Overall PASS');
  });

  it('restore-test --full --json off a terminal: plain progress lines on stderr, one JSON document on stdout', async () => {
    const result = await runBuiltCli(['restore-test', 'data', '--full', '--json', '--config', configFile]);
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as { overall: string; results: { mode: string }[] };
    expect(parsed.overall).toBe('PASS');
    expect(parsed.results[0]?.mode).toBe('full');
    const lines = result.stderr.trim().split('\n');
    expect(lines.some((l) => /^restore-test: \d+ - data: btrfs send \| receive of data-/.test(l))).toBe(true);
    expect(lines.some((l) => /^restore-test: 100\/100 \(100%\).* - data: verified 50\/50$/.test(l))).toBe(
      true,
    );
    expect(result.stderr).not.toContain(ESC);
    // Throttled: far fewer lines than files verified.
    expect(lines.length).toBeLessThan(30);
  });

  it('--quiet prints no progress', async () => {
    const result = await runBuiltCli(['restore-test', 'data', '--json', '--quiet', '--config', configFile]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ overall: 'PASS' });
    expect(result.stderr).toBe('');
  });

  it('deleted --json shows the snapshots searched on stderr', async () => {
    const result = await runBuiltCli(['deleted', 'data', '--json', '--config', configFile]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ total: 0 });
    expect(result.stderr).toMatch(new RegExp(`^deleted: 0/${SNAPSHOTS} \\(0%\\) - searching `, 'm'));
  });

  it('prune of more snapshots than one batch: a line per batch on stderr, JSON on stdout, all deleted', async () => {
    const result = await runBuiltCli(['prune', 'data', '--yes', '--json', '--config', configFile]);
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as { status: string; delete: { result: string }[] };
    expect(parsed.status).toBe('pruned');
    expect(parsed.delete.filter((v) => v.result === 'deleted')).toHaveLength(SNAPSHOTS - 1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^prune: 200/${SNAPSHOTS - 1} \\(87%\\).* - data local$`)),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^prune: ${SNAPSHOTS - 1}/${SNAPSHOTS - 1} \\(100%\\)`)),
    );
    expect(await readdir(snapDir)).toHaveLength(1);
  });

  it('recover --files --json off a terminal: one line per step on stderr, the result on stdout', async () => {
    const [snapshot] = await readdir(snapDir);
    await writeFile(join(sandbox.pool.mountPoint, 'data/docs/note-1.txt'), 'changed\n');
    const result = await runBuiltCli([
      'recover',
      'data',
      snapshot as string,
      '--files',
      'docs',
      '--yes',
      '--json',
      '--config',
      configFile,
    ]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'recovered' });
    expect(result.stderr).toMatch(/^recover: step \d+ - data: safety-snapshot$/m);
    expect(result.stderr).toMatch(/^recover: step \d+ - data: copy$/m);
    expect(await readFile(join(sandbox.pool.mountPoint, 'data/docs/note-1.txt'), 'utf8')).toBe(
      'note 1\n'.repeat(20),
    );
  });

  it('orchestrate --json off a terminal: finished jobs of all on stderr, the result alone on stdout', async () => {
    const config = join(sandbox.dir, 'orchestrate.yaml');
    await writeFile(
      config,
      JSON.stringify({
        contextDir: join(sandbox.dir, 'context-orch'),
        stateDir: join(sandbox.dir, 'state-orch'),
        orchestrate: {
          stages: [
            { name: 'first', timeout: '30s', jobs: [{ kind: 'command', name: 'one', argv: ['true'] }] },
            {
              name: 'second',
              timeout: '30s',
              jobs: [
                { kind: 'command', name: 'two', argv: ['true'] },
                { kind: 'command', name: 'three', argv: ['sleep', '0.2'] },
              ],
            },
          ],
        },
      }),
    );
    const result = await runBuiltCli(['orchestrate', '--json', '--config', config]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ exitCode: 0 });
    expect(result.stderr).toMatch(/^orchestrate: 0\/3 \(0%\) - stage first: 1 job\(s\)$/m);
    expect(result.stderr).toMatch(/^orchestrate: 3\/3 \(100%\).* - second: \S+ succeeded-unverified$/m);
  });
});
