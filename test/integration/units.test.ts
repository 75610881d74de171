import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderUnits, writeUnits } from '../../src/core/schedule-units.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['systemd-analyze'], false);
const execFileAsync = promisify(execFile);
const cli = resolve('dist/cli/index.js');

async function verify(files: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('systemd-analyze', ['verify', ...files]);
    return { code: 0, output: `${stdout}${stderr}` };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: `${failed.stdout}${failed.stderr}` };
  }
}

describe.runIf(run)('snapguard units', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-test-units-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a monthly restore-test and an hourly health timer that pass systemd-analyze verify', async () => {
    const config = join(dir, 'snapguard.yaml');
    await writeFile(config, 'volumes: {}\n');
    const out = join(dir, 'units');
    const { stdout } = await execFileAsync(process.execPath, [
      cli,
      'units',
      '--write',
      out,
      '--config',
      config,
    ]);
    const files = stdout.split('\n').filter((line) => line.startsWith(out));
    expect(files.map((f) => f.slice(out.length + 1)).sort()).toEqual([
      'snapguard-health.service',
      'snapguard-health.timer',
      'snapguard-restore-test.service',
      'snapguard-restore-test.timer',
    ]);
    const result = await verify(files);
    expect(result.output.trim()).toBe('');
    expect(result.code).toBe(0);
    expect(await readFile(join(out, 'snapguard-restore-test.timer'), 'utf8')).toContain('OnCalendar=monthly');
    expect(await readFile(join(out, 'snapguard-health.timer'), 'utf8')).toContain('OnCalendar=hourly');
    const service = await readFile(join(out, 'snapguard-restore-test.service'), 'utf8');
    expect(service).toContain(
      `ExecStart=${process.execPath} ${cli} restore-test --spread --config ${config}`,
    );
  });

  it('units --write passes the absolute path of a config found as ./snapguard.yaml (systemd starts in /)', async () => {
    const here = join(dir, 'found-in-cwd');
    await mkdir(here, { recursive: true });
    await writeFile(join(here, 'snapguard.yaml'), 'volumes: {}\n');
    const out = join(dir, 'units-cwd');
    await execFileAsync(process.execPath, [cli, 'units', '--write', out], {
      cwd: here,
      env: { ...process.env, SNAPGUARD_CONFIG: '' },
    });
    for (const name of ['snapguard-restore-test.service', 'snapguard-health.service']) {
      const service = await readFile(join(out, name), 'utf8');
      expect(service).toMatch(
        new RegExp(`ExecStart=${process.execPath} ${cli} \\S.* --config ${join(here, 'snapguard.yaml')}\\n`),
      );
    }
  });

  it('verify catches a unit whose command does not exist (the check can fail)', async () => {
    const out = join(dir, 'broken');
    const files = await writeUnits(out, renderUnits({ command: ['/nonexistent/snapguard'] }));
    const result = await verify(files);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('/nonexistent/snapguard');
  });

  it('prints the units when not asked to write them', async () => {
    const { stdout } = await execFileAsync(process.execPath, [cli, 'units']);
    expect(stdout).toContain('# snapguard-health.service');
    expect(stdout).toContain('[Timer]');
  });
});
