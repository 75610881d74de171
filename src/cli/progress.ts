import { Option } from 'commander';
import type { Options, Params } from 'cli-progress';
import type { OrchestrateEvent } from '../core/orchestrate/index.js';

/** One reading of long work: `progress` of `total` items (total unknown for open-ended walks). */
export interface ProgressUpdate {
  progress: number;
  total?: number | undefined;
  message: string;
  /** A named step of a few (recover): each is shown, counted, without a rate. */
  step?: boolean;
}

export type ReportProgress = (update: ProgressUpdate) => void;

export interface ProgressSwitches {
  /** false with --no-progress. */
  progress?: boolean;
  quiet?: boolean;
}

interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** --no-progress, for a verb that shows progress. */
export function noProgressOption(): Option {
  return new Option('--no-progress', 'no progress bar or progress lines on stderr');
}

/** -q/--quiet: the same as --no-progress. */
export function quietOption(): Option {
  return new Option('-q, --quiet', 'same as --no-progress');
}

function seconds(value: number): string {
  if (!Number.isFinite(value)) return '?';
  if (value < 60) return `${Math.max(0, Math.round(value))}s`;
  if (value < 3600) return `${Math.floor(value / 60)}m${String(Math.round(value % 60)).padStart(2, '0')}s`;
  return `${Math.floor(value / 3600)}h${String(Math.round((value % 3600) / 60)).padStart(2, '0')}m`;
}

function rateText(rate: number): string {
  if (!(rate > 0)) return '';
  return rate >= 10 ? `${Math.round(rate)}/s` : `${rate.toFixed(1)}/s`;
}

/** Counts, rate and ETA of the current phase (a phase restarts when the total changes or the count drops). */
class Meter {
  private phaseStart = Date.now();
  private total: number | undefined;
  private last = 0;

  read(update: ProgressUpdate) {
    if (update.total !== this.total || update.progress < this.last) {
      this.phaseStart = Date.now();
      this.total = update.total;
    }
    this.last = update.progress;
    const elapsed = (Date.now() - this.phaseStart) / 1000;
    const rate = elapsed > 0.2 ? update.progress / elapsed : 0;
    const total = update.total !== undefined && update.total > 0 ? update.total : undefined;
    const left = total !== undefined ? Math.max(0, total - update.progress) : undefined;
    const eta = left === undefined ? undefined : left === 0 ? 0 : rate > 0 ? left / rate : Infinity;
    return { total, rate, eta, elapsed };
  }
}

/** The plain line for a log or a pipe: "label: 12/100 (12%), 3.4/s, ETA 26s - message". */
export function plainLine(label: string, update: ProgressUpdate, reading: ReturnType<Meter['read']>): string {
  const parts: string[] = [];
  if (reading.total !== undefined) {
    const percent = Math.floor((Math.min(update.progress, reading.total) / reading.total) * 100);
    parts.push(`${update.progress}/${reading.total} (${percent}%)`);
  } else parts.push(`${update.progress}`);
  const rate = update.step ? '' : rateText(reading.rate);
  if (rate) parts.push(rate);
  if (reading.eta !== undefined && Number.isFinite(reading.eta)) parts.push(`ETA ${seconds(reading.eta)}`);
  if (update.step) parts[0] = `step ${update.progress}`;
  return `${label}: ${parts.join(', ')}${update.message ? ` - ${update.message}` : ''}`;
}

interface Renderer {
  update: ReportProgress;
  stop(): void;
}

/** Not a terminal: a line at most once a second or every 10%, and the last one of each phase. */
function lineRenderer(label: string, out: ProgressStream): Renderer {
  const meter = new Meter();
  let lastAt = 0;
  let lastDecile = -1;
  let lastTotal: number | undefined;
  return {
    update(update) {
      const reading = meter.read(update);
      const now = Date.now();
      const decile =
        reading.total !== undefined
          ? Math.floor((Math.min(update.progress, reading.total) / reading.total) * 10)
          : -1;
      const final = reading.total !== undefined && update.progress >= reading.total;
      const newPhase = update.total !== lastTotal;
      lastTotal = update.total;
      if (newPhase) lastDecile = -1;
      if (!(update.step || newPhase || final || now - lastAt >= 1000 || decile > lastDecile)) return;
      lastAt = now;
      lastDecile = final ? -1 : decile;
      out.write(`${plainLine(label, update, reading)}\n`);
    },
    stop() {},
  };
}

