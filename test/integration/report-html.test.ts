import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { HistoryStore } from '../../src/core/history/store.js';
import { formatSeconds } from '../../src/core/report/html.js';
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
  let findingsOf: Record<string, { severity: string; code: string }[]> = {};
  let volumesConfig: Record<string, unknown> = {};

  const snapguard = (...args: string[]) =>
    run(process.execPath, [cli, ...args, '--config', configFile], { cwd: sandbox.dir, timeout: 120_000 });

  /** The share of a PNG's pixels near one colour, counted in a page of its own (the report's policy forbids fetching anything). */
  const colorShare = (counter: Page, png: Buffer, rgb: [number, number, number]) =>
    counter.evaluate(
      async ([b64, color]) => {
        // Runs in Chromium: the DOM's image and canvas classes, untyped here.
        const web = globalThis as unknown as {
          createImageBitmap(blob: Blob): Promise<{ width: number; height: number }>;
          OffscreenCanvas: new (
            w: number,
            h: number,
          ) => {
            getContext(kind: '2d'): {
              drawImage(image: unknown, x: number, y: number): void;
              getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
            };
          };
        };
        const blob = await (await fetch(`data:image/png;base64,${b64}`)).blob();
        const bitmap = await web.createImageBitmap(blob);
        const g = new web.OffscreenCanvas(bitmap.width, bitmap.height).getContext('2d');
        g.drawImage(bitmap, 0, 0);
        const data = g.getImageData(0, 0, bitmap.width, bitmap.height).data;
        let hits = 0;
        for (let i = 0; i < data.length; i += 4)
          if (
            Math.abs(data[i]! - color[0]) < 40 &&
            Math.abs(data[i + 1]! - color[1]) < 40 &&
            Math.abs(data[i + 2]! - color[2]) < 40
          )
            hits++;
        return hits / (data.length / 4);
      },
      [png.toString('base64'), rgb] as const,
    );

  beforeAll(async () => {
    sandbox = await createBtrfsSandbox(512, 'report');
    const containers = await sandbox.subvolume('containers');
    const media = await sandbox.subvolume('media');
    for (let i = 0; i < 20; i++)
      await writeFile(join(containers, `file-${i}.txt`), `content ${i}\n`.repeat(200));
    await writeFile(join(media, 'movie.mkv'), 'x'.repeat(10_000));
    configFile = join(sandbox.dir, 'snapguard.yaml');
    volumesConfig = {
      containers: { backend: 'btrfs', path: containers, tier: 'critical' },
      media: { backend: 'btrfs', path: media, tier: 'standard' },
    };
    await writeFile(
      configFile,
      stringify({ contextDir: 'context', stateDir: 'state', host: 'nas-report', volumes: volumesConfig }),
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
    // A deployment that failed on a snapshot it reused (minInterval: the volume had not changed):
    // its outcome lives on the reused snapshot's entry and must not vanish behind "pending".
    await writeFile(
      configFile,
      stringify({
        contextDir: 'context',
        stateDir: 'state',
        host: 'nas-report',
        volumes: {
          ...volumesConfig,
          containers: { ...(volumesConfig.containers as object), minInterval: '1h' },
        },
      }),
    );
    const wrapped = await run(
      process.execPath,
      [
        cli,
        'wrap',
        '--config',
        configFile,
        '--volume',
        'containers',
        '--operation',
        'deploy-broken',
        '--deploy',
        '--',
        'sh',
        '-c',
        'exit 3',
      ],
      { cwd: sandbox.dir, timeout: 120_000 },
    ).catch((error: { code?: number; stderr: string }) => error);
    expect('code' in wrapped ? wrapped.code : 0).not.toBe(0);
    expect(wrapped.stderr).toContain('(reused)');
    expect(wrapped.stderr).toContain('outcome: failed (command-failed)');
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
    ) as {
      volumes: { volume: string; status: string }[];
      findings: { severity: string; code: string; volume?: string }[];
    };
    healthOf = Object.fromEntries(health.volumes.map((v) => [v.volume, v.status]));
    findingsOf = Object.fromEntries(
      health.volumes.map((v) => [
        v.volume,
        health.findings.filter((f) => f.volume === v.volume && f.severity !== 'info'),
      ]),
    );
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
    // The failed deployment is shown plainly, named, before the others.
    expect(containers[2]).toMatch(/^FAILED 1, pending 2/);
    expect(await rows.nth(0).locator('.failed-changes li').allTextContents()).toEqual([
      expect.stringMatching(/^deploy-broken: failed \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/),
    ]);
    expect(containers[5]).toMatch(/^PASS /);
    // A sub-second RTO reads as seconds, never "0 ms".
    expect(containers[6]).toMatch(/^(< 0\.1 s|\d+(\.\d)? s|\d+ min)$/);
    const media = await rows.nth(1).locator('td').allTextContents();
    expect(media.slice(0, 2)).toEqual(['media', '1']);
    expect(media[4]).toBe('1');
    expect(media[5]).toBe('never');
    expect(containers[7]).toMatch(new RegExp(`^${healthOf.containers} pool \\d+%`));
    expect(media[7]).toMatch(new RegExp(`^${healthOf.media} pool \\d+%`));
  });

  it('gives the reason next to each WARNING or CRITICAL volume', async () => {
    const rows = page.locator('#volumes tbody tr');
    expect(Object.values(healthOf).some((status) => status !== 'GOOD')).toBe(true);
    for (const [index, volume] of ['containers', 'media'].entries()) {
      const reasons = await rows.nth(index).locator('.health-reasons li').allTextContents();
      const expected = findingsOf[volume] ?? [];
      if (healthOf[volume] === 'GOOD') expect(reasons).toEqual([]);
      else expect(expected.length).toBeGreaterThan(0);
      expect(reasons.map((r) => r.split(':')[0])).toEqual(expected.map((f) => f.code));
      for (const reason of reasons) expect(reason).toMatch(/^[A-Z_]+: \S/);
    }
  });

  it('writes sub-second durations as seconds with a decimal', () => {
    expect(formatSeconds(0.4)).toBe('0.4 s');
    expect(formatSeconds(0.004)).toBe('< 0.1 s');
    expect(formatSeconds(0)).toBe('0.0 s');
    expect(formatSeconds(75)).toBe('75 s');
  });

  it('draws the timeline with one mark per entry and the restore chart with a bar per test', async () => {
    expect(await page.locator('#timeline circle.event').count()).toBe(7);
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

  it('labels both charts: a time axis with ticks and a title, a value axis in seconds, a legend each', async () => {
    expect(await page.locator('#timeline .x-axis text.tick').count()).toBe(5);
    expect(await page.locator('#timeline .x-axis .axis-title').textContent()).toBe('time (UTC)');
    for (const tick of await page.locator('#timeline .x-axis text.tick').allTextContents())
      expect(tick).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?$/);
    expect(await page.locator('#timeline text.lane').allTextContents()).toEqual([
      'Snapshots',
      'Recoveries',
      'Restore tests',
      'Orchestrations',
    ]);
    expect(await page.locator('#timeline .legend text').allTextContents()).toEqual([
      'ok',
      'failed',
      'no result / snapshot',
    ]);
    expect(await page.locator('#restore-chart .y-axis .axis-title').textContent()).toBe('seconds');
    const yTicks = await page.locator('#restore-chart .y-axis text.tick').allTextContents();
    expect(yTicks[0]).toBe('0 s');
    expect(yTicks).toHaveLength(3);
    for (const tick of yTicks) expect(tick).not.toMatch(/ms$/);
    expect(await page.locator('#restore-chart .x-axis .axis-title').textContent()).toMatch(
      /^restore tests, oldest to newest/,
    );
    expect(await page.locator('#restore-chart .legend text').allTextContents()).toEqual([
      'restore test passed (duration)',
      'failed',
      'RTO estimate (full test)',
    ]);
    // The legend's swatches are not counted as entries.
    expect(await page.locator('#restore-chart rect.bar').count()).toBe(2);
  });

  it('looks the part: the screenshot shows the failed deployment in red and both charts drawn', async () => {
    const full = await page.screenshot({ fullPage: true, path: join(sandbox.dir, 'report.png') });
    expect(full.subarray(1, 4).toString()).toBe('PNG');
    const failed = await page.locator('#volumes .changes-failed').first().screenshot();
    const chart = await page.locator('#restore-chart').screenshot();
    const timeline = await page.locator('#timeline').screenshot();
    const counter = await context.newPage();
    const share = (png: Buffer, rgb: [number, number, number]) => colorShare(counter, png, rgb);
    try {
      expect(await share(failed, [192, 57, 43])).toBeGreaterThan(0.05);
      expect(await share(chart, [46, 139, 87])).toBeGreaterThan(0.005);
      expect(await share(chart, [214, 137, 16])).toBeGreaterThan(0.0002);
      expect(await share(timeline, [46, 139, 87])).toBeGreaterThan(0.0005);
    } finally {
      await counter.close();
    }
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

  // Entries of a second host (as a fleet's merged history would hold them), written as a fixture,
  // and the report of both hosts written by the CLI; made once, for the tests that read it.
  let fleetReport: Promise<string> | undefined;
  const writeFleetReport = async (): Promise<string> => {
    const fleetContext = join(sandbox.dir, 'context-fleet');
    const fleetConfig = join(sandbox.dir, 'fleet.yaml');
    await writeFile(
      fleetConfig,
      stringify({
        contextDir: 'context-fleet',
        stateDir: 'state',
        host: 'nas-report',
        volumes: volumesConfig,
      }),
    );
    const own = await readFile(join(sandbox.dir, 'context', 'backup-history.json'), 'utf8');
    await mkdir(fleetContext, { recursive: true });
    await writeFile(join(fleetContext, 'backup-history.json'), own);
    const store = new HistoryStore({
      contextDir: fleetContext,
      liveEntries: 1000,
      logger: silentLogger(),
      clock: () => new Date(),
    });
    const now = new Date().toISOString();
    await store.update((history) => {
      history.snapshots.push({
        id: 'snap-media-box-1',
        timestamp: now,
        host: 'media-box',
        subvolume: 'library',
        type: 'pre-update',
        operation: 'update-jellyfin',
        operation_id: 'op-media-box-1',
        snapshot_name: 'library-pre-update-update-jellyfin-20261121-000000',
        path: '/srv/.snapshots/library/library-pre-update-update-jellyfin-20261121-000000',
        outcome: 'validation_failed',
        size_mb: null,
      });
      // The same volume id as on the local host: a row of its own.
      history.restore_tests.push({
        id: 'rt-media-box-1',
        timestamp: now,
        host: 'media-box',
        subvolume: 'containers',
        snapshot: 'containers-manual-20261121-000000',
        source: 'local',
        mode: 'sample',
        files_checked: 3,
        bytes: 300,
        duration_seconds: 0.4,
        outcome: 'fail',
        failures: [{ path: 'a.txt', check: 'sha256' }],
      });
      (history.health_samples ??= []).push({
        id: 'hs-media-box-1',
        timestamp: now,
        host: 'media-box',
        subvolume: 'library',
        status: 'CRITICAL',
        pool_usage_ratio: 0.97,
        pool_used_bytes: 97,
        pool_total_bytes: 100,
        reasons: [{ severity: 'critical', code: 'POOL_FULL', message: 'pool at 97%' }],
      });
    });
    await run(
      process.execPath,
      [cli, 'report', '--html', join(sandbox.dir, 'fleet.html'), '--config', fleetConfig],
      {
        cwd: sandbox.dir,
      },
    );
    return join(sandbox.dir, 'fleet.html');
  };

  it('adds a hosts table when the history holds entries of several hosts', async () => {
    const fleetFile = await (fleetReport ??= writeFleetReport());
    const fleet = await context.newPage();
    try {
      await fleet.goto(pathToFileURL(fleetFile).href);
      const hosts = fleet.locator('#hosts tbody tr');
      expect(await hosts.count()).toBe(2);
      const mediaBox = await hosts.nth(0).locator('td').allTextContents();
      expect(mediaBox.slice(0, 3)).toEqual(['media-box', '2', '1']);
      expect(mediaBox[4]).toBe('1');
      expect(mediaBox[6]).toMatch(/^FAIL /);
      expect(mediaBox[7]).toBe('CRITICAL');
      expect((await hosts.nth(1).locator('td').allTextContents())[0]).toBe('nas-report');
      // The events name their host; the other host's volume has its row with the failure and the reason.
      expect(await fleet.locator('#events thead th').allTextContents()).toEqual([
        'time',
        'host',
        'kind',
        'volume',
        'result',
        'detail',
      ]);
      // Two hosts' "containers" are two rows, each with its own restore test.
      const containers = fleet.locator('#volumes tbody tr', { hasText: 'containers' });
      expect(await containers.count()).toBe(2);
      expect(await containers.locator('small.host').allTextContents()).toEqual(['media-box', 'nas-report']);
      expect((await containers.nth(0).locator('td').allTextContents())[5]).toMatch(/^FAIL /);
      expect((await containers.nth(1).locator('td').allTextContents())[5]).toMatch(/^PASS /);
      const library = fleet.locator('#volumes tbody tr', { hasText: 'library' });
      expect(await library.locator('.changes-failed').textContent()).toBe('FAILED 1');
      expect(await library.locator('.health-reasons li').allTextContents()).toEqual([
        'POOL_FULL: pool at 97%',
      ]);
      await fleet.screenshot({ fullPage: true, path: join(sandbox.dir, 'fleet.png') });
    } finally {
      await fleet.close();
    }
    // A single host's report has no host section.
    expect(await page.locator('#hosts').count()).toBe(0);
  });

  it('gives each host its own section: health with reasons, newest snapshots, restore tests, failed changes, charts', async () => {
    const fleetFile = await (fleetReport ??= writeFleetReport());
    const fleet = await context.newPage();
    try {
      await fleet.goto(pathToFileURL(fleetFile).href);
      const sections = fleet.locator('section.host-section');
      expect(await sections.locator('h3').allTextContents()).toEqual(['Host media-box', 'Host nas-report']);
      const mediaBox = fleet.locator('section.host-section[data-host="media-box"]');
      // Its health: the worst of its volumes, with the reason and the volume it is about.
      expect(await mediaBox.locator('.host-health').first().textContent()).toMatch(/^Health: CRITICAL/);
      expect(await mediaBox.locator('.host-health .health-reasons li').allTextContents()).toEqual([
        'library: POOL_FULL: pool at 97%',
      ]);
      // Its volumes only, each with its newest snapshot, last restore test and RTO.
      const rows = mediaBox.locator('table.host-volumes tbody tr');
      expect(await rows.count()).toBe(2);
      const containers = await rows.nth(0).locator('td').allTextContents();
      expect(containers[0]).toBe('containers');
      expect(containers[1]).toBe('-');
      expect(containers[2]).toMatch(/^FAIL /);
      expect(containers[3]).toBe('-');
      const library = await rows.nth(1).locator('td').allTextContents();
      expect(library[0]).toBe('library');
      expect(library[1]).toMatch(/^library-pre-update-update-jellyfin-20261121-000000/);
      expect(library[2]).toBe('never');
      expect(library[4]).toMatch(/^CRITICAL pool 97%POOL_FULL: pool at 97%$/);
      expect(await mediaBox.locator('.host-failed-changes li').allTextContents()).toEqual([
        expect.stringMatching(
          /^library: update-jellyfin: validation failed \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/,
        ),
      ]);
      // Its charts hold its entries only: a snapshot and a failed restore test.
      expect(await mediaBox.locator('svg.timeline circle.event').count()).toBe(2);
      expect(await mediaBox.locator('svg.timeline circle.restore-test.bad').count()).toBe(1);
      expect(await mediaBox.locator('svg.restore-chart rect.bar.bad').count()).toBe(1);
      expect(await mediaBox.locator('svg.restore-chart .y-axis .axis-title').textContent()).toBe('seconds');

      const nas = fleet.locator('section.host-section[data-host="nas-report"]');
      const worst = ['CRITICAL', 'WARNING', 'GOOD'].find((s) => Object.values(healthOf).includes(s));
      expect(await nas.locator('.host-health').first().textContent()).toMatch(
        new RegExp(`^Health: ${worst}`),
      );
      const nasRows = nas.locator('table.host-volumes tbody tr');
      expect(await nasRows.locator('td:first-child').allTextContents()).toEqual(['containers', 'media']);
      const nasContainers = await nasRows.nth(0).locator('td').allTextContents();
      expect(nasContainers[2]).toMatch(/^PASS /);
      expect(nasContainers[3]).toMatch(/^(< 0\.1 s|\d+(\.\d)? s|\d+ min)$/);
      expect(await nas.locator('.host-failed-changes li').allTextContents()).toEqual([
        expect.stringMatching(/^containers: deploy-broken: failed /),
      ]);
      expect(await nas.locator('svg.timeline circle.event').count()).toBe(7);
      expect(await nas.locator('svg.restore-chart rect.bar.ok').count()).toBe(2);
      expect(await nas.locator('svg.restore-chart line.rto').count()).toBe(1);
      // The page-wide charts keep every host's entries.
      expect(await fleet.locator('#timeline circle.event').count()).toBe(9);

      // Screenshot: the other host's section shows its failed restore test as a red bar.
      const chart = await mediaBox.locator('svg.restore-chart').screenshot({
        path: join(sandbox.dir, 'fleet-media-box-chart.png'),
      });
      const counter = await context.newPage();
      try {
        const red = await colorShare(counter, chart, [192, 57, 43]);
        expect(red).toBeGreaterThan(0.005);
      } finally {
        await counter.close();
      }
    } finally {
      await fleet.close();
    }
  });
});
