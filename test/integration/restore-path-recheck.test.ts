import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { SnapguardError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import { recover } from '../../src/core/recovery/recover.js';
import type { ServiceDriver } from '../../src/core/recovery/services.js';
import { createSnapshots } from '../../src/core/snapshots.js';

// The dir backend on a plain folder: no root needed. The service driver is a stand-in (no systemd
// here is needed for what is tested): its stop() is the moment between the plan and the copy, when
// another process plants a symlink on the way of a restored path.
describe('restore paths are checked again when they are used', () => {
  let dir: string;
  let volume: string;
  let outside: string;
  let deps: Deps;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-recheck-'));
    volume = join(dir, 'pool', 'data');
    outside = join(dir, 'outside');
    await mkdir(join(volume, 'conf'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(volume, 'conf', 'app.yml'), 'good: true\n');
    deps = createDeps(
      buildConfig(
        {
          contextDir: 'ctx',
          stateDir: 'state',
          confirm: 'never',
          volumes: { data: { backend: 'dir', path: 'pool/data', services: { units: ['app.service'] } } },
        },
        dir,
      ),
      { logger: silentLogger() },
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a symlink planted on the way after the plan (while services stop) is refused; nothing is written outside the volume', async () => {
    const snapshot = (await createSnapshots(deps, { volumes: ['data'], type: 'pre-change' })).created[0]!;
    await writeFile(join(volume, 'conf', 'app.yml'), 'good: false\n');
    const driver: ServiceDriver = {
      stop: async () => {
        await rename(join(volume, 'conf'), join(volume, 'conf-moved'));
        await symlink(outside, join(volume, 'conf'));
      },
      start: async () => undefined,
      isActive: async () => true,
      show: async () => ({ activeState: 'active', subState: 'running', result: 'success' }),
      journal: async () => [],
    };
    const attempt = recover(
      deps,
      { volume: 'data', snapshot: snapshot.name, mode: 'files', paths: ['conf/app.yml'], reason: 'test' },
      { services: () => driver, skipChanges: true },
    );
    await expect(attempt).rejects.toBeInstanceOf(SnapguardError);
    await expect(attempt).rejects.toThrow(/symlink/);
    expect(existsSync(join(outside, 'app.yml'))).toBe(false);
    expect(await readFile(join(volume, 'conf-moved', 'app.yml'), 'utf8')).toBe('good: false\n');
  });
});
