import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Logs go to stderr (fd 2) or a file; never stdout, which belongs to the MCP protocol in stdio mode. */
export function createLogger(options: { file?: string | undefined; level?: string } = {}): Logger {
  const destination = options.file
    ? pino.destination({ dest: options.file, mkdir: true, sync: false })
    : pino.destination({ fd: 2, sync: true });
  return pino(
    {
      level: options.level ?? process.env.SNAPGUARD_LOG_LEVEL ?? 'info',
      base: { app: 'snapguard' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
