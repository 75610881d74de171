import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireComponents } from '../helpers/env.js';
import { runBuiltCli } from '../helpers/cli.js';
import { connect, textOf } from '../helpers/mcp.js';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';

const snapguard = (args: string[], cwd?: string) => runBuiltCli(args, { cwd, env: { SNAPGUARD_CONFIG: '' } });

describe('the CLI', () => {
  let dir: string;
  let config: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-cli-'));
    await mkdir(join(dir, 'pool', 'data'), { recursive: true });
    await writeFile(join(dir, 'pool', 'data', 'f'), 'x');
    config = join(dir, 'snapguard.yaml');
    await writeFile(
      config,
      'contextDir: ctx\nstateDir: state\nvolumes:\n  data: { backend: dir, path: pool/data }\n',
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates, lists (table and --json), completes and shows history, exit 0', async () => {
    const created = await snapguard([
      'snapshot',
      'create',
      'data',
      '--type',
      'pre-change',
      '--operation',
      'edit',
      '--json',
      '--config',
      config,
    ]);
    expect(created.code).toBe(0);
    const result = JSON.parse(created.stdout);
    expect(result.created[0].name).toMatch(/^data-pre-change-edit-\d{8}-\d{6}$/);
    const table = await snapguard(['snapshot', 'list', '--config', config]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^VOLUME\s+NAME\s+TYPE\s+AGE/);
    expect(table.stdout).toContain(result.created[0].name);
    const complete = await snapguard([
      'complete',
      result.operationId,
      '--outcome',
      'failed',
      '--config',
      config,
    ]);
    expect(complete.code).toBe(0);
    const history = await snapguard(['history', '--kind', 'snapshots', '--json', '--config', config]);
    expect(JSON.parse(history.stdout).snapshots[0]).toMatchObject({
      snapshot_name: result.created[0].name,
      outcome: 'failed',
    });
    const human = await snapguard(['history', '--config', config]);
    expect(human.stdout).toContain('failed');
  });

  it('exits 3 with the message and what to do for bad usage and bad config', async () => {
    const unknownVolume = await snapguard(['snapshot', 'create', 'media', '--config', config]);
    expect(unknownVolume.code).toBe(3);
    expect(unknownVolume.stderr).toMatch(
      /Volume "media" is not configured\.\n\s+what to do: Use one of: data/,
    );
    const badOption = await snapguard(['snapshot', 'create', 'data', '--type', 'weird', '--config', config]);
    expect(badOption.code).toBe(3);
    const missing = await snapguard(['snapshot', 'list'], dir + '/pool');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('No snapguard configuration found');
    await writeFile(join(dir, 'bad.yaml'), 'volumes:\n  data: { backend: xfs, path: x }\n');
    const bad = await snapguard(['snapshot', 'list', '--json', '--config', join(dir, 'bad.yaml')]);
    expect(bad.code).toBe(3);
    expect(JSON.parse(bad.stdout).error).toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('volumes.data.backend'),
    });
    const metachar = await snapguard([
      'snapshot',
      'create',
      'data',
      '--operation',
      '$(id)',
      '--config',
      config,
    ]);
    expect(metachar.code).toBe(3);
  });

  it('a config error names the bad value, what was expected and the probable key, exit 3', async () => {
    const file = join(dir, 'typo.yaml');
    await writeFile(
      file,
      'health:\n  maxPoolUsage: "90%"\nvolumes:\n  data:\n    backend: dir\n    path: pool/data\n    minIntervall: 1h\n',
    );
    const result = await snapguard(['snapshot', 'list', '--config', file]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('health.maxPoolUsage: expected a number between 0 and 1, got "90%"');
    expect(result.stderr).toContain('volumes.data: unknown key "minIntervall"; did you mean minInterval?');
  });

  it('wrap --timeout takes the duration forms of the config file (1h, 90m) as well as seconds', async () => {
    for (const timeout of ['1h', '90m', '3600']) {
      const marker = join(dir, `wrapped-${timeout}`);
      const result = await snapguard([
        'wrap',
        '--volume',
        'data',
        '--operation',
        'timeout-form',
        '--timeout',
        timeout,
        '--config',
        config,
        '--',
        'touch',
        marker,
      ]);
      expect(result.stderr).not.toContain('must be');
      expect(result.code).toBe(0);
      await readFile(marker);
    }
    const bad = await snapguard([
      'wrap',
      '--volume',
      'data',
      '--timeout',
      'soon',
      '--config',
      config,
      '--',
      'true',
    ]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain(
      '--timeout must be a duration like 30s, 5m, 1h or 7d (or a number of seconds), got "soon"',
    );
  });

  it('history lists newest first by time (not by the order of writing); -n is not a history option', async () => {
    const own = await mkdtemp(join(tmpdir(), 'snapguard-cli-history-'));
    try {
      await mkdir(join(own, 'pool', 'data'), { recursive: true });
      const file = join(own, 'snapguard.yaml');
      await writeFile(
        file,
        'contextDir: ctx\nstateDir: state\nvolumes:\n  data: { backend: dir, path: pool/data }\n',
      );
      for (const operation of ['first', 'second']) {
        const made = await snapguard([
          'snapshot',
          'create',
          'data',
          '--operation',
          operation,
          '--config',
          file,
        ]);
        expect(made.code).toBe(0);
      }
      // The entry written first carries the later time (a clock set back, an entry recorded late).
      const historyFile = join(own, 'ctx', 'backup-history.json');
      const stored = JSON.parse(await readFile(historyFile, 'utf8'));
      stored.snapshots[0].timestamp = '2099-01-01T00:00:00Z';
      await writeFile(historyFile, JSON.stringify(stored, null, 2));
      const json = await snapguard(['history', '--kind', 'snapshots', '--json', '--config', file]);
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout).snapshots.map((e: { operation: string }) => e.operation)).toEqual([
        'first',
        'second',
      ]);
      const one = await snapguard([
        'history',
        '--kind',
        'snapshots',
        '--limit',
        '1',
        '--json',
        '--config',
        file,
      ]);
      expect(JSON.parse(one.stdout).snapshots.map((e: { operation: string }) => e.operation)).toEqual([
        'first',
      ]);
      const table = await snapguard(['history', '--kind', 'snapshots', '--config', file]);
      expect(table.stdout.indexOf('first')).toBeLessThan(table.stdout.indexOf('second'));
      const n = await snapguard(['history', '-n', '1', '--config', file]);
      expect(n.code).toBe(3);
      expect(n.stderr).toContain("unknown option '-n'");
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });

  it('-n means --dry-run on every verb that has a dry run, and nothing else on any verb', async () => {
    /** The verbs a help page lists under Commands:, without help itself. */
    const verbsOf = (help: string) =>
      (help.split('\nCommands:\n')[1] ?? '')
        .split('\n')
        .map((line) => /^ {2}(\S+)/.exec(line)?.[1])
        .filter((verb): verb is string => verb !== undefined && verb !== 'help');
    const top = await snapguard(['--help']);
    // Each verb's help page, and each sub-verb's where a verb has them (snapshot create, list).
    const pages: { leaf: string; help: string }[] = [];
    for (const verb of verbsOf(top.stdout)) {
      const help = (await snapguard([verb, '--help'])).stdout;
      const sub = verbsOf(help);
      if (sub.length === 0) pages.push({ leaf: verb, help });
      for (const child of sub)
        pages.push({ leaf: `${verb} ${child}`, help: (await snapguard([verb, child, '--help'])).stdout });
    }
    const withDryRun: string[] = [];
    for (const { leaf, help } of pages) {
      const options = [...help.matchAll(/^ {2}(?:(-\w), )?(--[\w-]+)/gm)].map((m) => ({
        short: m[1],
        long: m[2],
      }));
      for (const option of options) {
        if (option.short === '-n') expect(option.long, leaf).toBe('--dry-run');
        if (option.long === '--dry-run') expect(option.short, leaf).toBe('-n');
      }
      if (options.some((o) => o.long === '--dry-run')) withDryRun.push(leaf);
    }
    expect(withDryRun).toEqual(
      expect.arrayContaining([
        'snapshot create',
        'complete',
        'init',
        'recover',
        'wrap',
        'prune',
        'pin',
        'units',
      ]),
    );
  });

  it('plan without what it needs names the CLI options (--host-type, --volume, --disk-size); plan_strategy names its arguments', async () => {
    const bare = await snapguard(['plan', '--no-verify'], dir);
    expect(bare.code).toBe(3);
    expect(bare.stderr).toContain('--host-type: missing (laptop, server or vps)');
    expect(bare.stderr).toContain('--volume: missing');
    expect(bare.stderr).toContain('--disk-size: missing');
    expect(bare.stderr).toContain('what to do: Give --host-type');
    expect(bare.stderr).not.toContain('plan_strategy');
    expect(bare.stderr).not.toContain('hostType');
    const wrong = await snapguard(
      ['plan', '--host-type', 'server', '--volume', '/srv/db:lots', '--disk-size', '1T', '--no-verify'],
      dir,
    );
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/--volume \(1st\): /);
    expect(wrong.stderr).not.toContain('plan_strategy');
    const mcp = await connect(
      createDeps(buildConfig({ contextDir: 'ctx', stateDir: 'state' }, dir), { logger: silentLogger() }),
    );
    try {
      const overMcp = textOf(await mcp.call('plan_strategy', { disk: { size: '1T' } }));
      expect(overMcp).toContain('hostType');
      expect(overMcp).toContain('call again');
      expect(overMcp).not.toContain('--host-type');
    } finally {
      await mcp.close();
    }
  });

  it('dry run changes nothing', async () => {
    const before = await readFile(join(dir, 'ctx', 'backup-history.json'), 'utf8');
    const dry = await snapguard(['snapshot', 'create', 'data', '--dry-run', '--config', config]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('Would create 1 snapshot');
    expect(await readFile(join(dir, 'ctx', 'backup-history.json'), 'utf8')).toBe(before);
  });

  it('every mutating verb has a dry run that changes nothing: complete, pin, unpin, wrap, units --write', async () => {
    const created = JSON.parse(
      (await snapguard(['snapshot', 'create', 'data', '--json', '--config', config])).stdout,
    );
    const name = created.created[0].name as string;
    const historyFile = join(dir, 'ctx', 'backup-history.json');
    const before = await readFile(historyFile, 'utf8');
    const complete = await snapguard([
      'complete',
      created.operationId,
      '--outcome',
      'success',
      '--dry-run',
      '--config',
      config,
    ]);
    expect(complete.code).toBe(0);
    expect(complete.stdout).toContain(`Would mark 1 snapshot(s) of ${created.operationId} as success`);
    const pin = await snapguard(['pin', 'data', name, '--dry-run', '--json', '--config', config]);
    expect(JSON.parse(pin.stdout)).toMatchObject({ changed: true, dryRun: true, pins: [] });
    await expect(readFile(join(dir, 'state', 'pins.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    const marker = join(dir, 'wrapped-command-ran');
    const wrap = await snapguard([
      'wrap',
      '--volume',
      'data',
      '--operation',
      'upgrade',
      '--dry-run',
      '--config',
      config,
      '--',
      'touch',
      marker,
    ]);
    expect(wrap.code).toBe(0);
    expect(wrap.stdout).toMatch(/would snapshot data as data-pre-change-upgrade-\d{8}-\d{6}/);
    expect(wrap.stdout).toContain(`would run: ["touch","${marker}"]`);
    await expect(readFile(marker)).rejects.toMatchObject({ code: 'ENOENT' });
    const unitsDir = join(dir, 'units-out');
    const units = await snapguard(['units', '--write', unitsDir, '--dry-run']);
    expect(units.code).toBe(0);
    expect(units.stdout).toContain(`would write ${join(unitsDir, 'snapguard-health.timer')}`);
    await expect(readdir(unitsDir)).rejects.toMatchObject({ code: 'ENOENT' });
    const install = await snapguard(['units', '--install', '--dry-run']);
    expect(install.stdout).toContain('would write /etc/systemd/system/snapguard-restore-test.timer');
    const unitsJson = JSON.parse((await snapguard(['units', '--json'])).stdout) as {
      name: string;
      text: string;
    }[];
    expect(unitsJson.map((u) => u.name)).toContain('snapguard-restore-test.timer');
    // Nothing above touched the history or the snapshots.
    expect(await readFile(historyFile, 'utf8')).toBe(before);
    const listed = JSON.parse((await snapguard(['snapshot', 'list', '--json', '--config', config])).stdout);
    expect(listed.snapshots.filter((s: { operation?: string }) => s.operation === 'upgrade')).toEqual([]);
  });

  it('runs the demo with the dir backend, no configuration needed', async () => {
    const demo = await snapguard(['demo', '--backend', 'dir', '--json'], dir);
    expect(demo.code).toBe(0);
    const result = JSON.parse(demo.stdout);
    expect(result).toMatchObject({ ok: true, backend: 'dir', kept: false });
    await expect(readFile(result.sandbox)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.runIf(requireComponents(['btrfs', 'mkfs.btrfs', 'losetup']))(
    'runs the demo on a loop-mounted btrfs image and leaves no mount or loop device behind',
    async () => {
      const demo = await snapguard(['demo']);
      expect(demo.code).toBe(0);
      expect(demo.stdout).toContain('backend: btrfs');
      expect(demo.stdout).toContain('Demo finished');
      const sandbox = /== Sandbox \(btrfs\)\n\s+(\S+)/.exec(demo.stdout)![1]!;
      expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(sandbox);
      const loops = await new Promise<string>((resolve) =>
        execFile('losetup', ['-a'], (_e, out) => resolve(out)),
      );
      expect(loops).not.toContain(sandbox);
    },
  );
});
