import type { OrchestrateConfig, OrchestrateResult } from './schema.js';

type Webhook = NonNullable<OrchestrateConfig['notify']>;

export function summaryText(result: OrchestrateResult, host: string): string {
  const lines = [`snapguard orchestration on ${host}: ${result.status} (exit ${result.exitCode})`];
  for (const stage of result.stages) {
    const counts = new Map<string, number>();
    for (const job of stage.jobs) counts.set(job.result, (counts.get(job.result) ?? 0) + 1);
    const text = [...counts].map(([r, n]) => `${n} ${r}`).join(', ') || 'no jobs';
    lines.push(`${stage.name}: ${stage.status} (${text})`);
  }
  for (const failure of result.failures)
    lines.push(`FAILED ${failure.job}: ${failure.result}, ${failure.detail}`);
  return lines.join('\n');
}

/** POSTs the summary; returns a note for the result. Never throws: a lost notification is not a failed backup. */
export async function sendWebhook(
  webhook: Webhook,
  result: OrchestrateResult,
  host: string,
): Promise<string> {
  if (webhook.on === 'failure' && result.exitCode === 0)
    return 'webhook not sent (on: failure, run succeeded)';
  const headers: Record<string, string> = { ...webhook.headers };
  let body: string;
  if (webhook.format === 'ntfy') {
    headers['Content-Type'] ??= 'text/plain; charset=utf-8';
    headers.Title ??= `snapguard ${host}: ${result.status}`;
    headers.Priority ??= result.exitCode === 0 ? 'default' : result.exitCode === 1 ? 'high' : 'urgent';
    headers.Tags ??= result.exitCode === 0 ? 'white_check_mark' : 'warning';
    body = summaryText(result, host);
  } else {
    headers['Content-Type'] ??= 'application/json';
    body = JSON.stringify({ host, summary: summaryText(result, host), result });
  }
  const where = new URL(webhook.url);
  try {
    const response = await fetch(webhook.url, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(webhook.timeout * 1000),
    });
    await response.arrayBuffer().catch(() => undefined);
    return response.ok
      ? `webhook ${where.host} notified (HTTP ${response.status})`
      : `webhook ${where.host} answered HTTP ${response.status}; the summary may not have arrived`;
  } catch (error) {
    return `webhook ${where.host} not reachable: ${(error as Error).message}`;
  }
}
