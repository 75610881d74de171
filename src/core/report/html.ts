import type {
  History,
  OrchestrationEntry,
  RecoveryEntry,
  RestoreTestEntry,
  SnapshotEntry,
} from '../history/schema.js';
import { entryHolds, recoveriesBySafetyBackup } from '../snapshots.js';

/** What a human wants per volume at a glance; also the CLI's --json output. */
export interface VolumeSummary {
  volume: string;
  snapshots: number;
  outcomes: Record<string, number>;
  newestSnapshot: string | null;
  newestSnapshotAt: string | null;
  recoveries: number;
  lastRecoveryAt: string | null;
  restoreTests: number;
  lastRestoreTestAt: string | null;
  lastRestoreTestOutcome: 'pass' | 'fail' | null;
  lastRtoSeconds: number | null;
  /** The newest health check's status and pool usage for this volume, from history.health_samples. */
  health: 'GOOD' | 'WARNING' | 'CRITICAL' | null;
  poolUsageRatio: number | null;
}

export interface ReportModel {
  generatedAt: string;
  host: string;
  volumes: VolumeSummary[];
  counts: { snapshots: number; recoveries: number; restoreTests: number; orchestrations: number };
  range: { from: string | null; to: string | null };
}

const byTime = <T extends { timestamp: string }>(a: T, b: T) => a.timestamp.localeCompare(b.timestamp);

export function summarizeHistory(
  history: History,
  options: { host: string; now: Date; volumes?: string[] },
): ReportModel {
  const ids = new Set<string>(options.volumes ?? []);
  for (const entry of [...history.snapshots, ...history.recoveries, ...history.restore_tests])
    ids.add(entry.subvolume);
  const volumes = [...ids].sort().map((volume): VolumeSummary => {
    const snaps = history.snapshots.filter((s) => s.subvolume === volume).sort(byTime);
    const recs = history.recoveries.filter((r) => r.subvolume === volume).sort(byTime);
    const tests = history.restore_tests.filter((t) => t.subvolume === volume).sort(byTime);
    const outcomes: Record<string, number> = {};
    for (const s of snaps) outcomes[s.outcome] = (outcomes[s.outcome] ?? 0) + 1;
    const lastTest = tests.at(-1);
    const lastFull = tests.filter((t) => t.mode === 'full').at(-1);
    const lastHealth = (history.health_samples ?? [])
      .filter((h) => h.subvolume === volume)
      .sort(byTime)
      .at(-1);
    return {
      volume,
      snapshots: snaps.length,
      outcomes,
      newestSnapshot: snaps.at(-1)?.snapshot_name ?? null,
      newestSnapshotAt: snaps.at(-1)?.timestamp ?? null,
      recoveries: recs.length,
      lastRecoveryAt: recs.at(-1)?.timestamp ?? null,
      restoreTests: tests.length,
      lastRestoreTestAt: lastTest?.timestamp ?? null,
      lastRestoreTestOutcome: lastTest?.outcome ?? null,
      lastRtoSeconds: lastFull ? (lastFull.rto_estimate_seconds ?? lastFull.duration_seconds) : null,
      health: lastHealth?.status ?? null,
      poolUsageRatio: lastHealth?.pool_usage_ratio ?? null,
    };
  });
  const times = [
    ...history.snapshots,
    ...history.recoveries,
    ...history.restore_tests,
    ...history.orchestrations,
  ]
    .map((e) => e.timestamp)
    .sort();
  return {
    generatedAt: options.now.toISOString(),
    host: options.host,
    volumes,
    counts: {
      snapshots: history.snapshots.length,
      recoveries: history.recoveries.length,
      restoreTests: history.restore_tests.length,
      orchestrations: history.orchestrations.length,
    },
    range: { from: times[0] ?? null, to: times.at(-1) ?? null },
  };
}

