// systemd driver against real systemd 252 in systemd-nspawn: container boot time and the cost of
// each driver call next to the raw systemctl call it wraps. Needs root, systemd-nspawn, nsenter and
// the rootfs cache the integration tests build (test/helpers/nspawn.ts) under $TMPDIR.
import { spawn, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
  writeFileSync,
  rmdirSync,
  readdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createExec } from '../dist/system/exec.js';
import { createSystemdDriver } from '../dist/system/systemd.js';
import { median, timed } from './stats.mjs';

const lower = join(tmpdir(), 'snapguard-nspawn-cache', 'bookworm-minbase');
const ms = (value) => `${value.toFixed(1)} ms`;

function removeCgroup(path) {
  if (!existsSync(path)) return;
  if (path.startsWith('/sys/fs/cgroup/unified/')) {
    try {
      writeFileSync(join(path, 'cgroup.kill'), '1');
    } catch {
      // older kernel: processes are gone after poweroff anyway
    }
  }
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroup(join(path, entry.name));
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      rmdirSync(path);
      return;
    } catch {
      execFileSync('sleep', ['0.1']);
    }
  }
}

async function boot(exec, index) {
  const name = `sg-bench-${process.pid}-${index}`;
  const dir = mkdtempSync(join(tmpdir(), 'snapguard-bench-nspawn-'));
  const root = join(dir, 'root');
  for (const sub of ['upper', 'work', 'root']) mkdirSync(join(dir, sub));
  const cgroups = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'].map((base) => join(base, name));
  const container = { name, dir, root, cgroups, child: undefined, leader: 0 };
  await exec('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lower},upperdir=${dir}/upper,workdir=${dir}/work`,
    root,
  ]);
  for (const cgroup of cgroups) mkdirSync(cgroup, { recursive: true });
  const started = performance.now();
  const log = openSync(join(dir, 'nspawn.log'), 'a');
  container.child = spawn(
    'bash',
    [
      '-c',
      'echo $$ > "$1"; shift; exec "$@"',
      'bash',
      join(cgroups[0], 'cgroup.procs'),
      'systemd-nspawn',
      '-D',
      root,
      '-M',
      name,
      '--register=no',
      '--keep-unit',
      '-b',
      '--console=passive',
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  container.child.unref();
  while (container.leader === 0) {
    const children = readFileSync(`/proc/${container.child.pid}/task/${container.child.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    container.leader = Number(
      children.find((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd') ?? 0,
    );
    if (container.leader === 0) await sleep(10);
  }
  for (;;) {
    const result = await exec(
      'nsenter',
      ['-t', String(container.leader), '-a', 'systemctl', 'is-system-running', '--wait'],
      { okExitCodes: [1, 2, 3, 4, 5] },
    ).catch(() => ({ stdout: '' }));
    if (/running|degraded/.test(result.stdout)) break;
    await sleep(50);
  }
  container.bootMs = performance.now() - started;
  return container;
}

async function shutdown(exec, container) {
  const child = container.child;
  const exited =
    child && child.exitCode === null
      ? new Promise((resolve) => child.once('exit', resolve))
      : Promise.resolve();
  if (container.leader)
    await exec('nsenter', ['-t', String(container.leader), '-a', 'systemctl', 'poweroff'], {
      timeoutMs: 10_000,
    }).catch(() => undefined);
  await Promise.race([exited, sleep(15_000)]);
  if (child && child.exitCode === null) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const cgroup of container.cgroups) removeCgroup(cgroup);
  await exec('umount', [container.root]).catch(() =>
    exec('umount', ['-l', container.root]).catch(() => undefined),
  );
  rmSync(container.dir, { recursive: true, force: true });
}

const lines = ['## systemd driver (systemd 252 in systemd-nspawn, reached with nsenter)', ''];
if (process.getuid?.() !== 0 || !existsSync(join(lower, 'usr/lib/systemd/systemd'))) {
  lines.push(
    'Skipped: needs root and the rootfs cache (run `npx vitest run test/integration/systemd.test.ts` once).',
  );
  console.log(lines.join('\n'));
  process.exit(0);
}

const exec = createExec();
const bootTimes = [];
const containers = [];
try {
  for (let index = 0; index < 5; index++) {
    const container = await boot(exec, index);
    containers.push(container);
    bootTimes.push(container.bootMs);
    if (index < 4) await shutdown(exec, containers.pop());
  }
  const container = containers[0];
  const prefix = ['nsenter', '-t', String(container.leader), '-a', 'systemctl'];
  writeFileSync(
    join(container.root, 'etc/systemd/system/bench-ok.service'),
    '[Service]\nType=oneshot\nExecStart=/bin/true\n',
  );
  writeFileSync(
    join(container.root, 'etc/systemd/system/bench-fail.service'),
    '[Service]\nType=oneshot\nExecStart=/bin/false\n',
  );
  await exec(prefix[0], [...prefix.slice(1), 'daemon-reload']);
  const driver = createSystemdDriver(exec, { systemctl: prefix, scope: 'system' });
  const rounds = 15;
  const measure = async (fn) => {
    const times = [];
    for (let round = 0; round < rounds; round++) times.push(await timed(fn));
    return median(times);
  };
  const rawShow = await measure(() =>
    exec(prefix[0], [
      ...prefix.slice(1),
      'show',
      '-p',
      'Result,ActiveState,ExecMainStatus',
      'bench-ok.service',
    ]),
  );
  const show = await measure(() => driver.show('bench-ok.service'));
  const rawStart = await measure(() => exec(prefix[0], [...prefix.slice(1), 'start', 'bench-ok.service']));
  const start = await measure(() => driver.start('bench-ok.service'));
  const startFail = await measure(() => driver.start('bench-fail.service').catch(() => undefined));
  const list = await measure(() => driver.listUnits(['bench-*', 'dbus*']));
  const journal = await measure(() => driver.journal('bench-fail.service', 20));
  lines.push(
    `Container boot (overlay on the cached tree, spawn to \`is-system-running\` answering), 5 boots: median ${ms(median(bootTimes))}, min ${ms(Math.min(...bootTimes))}, max ${ms(Math.max(...bootTimes))}.`,
    '',
    `Driver calls, median of ${rounds}:`,
    '',
    '| call | median |',
    '| --- | --- |',
    `| raw \`nsenter … systemctl show -p …\` | ${ms(rawShow)} |`,
    `| driver.show | ${ms(show)} |`,
    `| raw \`nsenter … systemctl start\` of a /bin/true oneshot | ${ms(rawStart)} |`,
    `| driver.start of the same oneshot (start + show + journal look-up of the unloaded unit's run) | ${ms(start)} |`,
    `| driver.start of a failing oneshot (error with Result, status and journal lines) | ${ms(startFail)} |`,
    `| driver.listUnits (list-units + list-unit-files, 2 globs) | ${ms(list)} |`,
    `| driver.journal (20 lines) | ${ms(journal)} |`,
  );
} finally {
  for (const container of containers) await shutdown(exec, container);
}
console.log(lines.join('\n'));
