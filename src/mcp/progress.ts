import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Progress } from '../core/restore-test/index.js';

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/**
 * Progress notifications for long tools: sent only when the client asked for them with a
 * progressToken, at most every 250 ms (the last one always), so a 60 s client timeout keeps resetting.
 */
export function progressReporter(extra: Extra): ((progress: Progress) => void) | undefined {
  const token = extra._meta?.progressToken;
  if (token === undefined) return undefined;
  let last = 0;
  let counter = 0;
  return (progress) => {
    const now = Date.now();
    const final = progress.total !== undefined && progress.progress >= progress.total;
    if (!final && now - last < 250) return;
    last = now;
    // progress must increase on every notification, also across phases.
    counter = Math.max(counter + 1e-6, progress.progress);
    sendProgress(extra, token, counter, progress.total, progress.message);
  };
}

/** One progress notification to the client; a failed send is dropped (the call itself goes on). */
export function sendProgress(
  extra: {
    sendNotification(notification: {
      method: 'notifications/progress';
      params: { progressToken: string | number; progress: number; total?: number; message?: string };
    }): Promise<void>;
  },
  token: string | number,
  progress: number,
  total: number | undefined,
  message: string | undefined,
): void {
  extra
    .sendNotification({
      method: 'notifications/progress',
      params: {
        progressToken: token,
        progress,
        ...(total !== undefined ? { total } : {}),
        ...(message !== undefined ? { message } : {}),
      },
    })
    .catch(() => undefined);
}
