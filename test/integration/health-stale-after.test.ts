import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/core/config.js';
import { healthCheck } from '../../src/core/health/index.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireBuiltCli, runBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.runIf(enabled)('health.staleAfter names only the tiers it changes (real btrfs)', () => {
  let sandbox: BtrfsSandbox;
  let db: string;
  let media: string;

  beforeAll(async () => {
    requireBuiltCli();
    sandbox = await createBtrfsSandbox(256, 'stale');
    db = await sandbox.subvolume('db');
    media = await sandbox.subvolume('media');
    await writeFile(join(db, 'dump.sql'), 'x');
    await writeFile(join(media, 'photo.jpg'), 'y');
  }, 120_000);
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  const withPaths = (): ConfigInput => ({
    health: { staleAfter: { critical: { warn: '2h', crit: '6h' } } },
    volumes: {
      db: { backend: 'btrfs', path: db, tier: 'critical' },
      media: { backend: 'btrfs', path: media, tier: 'standard' },
    },
  });

  it('the CLI accepts a config that overrides one tier', async () => {
    const deps = sandbox.deps(withPaths());
    const configFile = join(sandbox.dir, 'snapguard.yaml');
    await writeFile(
      configFile,
      stringify({ contextDir: deps.config.contextDir, stateDir: deps.config.stateDir, ...withPaths() }),
    );
    const result = await runBuiltCli(['health', '--json', '--config', configFile], {
      env: { SNAPGUARD_CONFIG: '' },
    });
    expect(result.stderr).not.toContain('staleAfter');
    expect(JSON.parse(result.stdout)).toHaveProperty('overall');
  });

  it('the named tier uses its thresholds, the others keep the built-in ones', async () => {
    const deps = sandbox.deps(withPaths());
    await createSnapshots(deps, { volumes: ['db', 'media'], type: 'manual' });
    // Three hours later: past the configured 2h warning for critical, far from the built-in 8 days for standard.
    const later = new Date(Date.now() + 3 * 3600 * 1000);
    const report = await healthCheck(sandbox.deps(withPaths(), { clock: () => later }), {});
    const stale = report.findings.filter((finding) => finding.code === 'SNAPSHOT_STALE');
    expect(stale.map((finding) => [finding.volume, finding.severity])).toEqual([['db', 'warning']]);
  });
});
