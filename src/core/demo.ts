import { lstat, mkdtemp, mkdir, readdir, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { createExec, type Exec } from '../system/exec.js';
import { canUseLoopBtrfs, releaseLoopMount } from '../system/loop.js';
import { createSandboxPool, type SandboxPool } from '../system/loop-sandbox.js';
import { readMounts } from '../system/mounts.js';
import { SnapguardError } from './errors.js';
import { buildConfig } from './config.js';
import { createDeps, type Deps } from './deps.js';
import type { History } from './history/schema.js';
import { silentLogger } from './logger.js';
import { completeOperation, createSnapshots, listSnapshots } from './snapshots.js';
import { runRestoreTest } from './restore-test/index.js';
import { healthCheck } from './health/index.js';
import { runWrap } from './wrap.js';

export type DemoBackend = 'btrfs' | 'dir';

export interface DemoOptions {
  backend?: DemoBackend | 'auto';
  /** Leave the sandbox in place and say where it is. */
  keep?: boolean;
  exec?: Exec;
}

export interface DemoStep {
  title: string;
  lines: string[];
}

export interface DemoResult {
  backend: DemoBackend;
  sandbox: string;
  kept: boolean;
  /** With keep: the configuration of the sandbox, to continue with. */
  config?: string;
  /** With keep: commands to continue with the sandbox. */
  next?: string[];
  /** With keep: how to remove the sandbox (the snapguard verb, then the same by hand). */
  cleanup?: string[];
  operationId: string;
  snapshots: string[];
  history: History;
  ok: boolean;
}

const sampleFiles: Record<string, string> = {
  'immich/docker-compose.yml':
    'services:\n  immich-server:\n    image: ghcr.io/immich-app/immich-server:v1.120.0\n    ports: ["2283:2283"]\n',
  'immich/.env': 'UPLOAD_LOCATION=/mnt/pool/photos\nDB_PASSWORD=demo-only\n',
  'jellyfin/config/system.xml': '<ServerConfiguration><EnableUPnP>false</EnableUPnP></ServerConfiguration>\n',
  'traefik/traefik.yml': 'entryPoints:\n  websecure:\n    address: ":443"\n',
};

/**
 * The whole story on a throwaway sandbox: a loop-mounted btrfs image when root and btrfs-progs
 * are there, otherwise copy-based snapshots in a temp folder. Everything is removed afterwards.
 */
export async function runDemo(options: DemoOptions, report: (step: DemoStep) => void): Promise<DemoResult> {
  const exec = options.exec ?? createExec();
  const { backend, why } = await chooseBackend(options, exec);
  const sandbox = await mkdtemp(join(tmpdir(), 'snapguard-demo-'));
  let pool: SandboxPool | undefined;
  const onSignal = () => undefined; // keep the process alive until cleanup below has run
  process.on('SIGINT', onSignal);
  try {
    pool = await createSandboxPool(exec, sandbox, backend);
    const volumePath = await pool.volume('containers');
    report({ title: `Sandbox (${backend})`, lines: [`${sandbox}`, `backend: ${backend} (${why})`] });

    await writeSampleData(volumePath, report);

    const rawConfig = {
      contextDir: join(sandbox, 'context'),
      stateDir: join(sandbox, 'state'),
      host: 'demo-host',
      confirm: 'never',
      volumes: { containers: { backend, path: volumePath, tier: 'critical', minInterval: '1h' } },
    };
    const config = buildConfig(rawConfig, sandbox);
    const deps: Deps = createDeps(config, { exec, logger: silentLogger() });

    await placeForeignSnapshot(deps, volumePath, pool);
    const run: DemoRun = { deps, backend, volumePath, report };

    const { created, unchanged, again } = await snapshotSteps(run);
    const { listed, completed } = await listAndComplete(run, created.operationId);
    const { wrapped, restored, goodCompose } = await wrapStep(run);
    const tested = await checkSteps(run);
    const history = await historyStep(run);

    const ok =
      created.created.length === 1 &&
      // Unchanged since the first snapshot: reused where the backend can tell (btrfs), taken anew otherwise.
      again.skipped.length === (unchanged ? 1 : 0) &&
      listed.snapshots.some((s) => !s.owned) &&
      completed.snapshots[0]?.outcome === 'success' &&
      wrapped.failure === 'validation-failed' &&
      wrapped.rollback?.status === 'recovered' &&
      restored === goodCompose &&
      history.recoveries.some((e) => e.reason === 'validation-failed' && e.outcome === 'success') &&
      tested.overall === 'PASS' &&
      history.restore_tests.length === 1;
    const kept = options.keep
      ? await keepSandbox(sandbox, backend, pool, rawConfig, created.created[0]!.name)
      : {};
    return {
      backend,
      sandbox,
      kept: Boolean(options.keep),
      ...kept,
      operationId: created.operationId,
      snapshots: listed.snapshots.map((s) => s.name),
      history,
      ok,
    };
  } finally {
    process.off('SIGINT', onSignal);
    if (!options.keep) {
      await pool?.cleanup();
      await rm(sandbox, { recursive: true, force: true });
    }
  }
}

/** btrfs or dir: the one asked for, else btrfs where a loop image can be made. */
async function chooseBackend(
  options: DemoOptions,
  exec: Exec,
): Promise<{ backend: DemoBackend; why: string }> {
  if (options.backend !== undefined && options.backend !== 'auto')
    return { backend: options.backend, why: 'chosen with --backend' };
  const probe = await canUseLoopBtrfs(exec);
  return {
    backend: probe.ok ? 'btrfs' : 'dir',
    why: probe.ok ? probe.reason : `${probe.reason}, so copy-based snapshots stand in`,
  };
}

async function writeSampleData(volumePath: string, report: (step: DemoStep) => void): Promise<void> {
  for (const [rel, content] of Object.entries(sampleFiles)) {
    await mkdir(join(volumePath, rel, '..'), { recursive: true });
    await writeFile(join(volumePath, rel), content);
  }
  report({ title: 'Sample data', lines: Object.keys(sampleFiles).map((rel) => `containers/${rel}`) });
}

/** Another tool's snapshot in the same folder: listed as foreign, never touched. */
async function placeForeignSnapshot(deps: Deps, volumePath: string, pool: SandboxPool): Promise<void> {
  const foreign = join(deps.config.volumes.containers!.snapshotDir, 'containers.20261120T0200');
  await mkdir(deps.config.volumes.containers!.snapshotDir, { recursive: true });
  await pool.foreignSnapshot(volumePath, foreign);
}

interface DemoRun {
  deps: Deps;
  backend: DemoBackend;
  volumePath: string;
  report: (step: DemoStep) => void;
}

/** A pre-deploy snapshot, a second one right after, and a change to the live volume. */
async function snapshotSteps({ deps, backend, volumePath, report }: DemoRun) {
  const created = await createSnapshots(deps, {
    volumes: ['containers'],
    type: 'pre-deploy',
    operation: 'deploy-immich',
  });
  report({
    title: 'Pre-deploy snapshot (create_snapshot)',
    lines: [
      `operation ${created.operationId}`,
      ...created.created.map((s) => `created ${s.name} (read-only: ${s.readOnly})`),
    ],
  });

  // Whether the backend tells that nothing changed since the first snapshot (then it is reused).
  const volume = deps.config.volumes.containers!;
  const storage = deps.backendFor(volume);
  const first = await storage.show(volume, created.created[0]!.name);
  const unchanged = first ? ((await storage.unchangedSince?.(volume, first)) ?? false) : false;
  const again = await createSnapshots(deps, {
    volumes: ['containers'],
    type: 'pre-deploy',
    operation: 'deploy-immich',
  });
  report({
    title: 'A second pre-deploy snapshot right after (minInterval 1h)',
    lines: [
      ...again.skipped.map((s) => `no new snapshot of ${s.volume}: ${s.reason}`),
      ...again.created.map(
        (s) =>
          `created ${s.name}: a ${backend} volume cannot tell whether it changed, so every pre-change snapshot is taken`,
      ),
    ],
  });

  await writeFile(
    join(volumePath, 'immich/docker-compose.yml'),
    sampleFiles['immich/docker-compose.yml']!.replace('v1.120.0', 'v1.121.0'),
  );
  const snapshotCopy = await readFile(join(created.created[0]!.path, 'immich/docker-compose.yml'), 'utf8');
  report({
    title: 'The deployment changes the live volume; the snapshot keeps the old state',
    lines: [
      `live:     ${(await readFile(join(volumePath, 'immich/docker-compose.yml'), 'utf8')).split('\n')[2]!.trim()}`,
      `snapshot: ${snapshotCopy.split('\n')[2]!.trim()}`,
    ],
  });
  return { created, unchanged, again };
}

/** list_snapshots with the foreign one, then complete_operation. */
async function listAndComplete({ deps, report }: DemoRun, operationId: string) {
  const listed = await listSnapshots(deps, { includeForeign: true });
  report({
    title: 'list_snapshots (includeForeign)',
    lines: listed.snapshots.map(
      (s) => `${s.name.padEnd(52)} ${s.owned ? 'owned  ' : 'foreign'} ${s.type ?? '-'}`,
    ),
  });

  const completed = await completeOperation(deps, {
    operationId,
    outcome: 'success',
    notes: 'demo deployment validated',
  });
  report({ title: 'complete_operation', lines: completed.snapshots.map((s) => `${s.name}: ${s.outcome}`) });
  return { listed, completed };
}

/** A deployment that breaks files: wrap snapshots, runs it, validation fails, auto-rollback. */
async function wrapStep({ deps, volumePath, report }: DemoRun) {
  const compose = join(volumePath, 'immich/docker-compose.yml');
  const goodCompose = await readFile(compose, 'utf8');
  const breakScript = `require('fs').writeFileSync(${JSON.stringify(compose)}, 'services:\\n  immich-server:\\n    image: ghcr.io/immich-app/immich-server:v1.122.0\\n    ports: [\\n');`;
  const checkScript = `process.exit(require('fs').readFileSync(${JSON.stringify(compose)}, 'utf8').includes('ports: ["2283:2283"]') ? 0 : 1)`;
  const wrapped = await runWrap(deps, {
    volumes: ['containers'],
    operation: 'deploy-immich-v1.122',
    deploy: true,
    force: true,
    command: [process.execPath, '-e', breakScript],
    validate: [process.execPath, '-e', checkScript],
    autoRollback: true,
  });
  const restored = await readFile(compose, 'utf8');
  report({
    title: 'snapguard wrap --deploy --auto-rollback: the deployment breaks the compose file',
    lines: [
      `snapshot: ${wrapped.snapshots.map((s) => s.name).join(', ')}`,
      `command exit ${wrapped.command.exitCode}; validation ${wrapped.validation?.ok ? 'passed' : `failed (exit ${wrapped.validation?.exitCode})`}`,
      `auto-rollback: ${wrapped.rollback?.message ?? wrapped.rollbackError?.message ?? 'none'}`,
      `restored immich/docker-compose.yml:`,
      ...restored
        .trimEnd()
        .split('\n')
        .map((line) => `  ${line}`),
    ],
  });
  return { wrapped, restored, goodCompose };
}

/** run_restore_test and health_check on the sandbox. */
async function checkSteps({ deps, report }: DemoRun) {
  const tested = await runRestoreTest(deps, {
    volume: 'containers',
    mode: 'sample',
    sampleSize: 10,
    seed: 1,
  });
  report({
    title: 'run_restore_test: restore a sample of the newest snapshot by reading it, then verify every file',
    lines: tested.results.map(
      (r) =>
        `${r.snapshot}: ${r.outcome}, ${r.filesChecked} of ${r.population} files (sha256, mode, owner, mtime, xattrs, symlinks), ${r.bytesRestored} bytes in ${r.durationSeconds.toFixed(2)} s`,
    ),
  });

  const health = await healthCheck(deps, {});
  report({
    title: `health_check: ${health.overall}`,
    lines: health.findings.map((f) => `${f.severity.padEnd(8)} ${f.code}: ${f.message}`),
  });
  return tested;
}

/** Every history entry the demo wrote, oldest first. */
async function historyStep({ deps, report }: DemoRun): Promise<History> {
  const { history } = await deps.history.read();
  const rows = [
    ...history.snapshots.map((e) => ({
      at: e.timestamp,
      line: `snapshot  ${e.timestamp}  ${e.subvolume}  ${e.type}  ${e.operation ?? '-'}  ${e.snapshot_name}  ${e.outcome}`,
    })),
    ...history.recoveries.map((e) => ({
      at: e.timestamp,
      line: `recovery  ${e.timestamp}  ${e.subvolume}  ${e.mode} to ${e.restored_snapshot}  reason ${e.reason ?? '-'}  ${e.outcome}  safety ${e.safety_backup ?? '-'}`,
    })),
    ...history.restore_tests.map((e) => ({
      at: e.timestamp,
      line: `restore   ${e.timestamp}  ${e.subvolume}  ${e.mode} test of ${e.snapshot}  ${e.files_checked} files  ${e.outcome}`,
    })),
  ].sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0));
  report({ title: `History (${deps.history.file})`, lines: rows.map((row) => row.line) });
  return history;
}