/** A terminal: one bar redrawn in place (cli-progress), cleared when the work ends. */
async function barRenderer(label: string, out: ProgressStream): Promise<Renderer> {
  const { default: cliProgress } = await import('cli-progress');
  const meter = new Meter();
  let reading: ReturnType<Meter['read']> | undefined;
  let current: ProgressUpdate = { progress: 0, message: '' };
  const format = (options: Options, params: Params): string => {
    const width = Math.max(40, (out.columns || 80) - 1);
    let head = `${label} `;
    if (reading?.total !== undefined) {
      head += `${cliProgress.Format.BarFormat(params.progress, options)} ${current.progress}/${reading.total} ${Math.floor(params.progress * 100)}%`;
    } else head += `${current.progress}`;
    const rate = reading && !current.step ? rateText(reading.rate) : '';
    const tail = [
      rate,
      reading?.eta !== undefined && Number.isFinite(reading.eta)
        ? `ETA ${seconds(reading.eta)}`
        : `${seconds((Date.now() - params.startTime) / 1000)}`,
    ].filter(Boolean);
    let line = `${head}${tail.length ? ` | ${tail.join(' | ')}` : ''}`;
    if (current.message) line += ` | ${current.message}`;
    return line.length > width ? `${line.slice(0, width - 1)}…` : line;
  };
  const bar = new cliProgress.SingleBar({
    stream: out as NodeJS.WritableStream,
    format,
    barsize: 24,
    barCompleteChar: '\u2588',
    barIncompleteChar: '\u2591',
    // No terminal modes are switched (hidden cursor, no line wrap): an interrupted run (Ctrl-C)
    // must not leave the shell without them. The line is cut to the width instead.
    hideCursor: false,
    clearOnComplete: true,
    linewrap: true,
    fps: 8,
  });
  let started = false;
  return {
    update(update) {
      current = update;
      reading = meter.read(update);
      const total = reading.total ?? Math.max(1, update.progress + 1);
      if (!started) {
        bar.start(total, update.progress);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(update.progress);
      }
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

/**
 * Shows the progress of long work on stderr: a bar with counts, rate and ETA on a terminal, plain
 * throttled lines otherwise, nothing with --no-progress/--quiet. stdout stays the result's alone.
 * cli-progress is loaded here, when a bar is about to be shown, never at start-up.
 */
export async function startProgress(
  label: string,
  switches: ProgressSwitches,
  out: ProgressStream = process.stderr,
): Promise<Renderer> {
  if (switches.progress === false || switches.quiet) return { update() {}, stop() {} };
  const renderer = out.isTTY ? await barRenderer(label, out) : lineRenderer(label, out);
  return {
    // A progress display never breaks the work it shows.
    update(update) {
      try {
        renderer.update(update);
      } catch {
        // ignored
      }
    },
    stop: () => renderer.stop(),
  };
}

/** Runs `work` with a progress reporter, and clears the bar when it ends (also on failure). */
export async function withProgress<T>(
  label: string,
  switches: ProgressSwitches,
  work: (report: ReportProgress) => Promise<T>,
): Promise<T> {
  const renderer = await startProgress(label, switches);
  try {
    return await work(renderer.update);
  } finally {
    renderer.stop();
  }
}

/** A reporter for work that only names its steps (recover): the steps are counted. */
export function countSteps(report: ReportProgress): (message: string) => void {
  let steps = 0;
  return (message) => report({ progress: ++steps, message, step: true });
}

/** Orchestration events as a count of finished jobs out of the planned ones. */
export function jobCounter(report: ReportProgress): (event: OrchestrateEvent) => void {
  let total: number | undefined;
  let finished = 0;
  return (event) => {
    if (event.type === 'plan') total = event.jobs;
    else if (event.type === 'stage-start')
      report({ progress: finished, total, message: `stage ${event.stage}: ${event.jobs.length} job(s)` });
    else if (event.type === 'job-start')
      report({ progress: finished, total, message: `${event.stage}: ${event.job} running` });
    else if (event.type === 'job-finish')
      report({ progress: ++finished, total, message: `${event.stage}: ${event.job.id} ${event.job.result}` });
  };
}
