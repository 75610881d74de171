import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import type { Deps } from '../../src/core/deps.js';
import type { SnapguardError } from '../../src/core/errors.js';
import { recover } from '../../src/core/recovery/recover.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireBuiltCli, runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';
import { connect, textOf, type Connected } from '../helpers/mcp.js';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

/**
 * The same refusal reached over MCP (in-process client) and through the built CLI: each says what
 * to do in its own words (tool names and arguments there, verbs and options here), never the other's.
 */
describe.runIf(enabled)('hints speak the language of the interface that shows them (real btrfs)', () => {
  let sandbox: BtrfsSandbox;
  let data: string;
  const setups: { deps: Deps; mcp: Connected; configFile: string }[] = [];

  async function setup(name: string, extra: ConfigInput) {
    const input: ConfigInput = { volumes: { data: { backend: 'btrfs', path: data } }, ...extra };
    const deps = sandbox.deps(input);
    const configFile = await sandbox.writeConfig({ host: 'test-host', ...input }, `${name}.yaml`);
    const mcp = await connect(deps);
    const made = { deps, mcp, configFile };
    setups.push(made);
    return made;
  }
  const cli = (configFile: string, args: string[]) =>
    runBuiltCli([...args, '--config', configFile], { env: { SNAPGUARD_CONFIG: '' } });

  beforeAll(async () => {
    requireBuiltCli();
    sandbox = await createBtrfsSandbox(256, 'hints');
    data = await sandbox.subvolume('data');
    await writeFile(join(data, 'file'), 'v1');
  }, 120_000);
  afterAll(async () => {
    for (const { mcp } of setups) await mcp.close();
    await sandbox?.cleanup();
  });

  it('POOL_FULL: create_snapshot with force: true over MCP, --force on the CLI', async () => {
    const { mcp, configFile } = await setup('full', { health: { maxPoolUsage: 0.0001 } });
    const overMcp = textOf(await mcp.call('create_snapshot', { volumes: ['data'] }));
    expect(overMcp).toContain('[POOL_FULL]');
    expect(overMcp).toContain('call create_snapshot again with force: true');
    expect(overMcp).not.toContain('--force');
    const overCli = await cli(configFile, ['snapshot', 'create', 'data']);
    expect(overCli.code).toBe(2);
    expect(overCli.stderr).toContain('run it again with --force');
    expect(overCli.stderr).toContain('`snapguard prune data`');
    expect(overCli.stderr).not.toContain('force: true');
    expect(overCli.stderr).not.toContain('prune_snapshots');
    const json = await cli(configFile, ['snapshot', 'create', 'data', '--json']);
    expect(JSON.parse(json.stdout).error.hint).toContain('--force');
  });

  it('NOT_OWNED names what can be done instead; SNAPSHOT_NOT_FOUND says where the names are', async () => {
    const { mcp, configFile } = await setup('owned', {});
    const foreign = textOf(await mcp.call('pin_snapshot', { volume: 'data', snapshot: 'nightly-backup' }));
    expect(foreign).toContain('[NOT_OWNED]');
    expect(foreign).toContain(
      'Instead, call list_snapshots with volume "data" and use one of the names it returns, or call create_snapshot with volume "data" to take a new one.',
    );
    const foreignCli = await cli(configFile, ['pin', 'data', 'nightly-backup']);
    expect(foreignCli.code).toBe(3);
    expect(foreignCli.stderr).toContain(
      'Instead, run `snapguard snapshot list data` and use one of the names it shows, or `snapguard snapshot create data` to take a new one.',
    );
    expect(foreignCli.stderr).not.toContain('list_snapshots');
    const missing = 'data-manual-20200101-000000';
    const missingMcp = textOf(await mcp.call('pin_snapshot', { volume: 'data', snapshot: missing }));
    expect(missingMcp).toContain('[SNAPSHOT_NOT_FOUND]');
    expect(missingMcp).toContain('Call list_snapshots with volume "data" for the names that exist.');
    const missingCli = await cli(configFile, ['pin', 'data', missing]);
    expect(missingCli.code).toBe(3);
    expect(missingCli.stderr).toContain('Run `snapguard snapshot list data` for the names that exist.');
    expect(missingCli.stderr).not.toContain('list_snapshots');
  });

  it('a pre-change snapshot reused within minInterval says how to take a new one in each language', async () => {
    const { deps, mcp, configFile } = await setup('reuse', {
      volumes: { data: { backend: 'btrfs', path: data, minInterval: '1h' } },
    });
    await createSnapshots(deps, { volumes: ['data'], type: 'pre-change', operation: 'first' });
    const overMcp = textOf(
      await mcp.call('create_snapshot', { volumes: ['data'], type: 'pre-change', operation: 'second' }),
    );
    expect(overMcp).toContain('younger than minInterval 1h');
    expect(overMcp).toContain('(force: true takes a new one)');
    expect(overMcp).not.toContain('--force');
    const overCli = await cli(configFile, [
      'snapshot',
      'create',
      'data',
      '--type',
      'pre-change',
      '--operation',
      'third',
    ]);
    expect(overCli.code).toBe(0);
    expect(overCli.stdout).toContain('younger than minInterval 1h');
    expect(overCli.stdout).toContain('(--force takes a new one)');
    expect(overCli.stdout).not.toContain('force: true');
  });

  it('prune with nothing to delete says no retention is configured and how to set one', async () => {
    const { deps, mcp, configFile } = await setup('prune', {});
    await createSnapshots(deps, { volumes: ['data'], type: 'manual' });
    const overMcp = textOf(await mcp.call('prune_snapshots', { volume: 'data' }));
    expect(overMcp).toContain('Nothing to delete');
    expect(overMcp).toContain('No retention is configured for volume data, so every snapshot is kept.');
    expect(overMcp).toContain('retention: { preserve: 24h 7d 4w 12m }');
    expect(overMcp).toContain('call prune_snapshots with dryRun: true');
    const overCli = await cli(configFile, ['prune', 'data', '--yes']);
    expect(overCli.code).toBe(0);
    expect(overCli.stdout).toContain(
      'No retention is configured for volume data, so every snapshot is kept.',
    );
    expect(overCli.stdout).toContain('`snapguard prune --dry-run` shows what would go');
    expect(overCli.stdout).not.toContain('prune_snapshots');
  });

  it('health remedies name tool calls over MCP and CLI verbs on the CLI', async () => {
    const fresh = await sandbox.subvolume('fresh');
    const input: ConfigInput = { volumes: { fresh: { backend: 'btrfs', path: fresh } } };
    const deps = sandbox.deps(input);
    const configFile = await sandbox.writeConfig(input, 'fresh.yaml');
    const mcp = await connect(deps);
    setups.push({ deps, mcp, configFile });
    const result = await mcp.call('health_check', { volume: 'fresh' });
    const text = textOf(result);
    expect(text).toContain('NO_SNAPSHOTS');
    expect(text).toContain('call create_snapshot with volumes ["fresh"]');
    expect(text).toContain('Call run_restore_test with volume "fresh"');
    expect(text).not.toContain('snapguard snapshot create');
    expect(text).not.toContain('snapguard restore-test');
    const structured = result.structuredContent as { findings: { code: string; remedy: string }[] };
    expect(structured.findings.find((f) => f.code === 'NO_SNAPSHOTS')?.remedy).toContain(
      'call create_snapshot',
    );
    const overCli = await cli(configFile, ['health', 'fresh']);
    expect(overCli.stdout).toContain('snapguard snapshot create fresh');
    expect(overCli.stdout).toContain('Run snapguard restore-test fresh');
    expect(overCli.stdout).not.toContain('create_snapshot');
    expect(overCli.stdout).not.toContain('run_restore_test');
  });

  it('OPERATION_NOT_FOUND: the operationId of create_snapshot over MCP, the printed operation id on the CLI', async () => {
    const { mcp, configFile } = await setup('operation', {});
    const unknown = 'op-20200101-000000-abcdef';
    const overMcp = textOf(
      await mcp.call('complete_operation', { operationId: unknown, outcome: 'success' }),
    );
    expect(overMcp).toContain('[OPERATION_NOT_FOUND]');
    expect(overMcp).toContain('the operationId returned by create_snapshot');
    const overCli = await cli(configFile, ['complete', unknown, '--outcome', 'success']);
    expect(overCli.code).toBe(3);
    expect(overCli.stderr).toContain('printed by `snapguard snapshot create` or `snapguard wrap`');
    expect(overCli.stderr).not.toContain('create_snapshot');
  });

  it('file history: an unknown snapshot names list_snapshots arguments over MCP, snapshot list options on the CLI', async () => {
    const { mcp, configFile } = await setup('files', {});
    const missing = 'data-manual-20200101-000000';
    const overMcp = textOf(await mcp.call('diff_snapshots', { volume: 'data', from: missing }));
    expect(overMcp).toContain('[SNAPSHOT_NOT_FOUND]');
    expect(overMcp).toContain(
      'Call list_snapshots with volume "data", location "all" and includeForeign: true',
    );
    expect(overMcp).not.toContain('--all-locations');
    const overCli = await cli(configFile, ['diff', 'data', missing]);
    expect(overCli.code).toBe(3);
    expect(overCli.stderr).toContain('snapguard snapshot list data --all-locations --include-foreign');
  });

  it('recover of an unknown operation: the history resource over MCP, snapguard history on the CLI', async () => {
    const { mcp, configFile } = await setup('recover-operation', {});
    const unknown = 'op-20200101-000000-abcdef';
    const overMcp = textOf(await mcp.call('recover', { operationId: unknown, dryRun: true }));
    expect(overMcp).toContain('[OPERATION_NOT_FOUND]');
    expect(overMcp).toContain(
      'Use the operationId returned by create_snapshot (the snapguard://history resource lists them).',
    );
    expect(overMcp).not.toContain('snapguard history');
    const overCli = await cli(configFile, ['recover', '--operation-id', unknown, '--dry-run']);
    expect(overCli.code).toBe(3);
    expect(overCli.stderr).toContain(
      'Use the operation id printed by `snapguard snapshot create` or `snapguard wrap` (see `snapguard history`).',
    );
    expect(overCli.stderr).not.toContain('create_snapshot');
  });

  it('prune next to an unreadable recovery journal: inspect and remove it, then prune_snapshots over MCP, snapguard prune on the CLI', async () => {
    const { deps, mcp, configFile } = await setup('journal', {
      volumes: { data: { backend: 'btrfs', path: data, retention: { preserve: '1d' } } },
    });
    await createSnapshots(deps, { volumes: ['data'], type: 'manual' });
    await mkdir(join(deps.config.stateDir, 'recovery'), { recursive: true });
    const broken = join(deps.config.stateDir, 'recovery', 'rec-broken.json');
    await writeFile(broken, '{ not json');
    // The state folder is shared by this file's tests: the journal leaves with this test.
    try {
      const overMcp = textOf(await mcp.call('prune_snapshots', { volume: 'data', dryRun: true }));
      expect(overMcp).toContain('[PRECONDITION_FAILED]');
      expect(overMcp).toContain('rec-broken.json on the host and remove it once the volume is in order');
      expect(overMcp).toContain('then call prune_snapshots again.');
      expect(overMcp).not.toContain('snapguard doctor');
      const overCli = await cli(configFile, ['prune', 'data', '--dry-run']);
      expect(overCli.code).toBe(2);
      // doctor cannot replay a journal that does not parse: the CLI says to inspect and remove it.
      expect(overCli.stderr).toContain('rec-broken.json on the host and remove it by hand');
      expect(overCli.stderr).toContain('then run `snapguard prune` again.');
      expect(overCli.stderr).not.toContain('Run `snapguard doctor` to finish');
      expect(overCli.stderr).not.toContain('health_check');
    } finally {
      await rm(broken, { force: true });
    }
  });

  it('a volume path that does not exist: the config resource and recover over MCP, snapguard doctor on the CLI', async () => {
    const { mcp, configFile } = await setup('gone', {
      volumes: { gone: { backend: 'btrfs', path: join(sandbox.pool.mountPoint, 'not-there') } },
    });
    const overMcp = textOf(await mcp.call('create_snapshot', { volumes: ['gone'] }));
    expect(overMcp).toContain('[PATH_MISSING]');
    expect(overMcp).toContain('snapguard://config');
    expect(overMcp).toContain('call list_snapshots, then recover');
    expect(overMcp).not.toContain('snapguard doctor');
    const overCli = await cli(configFile, ['snapshot', 'create', 'gone']);
    expect(overCli.code).toBe(2);
    expect(overCli.stderr).toContain('snapguard doctor checks every configured path');
    expect(overCli.stderr).not.toContain('snapguard://config');
  });

  it('an interrupted recovery in health: create_snapshot over MCP, snapguard doctor on the CLI', async () => {
    const { deps, mcp, configFile } = await setup('unfinished', {});
    const journal = join(deps.config.stateDir, 'recovery', 'rec-20200101-000000-abcdef.json');
    await mkdir(join(deps.config.stateDir, 'recovery'), { recursive: true });
    await writeFile(
      journal,
      JSON.stringify({
        version: 1,
        recoveryId: 'rec-20200101-000000-abcdef',
        mode: 'rollback',
        startedAt: '2020-01-01T00:00:00.000Z',
        pid: 999999,
        reason: null,
        operationId: null,
        items: [
          {
            volume: 'data',
            backend: 'btrfs',
            path: data,
            snapshotDir: join(data, '..', '.snapshots'),
            target: 'data-manual-20200101-000000',
            safety: 'data-pre-recover-20200101-000000',
            paths: [],
            units: [],
            done: [],
            current: 'swap',
          },
        ],
      }),
    );
    try {
      const result = await mcp.call('health_check', { volume: 'data' });
      const finding = (
        result.structuredContent as { findings: { code: string; remedy: string }[] }
      ).findings.find((f) => f.code === 'UNFINISHED_RECOVERY');
      expect(finding?.remedy).toBe(
        'Call create_snapshot with volumes ["data"]: before it snapshots, it completes or reverts the interrupted recovery of that volume.',
      );
      expect(textOf(result)).not.toContain('snapguard doctor');
      const overCli = await cli(configFile, ['health', 'data']);
      expect(overCli.stdout).toContain('Run snapguard doctor to complete or revert it.');
      expect(overCli.stdout).not.toContain('create_snapshot');
    } finally {
      await rm(journal, { force: true });
    }
  });
  it('bad input: call again over MCP, run the command again on the CLI', async () => {
    const { mcp, configFile } = await setup('badinput', {});
    const overMcp = textOf(
      await mcp.call('recover', { volume: 'data', snapshot: 'x', mode: 'files', pathsBase64: ['!!'] }),
    );
    expect(overMcp).toContain('[BAD_INPUT]');
    expect(overMcp).toContain('find_deleted');
    expect(overMcp).not.toContain('snapguard deleted');
    const overCli = await cli(configFile, ['snapshot', 'create', 'Bad/Id']);
    expect(overCli.code).not.toBe(0);
    // The CLI quotes the value given, not the tool's field (volumes.0) or its name.
    expect(overCli.stderr).toContain('Invalid value: "Bad/Id": volume ids are lowercase');
    expect(overCli.stderr).not.toContain('create_snapshot');
    expect(overCli.stderr).not.toContain('volumes.0');
    const badOverMcp = textOf(await mcp.call('create_snapshot', { volumes: ['Bad/Id'] }));
    expect(badOverMcp).toContain('create_snapshot');
    expect(badOverMcp).toContain('volume ids are lowercase');
    expect(overCli.stderr).toContain('run the command again');
    expect(overCli.stderr).not.toContain('call again');
    const base64Cli = await cli(configFile, ['recover', 'data', 'x', '--files-base64', '!!']);
    expect(base64Cli.stderr).toContain('snapguard deleted --json');
    expect(base64Cli.stderr).not.toContain('find_deleted');
  });

  it('plan warnings: tool names from plan_strategy, verbs from snapguard plan; orchestrate is part of this build', async () => {
    const { mcp, configFile } = await setup('plan', {});
    const input = {
      hostType: 'server',
      volumes: [{ path: '/srv/db', size: '10G', tier: 'critical', id: 'db' }],
      disk: { size: '1T', free: '500G' },
      remote: true,
      targets: { critical: { rpo: '15m' } },
      verifyUnits: false,
    };
    const overMcp = (await mcp.call('plan_strategy', input)).structuredContent as { warnings: string[] };
    const mcpWarnings = overMcp.warnings.join('\n');
    expect(mcpWarnings).toContain('create_snapshot before it');
    expect(mcpWarnings).not.toContain('snapguard ');
    expect(mcpWarnings).not.toContain('orchestrate');
    const overCli = await cli(configFile, [
      'plan',
      '--host-type',
      'server',
      '--volume',
      '/srv/db:10G:critical:db',
      '--disk-size',
      '1T',
      '--disk-free',
      '500G',
      '--remote',
      '--rpo',
      'critical=15m',
      '--no-verify',
      '--json',
    ]);
    // Exit 1: the plan has a warning (the RPO below the hourly timer).
    expect(overCli.code).toBe(1);
    const plan = JSON.parse(overCli.stdout) as { warnings: string[]; units: { name: string }[] };
    const cliWarnings = plan.warnings.join('\n');
    expect(cliWarnings).toContain('`snapguard wrap -- COMMAND`');
    expect(cliWarnings).not.toContain('create_snapshot');
    expect(cliWarnings).not.toContain('orchestrate');
    // The restore drill and the remote copy are scheduled by snapguard plan too.
    expect(plan.units.map((u) => u.name)).toEqual(
      expect.arrayContaining([expect.stringContaining('restore-test'), expect.stringContaining('backup')]),
    );
  });
  it('recover without a snapshot, or a path the snapshot lacks: tool names over MCP, verbs on the CLI', async () => {
    const { deps, mcp, configFile } = await setup('recoverhints', {});
    const snapshot = (await createSnapshots(deps, { volumes: ['data'], type: 'manual' })).created[0]!.name;
    const cases: [Record<string, unknown>, string[], string, string][] = [
      [{ volume: 'data' }, ['recover', 'data'], 'call list_snapshots', 'snapguard snapshot list VOLUME'],
      [
        { volume: 'data', mode: 'files', destination: 'beside', paths: ['file'] },
        ['recover', 'data', '--files', 'file', '--beside'],
        'list_snapshots (or file_versions)',
        '`snapguard versions VOLUME PATH`',
      ],
      [
        { volume: 'data', snapshot, mode: 'files', destination: 'beside', paths: ['nope'] },
        ['recover', 'data', snapshot, '--files', 'nope', '--beside'],
        'file_versions or find_deleted',
        '`snapguard versions` or `snapguard deleted`',
      ],
    ];
    for (const [args, argv, mcpWords, cliWords] of cases) {
      const overMcp = textOf(await mcp.call('recover', args));
      expect(overMcp).toContain('[BAD_INPUT]');
      expect(overMcp).toContain(mcpWords.replace('call ', ''));
      expect(overMcp).not.toContain('snapguard ');
      const overCli = await cli(configFile, argv);
      expect(overCli.code).not.toBe(0);
      expect(overCli.stderr).toContain(cliWords);
      expect(overCli.stderr).not.toMatch(/list_snapshots|file_versions|find_deleted/);
    }
  });

  it('a volume that changed while a recovery waited for its confirmation: list_snapshots over MCP, snapguard verbs on the CLI', async () => {
    const { deps } = await setup('waited', {});
    const snapshot = (await createSnapshots(deps, { volumes: ['data'], type: 'manual' })).created[0]!.name;
    const error = (await recover(
      deps,
      { volume: 'data', snapshot, mode: 'files', paths: ['file'] },
      {
        confirm: async () => {
          // The user took a while: the file changed in the meantime.
          await writeFile(join(data, 'file'), 'changed while waiting');
          return true;
        },
      },
    ).catch((caught: unknown) => caught)) as SnapguardError;
    expect(error.code).toBe('CONFIRMATION_INVALID');
    expect(error.hintFor('mcp')).toContain('list_snapshots');
    expect(error.hintFor('mcp')).not.toContain('snapguard ');
    expect(error.hintFor('cli')).toContain('`snapguard snapshot list`');
    expect(error.hintFor('cli')).not.toContain('list_snapshots');
  });

  it('a folder where one file is asked for: file_versions and diff_snapshots over MCP, snapguard versions and diff on the CLI', async () => {
    const { deps, mcp, configFile } = await setup('folder', {});
    await mkdir(join(data, 'conf.d'), { recursive: true });
    await writeFile(join(data, 'conf.d', 'a.conf'), 'a\n');
    const snapshot = (await createSnapshots(deps, { volumes: ['data'], type: 'manual' })).created[0]!.name;
    const overMcp = textOf(
      await mcp.call('read_snapshot_file', { volume: 'data', snapshot, path: 'conf.d' }),
    );
    expect(overMcp).toContain('[BAD_INPUT] path: "conf.d" is a folder, not a file.');
    expect(overMcp).toContain('use file_versions or diff_snapshots to look at folders');
    expect(overMcp).not.toContain('snapguard ');
    const overCli = await cli(configFile, ['cat', 'data', snapshot, 'conf.d']);
    expect(overCli.code).toBe(3);
    expect(overCli.stderr).toContain('path: "conf.d" is a folder, not a file.');
    expect(overCli.stderr).toContain(
      `\`snapguard versions data conf.d\` or \`snapguard diff data ${snapshot} -- conf.d\``,
    );
    expect(overCli.stderr).not.toMatch(/file_versions|diff_snapshots/);
  });
});