/** Everything from the history file is text to the page, never markup. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '-';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

const shortTime = (iso: string | null) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC') : '-');

type Kind = 'snapshot' | 'recovery' | 'restore-test' | 'orchestration';
interface TimelineEvent {
  kind: Kind;
  timestamp: string;
  volume: string;
  ok: boolean | null;
  label: string;
}

function events(history: History): TimelineEvent[] {
  const replacedBy = recoveriesBySafetyBackup(history);
  // A snapshot is not good or bad: its outcome is the change's. The label says what it holds.
  const snap = (s: SnapshotEntry): TimelineEvent => {
    const holds = entryHolds(s, replacedBy.get(`${s.subvolume}/${s.snapshot_name}`));
    return {
      kind: 'snapshot',
      timestamp: s.timestamp,
      volume: s.subvolume,
      ok: s.outcome === 'success' ? true : null,
      label: `${s.snapshot_name} (${s.type}, change ${s.outcome})${holds ? `: ${holds}` : ''}`,
    };
  };
  const rec = (r: RecoveryEntry): TimelineEvent => ({
    kind: 'recovery',
    timestamp: r.timestamp,
    volume: r.subvolume,
    ok: r.outcome === 'success',
    label: `recovery of ${r.subvolume} to ${r.restored_snapshot} (${r.mode}, ${r.outcome}, ${formatSeconds(r.duration_seconds)})${r.reason ? `: ${r.reason}` : ''}`,
  });
  const test = (t: RestoreTestEntry): TimelineEvent => ({
    kind: 'restore-test',
    timestamp: t.timestamp,
    volume: t.subvolume,
    ok: t.outcome === 'pass',
    label: `restore test of ${t.snapshot} (${t.source}, ${t.mode}, ${t.outcome.toUpperCase()}, ${t.files_checked} files, ${formatSeconds(t.duration_seconds)})`,
  });
  const orch = (o: OrchestrationEntry): TimelineEvent => ({
    kind: 'orchestration',
    timestamp: o.timestamp,
    volume: '',
    ok: o.exit_code === 0 ? true : o.exit_code === 2 ? false : null,
    label: `orchestration exit ${o.exit_code} (${o.stages.map((s) => `${s.name}: ${s.status}`).join(', ')}, ${formatSeconds(o.duration_seconds)})`,
  });
  return [
    ...history.snapshots.map(snap),
    ...history.recoveries.map(rec),
    ...history.restore_tests.map(test),
    ...history.orchestrations.map(orch),
  ].sort(byTime);
}

const LANES: { kind: Kind; title: string }[] = [
  { kind: 'snapshot', title: 'Snapshots' },
  { kind: 'recovery', title: 'Recoveries' },
  { kind: 'restore-test', title: 'Restore tests' },
  { kind: 'orchestration', title: 'Orchestrations' },
];

function timelineSvg(list: TimelineEvent[]): string {
  const width = 960;
  const left = 130;
  const laneHeight = 36;
  const height = LANES.length * laneHeight + 40;
  if (list.length === 0) return '<p class="empty">No entries in the history yet.</p>';
  const t0 = Date.parse(list[0]!.timestamp);
  const t1 = Date.parse(list.at(-1)!.timestamp);
  const span = Math.max(t1 - t0, 1);
  const x = (iso: string) => left + 10 + ((Date.parse(iso) - t0) / span) * (width - left - 30);
  const parts: string[] = [];
  LANES.forEach((lane, i) => {
    const y = 20 + i * laneHeight + laneHeight / 2;
    parts.push(
      `<text x="8" y="${y + 4}" class="lane">${lane.title}</text><line x1="${left}" x2="${width - 10}" y1="${y}" y2="${y}" class="axis"/>`,
    );
  });
  for (const event of list) {
    const lane = LANES.findIndex((l) => l.kind === event.kind);
    const y = 20 + lane * laneHeight + laneHeight / 2;
    const state = event.ok === true ? 'ok' : event.ok === false ? 'bad' : 'neutral';
    parts.push(
      `<circle cx="${x(event.timestamp).toFixed(1)}" cy="${y}" r="6" class="event ${event.kind} ${state}" data-volume="${escapeHtml(event.volume)}" data-kind="${event.kind}"><title>${escapeHtml(`${shortTime(event.timestamp)}: ${event.label}`)}</title></circle>`,
    );
  }
  const yAxis = 20 + LANES.length * laneHeight + 14;
  parts.push(
    `<text x="${left}" y="${yAxis}" class="tick">${escapeHtml(shortTime(list[0]!.timestamp))}</text>`,
    `<text x="${width - 10}" y="${yAxis}" class="tick" text-anchor="end">${escapeHtml(shortTime(list.at(-1)!.timestamp))}</text>`,
  );
  return `<svg id="timeline" viewBox="0 0 ${width} ${height}" role="img" aria-label="Timeline of snapshots, recoveries, restore tests and orchestrations">${parts.join('')}</svg>`;
}

function restoreChartSvg(tests: RestoreTestEntry[]): string {
  if (tests.length === 0)
    return '<p class="empty">No restore tests yet: run <code>snapguard restore-test</code>.</p>';
  const shown = [...tests].sort(byTime).slice(-40);
  const width = 960;
  const height = 220;
  const bottom = 180;
  const max = Math.max(...shown.map((t) => Math.max(t.duration_seconds, t.rto_estimate_seconds ?? 0)), 0.001);
  const barWidth = Math.min(40, (width - 80) / shown.length - 4);
  const parts = [`<line x1="60" x2="${width - 10}" y1="${bottom}" y2="${bottom}" class="axis"/>`];
  parts.push(`<text x="54" y="${bottom}" class="tick" text-anchor="end">0</text>`);
  parts.push(`<text x="54" y="24" class="tick" text-anchor="end">${escapeHtml(formatSeconds(max))}</text>`);
  shown.forEach((t, i) => {
    const x = 64 + i * (barWidth + 4);
    const h = (t.duration_seconds / max) * (bottom - 20);
    parts.push(
      `<rect x="${x.toFixed(1)}" y="${(bottom - h).toFixed(1)}" width="${barWidth.toFixed(1)}" height="${Math.max(h, 1).toFixed(1)}" class="bar ${t.outcome === 'pass' ? 'ok' : 'bad'}" data-volume="${escapeHtml(t.subvolume)}"><title>${escapeHtml(`${shortTime(t.timestamp)} ${t.subvolume} ${t.mode} ${t.outcome.toUpperCase()}: ${formatSeconds(t.duration_seconds)}${t.rto_estimate_seconds != null ? `, RTO estimate ${formatSeconds(t.rto_estimate_seconds)}` : ''}`)}</title></rect>`,
    );
    if (t.rto_estimate_seconds !== null && t.rto_estimate_seconds !== undefined) {
      const ry = bottom - (t.rto_estimate_seconds / max) * (bottom - 20);
      parts.push(
        `<line x1="${x.toFixed(1)}" x2="${(x + barWidth).toFixed(1)}" y1="${ry.toFixed(1)}" y2="${ry.toFixed(1)}" class="rto"><title>${escapeHtml(`RTO estimate ${formatSeconds(t.rto_estimate_seconds)}`)}</title></line>`,
      );
    }
  });
  return `<svg id="restore-chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="Restore test durations">${parts.join('')}</svg>`;
}

function table(headers: string[], rows: string[][], id: string, volumes: string[]): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map(
      (row, i) =>
        `<tr data-volume="${escapeHtml(volumes[i] ?? '')}">${row.map((c) => `<td>${c}</td>`).join('')}</tr>`,
    )
    .join('');
  return `<table id="${id}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:16px;color:#1d232a;background:#fbfbfc}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}
.meta{color:#566}.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #dde;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:22px}table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #e3e5ea;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f0f2f5}
svg{width:100%;height:auto;background:#fff;border:1px solid #dde;border-radius:6px}
.axis{stroke:#bbc;stroke-width:1}.lane,.tick{font-size:12px;fill:#445}
.event.ok,.bar.ok{fill:#2e8b57}.event.bad,.bar.bad{fill:#c0392b}.event.neutral{fill:#6c7a89}
.rto{stroke:#d68910;stroke-width:3}.pass{color:#2e8b57;font-weight:600}.fail{color:#c0392b;font-weight:600}
.health-good{color:#2e8b57;font-weight:600}.health-warning{color:#d68910;font-weight:600}.health-critical{color:#c0392b;font-weight:600}
.hidden{display:none}.empty{color:#778}label{margin-right:8px}
`;

const SCRIPT = `
(function(){
  var select=document.getElementById('volume-filter');
  select.addEventListener('change',function(){
    var v=select.value;
    document.querySelectorAll('[data-volume]').forEach(function(el){
      var own=el.getAttribute('data-volume');
      var show=v===''||own===v||(own===''&&el.tagName.toLowerCase()==='circle');
      el.classList.toggle('hidden',!show);
    });
    document.getElementById('shown-count').textContent=String(document.querySelectorAll('#events tbody tr:not(.hidden)').length);
  });
})();
`;

/** One self-contained page: inline CSS, SVG and a few lines of JS, nothing loaded from the network. */
export function renderHtmlReport(history: History, model: ReportModel): string {
  const list = events(history);
  const volumeRows = model.volumes.map((v) => [
    `<b>${escapeHtml(v.volume)}</b>`,
    String(v.snapshots),
    escapeHtml(
      Object.entries(v.outcomes)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || '-',
    ),
    `${escapeHtml(v.newestSnapshot ?? '-')}<br><small>${escapeHtml(shortTime(v.newestSnapshotAt))}</small>`,
    String(v.recoveries),
    v.lastRestoreTestOutcome
      ? `<span class="${v.lastRestoreTestOutcome}">${v.lastRestoreTestOutcome.toUpperCase()}</span> <small>${escapeHtml(shortTime(v.lastRestoreTestAt))}</small>`
      : 'never',
    escapeHtml(formatSeconds(v.lastRtoSeconds)),
    v.health
      ? `<span class="health-${v.health.toLowerCase()}">${v.health}</span>${v.poolUsageRatio === null ? '' : ` <small>pool ${(v.poolUsageRatio * 100).toFixed(0)}%</small>`}`
      : 'not checked',
  ]);
  const eventRows = [...list]
    .reverse()
    .map((e) => [
      escapeHtml(shortTime(e.timestamp)),
      escapeHtml(e.kind),
      escapeHtml(e.volume || '-'),
      e.ok === true
        ? '<span class="pass">ok</span>'
        : e.ok === false
          ? '<span class="fail">failed</span>'
          : '-',
      escapeHtml(e.label),
    ]);
  const options = model.volumes
    .map((v) => `<option value="${escapeHtml(v.volume)}">${escapeHtml(v.volume)}</option>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>snapguard report: ${escapeHtml(model.host)}</title>
<style>${CSS}</style></head>
<body>
<h1>snapguard report: ${escapeHtml(model.host)}</h1>
<p class="meta">Generated ${escapeHtml(shortTime(model.generatedAt))}; history from ${escapeHtml(shortTime(model.range.from))} to ${escapeHtml(shortTime(model.range.to))}.</p>
<div class="cards">
<div class="card" id="count-snapshots"><b>${model.counts.snapshots}</b>snapshots</div>
<div class="card" id="count-recoveries"><b>${model.counts.recoveries}</b>recoveries</div>
<div class="card" id="count-restore-tests"><b>${model.counts.restoreTests}</b>restore tests</div>
<div class="card" id="count-orchestrations"><b>${model.counts.orchestrations}</b>orchestrations</div>
</div>
<h2>Volumes</h2>
${table(
  [
    'volume',
    'snapshots',
    'outcomes of the changes after them',
    'newest snapshot',
    'recoveries',
    'last restore test',
    'RTO (last full test)',
    'health (last check)',
  ],
  volumeRows,
  'volumes',
  model.volumes.map((v) => v.volume),
)}
<h2>Timeline</h2>
<p><label for="volume-filter">Volume</label><select id="volume-filter"><option value="">all volumes</option>${options}</select></p>
${timelineSvg(list)}
<h2>Restore tests: duration and RTO estimate</h2>
${restoreChartSvg(history.restore_tests)}
<h2>Events (<span id="shown-count">${list.length}</span> shown)</h2>
${table(
  ['time', 'kind', 'volume', 'result', 'detail'],
  eventRows,
  'events',
  [...list].reverse().map((e) => e.volume),
)}
<script>${SCRIPT}</script>
</body></html>
`;
}
