import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildConfig, type ConfigInput } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { healthCheck } from '../../src/core/health/index.js';
import { silentLogger } from '../../src/core/logger.js';
import { planPrune } from '../../src/core/retention/prune.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';
import { runBuiltCli } from '../helpers/cli.js';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

/** Runs the CLI and reports how it ended (the fault switch kills it with SIGKILL). */
/** The fault switch kills the CLI with SIGKILL: signal says so. */
const snapguard = (args: string[], env: Record<string, string>) =>
  runBuiltCli(args, { env, timeoutMs: 60_000 });

describe.runIf(enabled)('an interrupted recovery is seen by health_check and protected from prune', () => {
  let box: BtrfsSandbox;
  let deps: Deps;
  let target: string;

  beforeAll(async () => {
    box = await createBtrfsSandbox(256, 'unfinished');
    const path = await box.subvolume('data');
    await writeFile(join(path, 'conf.yml'), 'good: true\n');
    const input: ConfigInput = {
      contextDir: join(box.dir, 'context'),
      stateDir: join(box.dir, 'state'),
      host: 'test-host',
      confirm: 'never',
      // Keep only the newest snapshot: the recovery's target would be pruned if nothing protected it.
      volumes: { data: { backend: 'btrfs', path, retention: { preserveMin: 'latest' } } },
    };
    const configFile = join(box.dir, 'snapguard.yaml');
    await writeFile(configFile, stringify(input));
    deps = createDeps(buildConfig(input, box.dir), { logger: silentLogger() });
    target = (await createSnapshots(deps, { volumes: ['data'], type: 'pre-change' })).created[0]!.name;
    await createSnapshots(deps, { volumes: ['data'], type: 'manual' });
    await writeFile(join(path, 'conf.yml'), 'good: false\n');
    const killed = await snapguard(['recover', 'data', target, '--yes', '--config', configFile], {
      SNAPGUARD_TEST_FAULT: 'after:restore',
    });
    expect(killed.signal).toBe('SIGKILL');
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('health_check reports the unfinished recovery as CRITICAL with the step it stopped at', async () => {
    const result = await healthCheck(deps, {});
    const finding = result.findings.find((f) => f.code === 'UNFINISHED_RECOVERY');
    expect(finding).toMatchObject({
      severity: 'critical',
      volume: 'data',
      message: expect.stringContaining('stopped at step'),
    });
    expect(result.overall).toBe('CRITICAL');
  });

  it('prune keeps the snapshot being restored and the safety snapshot, saying why', async () => {
    const plan = await planPrune(deps, [deps.config.volumes.data!], 'local');
    const verdicts = plan.targets.flatMap((t) => t.verdicts);
    const held = verdicts.filter((v) => v.protectedBy.includes('unfinished-recovery'));
    expect(held.map((v) => v.name)).toContain(target);
    expect(held.some((v) => v.name.startsWith('data-pre-recover-'))).toBe(true);
    for (const verdict of held) {
      expect(verdict.action).toBe('keep');
      expect(verdict.reason).toContain('referenced by an unfinished recovery');
    }
  });

  it('the next create_snapshot completes the interrupted recovery first and says so (guardrail 6)', async () => {
    const created = await createSnapshots(deps, { volumes: ['data'], type: 'manual' });
    expect(created.created).toHaveLength(1);
    expect(created.warnings.join('\n')).toMatch(/Interrupted recovery rec-[\w-]+ of data: completed/);
    expect((await healthCheck(deps, {})).findings.some((f) => f.code === 'UNFINISHED_RECOVERY')).toBe(false);
    const { history } = await deps.history.read();
    expect(history.recoveries.at(-1)).toMatchObject({ subvolume: 'data', restored_snapshot: target });
    expect(await readFile(join(deps.config.volumes.data!.path, 'conf.yml'), 'utf8')).toBe('good: true\n');
  });
});
