import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs']);
const DAY = 86_400_000;

describe.runIf(run)(
  'doctor reconciles the history with the snapshots on disk (real btrfs, built CLI)',
  () => {
    let box: BtrfsSandbox;
    let configFile: string;
    let input: ConfigInput;
    const old: string[] = [];

    beforeAll(async () => {
      box = await createBtrfsSandbox(256, 'doctor-history');
      const data = await box.subvolume('data');
      await writeFile(join(data, 'f'), 'x');
      input = {
        volumes: {
          data: { backend: 'btrfs', path: data, retention: { preserveMin: 'latest', preserve: '2d' } },
        },
      };
      configFile = await box.writeConfig({ host: 'test-host', confirm: 'token', ...input });
      const now = Date.now();
      for (const days of [10, 9, 8]) {
        const past = box.deps(input, { clock: () => new Date(now - days * DAY) });
        old.push((await createSnapshots(past, { volumes: ['data'], type: 'scheduled' })).created[0]!.name);
      }
      await createSnapshots(box.deps(input), { volumes: ['data'], type: 'scheduled' });
    }, 120_000);
    afterAll(async () => {
      await box?.cleanup();
    });

    it('a prune killed after its deletions leaves the history behind; doctor finds it and marks the entries deleted', async () => {
      const killed = await runBuiltCli(['prune', 'data', '--yes', '--config', configFile], {
        env: { SNAPGUARD_TEST_FAULT: 'after:prune-delete' },
      });
      expect(killed.signal).toBe('SIGKILL');
      const snapshotDir = box.deps(input).config.volumes.data!.snapshotDir;
      expect(old.some((name) => !existsSync(join(snapshotDir, name)))).toBe(true);
      const gone = old.filter((name) => !existsSync(join(snapshotDir, name)));
      const historyFile = box.deps(input).history.file;
      const before = JSON.parse(await readFile(historyFile, 'utf8')) as {
        snapshots: { snapshot_name: string; deleted_at?: string }[];
      };
      // The history still claims the deleted snapshots exist.
      expect(before.snapshots.filter((s) => gone.includes(s.snapshot_name) && !s.deleted_at)).toHaveLength(
        gone.length,
      );

      const doctor = await runBuiltCli(['doctor', '--config', configFile]);
      expect(doctor.stdout).not.toContain('all checks passed');
      expect(doctor.stdout).toMatch(
        new RegExp(
          `WARN the history listed ${gone.length} snapshot\\(s\\) of data that are no longer on disk .*${gone[0]}.*marked them deleted`,
        ),
      );
      expect(doctor.code).toBe(1);
      const after = JSON.parse(await readFile(historyFile, 'utf8')) as typeof before;
      for (const name of gone)
        expect(after.snapshots.find((s) => s.snapshot_name === name)?.deleted_at).toMatch(/^\d{4}-/);
      // Snapshots still on disk are left as they are.
      for (const entry of after.snapshots.filter((s) => !gone.includes(s.snapshot_name)))
        expect(entry.deleted_at).toBeUndefined();

      // Once reconciled, doctor has nothing more to say about the history.
      const again = await runBuiltCli(['doctor', '--config', configFile, '--json']);
      const report = JSON.parse(again.stdout) as { checks: { id: string; status: string }[] };
      expect(report.checks.find((c) => c.id === 'history')).toMatchObject({ status: 'ok' });
    }, 120_000);
  },
);
