import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { HistoryStore } from '../../src/core/history/store.js';
import { silentLogger } from '../../src/core/logger.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist', 'cli', 'index.js');
const CHROMIUM = '/usr/bin/chromium';
const enabled = requireComponents(['btrfs', 'mkfs.btrfs', CHROMIUM]);
const INJECTED = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

describe.runIf(enabled)('snapguard report --html, opened in headless Chromium', () => {
  let sandbox: BtrfsSandbox;
  let configFile: string;
  let reportFile: string;
  let profileDir: string;
  let context: BrowserContext;
  let page: Page;
  const requests: string[] = [];
  const pageErrors: string[] = [];
  let healthOf: Record<string, string> = {};

  const snapguard = (...args: string[]) =>
    run(process.execPath, [cli, ...args, '--config', configFile], { cwd: sandbox.dir, timeout: 120_000 });

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(512, 'report');
    const containers = await sandbox.subvolume('containers');
    const media = await sandbox.subvolume('media');
    for (let i = 0; i < 20; i++)
      await writeFile(join(containers, `file-${i}.txt`), `content ${i}\n`.repeat(200));
    await writeFile(join(media, 'movie.mkv'), 'x'.repeat(10_000));
    configFile = join(sandbox.dir, 'snapguard.yaml');
    await writeFile(
      configFile,
      stringify({
        contextDir: 'context',
        stateDir: 'state',
        host: 'nas-report',
        volumes: {
          containers: { backend: 'btrfs', path: containers, tier: 'critical' },
          media: { backend: 'btrfs', path: media, tier: 'standard' },
        },
      }),
    );
    // Real history: snapshots, a sample and a full restore test made by the CLI.
    await snapguard(
      'snapshot',
      'create',
      'containers',
      'media',
      '--type',
      'pre-deploy',
      '--operation',
      'deploy-immich',
    );
    await snapguard('snapshot', 'create', 'containers', '--type', 'manual');
    await snapguard('restore-test', 'containers', '--sample-size', '5');
    await snapguard('restore-test', 'containers', '--full');
    // Recoveries and orchestrations come from other verbs; these two entries are written through the
    // history store as a fixture, one of them with markup in a user-given reason.
    const store = new HistoryStore({
      contextDir: join(sandbox.dir, 'context'),
      liveEntries: 1000,
      logger: silentLogger(),
      clock: () => new Date(),
    });
    await store.update((history) => {
      const snapshot = history.snapshots.find((s) => s.subvolume === 'media')!;
      history.recoveries.push({
        id: 'rec-fixture-1',
        timestamp: new Date().toISOString(),
        subvolume: 'media',
        restored_snapshot: snapshot.snapshot_name,
        mode: 'rollback',
        paths: [],
        reason: INJECTED,
        duration_seconds: 4.2,
        outcome: 'success',
        safety_backup: 'media-pre-recover-20261121-000000',
      });
      history.orchestrations.push({
        id: 'orch-fixture-1',
        timestamp: new Date().toISOString(),
        exit_code: 1,
        stages: [
          { name: 'snapshots', status: 'ok' },
          { name: 'restic', status: 'failed' },
        ],
        duration_seconds: 75,
      });
    });
    // A real health check records one pool reading per volume (exit 1 or 2 for findings is fine here).
    await snapguard('health').catch((error: { code?: number }) => {
      if (error.code !== 1 && error.code !== 2) throw error;
    });
    const health = JSON.parse(
      (await snapguard('health', '--json', '--no-record').catch((e: { stdout: string }) => e)).stdout,
    ) as { volumes: { volume: string; status: string }[] };
    healthOf = Object.fromEntries(health.volumes.map((v) => [v.volume, v.status]));
    reportFile = join(sandbox.dir, 'report.html');
    await snapguard('report', '--html', reportFile);

    profileDir = await mkdtemp(join(sandbox.dir, 'chromium-profile-'));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await context.newPage();
    page.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(pathToFileURL(reportFile).href);
  });
  afterAll(async () => {
    await context?.close();
    await sandbox?.cleanup();
    if (profileDir) await rm(profileDir, { recursive: true, force: true });
  });

  it('is one self-contained file: nothing but the file itself is requested, no script errors', async () => {
    expect(requests).toEqual([pathToFileURL(reportFile).href]);
    expect(pageErrors).toEqual([]);
    const html = await readFile(reportFile, 'utf8');
    expect(html).not.toMatch(/<link |src="http|href="http|@import/);
  });

  it('shows the host, the counts and one summary row per volume', async () => {
    expect(await page.title()).toBe('snapguard report: nas-report');
    expect(await page.locator('#count-snapshots b').textContent()).toBe('3');
    expect(await page.locator('#count-recoveries b').textContent()).toBe('1');
    expect(await page.locator('#count-restore-tests b').textContent()).toBe('2');
    expect(await page.locator('#count-orchestrations b').textContent()).toBe('1');
    const rows = page.locator('#volumes tbody tr');
    expect(await rows.count()).toBe(2);
    const containers = await rows.nth(0).locator('td').allTextContents();
    expect(containers[0]).toBe('containers');
    expect(containers[1]).toBe('2');
    expect(containers[2]).toBe('pending 2');
    expect(containers[5]).toMatch(/^PASS /);
    expect(containers[6]).toMatch(/\d+(\.\d)? (ms|s|min)/);
    const media = await rows.nth(1).locator('td').allTextContents();
    expect(media.slice(0, 2)).toEqual(['media', '1']);
    expect(media[4]).toBe('1');
    expect(media[5]).toBe('never');
    expect(containers[7]).toMatch(new RegExp(`^${healthOf.containers} pool \\d+%$`));
    expect(media[7]).toMatch(new RegExp(`^${healthOf.media} pool \\d+%$`));
  });

  it('draws the timeline with one mark per entry and the restore chart with a bar per test', async () => {
    expect(await page.locator('#timeline circle').count()).toBe(7);
    expect(await page.locator('#timeline circle.snapshot').count()).toBe(3);
    expect(await page.locator('#timeline circle.recovery.ok').count()).toBe(1);
    expect(await page.locator('#timeline circle.restore-test.ok').count()).toBe(2);
    expect(await page.locator('#timeline circle.orchestration.neutral').count()).toBe(1);
    const box = await page.locator('#timeline').boundingBox();
    expect(box!.width).toBeGreaterThan(300);
    expect(await page.locator('#restore-chart rect.bar').count()).toBe(2);
    expect(await page.locator('#restore-chart line.rto').count()).toBe(1);
    const tooltip = await page.locator('#timeline circle.orchestration title').textContent();
    expect(tooltip).toContain('restic: failed');
  });

  it('shows text from the history as text: markup in a recovery reason is not run', async () => {
    expect(
      await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned),
    ).toBeUndefined();
    const rows = await page.locator('#events tbody tr').allTextContents();
    expect(rows.some((r) => r.includes(INJECTED))).toBe(true);
    expect(await page.locator('#events img').count()).toBe(0);
  });

  it('filters the timeline and the events by volume', async () => {
    expect(await page.locator('#shown-count').textContent()).toBe('7');
    await page.selectOption('#volume-filter', 'media');
    expect(await page.locator('#shown-count').textContent()).toBe('2');
    expect(await page.locator('#timeline circle.snapshot:not(.hidden)').count()).toBe(1);
    expect(await page.locator('#volumes tbody tr:not(.hidden) td').first().textContent()).toBe('media');
    await page.selectOption('#volume-filter', '');
    expect(await page.locator('#shown-count').textContent()).toBe('7');
  });

  it('prints the same summary as JSON', async () => {
    const { stdout } = await snapguard('report', '--json');
    const model = JSON.parse(stdout);
    expect(model.counts).toEqual({ snapshots: 3, recoveries: 1, restoreTests: 2, orchestrations: 1 });
    expect(model.volumes.map((v: { volume: string }) => v.volume)).toEqual(['containers', 'media']);
  });
});
