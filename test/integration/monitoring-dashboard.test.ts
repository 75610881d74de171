import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createExec } from '../../src/system/exec.js';
import { requireComponents } from '../helpers/env.js';

const exec = createExec();
const monitoring = fileURLToPath(new URL('../../docs/monitoring/', import.meta.url));
const run = requireComponents(['promtool'], false);

interface Target {
  refId: string;
  expr: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
  gridPos: { x: number; y: number; w: number; h: number };
}
interface Dashboard {
  __inputs: { name: string; type: string; pluginId: string }[];
  __requires: { type: string; id: string }[];
  panels: Panel[];
  templating: {
    list: { name: string; type: string; datasource: { uid: string }; query: { query: string } | string }[];
  };
}

describe.runIf(run)('Grafana dashboard model and per-host alert rules (promtool)', () => {
  let dashboard: Dashboard;
  let dir: string;
  const DS = '${DS_PROMETHEUS}';

  beforeAll(async () => {
    dashboard = JSON.parse(await readFile(join(monitoring, 'grafana-dashboard.json'), 'utf8')) as Dashboard;
    dir = await mkdtemp(join(tmpdir(), 'snapguard-test-dashboard-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const queryPanels = () => dashboard.panels.filter((panel) => panel.type !== 'row');

  it('imports with one Prometheus datasource input, and declares what it requires', () => {
    expect(dashboard.__inputs).toEqual([
      expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }),
    ]);
    const required = dashboard.__requires.map((r) => `${r.type}:${r.id}`);
    expect(required).toContain('grafana:grafana');
    expect(required).toContain('datasource:prometheus');
    for (const type of new Set(queryPanels().map((panel) => panel.type)))
      expect(required).toContain(`panel:${type}`);
    // Every panel and every query uses the input, never a datasource of the author's Grafana.
    for (const panel of queryPanels()) {
      expect(panel.datasource?.uid, panel.title).toBe(DS);
      for (const target of panel.targets ?? []) expect(target.datasource?.uid, panel.title).toBe(DS);
    }
  });

  it('has an instance (host) variable that every panel query filters on', () => {
    const variable = dashboard.templating.list.find((v) => v.name === 'instance');
    expect(variable?.type).toBe('query');
    expect(variable?.datasource.uid).toBe(DS);
    const query = typeof variable?.query === 'string' ? variable.query : variable?.query.query;
    expect(query).toMatch(/^label_values\(snapguard_\w+, instance\)$/);
    let selectors = 0;
    for (const panel of queryPanels()) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? [])
        for (const match of target.expr.matchAll(/snapguard_\w+(\{[^}]*\})?/g)) {
          selectors++;
          expect(match[1] ?? '', `${panel.title}: ${target.expr}`).toContain('instance=~"$instance"');
        }
    }
    expect(selectors).toBeGreaterThan(15);
  });

  it('opens with a fleet overview row: one line per instance with health, snapshot age and last restore test', () => {
    const [row, table] = dashboard.panels;
    expect(row?.type).toBe('row');
    expect(row?.title).toMatch(/^Fleet overview/);
    expect(table?.type).toBe('table');
    const exprs = (table?.targets ?? []).map((t) => t.expr);
    expect(exprs.some((e) => /snapguard_health_status/.test(e))).toBe(true);
    expect(exprs.some((e) => /snapguard_snapshot_last_success_timestamp_seconds/.test(e))).toBe(true);
    expect(exprs.some((e) => /snapguard_restore_test_last_run_timestamp_seconds/.test(e))).toBe(true);
    for (const expr of exprs) expect(expr).toMatch(/ by \(instance\) /);
    // Panels below the row do not overlap it.
    const rowBottom = Math.max(...[row!, table!].map((p) => p.gridPos.y + p.gridPos.h));
    for (const panel of dashboard.panels.slice(2)) expect(panel.gridPos.y).toBeGreaterThanOrEqual(rowBottom);
  });

  it('every panel query parses: promtool checks them as recording rules', async () => {
    const rules = queryPanels().flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({
        record: `dashboard:panel_${panel.id}_${target.refId.toLowerCase()}`,
        // Grafana replaces the variable before the query is sent; All is the regex .*.
        expr: target.expr.replaceAll('$instance', '.*'),
      })),
    );
    const file = join(dir, 'dashboard-queries.yml');
    await writeFile(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
    const check = await exec('promtool', ['check', 'rules', file], { okExitCodes: [1] });
    expect(check.stdout + check.stderr).toContain(`SUCCESS: ${rules.length} rules found`);
    // The check is able to refuse a query that does not parse.
    await writeFile(
      file,
      stringify({ groups: [{ name: 'bad', rules: [{ record: 'x:y', expr: 'max by (instance (up)' }] }] }),
    );
    const bad = await exec('promtool', ['check', 'rules', file], { okExitCodes: [1] });
    expect(bad.exitCode).toBe(1);
  });

  it('the alert rules keep the instance label and pass their promtool tests, host staleness included', async () => {
    const check = await exec('promtool', ['check', 'rules', join(monitoring, 'snapguard-alerts.yml')]);
    expect(check.stdout).toContain('SUCCESS: 7 rules found');
    const text = await readFile(join(monitoring, 'snapguard-alerts.yml'), 'utf8');
    for (const match of text.matchAll(/\bby \(([^)]*)\)/g)) expect(match[1]).toMatch(/\binstance\b/);
    expect(text).toContain('alert: SnapguardHostMetricsGone');
    const tests = await exec('promtool', ['test', 'rules', 'snapguard-alerts.test.yml'], { cwd: monitoring });
    expect(tests.stdout).toContain('SUCCESS');
    expect(await readFile(join(monitoring, 'snapguard-alerts.test.yml'), 'utf8')).toContain(
      'alertname: SnapguardHostMetricsGone',
    );
  });
});
