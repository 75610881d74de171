import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
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
      configFile = join(box.dir, 'snapguard.yaml');
      await writeFile(
        configFile,
        stringify({
          contextDir: join(box.dir, 'context'),
          stateDir: join(box.dir, 'state'),
          volumes: { web: { backend: 'btrfs', path: web } },
        }),
      );
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
