// Several hosts over OpenSSH: what the ssh hop costs per call, and what asking many hosts costs.
// 1. list_snapshots through a warm ssh session (sshd on 127.0.0.2 with a forced command) vs the
//    same call to a local `snapguard mcp` over stdio, and through a controller (host: NAME).
// 2. list_snapshots with host "*" over 10 hosts (10 sshd instances on 127.0.0.2-11) vs the slowest
//    of the same hosts asked alone. Needs root and /usr/sbin/sshd; skips with a note otherwise.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { stringify } from 'yaml';
import { buildConfig } from '../dist/core/config.js';
import { createDeps } from '../dist/core/deps.js';
import { authorizedKeyLine } from '../dist/core/fleet.js';
import { silentLogger } from '../dist/core/logger.js';
import { createSnapshots } from '../dist/core/snapshots.js';
import { createServer } from '../dist/mcp/server.js';
import { HostSessions } from '../dist/mcp/transports/hosts.js';
import { median, percentile, targetMark, timedRuns } from './stats.mjs';

const cli = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url));
const SSHD = '/usr/sbin/sshd';
// Smaller counts for a quick check that the bench runs: FLEET_BENCH_ROUNDS=5 FLEET_BENCH_FAN_ROUNDS=2 FLEET_BENCH_HOSTS=3.
const count = (name, fallback) => Number(process.env[name] ?? fallback);
const ROUNDS = count('FLEET_BENCH_ROUNDS', 100);
const FAN_ROUNDS = count('FLEET_BENCH_FAN_ROUNDS', 30);
const HOSTS = count('FLEET_BENCH_HOSTS', 10);
const ms = (x) => `${x.toFixed(2)} ms`;
const lines = ['## Several hosts over OpenSSH', ''];

if (process.getuid?.() !== 0 || !existsSync(SSHD)) {
  lines.push(`Skipped: needs root and ${SSHD} (openssh-server).`);
  process.stdout.write(`${lines.join('\n')}\n`);
  process.exit(0);
}

const dir = await mkdtemp(join(tmpdir(), 'snapguard-bench-fleet-'));
const sshdPids = [];
const listening = (host, port) =>
  new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

