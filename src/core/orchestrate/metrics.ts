import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import type { OrchestrateResult } from './schema.js';

/**
 * Prometheus text-format lines of one orchestration. They go to their own file next to
 * metrics.textfile (snapguard.prom -> snapguard-orchestrate.prom), so the node exporter's
 * textfile collector picks them up without two writers sharing one file.
 */
export function orchestrationMetricsFile(textfile: string): string {
  const name = basename(textfile).replace(/\.prom$/, '');
  return join(dirname(textfile), `${name}-orchestrate.prom`);
}

function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function renderOrchestrationMetrics(
  result: OrchestrateResult,
  host: string,
  lastSuccessSeconds: number | undefined,
): string {
  const finished = Date.parse(result.startedAt) / 1000 + result.durationSeconds;
  const h = `host="${label(host)}"`;
  const lines: string[] = [
    '# HELP snapguard_orchestration_last_success_timestamp_seconds Unix time of the end of the last orchestration that exited 0.',
    '# TYPE snapguard_orchestration_last_success_timestamp_seconds gauge',
  ];
  if (lastSuccessSeconds !== undefined)
    lines.push(
      `snapguard_orchestration_last_success_timestamp_seconds{${h}} ${lastSuccessSeconds.toFixed(3)}`,
    );
  lines.push(
    '# HELP snapguard_orchestration_last_run_timestamp_seconds Unix time of the end of the last orchestration.',
    '# TYPE snapguard_orchestration_last_run_timestamp_seconds gauge',
    `snapguard_orchestration_last_run_timestamp_seconds{${h}} ${finished.toFixed(3)}`,
    '# HELP snapguard_orchestration_exit_code Exit code of the last orchestration (0 ok, 1 partial, 2 critical).',
    '# TYPE snapguard_orchestration_exit_code gauge',
    `snapguard_orchestration_exit_code{${h}} ${result.exitCode}`,
    '# HELP snapguard_orchestration_duration_seconds Duration of the last orchestration.',
    '# TYPE snapguard_orchestration_duration_seconds gauge',
    `snapguard_orchestration_duration_seconds{${h}} ${result.durationSeconds}`,
    '# HELP snapguard_orchestration_job_duration_seconds Duration of each job of the last orchestration.',
    '# TYPE snapguard_orchestration_job_duration_seconds gauge',
  );
  const jobs = result.stages.flatMap((stage) => stage.jobs.map((job) => ({ stage: stage.name, job })));
  for (const { stage, job } of jobs)
    lines.push(
      `snapguard_orchestration_job_duration_seconds{${h},stage="${label(stage)}",job="${label(job.id)}",kind="${job.kind}"} ${job.durationSeconds}`,
    );
  lines.push(
    '# HELP snapguard_orchestration_job_success 1 when the job of the last orchestration succeeded (verified or unverified), else 0.',
    '# TYPE snapguard_orchestration_job_success gauge',
  );
  for (const { stage, job } of jobs) {
    const ok = job.result === 'verified' || job.result === 'succeeded-unverified' ? 1 : 0;
    lines.push(
      `snapguard_orchestration_job_success{${h},stage="${label(stage)}",job="${label(job.id)}",kind="${job.kind}",result="${job.result}"} ${ok}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Atomic replace: the collector never reads a half-written file. */
export async function writeMetricsFile(file: string, text: string): Promise<void> {
  await writeFileAtomic(file, text);
}
