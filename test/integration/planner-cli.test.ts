import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['systemd-analyze'], false);
const CLI = join(process.cwd(), 'dist/cli/index.js');
const FIXTURES = join(process.cwd(), 'test/fixtures/planner');

describe.runIf(run)(
  'snapguard plan writes units that systemd accepts and runbooks with real commands',
  () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'snapguard-plan-cli-'));
      // No configuration: planning a new host needs none.
      await writeFile(join(dir, 'empty'), '');
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    const plan = (args: string[]) =>
      execa(process.execPath, [CLI, 'plan', ...args], { cwd: dir, reject: false, stdin: 'ignore' });

    for (const fixture of ['laptop', 'server', 'vps']) {
      it(`${fixture}: units pass systemd-analyze verify, files are written, runbook commands exist in the CLI`, async () => {
        const out = join(dir, fixture);
        const result = await plan([
          '--input',
          join(FIXTURES, `${fixture}.yaml`),
          '--exec-start',
          `${process.execPath} ${CLI}`,
          '--write',
          out,
          '--json',
        ]);
        expect([0, 1]).toContain(result.exitCode);
        const planned = JSON.parse(result.stdout) as {
          unitsVerified: { ok: boolean; output: string };
          written: string[];
          units: { name: string }[];
        };
        expect(planned.unitsVerified).toEqual({ ok: true, output: '' });
        // Verify the written files again, independently of the planner's own check.
        const units = (await readdir(join(out, 'systemd'))).map((name) => join(out, 'systemd', name));
        expect(units.length).toBe(planned.units.length);
        const verify = await execa('systemd-analyze', ['verify', '--man=no', ...units], { reject: false });
        expect(verify.exitCode, verify.stderr).toBe(0);
        expect(existsSync(join(out, 'snapguard.fragment.yaml'))).toBe(true);

        const runbooks = await Promise.all(
          ['DR-001', 'DR-002', 'DR-003', 'DR-004'].map((id) =>
            readFile(join(out, 'runbooks', `${id}.md`), 'utf8'),
          ),
        );
        const commands = runbooks
          .flatMap((text) => text.split('\n'))
          .map((line) => line.trim())
          .filter((line) => line.startsWith('snapguard '));
        expect(commands.length).toBeGreaterThan(3);
        for (const command of new Set(commands)) {
          const words = command.replace(/#.*$/, '').trim().split(/\s+/);
          const verb = words.slice(1, words[1] === 'snapshot' ? 3 : 2);
          const help = await execa(process.execPath, [CLI, ...verb, '--help'], { reject: false });
          expect(help.exitCode, command).toBe(0);
          expect(help.stdout, command).toContain(`Usage: snapguard ${verb.join(' ')}`);
          for (const flag of words.filter((w) => w.startsWith('--')))
            expect(help.stdout, `${command}: ${flag}`).toContain(flag);
        }
      }, 240_000);
    }

    it('without --exec-start the units run this snapguard with the absolute path of the config in use', async () => {
      const here = join(dir, 'with-config');
      await mkdir(here, { recursive: true });
      await writeFile(join(here, 'snapguard.yaml'), 'volumes: {}\n');
      const result = await execa(
        process.execPath,
        [CLI, 'plan', '--input', join(FIXTURES, 'server.yaml'), '--no-verify', '--json'],
        { cwd: here, reject: false, stdin: 'ignore', env: { SNAPGUARD_CONFIG: '' } },
      );
      expect(result.stderr).toBe('');
      const planned = JSON.parse(result.stdout) as { units: { name: string; content: string }[] };
      const execStarts = planned.units.flatMap((unit) =>
        unit.content.split('\n').filter((line) => line.startsWith('ExecStart=')),
      );
      expect(execStarts.length).toBeGreaterThan(0);
      for (const line of execStarts) {
        expect(line.startsWith(`ExecStart=${process.execPath} ${CLI} `), line).toBe(true);
        expect(line.endsWith(` --config ${join(here, 'snapguard.yaml')}`), line).toBe(true);
      }
      const relative = await execa(
        process.execPath,
        [
          CLI,
          'plan',
          '--input',
          join(FIXTURES, 'server.yaml'),
          '--target-config',
          'conf/sg.yaml',
          '--no-verify',
          '--json',
        ],
        { cwd: here, reject: false, stdin: 'ignore', env: { SNAPGUARD_CONFIG: '' } },
      );
      const units = (JSON.parse(relative.stdout) as { units: { content: string }[] }).units;
      expect(units.some((unit) => unit.content.includes(` --config ${join(here, 'conf/sg.yaml')}`))).toBe(
        true,
      );
    });

    it('a unit whose ExecStart does not exist fails verification (exit 2)', async () => {
      const result = await plan([
        '--input',
        join(FIXTURES, 'server.yaml'),
        '--exec-start',
        '/nonexistent/snapguard',
        '--json',
      ]);
      expect(result.exitCode).toBe(2);
      const planned = JSON.parse(result.stdout) as { unitsVerified: { ok: boolean; output: string } };
      expect(planned.unitsVerified.ok).toBe(false);
      expect(planned.unitsVerified.output).toMatch(/not executable/);
    });

    it('plan from flags alone: the activity window moves the daily jobs', async () => {
      const samples = join(dir, 'samples.csv');
      const lines = ['timestamp,value'];
      for (let hour = 0; hour < 48; hour++)
        lines.push(
          `${new Date(Date.UTC(2026, 10, 1, hour)).toISOString()},${hour % 24 === 13 || hour % 24 === 14 ? 1 : 100}`,
        );
      await writeFile(samples, lines.join('\n'));
      const result = await plan([
        '--host-type',
        'server',
        '--volume',
        '/srv/app:10G',
        '--disk-size',
        '100G',
        '--disk-free',
        '50G',
        '--samples',
        samples,
        '--no-verify',
        '--json',
      ]);
      const planned = JSON.parse(result.stdout) as {
        lowTrafficWindow: { startHour: number };
        schedule: { job: string; onCalendar: string }[];
      };
      expect(planned.lowTrafficWindow.startHour).toBe(13);
      expect(planned.schedule.find((j) => j.job === 'snapshot-daily')?.onCalendar).toBe('*-*-* 13:15:00');
      expect(planned.schedule.find((j) => j.job === 'prune')?.onCalendar).toBe('*-*-* 14:15:00');
    });
  },
);
