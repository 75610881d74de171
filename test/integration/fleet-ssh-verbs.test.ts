import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { authorizedKeyLine } from '../../src/core/fleet.js';
import { silentLogger } from '../../src/core/logger.js';
import { HostSessions } from '../../src/mcp/transports/hosts.js';
import { createLoopBtrfs, type LoopBtrfs } from '../../src/system/loop.js';
import { exec } from '../helpers/btrfs.js';
import { cliPath, requireBuiltCli, runBuiltCli } from '../helpers/cli.js';
import { connect, textOf } from '../helpers/mcp.js';
import { processGone } from '../helpers/process.js';
import {
  createSshLab,
  makeKey,
  pidsMentioning,
  requireOpenSsh,
  type SshHost,
  type SshKey,
  type SshLab,
} from '../helpers/sshd.js';

const run = requireOpenSsh();

type Data = Record<string, unknown>;

/**
 * The verbs run from a controller against one host "nas" (its own sshd on 127.0.0.5, its own btrfs
 * pool and snapguard config). A second key on the same sshd reaches the same volume through a
 * second config of the host that says readOnly: true.
 */
describe.runIf(run)(
  '--host on wrap, plan, init, units and demo; a host read-only by its own config; sessions restarted in the background (real OpenSSH)',
  () => {
    let dir: string;
    let lab: SshLab;
    let sshd: SshHost;
    let key: SshKey;
    let roKey: SshKey;
    let pool: LoopBtrfs;
    let volume: string;
    let hostConfig: string;
    let controllerFile: string;
    const snapguard = [process.execPath, cliPath];
    const cli = (args: string[], cwd?: string) => runBuiltCli([...args, '--config', controllerFile], { cwd });
    // wrap's own words come after --: the configuration goes before them.
    const wrap = (args: string[], command: string[]) =>
      runBuiltCli(['wrap', '--config', controllerFile, ...args, '--', ...command]);
    const data = () => readFile(join(volume, 'data.txt'), 'utf8');

    beforeAll(async () => {
      requireBuiltCli();
      dir = await mkdtemp(join(tmpdir(), 'snapguard-fleet-verbs-'));
      lab = await createSshLab(dir);
      key = await makeKey(join(dir, 'controller-key'));
      roKey = await makeKey(join(dir, 'read-only-key'));
      const hostDir = join(dir, 'nas');
      await mkdir(hostDir, { recursive: true });
      pool = await createLoopBtrfs(exec, hostDir, 128 * 1024 * 1024);
      volume = join(pool.mountPoint, 'app');
      await exec('btrfs', ['subvolume', 'create', volume]);
      await writeFile(join(volume, 'data.txt'), 'v1\n');
      const own = (readOnly: boolean) => ({
        host: 'nas-itself',
        confirm: 'token',
        readOnly,
        stateDir: join(hostDir, readOnly ? 'state-ro' : 'state'),
        contextDir: join(hostDir, readOnly ? 'context-ro' : 'context'),
        volumes: { app: { backend: 'btrfs', path: volume, minInterval: '0s' } },
      });
      hostConfig = join(hostDir, 'snapguard.yaml');
      const readOnlyConfig = join(hostDir, 'snapguard-ro.yaml');
      await writeFile(hostConfig, stringify(own(false)));
      await writeFile(readOnlyConfig, stringify(own(true)));
      sshd = await lab.host('nas', '127.0.0.5', [
        authorizedKeyLine(snapguard, hostConfig, key.publicKey),
        authorizedKeyLine(snapguard, readOnlyConfig, roKey.publicKey),
      ]);
      controllerFile = join(dir, 'controller.yaml');
      await writeFile(
        controllerFile,
        stringify({
          host: 'controller',
          stateDir: join(dir, 'controller-state'),
          contextDir: join(dir, 'controller-context'),
          hosts: { nas: { command: sshd.ssh(key) }, 'nas-ro': { command: sshd.ssh(roKey) } },
        }),
      );
    }, 120_000);

    afterAll(async () => {
      await lab?.cleanup();
      await pool?.cleanup().catch(() => undefined);
      if (dir) await rm(dir, { recursive: true, force: true });
    }, 120_000);

    it('wrap --host: snapshots on the host, runs the command here; a failure with --auto-rollback rolls the host back through its gate, a success keeps the change', async () => {
      const failing = await wrap(
        ['--host', 'nas', '--volume', 'app', '--operation', 'deploy-bad', '--auto-rollback', '--json'],
        ['sh', '-c', `echo broken > ${join(volume, 'data.txt')}; exit 3`],
      );
      expect(failing.code, failing.stderr).toBe(3);
      const failed = JSON.parse(failing.stdout) as Data & {
        rollback?: { status: string };
        snapshots: { name: string }[];
      };
      expect(failed.host).toBe('nas');
      expect(failed.outcome).toBe('failed');
      expect(failed.rollback?.status).toBe('recovered');
      expect(await data()).toBe('v1\n');
      // The snapshot, the outcome and the recovery are the host's: its own list says so.
      const listed = await cli(['snapshot', 'list', 'app', '--host', 'nas', '--json']);
      const snapshots = (JSON.parse(listed.stdout) as { snapshots: { name: string; outcome?: string }[] })
        .snapshots;
      expect(snapshots.find((s) => s.name === failed.snapshots[0]?.name)?.outcome).toBe('failed');

      const kept = await wrap(
        ['--host', 'nas', '--volume', 'app', '--operation', 'deploy-good', '--auto-rollback'],
        ['sh', '-c', `echo v2 > ${join(volume, 'data.txt')}`],
      );
      expect(kept.code, kept.stderr).toBe(0);
      expect(kept.stderr).toContain('host nas');
      expect(await data()).toBe('v2\n');

      // Without --auto-rollback a failure keeps the change and says how to undo it on that host.
      const reported = await wrap(
        ['--host', 'nas', '--volume', 'app', '--operation', 'deploy-kept'],
        ['sh', '-c', `echo v3 > ${join(volume, 'data.txt')}; exit 4`],
      );
      expect(reported.code).toBe(4);
      expect(reported.stderr).toMatch(/to undo: snapguard recover --operation-id \S+ --host nas/);
      expect(await data()).toBe('v3\n');
      await writeFile(join(volume, 'data.txt'), 'v1\n');

      // --dry-run: the host says what it would snapshot; nothing runs, nothing is taken.
      const before = (await exec('btrfs', ['subvolume', 'list', '-o', pool.mountPoint])).stdout;
      const dry = await wrap(
        ['--host', 'nas', '--volume', 'app', '--operation', 'deploy-dry', '--force', '--dry-run', '--json'],
        ['sh', '-c', `echo dry > ${join(volume, 'data.txt')}`],
      );
      expect(dry.code, dry.stderr).toBe(0);
      const plan = JSON.parse(dry.stdout) as { host: string; snapshots: { volume: string }[] };
      expect(plan.host).toBe('nas');
      expect(plan.snapshots.map((s) => s.volume)).toEqual(['app']);
      expect(await data()).toBe('v1\n');
      expect((await exec('btrfs', ['subvolume', 'list', '-o', pool.mountPoint])).stdout).toBe(before);

      // A host that is not configured: refused before anything, the command is not run.
      const marker = join(dir, 'ran');
      const unknown = await wrap(
        ['--host', 'nope', '--volume', 'app', '--operation', 'x'],
        ['touch', marker],
      );
      expect(unknown.code).toBe(3);
      expect(unknown.stderr).toContain('Use one of: local, nas, nas-ro');
      expect(existsSync(marker)).toBe(false);
    }, 180_000);

    it("plan --host asks the host's plan_strategy: the plan is made there (the host's name, its defaults)", async () => {
      const planned = await cli([
        'plan',
        '--host',
        'nas',
        '--host-type',
        'server',
        '--volume',
        '/srv/photos:10G',
        '--disk-size',
        '100G',
        '--disk-free',
        '50G',
        '--no-verify',
        '--json',
      ]);
      expect(planned.code, planned.stderr).toBeLessThanOrEqual(1);
      const plan = JSON.parse(planned.stdout) as {
        host: string;
        config: string;
        units: { content: string }[];
      };
      expect(plan.host).toBe('nas');
      expect(plan.config).toContain('fragment for nas-itself');
      // The units start the host's snapguard, not the one running here.
      expect(plan.units.length).toBeGreaterThan(0);
      expect(plan.units.some((u) => u.content.includes(cliPath))).toBe(false);
      const human = await cli([
        'plan',
        '--host',
        'nas',
        '--host-type',
        'laptop',
        '--volume',
        '/home:10G',
        '--disk-size',
        '100G',
        '--disk-free',
        '50G',
        '--no-verify',
      ]);
      expect(human.stdout).toMatch(/^host nas:\nVOLUME +PATH/);
    }, 120_000);

    it('init, units and demo refuse --host with the command to run on the host itself, exit 2, and change nothing', async () => {
      const cwd = join(dir, 'cwd');
      await mkdir(cwd, { recursive: true });
      // init and units: their --config names a file on the host; the hosts come from the configuration
      // found without it ($SNAPGUARD_CONFIG here).
      const env = { SNAPGUARD_CONFIG: controllerFile };
      const init = await runBuiltCli(['init', '--host', 'nas', '--under', '/srv'], { cwd, env });
      expect(init.code).toBe(2);
      expect(init.stderr).toContain('init writes the configuration of the host it runs on');
      expect(init.stderr).toContain(`ssh -p ${sshd.port} root@127.0.0.5 snapguard init --under /srv`);
      const unitsDir = join(dir, 'units-out');
      const units = await runBuiltCli(['units', '--host', 'nas', '--write', unitsDir], { cwd, env });
      expect(units.code).toBe(2);
      expect(units.stderr).toContain(`root@127.0.0.5 snapguard units --write ${unitsDir}`);
      expect(existsSync(unitsDir)).toBe(false);
      const demo = await cli(['demo', '--host', 'nas', '--keep'], cwd);
      expect(demo.code).toBe(2);
      expect(demo.stderr).toContain('root@127.0.0.5 snapguard demo --keep`');
      expect(await readdir(cwd)).toEqual([]);
      // This host named as the host: the verb runs here as always.
      const here = await runBuiltCli(['units', '--host', 'local']);
      expect(here.code, here.stderr).toBe(0);
      expect(here.stdout).toContain('snapguard-health');
    }, 60_000);

    it("a host whose own config says readOnly refuses a destructive call through the controller with the host's error, host added", async () => {
      const before = (await exec('btrfs', ['subvolume', 'list', '-o', pool.mountPoint])).stdout;
      const controller = await connect(
        createDeps(
          buildConfig(
            {
              host: 'controller',
              stateDir: join(dir, 'controller-state'),
              contextDir: join(dir, 'controller-context'),
              hosts: { 'nas-ro': { command: sshd.ssh(roKey) } },
            },
            dir,
          ),
          { logger: silentLogger(), exec },
        ),
      );
      try {
        const refused = await controller.call('create_snapshot', { host: 'nas-ro', volumes: ['app'] });
        expect(refused.isError).toBe(true);
        expect(textOf(refused)).toMatch(/^\[READ_ONLY_MODE\] host nas-ro: /);
        const read = await controller.call('list_snapshots', { host: 'nas-ro' });
        expect(read.isError, textOf(read)).toBeFalsy();
        expect((read.structuredContent as Data).host).toBe('nas-ro');
      } finally {
        await controller.close();
      }
      const fromCli = await cli(['snapshot', 'create', 'app', '--host', 'nas-ro']);
      expect(fromCli.code).toBe(3);
      expect(fromCli.stderr).toMatch(/^snapguard: host nas-ro: .*read-only/);
      expect((await exec('btrfs', ['subvolume', 'list', '-o', pool.mountPoint])).stdout).toBe(before);
    }, 120_000);

    it('a session that died is started again in the background, so the next call finds it ready; close() stops the retries', async () => {
      const config = buildConfig(
        {
          host: 'controller',
          stateDir: join(dir, 'controller-state'),
          contextDir: join(dir, 'controller-context'),
          hosts: { nas: { command: sshd.ssh(key) } },
        },
        dir,
      );
      const sessions = new HostSessions(config.hosts);
      const poll = async (ok: () => boolean) => {
        for (let i = 0; i < 400 && !ok(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
        return ok();
      };
      const remote = () =>
        pidsMentioning(hostConfig).filter((pid) => {
          return readFileSyncSafe(pid).includes(cliPath);
        });
      try {
        const first = await sessions.callTool('nas', 'list_snapshots', {});
        expect(first.isError).toBeFalsy();
        expect(sessions.connections('nas')).toBe(1);
        const pids = remote();
        expect(pids.length).toBeGreaterThan(0);
        for (const pid of pids) process.kill(pid, 'SIGKILL');
        for (const pid of pids) await processGone(pid);
        // Nothing calls the host: the session comes back on its own.
        expect(await poll(() => sessions.connections('nas') === 2 && sessions.ready('nas'))).toBe(true);
        const next = await sessions.callTool('nas', 'list_snapshots', {});
        expect(next.isError).toBeFalsy();
        expect(sessions.connections('nas')).toBe(2);

        // The host's sshd down: the restarts fail and keep being retried until close().
        await sshd.stop();
        for (const pid of remote()) process.kill(pid, 'SIGKILL');
        expect(await poll(() => sessions.connections('nas') >= 4)).toBe(true);
        expect(sessions.ready('nas')).toBe(false);
        expect(sessions.retrying()).toEqual(['nas']);
      } finally {
        await sessions.close();
        await sshd.start();
      }
      expect(sessions.retrying()).toEqual([]);
      expect(pidsMentioning(lab.knownHosts)).toEqual([]);
    }, 120_000);
  },
);

function readFileSyncSafe(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}
