import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import type { Exec } from '../../src/system/exec.js';
import { requireBuiltCli, runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';
import { connect, textOf } from '../helpers/mcp.js';
import { createZfsSandbox, exec, type ZfsSandbox } from '../helpers/zfs.js';

const enabled = requireComponents(['zfs-fuse', 'zfs', 'zpool']);

/**
 * A snapshot that another program (a second snapguard, sanoid's prune, a person) destroys while a
 * recovery is being planned: after snapguard found it, before the zfs backend reads or lists it.
 * The other program is a `zfs` wrapper on PATH that runs the real zfs and destroys the snapshot
 * once, at the moment named by VANISH_AT: before the read clone is made (`clone`), or right after
 * the read clone is gone (`after-read`).
 */
const WRAPPER = `#!/bin/sh
real=/usr/sbin/zfs
if [ -n "$VANISH" ] && [ ! -e "$VANISH_MARK" ]; then
  if [ "$VANISH_AT" = clone ] && [ "$1" = clone ]; then
    touch "$VANISH_MARK"; "$real" destroy "$VANISH" || exit 99
  fi
  if [ "$VANISH_AT" = after-read ] && [ "$1" = destroy ]; then
    case "$*" in *snapguard-read-*)
      "$real" "$@" || exit $?
      touch "$VANISH_MARK"; "$real" destroy "$VANISH" || exit 99
      exit 0 ;;
    esac
  fi
fi
exec "$real" "$@"
`;

describe.runIf(enabled)('zfs SNAPSHOT_NOT_FOUND in the words of each interface (zfs-fuse)', () => {
  let sandbox: ZfsSandbox;
  let bin: string;
  let counter = 0;

  beforeAll(async () => {
    requireBuiltCli();
    sandbox = await createZfsSandbox('hints', 128);
    bin = join(sandbox.dir, 'vanish-bin');
    await mkdir(bin);
    await writeFile(join(bin, 'zfs'), WRAPPER);
    await chmod(join(bin, 'zfs'), 0o755);
  }, 120_000);
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  /** A zfs volume with one snapguard snapshot (then a change) and its config file. */
  async function volume() {
    const id = `v${++counter}`;
    const { dataset, mountPoint } = await sandbox.dataset(id);
    await writeFile(join(mountPoint, 'conf.yml'), 'good: true\n');
    const input: ConfigInput = {
      confirm: 'never',
      volumes: { [id]: { backend: 'zfs', dataset, path: mountPoint } },
    };
    const deps = sandbox.deps(input);
    const name = (await createSnapshots(deps, { volumes: [id], type: 'manual' })).created[0]!.name;
    await writeFile(join(mountPoint, 'conf.yml'), 'good: false\n');
    const configFile = await sandbox.writeConfig({ host: 'test-host', ...input }, `${id}.yaml`);
    return { id, dataset, name, mountPoint, configFile, input };
  }

  const vanishing = (v: { id: string; dataset: string; name: string }, at: string) => ({
    VANISH: `${v.dataset}@${v.name}`,
    VANISH_AT: at,
    VANISH_MARK: join(sandbox.dir, `${v.id}.vanished`),
  });
  /** The exec of the in-process server: zfs is the wrapper, with its environment. */
  const viaWrapper =
    (env: Record<string, string>): Exec =>
    (command, args, options = {}) =>
      exec(command === 'zfs' ? join(bin, 'zfs') : command, args, {
        ...options,
        env: { ...options.env, ...env },
      });
  const cli = (configFile: string, args: string[], env: Record<string, string> = {}) =>
    runBuiltCli([...args, '--config', configFile], { env: { SNAPGUARD_CONFIG: '', ...env } });

  for (const [at, where] of [
    ['clone', 'before its read clone is made'],
    ['after-read', 'after the change summary read it'],
  ] as const) {
    it(`a snapshot destroyed ${where}: list_snapshots over MCP, snapguard snapshot list on the CLI`, async () => {
      const overMcp = await volume();
      const mcp = await connect(sandbox.deps(overMcp.input, { exec: viaWrapper(vanishing(overMcp, at)) }));
      let text: string;
      try {
        text = textOf(
          await mcp.call('recover', {
            volume: overMcp.id,
            snapshot: overMcp.name,
            mode: 'rollback',
            dryRun: true,
          }),
        );
      } finally {
        await mcp.close();
      }
      expect(text).toContain(
        `[SNAPSHOT_NOT_FOUND] Snapshot ${overMcp.dataset}@${overMcp.name} does not exist.`,
      );
      expect(text).toContain(
        `What to do: Call list_snapshots with volume "${overMcp.id}" for the names that exist.`,
      );
      expect(text).not.toContain('snapguard ');

      const overCli = await volume();
      const run = await cli(overCli.configFile, ['recover', overCli.id, overCli.name, '--dry-run'], {
        ...vanishing(overCli, at),
        PATH: `${bin}:${process.env.PATH ?? ''}`,
      });
      expect(run.code, run.stderr).toBe(3);
      expect(run.stderr).toContain(`Snapshot ${overCli.dataset}@${overCli.name} does not exist.`);
      expect(run.stderr).toContain(
        `what to do: Run \`snapguard snapshot list ${overCli.id}\` for the names that exist.`,
      );
      expect(run.stderr).not.toContain('list_snapshots');
    });
  }

  it('a snapshot folder that does not hold the snapshot (.zfs/snapshot as a plain folder, as zfs-fuse has none): list_snapshots over MCP, snapguard snapshot list on the CLI', async () => {
    const v = await volume();
    await mkdir(join(v.mountPoint, '.zfs', 'snapshot'), { recursive: true });
    try {
      const mcp = await connect(sandbox.deps(v.input));
      let text: string;
      try {
        text = textOf(
          await mcp.call('recover', { volume: v.id, snapshot: v.name, mode: 'rollback', dryRun: true }),
        );
      } finally {
        await mcp.close();
      }
      expect(text).toContain(
        `[SNAPSHOT_NOT_FOUND] ${join(v.mountPoint, '.zfs', 'snapshot', v.name)} is not readable`,
      );
      expect(text).toContain(
        `What to do: Call list_snapshots with volume "${v.id}" for the names that exist.`,
      );
      expect(text).not.toContain('snapguard ');
      const run = await cli(v.configFile, ['recover', v.id, v.name, '--dry-run']);
      expect(run.code, run.stderr).toBe(3);
      expect(run.stderr).toContain('is not readable');
      expect(run.stderr).toContain(
        `what to do: Run \`snapguard snapshot list ${v.id}\` for the names that exist.`,
      );
      expect(run.stderr).not.toContain('list_snapshots');
    } finally {
      await rm(join(v.mountPoint, '.zfs'), { recursive: true, force: true });
    }
  });
});
