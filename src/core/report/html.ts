import type {
  History,
  OrchestrationEntry,
  RecoveryEntry,
  RestoreTestEntry,
  SnapshotEntry,
} from '../history/schema.js';
import { entryHolds, recoveriesBySafetyBackup } from '../snapshots.js';

/** A change (deployment, update) that failed after its snapshot was taken or reused. */
export interface FailedChange {
  operation: string | null;
  operationId: string | null;
  outcome: string;
  timestamp: string;
  snapshot: string;
  host: string;
}

/** Why a health check was not GOOD, as recorded with its reading. */
export interface HealthReason {
  severity: string;
  code: string;
  message: string;
}

/** What a human wants per volume at a glance; also the CLI's --json output. */
export interface VolumeSummary {
  volume: string;
  /** The host the volume is on, when the history holds several hosts. */
  host?: string;
  snapshots: number;
  /** Outcomes of the changes after the snapshots: their own and those of the operations that reused one. */
  outcomes: Record<string, number>;
  /** The failed ones among them, newest first. */
  failedChanges: FailedChange[];
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
  /** The warnings and critical findings of that check (checks recorded before they were kept: none). */
  healthReasons: HealthReason[];
  poolUsageRatio: number | null;
}

/** One host's line when the history holds entries of several hosts (entries carry `host`). */
export interface HostSummary {
  host: string;
  volumes: number;
  snapshots: number;
  newestSnapshotAt: string | null;
  failedChanges: number;
  recoveries: number;
  restoreTests: number;
  lastRestoreTestAt: string | null;
  lastRestoreTestOutcome: 'pass' | 'fail' | null;
  /** The worst status among the newest health readings of its volumes. */
  health: 'GOOD' | 'WARNING' | 'CRITICAL' | null;
}

export interface ReportModel {
  generatedAt: string;
  host: string;
  volumes: VolumeSummary[];
  counts: { snapshots: number; recoveries: number; restoreTests: number; orchestrations: number };
  range: { from: string | null; to: string | null };
  /** Present when the history holds entries of more than one host. */
  hosts?: HostSummary[];
}

const FAILED = new Set(['failed', 'validation_failed', 'command_failed']);
const SEVERITY = { GOOD: 0, WARNING: 1, CRITICAL: 2 } as const;

/** Every change a snapshot stood before: its own operation's, then each operation that reused it. */
function changesOf(snapshot: SnapshotEntry, host: string) {
  return [snapshot, ...(snapshot.reused_by ?? [])].map((change) => ({
    operation: change.operation,
    operationId: change.operation_id,
    outcome: change.outcome as string,
    timestamp: change.timestamp,
    snapshot: snapshot.snapshot_name,
    host: snapshot.host || host,
  }));
}

function hostSummaries(history: History, localHost: string): HostSummary[] | undefined {
  const hostOf = (entry: { host?: string | undefined }) => entry.host || localHost;
  const names = new Set<string>();
  for (const e of [
    ...history.snapshots,
    ...history.recoveries,
    ...history.restore_tests,
    ...history.orchestrations,
    ...(history.health_samples ?? []),
  ])
    names.add(hostOf(e));
  if (names.size < 2) return undefined;
  return [...names].sort().map((host): HostSummary => {
    const snaps = history.snapshots.filter((s) => hostOf(s) === host).sort(byTime);
    const tests = history.restore_tests.filter((t) => hostOf(t) === host).sort(byTime);
    const newestHealth = new Map<string, 'GOOD' | 'WARNING' | 'CRITICAL'>();
    for (const h of (history.health_samples ?? []).filter((x) => hostOf(x) === host).sort(byTime))
      newestHealth.set(h.subvolume, h.status);
    const statuses = [...newestHealth.values()];
    const ids = new Set([
      ...snaps.map((s) => s.subvolume),
      ...tests.map((t) => t.subvolume),
      ...newestHealth.keys(),
    ]);
    return {
      host,
      volumes: ids.size,
      snapshots: snaps.length,
      newestSnapshotAt: snaps.at(-1)?.timestamp ?? null,
      failedChanges: snaps.flatMap((s) => changesOf(s, host)).filter((c) => FAILED.has(c.outcome)).length,
      recoveries: history.recoveries.filter((r) => hostOf(r) === host).length,
      restoreTests: tests.length,
      lastRestoreTestAt: tests.at(-1)?.timestamp ?? null,
      lastRestoreTestOutcome: tests.at(-1)?.outcome ?? null,
      health: statuses.length
        ? statuses.reduce((a, b) => (SEVERITY[b] > SEVERITY[a] ? b : a), 'GOOD' as const)
        : null,
    };
  });
}

