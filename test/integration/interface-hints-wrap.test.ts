import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireBuiltCli, runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';
import { exec } from '../helpers/zfs.js';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

/**
 * wrap runs from the CLI: when its automatic rollback fails, the reason and what to do are in the
 * CLI's words (verbs and options), never in the MCP tools' (tool names, `mode: files`).
 */
describe.runIf(enabled)(
  'wrap --auto-rollback that cannot roll back: the hint speaks CLI (real btrfs)',
  () => {
    let box: BtrfsSandbox;
    let web: string;
    let configFile: string;

    beforeAll(async () => {
      requireBuiltCli();
      box = await createBtrfsSandbox(256, 'wrap-hints');
      web = await box.subvolume('web');
      configFile = await box.writeConfig({ volumes: { web: { backend: 'btrfs', path: web } } });
    }, 120_000);
    afterAll(async () => {
      await box?.cleanup();
    });

    const wrap = (extra: string[], command: string) =>
      runBuiltCli(
        [
          'wrap',
          '--config',
          configFile,
          '--volume',
          'web',
          '--auto-rollback',
          ...extra,
          '--',
          '/bin/sh',
          '-c',
          command,
        ],
        {
          env: { SNAPGUARD_CONFIG: '' },
          timeoutMs: 60_000,
        },
      );

    it('a filesystem the failing command mounted inside the volume: unmount, then snapguard recover; no MCP words', async () => {
      await writeFile(join(web, 'index.html'), 'good\n');
      const cache = join(web, 'cache');
      try {
        const out = await wrap(
          ['--operation', 'mounts-cache'],
          `mkdir -p ${cache} && mount -t tmpfs -o size=1m tmpfs ${cache} && echo broken > ${join(web, 'index.html')}; exit 4`,
        );
        expect(out.code, out.stderr).toBe(4);
        expect(await readFile(join(web, 'index.html'), 'utf8')).toBe('broken\n');
        expect(out.stderr).toContain(
          `ROLLBACK FAILED: Volume "web": a filesystem is mounted under the volume (${cache})`,
        );
        expect(out.stderr).toContain('Unmount it');
        expect(out.stderr).toMatch(/snapguard recover web \S+ --files PATH/);
        expect(out.stderr).not.toContain('mode: files');
        const operation = /operation (op-\S+)\)/.exec(out.stderr)![1]!;
        expect(out.stderr).toContain(`once that is fixed: snapguard recover --operation-id ${operation}`);
        const json = await wrap(
          ['--operation', 'mounts-cache-json', '--json'],
          `echo broken-again > ${join(web, 'index.html')}; exit 5`,
        );
        expect(json.code, json.stderr).toBe(5);
        const result = JSON.parse(json.stdout) as { rollbackError: { code: string; hint: string } };
        expect(result.rollbackError.code).toBe('PRECONDITION_FAILED');
        expect(result.rollbackError.hint).toMatch(/snapguard recover web \S+ --files PATH/);
        expect(result.rollbackError.hint).not.toContain('mode: files');
      } finally {
        await exec('umount', [cache]).catch(() => undefined);
      }
    });

    it('a volume whose path is a mount point: recover --files . or the remount procedure, not mode: files', async () => {
      const inner = await box.subvolume('mounted');
      await writeFile(join(inner, 'app.conf'), 'good\n');
      const mnt = join(box.dir, 'mnt', 'mounted');
      await mkdir(mnt, { recursive: true });
      await exec('mount', ['--bind', inner, mnt]);
      try {
        const mountedConfig = await box.writeConfig(
          {
            volumes: {
              mounted: {
                backend: 'btrfs',
                path: mnt,
                snapshotDir: join(box.pool.mountPoint, '.snapshots', 'mounted'),
              },
            },
          },
          'mounted.yaml',
        );
        const out = await runBuiltCli(
          [
            'wrap',
            '--config',
            mountedConfig,
            '--volume',
            'mounted',
            '--auto-rollback',
            '--operation',
            'edit-conf',
            '--',
            '/bin/sh',
            '-c',
            `echo broken > ${join(mnt, 'app.conf')}; exit 7`,
          ],
          { env: { SNAPGUARD_CONFIG: '' }, timeoutMs: 60_000 },
        );
        expect(out.code, out.stderr).toBe(7);
        expect(out.stderr).toContain('ROLLBACK FAILED: Volume "mounted" cannot be rolled back in place');
        const snapshot = /snapshots: (\S+) \(operation/.exec(out.stderr)![1]!;
        expect(out.stderr).toContain(`\`snapguard recover mounted ${snapshot} --files .\``);
        expect(out.stderr).toContain('docs/recovery.md');
        expect(out.stderr).not.toContain('mode: files');
        // The way the hint names works: the whole tree in files mode.
        const files = await runBuiltCli(
          ['recover', 'mounted', snapshot, '--files', '.', '--yes', '--config', mountedConfig],
          { env: { SNAPGUARD_CONFIG: '' }, timeoutMs: 60_000 },
        );
        expect(files.code, files.stderr).toBe(0);
        expect(await readFile(join(mnt, 'app.conf'), 'utf8')).toBe('good\n');
      } finally {
        await exec('umount', [mnt]).catch(() => exec('umount', ['-l', mnt]));
      }
    });

    it('a volume the failing command removed: snapguard doctor, not health_check', async () => {
      const out = await wrap(
        ['--operation', 'removes-volume'],
        `btrfs subvolume delete ${web} >/dev/null; exit 6`,
      );
      expect(out.code, out.stderr).toBe(6);
      expect(out.stderr).toContain(`ROLLBACK FAILED: The path of volume "web" (${web}) does not exist.`);
      expect(out.stderr).toContain('run `snapguard doctor`');
      expect(out.stderr).not.toContain('health_check');
    });
  },
);
