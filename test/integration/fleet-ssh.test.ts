import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { authorizedKeyLine } from '../../src/core/fleet.js';
import { silentLogger } from '../../src/core/logger.js';
import { createLoopBtrfs, type LoopBtrfs } from '../../src/system/loop.js';
import { exec } from '../helpers/btrfs.js';
import { cliPath, requireBuiltCli, runBuiltCli } from '../helpers/cli.js';
import { connect, textOf, type Connected } from '../helpers/mcp.js';
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

interface LabHost {
  name: string;
  sshd: SshHost;
  pool: LoopBtrfs;
  volume: string;
  configFile: string;
}

type Data = Record<string, unknown>;

describe.runIf(run)('several hosts over real OpenSSH (sshd on 127.0.0.2-4, one btrfs pool per host)', () => {
  let dir: string;
  let lab: SshLab;
  let key: SshKey;
  let plainKey: SshKey;
  const hosts: Record<string, LabHost> = {};
  let controller: Connected;
  let controllerFile: string;
  const snapguard = [process.execPath, cliPath];

  async function makeHost(name: string, address: string, folder: string): Promise<LabHost> {
    const hostDir = join(dir, folder);
    await mkdir(hostDir, { recursive: true });
    const pool = await createLoopBtrfs(exec, hostDir, 128 * 1024 * 1024);
    const volume = join(pool.mountPoint, 'app');
    await exec('btrfs', ['subvolume', 'create', volume]);
    await writeFile(join(volume, 'data.txt'), `${name} v1\n`);
    const configFile = join(hostDir, 'snapguard.yaml');
    await writeFile(
      configFile,
      stringify({
        host: `${name}-itself`,
        confirm: 'token',
        stateDir: join(hostDir, 'state'),
        contextDir: join(hostDir, 'context'),
        volumes: {
          app: {
            backend: 'btrfs',
            path: volume,
            // Host c keeps only its newest snapshot, so prune --host has something to delete there.
            ...(name === 'c' ? { retention: { preserveMin: 'latest', preserve: 'no' } } : {}),
          },
        },
        orchestrate: {
          stages: [
            {
              name: 'slow',
              timeout: '2m',
              // Marked with the lab's folder so the test can find (and end) it by pid.
              jobs: [
                { kind: 'command', name: 'wait', argv: ['sh', '-c', 'sleep 20; true', join(dir, 'marker')] },
              ],
            },
          ],
        },
      }),
    );
    const lines = [authorizedKeyLine(snapguard, configFile, key.publicKey)];
    // Host b also lets a second key in without a forced command: the `[ssh, host, snapguard, mcp]` form.
    if (name === 'b') lines.push(`restrict ${plainKey.publicKey}`);
    const sshd = await lab.host(name, address, lines);
    return { name, sshd, pool, volume, configFile };
  }

  beforeAll(async () => {
    requireBuiltCli();
    dir = await mkdtemp(join(tmpdir(), 'snapguard-fleet-'));
    lab = await createSshLab(dir);
    key = await makeKey(join(dir, 'controller-key'));
    plainKey = await makeKey(join(dir, 'plain-key'));
    hosts.a = await makeHost('a', '127.0.0.2', 'host-a');
    // A folder name with spaces, quotes and shell metacharacters: it must reach the remote intact.
    hosts.b = await makeHost('b', '127.0.0.3', `host b; $(touch ${join(dir, 'pwned')}) it's "x"`);
    hosts.c = await makeHost('c', '127.0.0.4', 'host-c');
    const b = hosts.b as LabHost;
    const config = buildConfig(
      {
        host: 'controller',
        stateDir: join(dir, 'controller-state'),
        contextDir: join(dir, 'controller-context'),
        hosts: {
          a: { command: (hosts.a as LabHost).sshd.ssh(key) },
          b: { command: b.sshd.ssh(key) },
          'b-plain': { command: b.sshd.ssh(plainKey, [...snapguard, 'mcp', '--config', b.configFile]) },
          c: { command: (hosts.c as LabHost).sshd.ssh(key) },
          'a-ro': { command: (hosts.a as LabHost).sshd.ssh(key), readOnly: true },
        },
      },
      dir,
    );
    controller = await connect(createDeps(config, { logger: silentLogger(), exec }));
    controllerFile = join(dir, 'controller.yaml');
    await writeFile(
      controllerFile,
      stringify({
        host: 'controller',
        stateDir: join(dir, 'controller-state'),
        contextDir: join(dir, 'controller-context'),
        hosts: config.hosts,
      }),
    );
  }, 120_000);

  afterAll(async () => {
    await controller?.close().catch(() => undefined);
    await lab?.cleanup();
    for (const pid of pidsMentioning(join(dir ?? '/nonexistent', 'marker'))) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        process.kill(pid, 'SIGKILL');
      }
      await processGone(pid);
    }
    for (const host of Object.values(hosts)) await host.pool.cleanup().catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  const call = async (name: string, args: Record<string, unknown>) => {
    const result = await controller.call(name, args);
    return { result, text: textOf(result), data: (result.structuredContent ?? {}) as Data };
  };

  it('offers host on every tool and refuses an unknown host with the list of hosts', async () => {
    const { tools } = await controller.client.listTools();
    for (const tool of tools) expect(Object.keys(tool.inputSchema.properties ?? {})).toContain('host');
    const unknown = await call('list_snapshots', { host: 'nope' });
    expect(unknown.result.isError).toBe(true);
    expect(unknown.text).toMatch(/^\[UNKNOWN_HOST\] Host "nope" is not configured/);
    expect(unknown.text).toContain('local, a, b, b-plain, c, a-ro');
  });

  it('passes a call to one host and its answer comes back with host added', async () => {
    const made = await call('create_snapshot', { host: 'a', volumes: ['app'], operation: 'fleet-test' });
    expect(made.result.isError).toBeFalsy();
    expect(made.data.host).toBe('a');
    const listed = await call('list_snapshots', { host: 'a', volume: 'app' });
    expect(listed.data.host).toBe('a');
    const snapshots = listed.data.snapshots as { name: string; path: string }[];
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]?.path.startsWith((hosts.a as LabHost).pool.mountPoint)).toBe(true);
    // The host's own errors come back as it said them, with the host named.
    const missing = await call('list_snapshots', { host: 'a', volume: 'nothere' });
    expect(missing.text).toMatch(/^\[UNKNOWN_VOLUME\] host a: Volume "nothere" is not configured/);
  });

  it('fans list_snapshots and health_check out over every host; a stopped sshd is listed in unreachable', async () => {
    await call('create_snapshot', { host: 'b', volumes: ['app'] });
    await (hosts.c as LabHost).sshd.stop();
    try {
      const listed = await call('list_snapshots', { host: '*' });
      expect(listed.result.isError).toBeFalsy();
      const byHost = (listed.data.snapshots as { host: string }[]).map((s) => s.host);
      expect(new Set(byHost)).toEqual(new Set(['a', 'b', 'b-plain', 'a-ro']));
      const unreachable = listed.data.unreachable as { host: string; error: string; hint: string }[];
      expect(unreachable.map((u) => u.host)).toEqual(['c']);
      expect(unreachable[0]?.error).toMatch(/Host "c" cannot be reached: .*(refused|Connection)/i);
      expect(unreachable[0]?.hint).toContain('snapguard doctor --host c');

      const health = await call('health_check', { host: '*' });
      expect(health.result.isError).toBeFalsy();
      expect(['WARNING', 'CRITICAL']).toContain(health.data.overall);
      expect((health.data.unreachable as { host: string }[]).map((u) => u.host)).toEqual(['c']);
      const volumes = health.data.volumes as { host: string; volume: string }[];
      expect(
        volumes
          .filter((v) => v.volume === 'app')
          .map((v) => v.host)
          .sort(),
      ).toEqual(['a', 'a-ro', 'b', 'b-plain']);
      const findings = health.data.findings as { host: string; code: string }[];
      expect(findings.every((f) => typeof f.host === 'string')).toBe(true);
      expect(findings.some((f) => f.host === 'c' && f.code === 'HOST_UNREACHABLE')).toBe(true);

      // orchestrate over several hosts: the worst exit code wins, a host not reached counts as 2.
      const dry = await call('orchestrate', { host: ['a', 'b'], dryRun: true });
      expect(dry.data.exitCode).toBe(0);
      expect((dry.data.hosts as { host: string }[]).map((h) => h.host)).toEqual(['a', 'b']);
      const withDown = await call('orchestrate', { host: '*', dryRun: true });
      expect(withDown.data.exitCode).toBe(2);
      expect((withDown.data.unreachable as { host: string }[]).map((u) => u.host)).toEqual(['c']);

      // The CLI asks the same hosts through the same sessions.
      const fleet = await runBuiltCli(['fleet', '--json', '--config', controllerFile]);
      const fleetHosts = (
        JSON.parse(fleet.stdout) as { hosts: { host: string; reachable: boolean; volumes: unknown[] }[] }
      ).hosts;
      expect(fleetHosts.find((h) => h.host === 'c')?.reachable).toBe(false);
      expect(fleetHosts.find((h) => h.host === 'a')?.reachable).toBe(true);
      expect(fleetHosts.find((h) => h.host === 'a')?.volumes).toHaveLength(1);
      expect(fleet.code).toBeGreaterThanOrEqual(1);
      // The report leaves the host that did not answer out, says so, and exits 1.
      const report = await runBuiltCli(['report', '--json', '--config', controllerFile]);
      expect(report.code).toBe(1);
      expect((JSON.parse(report.stdout) as { unreachable: string[] }).unreachable).toEqual(['c']);
      expect(report.stderr).toContain('warning: host c left out');
      const down = await runBuiltCli(['health', '--host', 'c', '--config', controllerFile]);
      expect(down.code).toBe(2);
      expect(down.stderr).toMatch(/Host "c" cannot be reached/);

      // A single call to the stopped host says so clearly instead of hanging.
      const one = await call('health_check', { host: 'c' });
      expect(one.text).toMatch(/^\[HOST_UNREACHABLE\]/);
    } finally {
      await (hosts.c as LabHost).sshd.start();
    }
  }, 120_000);

  it('a host that was down answers again once its sshd is back (after the back-off of the failed attempts)', async () => {
    let last = await call('list_snapshots', { host: 'c' });
    for (let i = 0; i < 60 && last.result.isError; i++) {
      expect(last.text).toMatch(/^\[HOST_UNREACHABLE\]/);
      await new Promise((resolve) => setTimeout(resolve, 250));
      last = await call('list_snapshots', { host: 'c' });
    }
    expect(last.result.isError, last.text).toBeFalsy();
    expect(last.data.host).toBe('c');
  }, 60_000);

  it('a host killed in the middle of a call: the call errors clearly, the next call reconnects', async () => {
    const a = hosts.a as LabHost;
    // The session to a is warm; orchestrate runs a 20 s job there.
    const pending = call('orchestrate', { host: 'a' });
    for (let i = 0; i < 200 && pidsMentioning(join(dir, 'marker')).length === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const remote = pidsMentioning(a.configFile).filter(
      (pid) => existsSync(`/proc/${pid}`) && readFileSyncSafe(`/proc/${pid}/cmdline`).includes(cliPath),
    );
    expect(remote.length).toBeGreaterThan(0);
    for (const pid of remote) process.kill(pid, 'SIGKILL');
    const failed = await pending;
    expect(failed.result.isError).toBe(true);
    expect(failed.text).toMatch(/^\[HOST_UNREACHABLE\] The connection to host "a" ended during orchestrate/);
    expect(failed.text).toContain('What to do:');
    const again = await call('list_snapshots', { host: 'a', volume: 'app' });
    expect(again.result.isError).toBeFalsy();
    expect((again.data.snapshots as unknown[]).length).toBeGreaterThan(0);
  }, 120_000);

  it('a gated recover on one host: plan and token from that host, confirmed there, rolled back there only; its token is refused on another host', async () => {
    const a = hosts.a as LabHost;
    const b = hosts.b as LabHost;
    const listed = await call('list_snapshots', { host: 'a', volume: 'app' });
    const snapshot = (listed.data.snapshots as { name: string }[])[0]?.name as string;
    // Host b holds a snapshot of the same name, so only the token tells the hosts apart.
    await exec('btrfs', [
      'subvolume',
      'snapshot',
      '-r',
      b.volume,
      join(b.pool.mountPoint, '.snapshots', 'app', snapshot),
    ]).catch(async () => {
      await mkdir(join(b.pool.mountPoint, '.snapshots', 'app'), { recursive: true });
      await exec('btrfs', [
        'subvolume',
        'snapshot',
        '-r',
        b.volume,
        join(b.pool.mountPoint, '.snapshots', 'app', snapshot),
      ]);
    });
    await writeFile(join(a.volume, 'data.txt'), 'a v2 (bad change)\n');
    await writeFile(join(b.volume, 'data.txt'), 'b v2 (keep)\n');

    const args = { volume: 'app', snapshot, reason: 'bad change on a' };
    const plan = await call('recover', { host: 'a', ...args });
    expect(plan.data.status).toBe('confirmation_required');
    expect(plan.data.host).toBe('a');
    const token = plan.data.confirmationToken as string;
    expect(typeof token).toBe('string');

    const elsewhere = await call('recover', { host: 'b', ...args, confirmationToken: token });
    expect(elsewhere.result.isError).toBe(true);
    expect(elsewhere.text).toMatch(/^\[CONFIRMATION_INVALID\] host b:/);
    expect(await readFile(join(b.volume, 'data.txt'), 'utf8')).toBe('b v2 (keep)\n');
    expect(await readFile(join(a.volume, 'data.txt'), 'utf8')).toBe('a v2 (bad change)\n');

    const done = await call('recover', { host: 'a', ...args, confirmationToken: token });
    expect(done.result.isError, done.text).toBeFalsy();
    expect(done.data.host).toBe('a');
    expect(await readFile(join(a.volume, 'data.txt'), 'utf8')).toBe('a v1\n');
    expect(await readFile(join(b.volume, 'data.txt'), 'utf8')).toBe('b v2 (keep)\n');
  }, 120_000);

  it('the CLI: --host on snapshot list and history, doctor --host "*", authorize-key', async () => {
    const listed = await runBuiltCli([
      'snapshot',
      'list',
      '--host',
      'a',
      '--json',
      '--config',
      controllerFile,
    ]);
    expect(listed.code, listed.stderr).toBe(0);
    const list = JSON.parse(listed.stdout) as {
      host: string;
      snapshots: { path: string; name: string; type?: string }[];
    };
    expect(list.host).toBe('a');
    expect(list.snapshots[0]?.path.startsWith((hosts.a as LabHost).pool.mountPoint)).toBe(true);
    const table = await runBuiltCli(['snapshot', 'list', '--host', 'a', '--config', controllerFile]);
    expect(table.stdout).toMatch(/^host a:\nVOLUME +NAME/);
    const planned = await runBuiltCli([
      'orchestrate',
      '--host',
      'b',
      '--dry-run',
      '--config',
      controllerFile,
    ]);
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stdout).toMatch(/^host b:\n[\s\S]*slow[\s\S]*Dry run: nothing was started\./);
    const history = await runBuiltCli(['history', '--host', 'a', '--json', '--config', controllerFile]);
    expect(history.code, history.stderr).toBe(0);
    expect((JSON.parse(history.stdout) as { snapshots: unknown[] }).snapshots.length).toBeGreaterThan(0);
    const unknown = await runBuiltCli(['health', '--host', 'nope', '--config', controllerFile]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('Use one of: local, a, b, b-plain, c, a-ro');

    const doctor = await runBuiltCli(['doctor', '--host', '*', '--json', '--config', controllerFile]);
    const checked = (
      JSON.parse(doctor.stdout) as { hosts: { host: string; connection: string; readOnly: boolean }[] }
    ).hosts;
    expect(checked.map((h) => [h.host, h.connection])).toEqual([
      ['a', 'ok'],
      ['b', 'ok'],
      ['b-plain', 'ok'],
      ['c', 'ok'],
      ['a-ro', 'ok'],
    ]);

    // recover --host: the plan and token come from host a, --yes confirms there.
    const a = hosts.a as LabHost;
    const manual = list.snapshots.find((s) => s.type === 'manual');
    await writeFile(join(a.volume, 'data.txt'), 'a v3 (bad change from the CLI)\n');
    const noTerminal = await runBuiltCli([
      'recover',
      'app',
      manual?.name as string,
      '--host',
      'a',
      '--config',
      controllerFile,
    ]);
    expect(noTerminal.code).toBe(3);
    expect(noTerminal.stderr).toContain('no terminal to ask on');
    expect(await readFile(join(a.volume, 'data.txt'), 'utf8')).toBe('a v3 (bad change from the CLI)\n');
    const recovered = await runBuiltCli([
      'recover',
      'app',
      manual?.name as string,
      '--host',
      'a',
      '--yes',
      '--json',
      '--config',
      controllerFile,
    ]);
    expect(recovered.code, recovered.stderr).toBe(0);
    expect((JSON.parse(recovered.stdout) as { status: string; host: string }).host).toBe('a');
    // The host's plan is shown without the token instructions meant for an assistant.
    expect(recovered.stderr).toContain('host a:');
    expect(recovered.stderr).not.toContain('confirmationToken');
    expect(await readFile(join(a.volume, 'data.txt'), 'utf8')).toBe('a v1\n');

    const line = await runBuiltCli([
      'authorize-key',
      '--key',
      `${key.file}.pub`,
      '--config',
      (hosts.b as LabHost).configFile,
    ]);
    expect(line.code, line.stderr).toBe(0);
    // The same line the lab's sshd for b was given, which the tests above connected through.
    expect(line.stdout.trim()).toBe(
      authorizedKeyLine(snapguard, (hosts.b as LabHost).configFile, key.publicKey),
    );
    expect(line.stdout).toMatch(/^command=".* mcp --config '.*host b; \$\(touch .*'",restrict ssh-ed25519 /);
  }, 120_000);

  it('a host marked readOnly offers only read-only tools through the controller', async () => {
    const refused = await call('create_snapshot', { host: 'a-ro', volumes: ['app'] });
    expect(refused.text).toMatch(/^\[READ_ONLY_MODE\] Host "a-ro" is read-only through this snapguard/);
    const allowed = await call('health_check', { host: 'a-ro' });
    expect(allowed.result.isError).toBeFalsy();
  });

  it('arguments with spaces and shell metacharacters arrive intact, with a forced command and with [ssh, host, snapguard, mcp]', async () => {
    const b = hosts.b as LabHost;
    const name = `it's a "file"; $(echo no) & *.txt`;
    await writeFile(join(b.volume, name), 'exact bytes\n');
    const made = await call('create_snapshot', { host: 'b', volumes: ['app'], force: true });
    const snapshot = ((made.data.created as { name: string }[])[0] as { name: string }).name;
    for (const host of ['b', 'b-plain']) {
      const read = await call('read_snapshot_file', { host, volume: 'app', snapshot, path: name });
      expect(read.result.isError, read.text).toBeFalsy();
      expect(read.data.host).toBe(host);
      expect(JSON.stringify(read.data)).toContain('exact bytes');
    }
    // The folder of b's config (spaces, quotes, $(...)) reached the remote as one word in both forms.
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
  }, 120_000);

  it("with an eliciting client the controller asks its user the host's plan, then confirms on the host: accept rolls back there, decline changes nothing", async () => {
    const c = hosts.c as LabHost;
    const made = await call('create_snapshot', { host: 'c', volumes: ['app'], force: true });
    expect(made.result.isError, made.text).toBeFalsy();
    const snapshot = ((made.data.created as { name: string }[])[0] as { name: string }).name;
    const controllerConfig = buildConfig(
      {
        host: 'controller',
        stateDir: join(dir, 'controller-state'),
        contextDir: join(dir, 'controller-context'),
        hosts: { c: { command: c.sshd.ssh(key) } },
      },
      dir,
    );
    expect(controllerConfig.confirm).toBe('elicit-or-token');
    const asked: string[] = [];
    let reply: 'accept' | 'decline' = 'decline';
    const eliciting = await connect(createDeps(controllerConfig, { logger: silentLogger(), exec }), {
      elicitation: {},
    });
    eliciting.client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(String(request.params.message));
      return reply === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' };
    });
    try {
      await writeFile(join(c.volume, 'data.txt'), 'c v2 (bad change)\n');
      const args = { host: 'c', volume: 'app', snapshot, reason: 'bad change on c' };
      const declined = await eliciting.call('recover', args);
      expect(declined.isError, textOf(declined)).toBeFalsy();
      const said = declined.structuredContent as Data;
      expect(said.status).toBe('declined');
      expect(said.host).toBe('c');
      expect(said.confirmationToken).toBeUndefined();
      expect(asked).toHaveLength(1);
      expect(asked[0]).toMatch(/^On host c:\n/);
      expect(asked[0]).toContain(snapshot);
      expect(asked[0]).not.toContain('confirmationToken');
      expect(await readFile(join(c.volume, 'data.txt'), 'utf8')).toBe('c v2 (bad change)\n');

      reply = 'accept';
      const done = await eliciting.call('recover', args);
      expect(done.isError, textOf(done)).toBeFalsy();
      expect((done.structuredContent as Data).status).toBe('recovered');
      expect((done.structuredContent as Data).host).toBe('c');
      expect(asked).toHaveLength(2);
      expect(await readFile(join(c.volume, 'data.txt'), 'utf8')).toBe('c v1\n');
    } finally {
      await eliciting.close();
    }
  }, 120_000);

  it("orchestrate over several hosts forwards each host's progress, named by its host, in one increasing sequence", async () => {
    const seen: { progress: number; message?: string }[] = [];
    const result = (await controller.client.callTool(
      { name: 'orchestrate', arguments: { host: ['a', 'c'] } },
      undefined,
      { onprogress: (progress) => seen.push(progress), timeout: 120_000 },
    )) as { structuredContent?: Data; isError?: boolean };
    expect(result.isError).toBeFalsy();
    expect((result.structuredContent?.hosts as { host: string }[]).map((h) => h.host)).toEqual(['a', 'c']);
    const messages = seen.map((p) => p.message ?? '');
    for (const host of ['a', 'c']) {
      expect(messages).toContain(`${host}: stage slow: 1 job(s)`);
      expect(messages).toContain(`${host}: slow: started wait`);
      expect(messages.some((m) => m.startsWith(`${host}: slow: wait `))).toBe(true);
    }
    expect(messages.every((m) => /^(a|c): /.test(m))).toBe(true);
    const numbers = seen.map((p) => p.progress);
    expect(numbers).toEqual([...numbers].sort((x, y) => x - y));
    expect(new Set(numbers).size).toBe(numbers.length);
  }, 120_000);

  it('the CLI: --host on complete, cat, versions, pin/unpin and prune; report --html covers every host', async () => {
    const cli = (args: string[]) => runBuiltCli([...args, '--config', controllerFile]);
    const older = await call('create_snapshot', { host: 'c', volumes: ['app'], force: true });
    const old = ((older.data.created as { name: string }[])[0] as { name: string }).name;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const made = await cli([
      'snapshot',
      'create',
      'app',
      '--host',
      'c',
      '--operation',
      'cli-check',
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const created = JSON.parse(made.stdout) as { operationId: string; created: { name: string }[] };
    const snapshot = created.created[0]?.name as string;

    const completed = await cli([
      'complete',
      created.operationId,
      '--outcome',
      'success',
      '--host',
      'c',
      '--json',
    ]);
    expect(completed.code, completed.stderr).toBe(0);
    const marked = JSON.parse(completed.stdout) as { host: string; snapshots: { name: string }[] };
    expect(marked.host).toBe('c');
    expect(marked.snapshots.map((s) => s.name)).toEqual([snapshot]);

    // cat prints the file's bytes alone, as on the host itself.
    const cat = await cli(['cat', 'app', snapshot, 'data.txt', '--host', 'c']);
    expect(cat.code, cat.stderr).toBe(0);
    expect(cat.stdout).toBe('c v1\n');
    const versions = await cli(['versions', 'app', 'data.txt', '--host', 'c', '--json']);
    expect(versions.code, versions.stderr).toBe(0);
    const listed = JSON.parse(versions.stdout) as { host: string; versions: { snapshots: string[] }[] };
    expect(listed.host).toBe('c');
    expect(listed.versions.some((v) => v.snapshots.includes(snapshot))).toBe(true);

    await writeFile(join((hosts.c as LabHost).volume, 'data.txt'), 'c v3\n');
    const diff = await cli(['diff', 'app', snapshot, '--host', 'c', '--json']);
    expect(diff.code, diff.stderr).toBe(0);
    expect(JSON.parse(diff.stdout)).toMatchObject({ host: 'c', modified: { paths: ['data.txt'] } });
    const deleted = await cli(['deleted', 'app', '--host', 'c']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toMatch(/^host c:\nNothing deleted/);
    await writeFile(join((hosts.c as LabHost).volume, 'data.txt'), 'c v1\n');

    const pinned = await cli(['pin', 'app', snapshot, '--reason', 'keep it', '--host', 'c', '--json']);
    expect(pinned.code, pinned.stderr).toBe(0);
    expect(JSON.parse(pinned.stdout)).toMatchObject({ host: 'c', pinned: true, changed: true });
    const pinsFile = await readFile(
      join((hosts.c as LabHost).configFile, '..', 'state', 'pins.json'),
      'utf8',
    );
    expect(pinsFile).toContain(snapshot);
    const unpinned = await cli(['unpin', 'app', snapshot, '--host', 'c', '--json']);
    expect(JSON.parse(unpinned.stdout)).toMatchObject({ host: 'c', pinned: false, changed: true });
    const refused = await cli(['pin', 'app', snapshot, '--host', 'a-ro']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('read-only');

    const pruned = await cli(['prune', 'app', '--host', 'c', '--dry-run', '--json']);
    expect(pruned.code, pruned.stderr).toBe(0);
    const plan = JSON.parse(pruned.stdout) as {
      host: string;
      keep: { name: string }[];
      delete: { name: string }[];
    };
    expect(plan.host).toBe('c');
    expect(plan.keep.map((k) => k.name)).toContain(snapshot);
    expect(plan.delete.map((d) => d.name)).toContain(old);
    const snapshotDir = join((hosts.c as LabHost).pool.mountPoint, '.snapshots', 'app');
    expect(existsSync(join(snapshotDir, old))).toBe(true);
    // The host's plan, then the question here: without a terminal nothing is deleted.
    const unasked = await cli(['prune', 'app', '--host', 'c']);
    expect(unasked.code).toBe(3);
    expect(unasked.stderr).toContain('no terminal to ask on');
    expect(existsSync(join(snapshotDir, old))).toBe(true);
    const removed = await cli(['prune', 'app', '--host', 'c', '--yes', '--json']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(JSON.parse(removed.stdout)).toMatchObject({ host: 'c', status: 'pruned' });
    expect(existsSync(join(snapshotDir, old))).toBe(false);
    expect(existsSync(join(snapshotDir, snapshot))).toBe(true);

    for (const host of ['a', 'b']) await call('create_snapshot', { host, volumes: ['app'], force: true });
    const html = join(dir, 'fleet-report.html');
    const report = await cli(['report', '--html', html, '--json']);
    expect(report.code, report.stderr).toBe(0);
    const model = JSON.parse(report.stdout) as { hosts: { host: string; snapshots: number }[] };
    const byHost = new Map(model.hosts.map((h) => [h.host, h.snapshots]));
    for (const host of ['a', 'b', 'c']) expect(byHost.get(host) ?? 0).toBeGreaterThan(0);
    const page = await readFile(html, 'utf8');
    expect(page).toContain('<h2>Hosts</h2>');
    for (const host of ['a', 'b', 'c']) expect(page).toContain(`<b>${host}</b>`);
  }, 180_000);

  it('closing the controller ends every ssh session it started', async () => {
    const sessions = pidsMentioning(lab.knownHosts);
    expect(sessions.length).toBeGreaterThan(0);
    await controller.close();
    for (const pid of sessions) expect(await processGone(pid)).toBe(true);
    expect(pidsMentioning(lab.knownHosts)).toEqual([]);
  }, 60_000);
});

function readFileSyncSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