const byTime = <T extends { timestamp: string }>(a: T, b: T) => a.timestamp.localeCompare(b.timestamp);

export function summarizeHistory(
  history: History,
  options: { host: string; now: Date; volumes?: string[] },
): ReportModel {
  const hosts = hostSummaries(history, options.host);
  // With several hosts a volume is a host's volume: two hosts' "data" are two rows.
  const hostOf = (entry: { host?: string | undefined }) => (hosts ? entry.host || options.host : '');
  const keys = new Map<string, { host: string; volume: string }>();
  const add = (host: string, volume: string) => keys.set(`${host}\u0000${volume}`, { host, volume });
  for (const volume of options.volumes ?? []) add(hosts ? options.host : '', volume);
  for (const entry of [...history.snapshots, ...history.recoveries, ...history.restore_tests])
    add(hostOf(entry), entry.subvolume);
  const sorted = [...keys.values()].sort(
    (a, b) => a.volume.localeCompare(b.volume) || a.host.localeCompare(b.host),
  );
  const volumes = sorted.map(({ host, volume }): VolumeSummary => {
    const mine = (e: { subvolume: string; host?: string | undefined }) =>
      e.subvolume === volume && hostOf(e) === host;
    const snaps = history.snapshots.filter(mine).sort(byTime);
    const recs = history.recoveries.filter(mine).sort(byTime);
    const tests = history.restore_tests.filter(mine).sort(byTime);
    const outcomes: Record<string, number> = {};
    const changes = snaps.flatMap((s) => changesOf(s, options.host));
    for (const c of changes) outcomes[c.outcome] = (outcomes[c.outcome] ?? 0) + 1;
    const failedChanges = changes
      .filter((c) => FAILED.has(c.outcome))
      .sort((a, b) => b.timestamp.localeCompare(a.timestamp));
    const lastTest = tests.at(-1);
    const lastFull = tests.filter((t) => t.mode === 'full').at(-1);
    const lastHealth = (history.health_samples ?? []).filter(mine).sort(byTime).at(-1);
    return {
      volume,
      ...(hosts ? { host } : {}),
      snapshots: snaps.length,
      outcomes,
      failedChanges,
      newestSnapshot: snaps.at(-1)?.snapshot_name ?? null,
      newestSnapshotAt: snaps.at(-1)?.timestamp ?? null,
      recoveries: recs.length,
      lastRecoveryAt: recs.at(-1)?.timestamp ?? null,
      restoreTests: tests.length,
      lastRestoreTestAt: lastTest?.timestamp ?? null,
      lastRestoreTestOutcome: lastTest?.outcome ?? null,
      lastRtoSeconds: lastFull ? (lastFull.rto_estimate_seconds ?? lastFull.duration_seconds) : null,
      health: lastHealth?.status ?? null,
      healthReasons: (lastHealth?.reasons ?? []).map((r) => ({
        severity: r.severity,
        code: r.code,
        message: r.message,
      })),
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
    ...(hosts ? { hosts } : {}),
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
  // Sub-second times stay seconds with one decimal: "0.4 s"; a measured time never reads as zero.
  if (seconds > 0 && seconds < 0.1) return '< 0.1 s';
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
  /** The host of the entry, when the entry names one. */
  host?: string | undefined;
}

function events(history: History): TimelineEvent[] {
  const withHost = (event: TimelineEvent, entry: { host?: string | undefined }): TimelineEvent =>
    entry.host ? { ...event, host: entry.host } : event;
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
    ...history.snapshots.map((e) => withHost(snap(e), e)),
    ...history.recoveries.map((e) => withHost(rec(e), e)),
    ...history.restore_tests.map((e) => withHost(test(e), e)),
    ...history.orchestrations.map((e) => withHost(orch(e), e)),
  ].sort(byTime);
}

const LANES: { kind: Kind; title: string }[] = [
  { kind: 'snapshot', title: 'Snapshots' },
  { kind: 'recovery', title: 'Recoveries' },
  { kind: 'restore-test', title: 'Restore tests' },
  { kind: 'orchestration', title: 'Orchestrations' },
];

/** A legend row of swatches (circles or bars) and a line, drawn inside the chart. */
function legend(
  x: number,
  y: number,
  items: { label: string; cls: string; shape: 'circle' | 'rect' | 'line' }[],
) {
  let at = x;
  const parts: string[] = [];
  for (const item of items) {
    if (item.shape === 'circle')
      parts.push(`<circle cx="${at + 6}" cy="${y - 4}" r="5" class="${item.cls}"/>`);
    else if (item.shape === 'rect')
      parts.push(`<rect x="${at}" y="${y - 10}" width="12" height="12" class="${item.cls}"/>`);
    else parts.push(`<line x1="${at}" x2="${at + 14}" y1="${y - 4}" y2="${y - 4}" class="${item.cls}"/>`);
    parts.push(`<text x="${at + 18}" y="${y}" class="tick">${escapeHtml(item.label)}</text>`);
    at += 28 + item.label.length * 6.5;
  }
  return `<g class="legend">${parts.join('')}</g>`;
}

/** A UTC time for an axis tick: with seconds when the axis spans less than ten minutes. */
const dayTime = (ms: number, spanMs = Infinity) =>
  new Date(ms)
    .toISOString()
    .slice(0, spanMs < 600_000 ? 19 : 16)
    .replace('T', ' ');

function timelineSvg(list: TimelineEvent[], id = 'timeline'): string {
  const width = 960;
  const left = 130;
  const laneHeight = 36;
  const top = 34;
  const height = top + LANES.length * laneHeight + 52;
  if (list.length === 0) return '<p class="empty">No entries in the history yet.</p>';
  const t0 = Date.parse(list[0]!.timestamp);
  const t1 = Date.parse(list.at(-1)!.timestamp);
  const span = Math.max(t1 - t0, 1);
  const plotLeft = left + 10;
  const plotWidth = width - left - 30;
  const xAt = (ms: number) => plotLeft + ((ms - t0) / span) * plotWidth;
  const x = (iso: string) => xAt(Date.parse(iso));
  const parts: string[] = [
    legend(left, 18, [
      { label: 'ok', cls: 'swatch ok', shape: 'circle' },
      { label: 'failed', cls: 'swatch bad', shape: 'circle' },
      { label: 'no result / snapshot', cls: 'swatch neutral', shape: 'circle' },
    ]),
  ];
  LANES.forEach((lane, i) => {
    const y = top + i * laneHeight + laneHeight / 2;
    parts.push(
      `<text x="8" y="${y + 4}" class="lane">${lane.title}</text><line x1="${left}" x2="${width - 10}" y1="${y}" y2="${y}" class="grid"/>`,
    );
  });
  for (const event of list) {
    const lane = LANES.findIndex((l) => l.kind === event.kind);
    const y = top + lane * laneHeight + laneHeight / 2;
    const state = event.ok === true ? 'ok' : event.ok === false ? 'bad' : 'neutral';
    parts.push(
      `<circle cx="${x(event.timestamp).toFixed(1)}" cy="${y}" r="6" class="event ${event.kind} ${state}" data-volume="${escapeHtml(event.volume)}" data-kind="${event.kind}"><title>${escapeHtml(`${shortTime(event.timestamp)}: ${event.label}`)}</title></circle>`,
    );
  }
  // The time axis: a line, five ticks with their UTC times, and its title.
  const axisY = top + LANES.length * laneHeight + 4;
  const ticks: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const ms = t0 + (span * i) / 4;
    const tx = xAt(ms);
    const anchor = i === 0 ? 'start' : i === 4 ? 'end' : 'middle';
    ticks.push(
      `<line x1="${tx.toFixed(1)}" x2="${tx.toFixed(1)}" y1="${axisY}" y2="${axisY + 5}" class="axis"/><text x="${tx.toFixed(1)}" y="${axisY + 18}" class="tick" text-anchor="${anchor}">${escapeHtml(dayTime(ms, span))}</text>`,
    );
  }
  parts.push(
    `<g class="x-axis"><line x1="${plotLeft}" x2="${plotLeft + plotWidth}" y1="${axisY}" y2="${axisY}" class="axis"/>${ticks.join('')}<text x="${plotLeft + plotWidth / 2}" y="${axisY + 38}" class="axis-title" text-anchor="middle">time (UTC)</text></g>`,
  );
  return `<svg id="${id}" class="timeline" viewBox="0 0 ${width} ${height}" role="img" aria-label="Timeline of snapshots, recoveries, restore tests and orchestrations">${parts.join('')}</svg>`;
}

function restoreChartSvg(tests: RestoreTestEntry[], id = 'restore-chart'): string {
  if (tests.length === 0)
    return '<p class="empty">No restore tests yet: run <code>snapguard restore-test</code>.</p>';
  const shown = [...tests].sort(byTime).slice(-40);
  const width = 960;
  const height = 270;
  const top = 40;
  const bottom = 210;
  const plotLeft = 80;
  const max = Math.max(...shown.map((t) => Math.max(t.duration_seconds, t.rto_estimate_seconds ?? 0)), 0.001);
  const barWidth = Math.min(40, (width - plotLeft - 20) / shown.length - 4);
  const yOf = (seconds: number) => bottom - (seconds / max) * (bottom - top);
  const parts = [
    legend(plotLeft, 20, [
      { label: 'restore test passed (duration)', cls: 'swatch ok', shape: 'rect' },
      { label: 'failed', cls: 'swatch bad', shape: 'rect' },
      { label: 'RTO estimate (full test)', cls: 'swatch rto-key', shape: 'line' },
    ]),
  ];
  // The value axis: 0, half and the largest value, with grid lines and its title.
  const yTicks = [0, max / 2, max]
    .map(
      (v) =>
        `<line x1="${plotLeft - 4}" x2="${width - 10}" y1="${yOf(v).toFixed(1)}" y2="${yOf(v).toFixed(1)}" class="${v === 0 ? 'axis' : 'grid'}"/><text x="${plotLeft - 8}" y="${(yOf(v) + 4).toFixed(1)}" class="tick" text-anchor="end">${escapeHtml(v === 0 ? '0 s' : formatSeconds(v))}</text>`,
    )
    .join('');
  parts.push(
    `<g class="y-axis"><line x1="${plotLeft}" x2="${plotLeft}" y1="${top}" y2="${bottom}" class="axis"/>${yTicks}<text x="14" y="${(top + bottom) / 2}" class="axis-title" text-anchor="middle" transform="rotate(-90 14 ${(top + bottom) / 2})">seconds</text></g>`,
  );
  shown.forEach((t, i) => {
    const x = plotLeft + 4 + i * (barWidth + 4);
    const h = (t.duration_seconds / max) * (bottom - top);
    parts.push(
      `<rect x="${x.toFixed(1)}" y="${(bottom - h).toFixed(1)}" width="${barWidth.toFixed(1)}" height="${Math.max(h, 1).toFixed(1)}" class="bar ${t.outcome === 'pass' ? 'ok' : 'bad'}" data-volume="${escapeHtml(t.subvolume)}"><title>${escapeHtml(`${shortTime(t.timestamp)} ${t.subvolume} ${t.mode} ${t.outcome.toUpperCase()}: ${formatSeconds(t.duration_seconds)}${t.rto_estimate_seconds != null ? `, RTO estimate ${formatSeconds(t.rto_estimate_seconds)}` : ''}`)}</title></rect>`,
    );
    if (t.rto_estimate_seconds !== null && t.rto_estimate_seconds !== undefined) {
      const ry = yOf(t.rto_estimate_seconds);
      parts.push(
        `<line x1="${x.toFixed(1)}" x2="${(x + barWidth).toFixed(1)}" y1="${ry.toFixed(1)}" y2="${ry.toFixed(1)}" class="rto"><title>${escapeHtml(`RTO estimate ${formatSeconds(t.rto_estimate_seconds)}`)}</title></line>`,
      );
    }
  });
  const first = shown[0]!;
  const last = shown.at(-1)!;
  const chartSpan = Date.parse(last.timestamp) - Date.parse(first.timestamp);
  parts.push(
    `<g class="x-axis"><text x="${plotLeft}" y="${bottom + 18}" class="tick">${escapeHtml(dayTime(Date.parse(first.timestamp), chartSpan))}</text><text x="${width - 10}" y="${bottom + 18}" class="tick" text-anchor="end">${escapeHtml(dayTime(Date.parse(last.timestamp), chartSpan))}</text><text x="${(plotLeft + width) / 2}" y="${bottom + 44}" class="axis-title" text-anchor="middle">restore tests, oldest to newest (last ${shown.length})</text></g>`,
  );
  return `<svg id="${id}" class="restore-chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="Restore test durations and RTO estimates in seconds">${parts.join('')}</svg>`;
}

function table(headers: string[], rows: string[][], id: string, volumes: string[], cls?: string): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map(
      (row, i) =>
        `<tr${volumes.length ? ` data-volume="${escapeHtml(volumes[i] ?? '')}"` : ''}>${row.map((c) => `<td>${c}</td>`).join('')}</tr>`,
    )
    .join('');
  return `<table id="${id}"${cls ? ` class="${cls}"` : ''}><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:16px;color:#1d232a;background:#fbfbfc}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}
.meta{color:#566}.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #dde;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:22px}table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #e3e5ea;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f0f2f5}
svg{width:100%;height:auto;background:#fff;border:1px solid #dde;border-radius:6px}
.axis{stroke:#889;stroke-width:1}.grid{stroke:#e3e5ea;stroke-width:1}.lane,.tick{font-size:12px;fill:#445}
.axis-title{font-size:12px;fill:#334;font-weight:600}.swatch.ok{fill:#2e8b57}.swatch.bad{fill:#c0392b}.swatch.neutral{fill:#6c7a89}
.swatch.rto-key{stroke:#d68910;stroke-width:3}.reasons{margin:4px 0 0;padding-left:16px;font-size:12px}.reasons li{margin:2px 0}
.changes-failed{color:#c0392b;font-weight:600}
.event.ok,.bar.ok{fill:#2e8b57}.event.bad,.bar.bad{fill:#c0392b}.event.neutral{fill:#6c7a89}
.rto{stroke:#d68910;stroke-width:3}.pass{color:#2e8b57;font-weight:600}.fail{color:#c0392b;font-weight:600}
.health-good{color:#2e8b57;font-weight:600}.health-warning{color:#d68910;font-weight:600}.health-critical{color:#c0392b;font-weight:600}
.host-section{margin:12px 0 24px;padding:4px 12px 12px;border-left:3px solid #dde}h3{font-size:15px;margin:12px 0 6px}
.host-section table,.host-section svg{margin-top:8px}.hidden{display:none}.empty{color:#778}label{margin-right:8px}
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

/** The outcomes of the changes after a volume's snapshots; failed ones first, named, in red. */
function changesCell(v: VolumeSummary): string {
  const failedCount = v.failedChanges.length;
  const others = Object.entries(v.outcomes)
    .filter(([k]) => !FAILED.has(k))
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  if (failedCount === 0) return escapeHtml(others || '-');
  const named = v.failedChanges
    .slice(0, 5)
    .map(
      (c) =>
        `<li>${escapeHtml(c.operation ?? c.operationId ?? c.snapshot)}: ${escapeHtml(c.outcome.replace('_', ' '))} <small>${escapeHtml(shortTime(c.timestamp))}</small></li>`,
    )
    .join('');
  const more = failedCount > 5 ? `<li>${failedCount - 5} more</li>` : '';
  return `<span class="changes-failed">FAILED ${failedCount}</span>${others ? `, ${escapeHtml(others)}` : ''}<ul class="reasons failed-changes">${named}${more}</ul>`;
}

/** Why a volume is WARNING or CRITICAL, next to its status (a host's list names the volume of each). */
function reasonsList(reasons: (HealthReason & { volume?: string })[]): string {
  if (reasons.length === 0) return '';
  return `<ul class="reasons health-reasons">${reasons
    .map(
      (r) =>
        `<li>${r.volume === undefined ? '' : `${escapeHtml(r.volume)}: `}<span class="health-${r.severity === 'critical' ? 'critical' : 'warning'}">${escapeHtml(r.code)}</span>: ${escapeHtml(r.message)}</li>`,
    )
    .join('')}</ul>`;
}

/** One row per host, when the history holds entries of several. */
function hostsSection(hosts: HostSummary[]): string {
  const rows = hosts.map((h) => [
    `<b>${escapeHtml(h.host)}</b>`,
    String(h.volumes),
    String(h.snapshots),
    escapeHtml(shortTime(h.newestSnapshotAt)),
    h.failedChanges > 0 ? `<span class="changes-failed">${h.failedChanges}</span>` : '0',
    String(h.recoveries),
    h.lastRestoreTestOutcome
      ? `<span class="${h.lastRestoreTestOutcome}">${h.lastRestoreTestOutcome.toUpperCase()}</span> <small>${escapeHtml(shortTime(h.lastRestoreTestAt))}</small>`
      : 'never',
    h.health ? `<span class="health-${h.health.toLowerCase()}">${h.health}</span>` : 'not checked',
  ]);
  return `<h2>Hosts</h2>
${table(
  [
    'host',
    'volumes',
    'snapshots',
    'newest snapshot',
    'failed changes',
    'recoveries',
    'last restore test',
    'health (last check)',
  ],
  rows,
  'hosts',
  [],
)}
`;
}

/** The volume's newest snapshot and when it was taken. */
const newestCell = (v: VolumeSummary) =>
  `${escapeHtml(v.newestSnapshot ?? '-')}<br><small>${escapeHtml(shortTime(v.newestSnapshotAt))}</small>`;

/** The last restore test's result and time, or "never". */
const restoreTestCell = (outcome: 'pass' | 'fail' | null, at: string | null) =>
  outcome
    ? `<span class="${outcome}">${outcome.toUpperCase()}</span> <small>${escapeHtml(shortTime(at))}</small>`
    : 'never';

/** The newest health status, its pool usage and the reasons when it is not GOOD. */
const healthCell = (v: VolumeSummary) =>
  v.health
    ? `<span class="health-${v.health.toLowerCase()}">${v.health}</span>${v.poolUsageRatio === null ? '' : ` <small>pool ${(v.poolUsageRatio * 100).toFixed(0)}%</small>`}${reasonsList(v.healthReasons)}`
    : 'not checked';

function volumesTable(model: ReportModel): string {
  const rows = model.volumes.map((v) => [
    `<b>${escapeHtml(v.volume)}</b>${v.host ? `<br><small class="host">${escapeHtml(v.host)}</small>` : ''}`,
    String(v.snapshots),
    changesCell(v),
    newestCell(v),
    String(v.recoveries),
    restoreTestCell(v.lastRestoreTestOutcome, v.lastRestoreTestAt),
    escapeHtml(formatSeconds(v.lastRtoSeconds)),
    healthCell(v),
  ]);
  return table(
    [
      'volume',
      'snapshots',
      'changes after them (deployments, updates)',
      'newest snapshot',
      'recoveries',
      'last restore test',
      'RTO (last full test)',
      'health (last check)',
    ],
    rows,
    'volumes',
    model.volumes.map((v) => v.volume),
  );
}

/** Newest first; with several hosts each event names its host. */
function eventsTable(list: TimelineEvent[], model: ReportModel): string {
  const severalHosts = model.hosts !== undefined;
  const newestFirst = [...list].reverse();
  const rows = newestFirst.map((e) => [
    escapeHtml(shortTime(e.timestamp)),
    ...(severalHosts ? [escapeHtml(e.host ?? model.host)] : []),
    escapeHtml(e.kind),
    escapeHtml(e.volume || '-'),
    e.ok === true
      ? '<span class="pass">ok</span>'
      : e.ok === false
        ? '<span class="fail">failed</span>'
        : '-',
    escapeHtml(e.label),
  ]);
  return table(
    [...(severalHosts ? ['time', 'host'] : ['time']), 'kind', 'volume', 'result', 'detail'],
    rows,
    'events',
    newestFirst.map((e) => e.volume),
  );
}

const HOST_COLUMNS = [
  'volume',
  'newest snapshot',
  'last restore test',
  'RTO (last full test)',
  'health (last check)',
];

/** One host's own part of the page: its health and why, its volumes, its failed changes, its charts. */
function hostSection(
  h: HostSummary,
  index: number,
  model: ReportModel,
  list: TimelineEvent[],
  history: History,
): string {
  const volumes = model.volumes.filter((v) => v.host === h.host);
  const reasons = volumes.flatMap((v) => v.healthReasons.map((r) => ({ ...r, volume: v.volume })));
  const health = h.health
    ? `<span class="health-${h.health.toLowerCase()}">${h.health}</span>`
    : 'not checked';
  const rows = volumes.map((v) => [
    `<b>${escapeHtml(v.volume)}</b>`,
    v.newestSnapshot ? newestCell(v) : '-',
    restoreTestCell(v.lastRestoreTestOutcome, v.lastRestoreTestAt),
    escapeHtml(formatSeconds(v.lastRtoSeconds)),
    healthCell(v),
  ]);
  const failed = volumes
    .flatMap((v) => v.failedChanges.map((c) => ({ ...c, volume: v.volume })))
    .sort((a, b) => b.timestamp.localeCompare(a.timestamp))
    .map(
      (c) =>
        `<li>${escapeHtml(c.volume)}: ${escapeHtml(c.operation ?? c.operationId ?? c.snapshot)}: ${escapeHtml(c.outcome.replace('_', ' '))} <small>${escapeHtml(shortTime(c.timestamp))}</small></li>`,
    );
  const own = list.filter((e) => (e.host ?? model.host) === h.host);
  const tests = history.restore_tests.filter((t) => (t.host || model.host) === h.host);
  const id = `host-${index + 1}`;
  return `<section class="host-section" id="${id}" data-host="${escapeHtml(h.host)}">
<h3>Host ${escapeHtml(h.host)}</h3>
<div class="host-health">Health: ${health}${reasonsList(reasons)}</div>
${table(
  HOST_COLUMNS,
  rows,
  `${id}-volumes`,
  volumes.map((v) => v.volume),
  'host-volumes',
)}
${failed.length ? `<p>Failed changes: <span class="changes-failed">${failed.length}</span></p><ul class="reasons host-failed-changes">${failed.join('')}</ul>` : '<p>Failed changes: none</p>'}
${own.length ? timelineSvg(own, `${id}-timeline`) : ''}
${tests.length ? restoreChartSvg(tests, `${id}-restore-chart`) : '<p class="empty">No restore tests on this host yet.</p>'}
</section>
`;
}

/** The hosts table and a section per host, when the history holds entries of several hosts. */
function hostsPart(history: History, model: ReportModel, list: TimelineEvent[]): string {
  if (!model.hosts) return '';
  const sections = model.hosts.map((h, i) => hostSection(h, i, model, list, history)).join('');
  return `${hostsSection(model.hosts)}${sections}`;
}

function head(model: ReportModel): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>snapguard report: ${escapeHtml(model.host)}</title>
<style>${CSS}</style></head>`;
}

