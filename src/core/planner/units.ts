import type { HostType } from './strategy.js';

export interface UnitFile {
  name: string;
  content: string;
}

export interface ScheduledJob {
  /** Base name: snapguard-<job>.service / .timer. */
  job: string;
  description: string;
  /** systemd OnCalendar expression, UTC. */
  onCalendar: string;
  command: string[];
  /** Minutes after each start the job is assumed to run, for the overlap check. */
  expectedMinutes: number;
  /** Minutes of the day (UTC) at which it starts; weekly jobs list their day's starts. */
  startsAt: number[];
  /** Heavy I/O: laptops run it only on AC power. */
  heavy: boolean;
}

export interface JobRequest {
  hourlyVolumes: string[];
  dailyVolumes: string[];
  prune: boolean;
  backup: boolean;
  restoreTest: boolean;
}

function hhmm(minutes: number): string {
  const h = Math.floor(minutes / 60) % 24;
  const m = minutes % 60;
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
}

/**
 * Lays out the jobs in non-overlapping slots from `windowStartHour` (UTC): hourly snapshots at
 * :05 of every hour; then daily snapshots at +0:15, remote backup at +0:35, prune at +1:15 and the
 * weekly restore test on Sundays at +1:35, each ending before the next one starts (docs/planning.md).
 */
export function layoutJobs(request: JobRequest, windowStartHour: number, cli: string[]): ScheduledJob[] {
  const base = windowStartHour * 60;
  const jobs: ScheduledJob[] = [];
  if (request.hourlyVolumes.length > 0) {
    jobs.push({
      job: 'snapshot-hourly',
      description: `hourly snapshots of ${request.hourlyVolumes.join(', ')}`,
      onCalendar: '*-*-* *:05:00',
      command: [...cli, 'snapshot', 'create', ...request.hourlyVolumes, '--type', 'scheduled'],
      expectedMinutes: 5,
      startsAt: Array.from({ length: 24 }, (_, h) => h * 60 + 5),
      heavy: false,
    });
  }
  const daily = (
    job: string,
    description: string,
    offset: number,
    command: string[],
    minutes: number,
    heavy: boolean,
  ) => {
    const start = (base + offset) % 1440;
    jobs.push({
      job,
      description,
      onCalendar: `*-*-* ${hhmm(start)}:00`,
      command,
      expectedMinutes: minutes,
      startsAt: [start],
      heavy,
    });
  };
  if (request.dailyVolumes.length > 0)
    daily(
      'snapshot-daily',
      `daily snapshots of ${request.dailyVolumes.join(', ')}`,
      15,
      [...cli, 'snapshot', 'create', ...request.dailyVolumes, '--type', 'scheduled'],
      10,
      false,
    );
  if (request.backup) daily('backup', 'remote backups (orchestrate)', 35, [...cli, 'orchestrate'], 25, true);
  if (request.prune) daily('prune', 'prune snapshots by retention', 75, [...cli, 'prune', '--yes'], 15, true);
  if (request.restoreTest) {
    const start = (base + 95) % 1440;
    jobs.push({
      job: 'restore-test',
      description: 'weekly restore drill',
      onCalendar: `Sun *-*-* ${hhmm(start)}:00`,
      command: [...cli, 'restore-test'],
      expectedMinutes: 25,
      startsAt: [start],
      heavy: true,
    });
  }
  return jobs;
}

/** Pairs of jobs whose assumed run times overlap on the same day (none for layoutJobs output). */
export function overlappingJobs(jobs: readonly ScheduledJob[]): [string, string][] {
  const overlaps: [string, string][] = [];
  const ranges = jobs.map((job) => ({
    job: job.job,
    spans: job.startsAt.map((start) => [start, start + job.expectedMinutes] as const),
  }));
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i];
      const b = ranges[j];
      if (!a || !b) continue;
      const clash = a.spans.some(([s1, e1]) =>
        b.spans.some(([s2, e2]) => {
          // Compare on the 24-hour circle: shift b by a day either way.
          return [-1440, 0, 1440].some((shift) => s1 < e2 + shift && s2 + shift < e1);
        }),
      );
      if (clash) overlaps.push([a.job, b.job]);
    }
  }
  return overlaps;
}

function quoteArg(arg: string): string {
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, '\\$1')}"`;
}

export function renderUnits(
  jobs: readonly ScheduledJob[],
  host: HostType,
  configFile: string | undefined,
): UnitFile[] {
  const files: UnitFile[] = [];
  for (const job of jobs) {
    const command = [...job.command, ...(configFile ? ['--config', configFile] : [])];
    const unitLines = [
      '[Unit]',
      `Description=snapguard: ${job.description}`,
      'After=local-fs.target',
      // Laptops: heavy jobs wait for mains power; the Persistent timer runs them when it returns.
      ...(host === 'laptop' && job.heavy ? ['ConditionACPower=true'] : []),
      '',
      '[Service]',
      'Type=oneshot',
      `ExecStart=${command.map(quoteArg).join(' ')}`,
      'Nice=10',
      'IOSchedulingClass=idle',
      // Exit 1 means "done with warnings" (e.g. one snapshot failed to prune): not a unit failure.
      'SuccessExitStatus=1',
      '',
    ];
    files.push({ name: `snapguard-${job.job}.service`, content: unitLines.join('\n') });
    files.push({
      name: `snapguard-${job.job}.timer`,
      content: [
        '[Unit]',
        `Description=snapguard: ${job.description} (timer)`,
        '',
        '[Timer]',
        `OnCalendar=${job.onCalendar}`,
        'Persistent=true',
        'AccuracySec=1min',
        '',
        '[Install]',
        'WantedBy=timers.target',
        '',
      ].join('\n'),
    });
  }
  return files;
}