/** Marks a kept sandbox: `demo --clean` removes only folders that carry it. */
const MARKER = 'snapguard-demo.json';

interface SandboxMarker {
  backend: DemoBackend;
  image?: string;
  mountPoint?: string;
}

/** Leaves a configuration to continue with (confirmations as on a real host) and says what to run next. */
async function keepSandbox(
  sandbox: string,
  backend: DemoBackend,
  pool: SandboxPool,
  rawConfig: Record<string, unknown>,
  snapshot: string,
): Promise<Pick<DemoResult, 'config' | 'next' | 'cleanup'>> {
  const marker: SandboxMarker =
    pool.image && pool.mountPoint ? { backend, image: pool.image, mountPoint: pool.mountPoint } : { backend };
  await writeFile(join(sandbox, MARKER), `${JSON.stringify(marker)}\n`);
  const file = join(sandbox, 'snapguard.yaml');
  const { confirm: _demoOnly, ...config } = rawConfig;
  await writeFile(
    file,
    `# The configuration of a sandbox kept by \`snapguard demo --keep\`; remove it with \`snapguard demo --clean ${sandbox}\`.\n${toYaml(config)}`,
  );
  return {
    config: file,
    next: [
      `snapguard snapshot list --config ${file} --include-foreign`,
      `snapguard history --config ${file}`,
      `snapguard snapshot create containers --type manual --operation try-it --config ${file}`,
      `snapguard recover containers ${snapshot} --files immich/docker-compose.yml --dry-run --config ${file}`,
      `snapguard health --config ${file}`,
    ],
    cleanup: [
      `snapguard demo --clean ${sandbox}`,
      ...(pool.mountPoint ? [`umount ${pool.mountPoint}`] : []),
      `rm -rf ${sandbox}`,
    ],
  };
}