/** The title, the time range and a card per count. */
function overview(model: ReportModel): string {
  const card = (id: string, n: number, label: string) =>
    `<div class="card" id="count-${id}"><b>${n}</b>${label}</div>`;
  return `<h1>snapguard report: ${escapeHtml(model.host)}</h1>
<p class="meta">Generated ${escapeHtml(shortTime(model.generatedAt))}; history from ${escapeHtml(shortTime(model.range.from))} to ${escapeHtml(shortTime(model.range.to))}.</p>
<div class="cards">
${card('snapshots', model.counts.snapshots, 'snapshots')}
${card('recoveries', model.counts.recoveries, 'recoveries')}
${card('restore-tests', model.counts.restoreTests, 'restore tests')}
${card('orchestrations', model.counts.orchestrations, 'orchestrations')}
</div>`;
}

function volumeFilter(model: ReportModel): string {
  const options = [...new Set(model.volumes.map((v) => v.volume))]
    .map((id) => `<option value="${escapeHtml(id)}">${escapeHtml(id)}</option>`)
    .join('');
  return `<p><label for="volume-filter">Volume</label><select id="volume-filter"><option value="">all volumes</option>${options}</select></p>`;
}

/** One self-contained page: inline CSS, SVG and a few lines of JS, nothing loaded from the network. */
export function renderHtmlReport(history: History, model: ReportModel): string {
  const list = events(history);
  return `${head(model)}
<body>
${overview(model)}
${hostsPart(history, model, list)}<h2>Volumes</h2>
${volumesTable(model)}
<h2>Timeline</h2>
${volumeFilter(model)}
${timelineSvg(list)}
<h2>Restore tests: duration and RTO estimate</h2>
${restoreChartSvg(history.restore_tests)}
<h2>Events (<span id="shown-count">${list.length}</span> shown)</h2>
${eventsTable(list, model)}
<script>${SCRIPT}</script>
</body></html>
`;
}
