import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { requireComponents } from '../helpers/env.js';
import { cliPath, requireBuiltCli, runBuiltCli } from '../helpers/cli.js';

const run = requireComponents(['script'], false);

const snapguard = (args: string[]) => runBuiltCli(args, { env: { NO_COLOR: '1' } });

describe.skipIf(!run)('snapguard orchestrate (built CLI)', () => {
  let dir: string;
  let config: string;

  beforeAll(async () => {
    requireBuiltCli();
    dir = await mkdtemp(join(tmpdir(), 'snapguard-test-orch-cli-'));
    config = join(dir, 'snapguard.yaml');
    await writeFile(
      config,
      stringify({
        contextDir: 'context',
        stateDir: 'state',
        orchestrate: {
          stages: [
            {
              name: 'first',
              timeout: '30s',
              critical: true,
              jobs: [{ kind: 'command', name: 'prepare', argv: ['sleep', '0.2'] }],
            },
            {
              name: 'backups',
              timeout: '30s',
              jobs: [
                { kind: 'command', name: 'good-backup', argv: ['sleep', '0.3'] },
                {
                  kind: 'command',
                  name: 'bad-backup',
                  argv: ['sh', '-c', 'echo "repository unreachable" >&2; exit 2'],
                },
              ],
            },
          ],
        },
      }),
    );
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints one plain line per job change when not on a terminal, a final table, and exits 1 on partial failure', async () => {
    const result = await snapguard(['orchestrate', '--config', config]);
    expect(result.code).toBe(1);
    const lines = result.stdout.split('\n');
    expect(lines.some((l) => /^\[\d\d:\d\d:\d\d\] == stage first: 1 job\(s\)$/.test(l))).toBe(true);
    expect(lines.some((l) => /^\[\d\d:\d\d:\d\d\] {4}good-backup {2}running$/.test(l))).toBe(true);
    expect(lines.some((l) => /^\[\d\d:\d\d:\d\d\] ERR bad-backup {2}failed \(/.test(l))).toBe(true);
    expect(result.stdout).not.toContain('\x1b[');
    expect(result.stdout).toMatch(/STAGE\s+JOB\s+KIND\s+RESULT\s+TIME\s+DETAIL/);
    expect(result.stdout).toContain('| repository unreachable');
    expect(result.stdout).toContain('PARTIAL: exit 1');
  });

  it('--json prints the result only, with the same exit code', async () => {
    const result = await snapguard(['orchestrate', '--config', config, '--json', '--stage', 'first']);
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as { exitCode: number; stages: { name: string }[] };
    expect(parsed.exitCode).toBe(0);
    expect(parsed.stages.map((s) => s.name)).toEqual(['first']);
  });

  it('--dry-run prints the plan and starts nothing', async () => {
    const result = await snapguard(['orchestrate', '--config', config, '--dry-run']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/backups\s+bad-backup\s+command\s+planned\s+30s max/);
    expect(result.stdout).toContain('Dry run: nothing was started.');
  });

  it('an unknown stage is a usage error (exit 3)', async () => {
    const result = await snapguard(['orchestrate', '--config', config, '--stage', 'nope']);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('There is no stage "nope"');
  });

  it('rewrites the job lines in place on a terminal', async () => {
    // script(1) gives the CLI a pseudo-terminal, like a user's shell.
    const result = await new Promise<{ code: number; stdout: string }>((done) => {
      execFile(
        'script',
        [
          '-q',
          '-e',
          '-c',
          `${process.execPath} ${cliPath} orchestrate --config ${config} --stage backups`,
          '/dev/null',
        ],
        (error, stdout) => done({ code: error ? Number(error.code) : 0, stdout }),
      );
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`${String.fromCharCode(27)}\\[\\d+A`));
    expect(result.stdout).toContain('\x1b[2K');
    expect(result.stdout).not.toMatch(/^\[\d\d:\d\d:\d\d\]/m);
  });
});
