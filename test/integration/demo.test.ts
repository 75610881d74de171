import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { runDemo, type DemoStep } from '../../src/core/demo.js';
import { requireBuiltCli, runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs']);
const sh = promisify(execFile);

describe.runIf(run)('snapguard demo', () => {
  it.each(['btrfs', 'dir'] as const)(
    '%s: a broken deployment is rolled back and the history shows it',
    async (backend) => {
      const steps: DemoStep[] = [];
      const result = await runDemo({ backend }, (step) => steps.push(step));
      expect(result.ok).toBe(true);
      // btrfs tells that nothing changed and reuses the first snapshot; a dir volume takes another.
      const second = steps.find((s) => s.title.startsWith('A second pre-deploy snapshot'))!;
      expect(second.lines.join('\n')).toMatch(
        backend === 'btrfs'
          ? /^no new snapshot of containers: /
          : /^created .*cannot tell whether it changed/,
      );
      const wrapStep = steps.find((s) => s.title.includes('auto-rollback'))!;
      expect(wrapStep.lines.join('\n')).toMatch(/validation failed/);
      expect(wrapStep.lines.join('\n')).toMatch(/ports: \["2283:2283"\]/);
      expect(result.history.recoveries).toHaveLength(1);
      expect(result.history.recoveries[0]).toMatchObject({
        reason: 'validation-failed',
        outcome: 'success',
        mode: 'rollback',
      });
    },
  );

  describe('--keep on btrfs', () => {
    let sandbox: string | undefined;
    afterAll(async () => {
      // Only when the test failed before --clean ran.
      if (sandbox && existsSync(sandbox)) {
        await sh('umount', ['-l', join(sandbox, 'pool')]).catch(() => undefined);
        await rm(sandbox, { recursive: true, force: true });
      }
    });

    it('leaves the mounted image and a configuration to continue with; --clean removes both', async () => {
      requireBuiltCli();
      const kept = await runBuiltCli(['demo', '--keep', '--json']);
      expect(kept.code).toBe(0);
      const result = JSON.parse(kept.stdout) as {
        ok: boolean;
        backend: string;
        sandbox: string;
        config: string;
        next: string[];
        cleanup: string[];
      };
      sandbox = result.sandbox;
      expect(result).toMatchObject({ ok: true, backend: 'btrfs', kept: true });
      const pool = join(result.sandbox, 'pool');
      expect(await readFile('/proc/self/mountinfo', 'utf8')).toContain(` ${pool} `);
      const config = await loadConfig({ explicit: result.config });
      expect(config.volumes.containers).toMatchObject({ backend: 'btrfs', path: join(pool, 'containers') });
      // The printed next steps work as printed (snapguard = the built CLI).
      expect(result.next[0]).toBe(`snapguard snapshot list --config ${result.config} --include-foreign`);
      for (const command of result.next.filter((c) => !c.includes('snapshot create'))) {
        const args = command.split(' ').slice(1);
        const step = await runBuiltCli(args);
        expect(step.stderr, command).toBe('');
        expect([0, 1], command).toContain(step.code);
      }
      const listed = await runBuiltCli(['snapshot', 'list', '--config', result.config, '--json']);
      expect(JSON.parse(listed.stdout).snapshots.length).toBeGreaterThan(1);
      expect(result.cleanup).toEqual([
        `snapguard demo --clean ${result.sandbox}`,
        `umount ${pool}`,
        `rm -rf ${result.sandbox}`,
      ]);

      // A folder that is no kept sandbox is refused and left alone.
      const refused = await runBuiltCli(['demo', '--clean', join(result.sandbox, 'pool')]);
      expect(refused.code).toBe(3);
      expect(existsSync(join(pool, 'containers'))).toBe(true);

      const cleaned = await runBuiltCli(['demo', '--clean', result.sandbox]);
      expect(cleaned.code).toBe(0);
      expect(cleaned.stdout).toContain(`Removed 1 demo sandbox(es): ${result.sandbox}.`);
      expect(existsSync(result.sandbox)).toBe(false);
      expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(result.sandbox);
      const { stdout: loops } = await sh('losetup', ['-a']);
      expect(loops).not.toContain(result.sandbox);
    }, 120_000);
  });
});