/** Kept demo sandboxes in the temp folder (those with the marker). */
export async function keptSandboxes(): Promise<string[]> {
  const base = tmpdir();
  const names = await readdir(base).catch(() => [] as string[]);
  const found: string[] = [];
  for (const name of names.filter((n) => n.startsWith('snapguard-demo-')).sort()) {
    const dir = join(base, name);
    if (
      await lstat(join(dir, MARKER)).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      found.push(dir);
  }
  return found;
}

/**
 * Removes a sandbox kept by `demo --keep`: unmounts its image (and detaches a loop device still
 * bound to it), then removes the folder. Refuses folders without the marker.
 */
export async function cleanDemoSandbox(sandbox: string, exec: Exec = createExec()): Promise<void> {
  const dir = resolve(sandbox);
  let marker: SandboxMarker;
  try {
    if (!basename(dir).startsWith('snapguard-demo-')) throw new Error('not a demo folder name');
    marker = JSON.parse(await readFile(join(dir, MARKER), 'utf8')) as SandboxMarker;
  } catch {
    throw new SnapguardError(
      'BAD_INPUT',
      `${dir} is not a sandbox kept by snapguard demo --keep (it has no ${MARKER}); nothing was removed.`,
      'Name a folder printed by `snapguard demo --keep`, or run `snapguard demo --clean` without a folder to remove every kept sandbox.',
    );
  }
  if (marker.image && marker.mountPoint) {
    const inside = (p: string) => p.startsWith(`${dir}/`);
    if (inside(marker.image) && inside(marker.mountPoint)) {
      await releaseLoopMount(exec, marker.image, marker.mountPoint);
      if (readMounts().some((entry) => entry.mountPoint === marker.mountPoint))
        throw new SnapguardError(
          'BUSY',
          `${marker.mountPoint} is still mounted; nothing was removed.`,
          `Close what uses it (fuser -vm ${marker.mountPoint}), then run snapguard demo --clean ${dir} again.`,
        );
    }
  }
  await rm(dir, { recursive: true, force: true });
}