async function makeHost(i, key) {
  const hostDir = join(dir, `host${i}`);
  await mkdir(join(hostDir, 'data', 'app'), { recursive: true });
  for (let f = 0; f < 20; f++)
    await writeFile(join(hostDir, 'data', 'app', `file${f}.txt`), `host ${i} file ${f}\n`);
  const input = {
    host: `h${i}`,
    contextDir: 'context',
    stateDir: 'state',
    volumes: { app: { backend: 'dir', path: 'data/app' } },
  };
  const configFile = join(hostDir, 'snapguard.yaml');
  await writeFile(configFile, stringify(input));
  const deps = createDeps(buildConfig(input, hostDir, configFile), { logger: silentLogger() });
  await createSnapshots(deps, { volumes: ['app'], type: 'manual', force: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(hostDir, 'hostkey')]);
  await writeFile(
    join(hostDir, 'authorized_keys'),
    `${authorizedKeyLine([process.execPath, cli], configFile, key)}\n`,
  );
  const address = `127.0.0.${i + 2}`;
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const pidFile = join(hostDir, 'sshd.pid');
  await writeFile(
    join(hostDir, 'sshd_config'),
    [
      `Port ${port}`,
      `ListenAddress ${address}`,
      `HostKey ${join(hostDir, 'hostkey')}`,
      `AuthorizedKeysFile ${join(hostDir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'StrictModes no',
      'UsePAM no',
      `PidFile ${pidFile}`,
      '',
    ].join('\n'),
  );
  execFileSync(SSHD, ['-f', join(hostDir, 'sshd_config'), '-E', join(hostDir, 'sshd.log')]);
  for (let t = 0; t < 100; t++) {
    const pid = (await readFile(pidFile, 'utf8').catch(() => '')).trim();
    if (pid && (await listening(address, port))) {
      sshdPids.push(Number(pid));
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const hostKey = (await readFile(join(hostDir, 'hostkey.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  await writeFile(join(dir, 'known_hosts'), `[${address}]:${port} ${hostKey}\n`, { flag: 'a' });
  return {
    name: `h${i}`,
    configFile,
    command: [
      'ssh',
      '-F',
      '/dev/null',
      '-T',
      '-p',
      String(port),
      '-i',
      join(dir, 'key'),
      '-o',
      'BatchMode=yes',
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
      `root@${address}`,
    ],
  };
}

const measure = (fn, rounds) => timedRuns(fn, rounds, 5);

let sessions;
let stdioClient;
let controller;
try {
  execFileSync('mkdir', ['-p', '/run/sshd']);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]);
  const key = (await readFile(join(dir, 'key.pub'), 'utf8')).trim();
  const hosts = [];
  for (let i = 0; i < HOSTS; i++) hosts.push(await makeHost(i, key));
  const entries = Object.fromEntries(hosts.map((h) => [h.name, { command: h.command, readOnly: false }]));

  // 1. One call: local stdio vs a warm ssh session vs a controller passing the call on.
  stdioClient = new Client({ name: 'bench', version: '1' });
  await stdioClient.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [cli, 'mcp', '--config', hosts[0].configFile],
      stderr: 'ignore',
    }),
  );
  sessions = new HostSessions(entries);
  const controllerInput = {
    host: 'controller',
    contextDir: 'ctl-context',
    stateDir: 'ctl-state',
    hosts: entries,
  };
  const controllerDeps = createDeps(buildConfig(controllerInput, dir), { logger: silentLogger() });
  const created = createServer(controllerDeps);
  const [a, b] = InMemoryTransport.createLinkedPair();
  controller = new Client({ name: 'bench', version: '1' });
  await Promise.all([created.server.connect(a), controller.connect(b)]);
  controller.cleanup = created.cleanup;

  const args = { volume: 'app' };
  const local = [];
  const ssh = [];
  const via = [];
  // Interleaved, so load on the shared machine hits all three alike.
  for (let round = 0; round < 5; round++) {
    local.push(
      ...(await measure(() => stdioClient.callTool({ name: 'list_snapshots', arguments: args }), ROUNDS / 5)),
    );
    ssh.push(...(await measure(() => sessions.callTool('h0', 'list_snapshots', args), ROUNDS / 5)));
    via.push(
      ...(await measure(
        () => controller.callTool({ name: 'list_snapshots', arguments: { ...args, host: 'h0' } }),
        ROUNDS / 5,
      )),
    );
  }
  const base = median(local);
  lines.push(
    `list_snapshots of one dir volume, ${ROUNDS} calls each after warm-up, interleaved; median (p95):`,
    '',
    '| path | median | p95 | vs local stdio |',
    '|---|---|---|---|',
    `| local \`snapguard mcp\` over stdio | ${ms(base)} | ${ms(percentile(local, 95))} | 1.00× |`,
    `| warm ssh session (forced command) | ${ms(median(ssh))} | ${ms(percentile(ssh, 95))} | ${(median(ssh) / base).toFixed(2)}× |`,
    `| controller, \`host: h0\` (in-process client -> ssh session) | ${ms(median(via))} | ${ms(percentile(via, 95))} | ${(median(via) / base).toFixed(2)}× |`,
    '',
    'Target: a warm ssh session costs at most 2× a local stdio call.',
    targetMark('one call through the controller and a warm ssh session / local stdio', median(via) / base, 2),
    '',
  );

  // 2. Fan-out over 10 hosts vs the slowest single host (all through the controller, sessions warm).
  await controller.callTool({ name: 'list_snapshots', arguments: { host: '*' } });
  const single = Object.fromEntries(hosts.map((h) => [h.name, []]));
  const fan = [];
  for (let round = 0; round < FAN_ROUNDS; round++) {
    for (const h of hosts) {
      const t = performance.now();
      await controller.callTool({ name: 'list_snapshots', arguments: { host: h.name } });
      single[h.name].push(performance.now() - t);
    }
    const t = performance.now();
    const result = await controller.callTool({ name: 'list_snapshots', arguments: { host: '*' } });
    fan.push(performance.now() - t);
    if (result.structuredContent.unreachable.length > 0) throw new Error('a host was not reached');
  }
  // Where the time of a fan-out goes: this process's CPU (the controller: ten client sessions,
  // merge, output validation) and the whole machine's busy CPU time (every host's snapguard, sshd
  // and ssh client) per call, against its wall time. A fan-out whose machine CPU divided by the
  // cores is close to its wall time waits for CPU, not for anything serial in the controller.
  const busy = () => {
    const [, ...fields] = execFileSync('head', ['-1', '/proc/stat'], { encoding: 'utf8' })
      .trim()
      .split(/\s+/);
    const n = fields.map(Number);
    const idle = (n[3] ?? 0) + (n[4] ?? 0);
    return n.reduce((a, b) => a + b, 0) - idle;
  };
  const tick = 10; // ms per jiffy (USER_HZ 100)
  // The CPU of the bench's own processes, by /proc/<pid>/stat (utime + stime, in jiffies): the
  // host side (each sshd listener's session processes: sshd, the forced command's snapguard) and
  // the ssh clients this process started. Unlike the machine's busy time, nothing else running on
  // the machine is counted. The sessions are warm, so the same processes live through a profile.
  const processes = () => {
    const all = new Map();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
        all.set(Number(entry), {
          ppid: Number(fields[1]),
          cpu: Number(fields[11]) + Number(fields[12]),
          cmdline,
        });
      } catch {
        // Ended while we looked.
      }
    }
    return all;
  };
  const benchCpu = () => {
    const all = processes();
    const underSshd = (pid) => {
      for (let p = all.get(pid)?.ppid; p !== undefined && p > 1; p = all.get(p)?.ppid)
        if (sshdPids.includes(p)) return true;
      return false;
    };
    let hostSide = 0;
    let sshClients = 0;
    for (const [pid, info] of all) {
      if (underSshd(pid)) hostSide += info.cpu;
      else if (info.ppid === process.pid && info.cmdline.includes(join(dir, 'key'))) sshClients += info.cpu;
    }
    return { hostSide, sshClients };
  };
  const profile = async (fn, rounds) => {
    const cpu0 = process.cpuUsage();
    const busy0 = busy();
    const bench0 = benchCpu();
    const t0 = performance.now();
    for (let i = 0; i < rounds; i++) await fn();
    const wall = (performance.now() - t0) / rounds;
    const cpu = process.cpuUsage(cpu0);
    const bench1 = benchCpu();
    return {
      wall,
      controller: (cpu.user + cpu.system) / 1000 / rounds,
      hosts: ((bench1.hostSide - bench0.hostSide) * tick) / rounds,
      ssh: ((bench1.sshClients - bench0.sshClients) * tick) / rounds,
      machine: ((busy() - busy0) * tick) / rounds,
    };
  };
  const fanProfile = await profile(
    () => controller.callTool({ name: 'list_snapshots', arguments: { host: '*' } }),
    FAN_ROUNDS,
  );
  const oneProfile = await profile(
    () => controller.callTool({ name: 'list_snapshots', arguments: { host: 'h0' } }),
    FAN_ROUNDS,
  );
  const slowest = Math.max(...Object.values(single).map(median));
  lines.push(
    `list_snapshots with \`host: "*"\` over ${HOSTS} hosts (${HOSTS} sshd on 127.0.0.2-${HOSTS + 1}, warm sessions), ${FAN_ROUNDS} rounds interleaved with each host alone:`,
    '',
    '| call | median | p95 |',
    '|---|---|---|',
    `| slowest single host (its median) | ${ms(slowest)} | - |`,
    `| fan-out over ${HOSTS} hosts | ${ms(median(fan))} | ${ms(percentile(fan, 95))} |`,
    '',
    targetMark(
      `fan-out list_snapshots over ${HOSTS} hosts / slowest single host`,
      median(fan) / slowest,
      1.5,
    ),
    `Fan-out / slowest single host: ${(median(fan) / slowest).toFixed(2)}× (target ≤ 1.5×). The hosts' snapguard processes share this machine's ${
      cpus().length
    } cores, so ${HOSTS} answers in parallel compete for CPU here in a way separate hosts would not.`,
    '',
    `Where the time goes (mean per call over ${FAN_ROUNDS} calls). Controller CPU: this process (process.cpuUsage: the client sessions, the merge, output validation). Host processes: every process under the ${HOSTS} sshd listeners (the session sshd and the host's snapguard), from /proc/<pid>/stat. ssh clients: the controller's ssh processes. Machine CPU: all busy time from /proc/stat, other work on the machine included. Bench CPU / cores near the wall time means the call waits for CPU:`,
    '',
    '| call | wall | controller CPU | host processes CPU | ssh clients CPU | bench CPU / cores | machine CPU | machine CPU / cores |',
    '|---|---|---|---|---|---|---|---|',
    ...[
      ['one host (h0)', oneProfile],
      [`fan-out over ${HOSTS} hosts`, fanProfile],
    ].map(
      ([name, p]) =>
        `| ${name} | ${ms(p.wall)} | ${ms(p.controller)} | ${ms(p.hosts)} | ${ms(p.ssh)} | ${ms((p.controller + p.hosts + p.ssh) / cpus().length)} | ${ms(p.machine)} | ${ms(p.machine / cpus().length)} |`,
    ),
  );
} finally {
  await controller?.cleanup?.().catch(() => undefined);
  await controller?.close().catch(() => undefined);
  await sessions?.close().catch(() => undefined);
  await stdioClient?.close().catch(() => undefined);
  for (const pid of sshdPids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  await rm(dir, { recursive: true, force: true });
}
process.stdout.write(`${lines.join('\n')}\n`);
