import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Deps } from '../../core/deps.js';
import { SnapguardError } from '../../core/errors.js';
import { createServer } from '../server.js';
import { HostSessions } from './hosts.js';

export const MCP_PATH = '/mcp';
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const SHUTDOWN_GRACE_MS = 10_000;

export interface HttpAddress {
  host: string;
  port: number;
}

export interface HttpOptions {
  listen: HttpAddress;
  /** The bearer token clients must send; undefined only with noAuth on loopback. */
  token: string | undefined;
  noAuth?: boolean;
  /** Extra Host header values (host or host:port) accepted, e.g. the name a reverse proxy forwards. */
  allowedHosts?: string[];
  /** Extra Origin values accepted (browsers send Origin; other clients usually do not). */
  allowedOrigins?: string[];
}

export interface RunningHttpServer {
  url: string;
  address: HttpAddress;
  /** Stops accepting, lets requests in flight finish (up to a grace period), then closes. */
  close(): Promise<void>;
}

/** Parses HOST:PORT or [IPv6]:PORT. */
export function parseListenAddress(value: string): HttpAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65_535) {
    throw new SnapguardError(
      'BAD_INPUT',
      `"${value}" is not a listen address.`,
      'Write it as HOST:PORT, e.g. 127.0.0.1:8765 or [::1]:8765 (port 0 picks a free port).',
    );
  }
  return { host: (match[1] ?? match[2])!, port };
}

export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  return isIP(bare) === 4 && bare.startsWith('127.');
}

/**
 * The token comes from --token-file or $SNAPGUARD_MCP_TOKEN. Without one the server refuses to
 * start, except on a loopback address with an explicit --no-auth.
 */
export async function resolveToken(options: {
  listen: HttpAddress;
  tokenFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
  noAuth?: boolean;
}): Promise<string | undefined> {
  const env = options.env ?? process.env;
  if (options.noAuth) {
    if (!isLoopback(options.listen.host)) {
      throw new SnapguardError(
        'BAD_INPUT',
        `--no-auth is only allowed on a loopback address, not on ${options.listen.host}.`,
        'Bind to 127.0.0.1 or ::1, or drop --no-auth and give a token with --token-file or $SNAPGUARD_MCP_TOKEN.',
      );
    }
    return undefined;
  }
  let token: string | undefined;
  if (options.tokenFile) {
    try {
      token = (await readFile(options.tokenFile, 'utf8')).trim();
    } catch (error) {
      throw new SnapguardError(
        'CONFIG_INVALID',
        `Cannot read the token file ${options.tokenFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        'Check the path and that the user running snapguard can read it (mode 0600 is right).',
      );
    }
    if (!token) {
      throw new SnapguardError(
        'CONFIG_INVALID',
        `The token file ${options.tokenFile} is empty.`,
        'Write a long random token into it, e.g. `openssl rand -hex 32 > FILE`.',
      );
    }
  } else if (env.SNAPGUARD_MCP_TOKEN?.trim()) {
    token = env.SNAPGUARD_MCP_TOKEN.trim();
  }
  if (!token) {
    throw new SnapguardError(
      'CONFIG_INVALID',
      `Refusing to serve MCP over HTTP on ${options.listen.host}:${options.listen.port} without a bearer token.`,
      isLoopback(options.listen.host)
        ? 'Give one with --token-file FILE or $SNAPGUARD_MCP_TOKEN, or pass --no-auth to serve loopback without authentication.'
        : 'Give one with --token-file FILE or $SNAPGUARD_MCP_TOKEN (--no-auth is only allowed on loopback).',
    );
  }
  if (token.length < 16) {
    throw new SnapguardError(
      'CONFIG_INVALID',
      'The bearer token is shorter than 16 characters.',
      'Use a long random token, e.g. `openssl rand -hex 32`.',
    );
  }
  return token;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time comparison: both sides are hashed to equal length first. */
function tokenMatches(header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match) return false;
  return timingSafeEqual(digest(match[1]!), expected);
}

function hostForms(host: string, port: number): string[] {
  const bracketed = isIP(host) === 6 ? `[${host}]` : host;
  return [`${bracketed}:${port}`.toLowerCase(), ...(port === 80 ? [bracketed.toLowerCase()] : [])];
}

function allowedHostHeaders(address: HttpAddress, extra: string[]): Set<string> {
  const names = new Set<string>(hostForms(address.host, address.port));
  if (isLoopback(address.host)) {
    for (const name of ['localhost', '127.0.0.1', '::1'])
      hostForms(name, address.port).forEach((f) => names.add(f));
  }
  for (const value of extra) {
    const lower = value.toLowerCase();
    names.add(lower);
    if (!/:\d+$/.test(lower)) names.add(`${lower}:${address.port}`);
  }
  return names;
}

function sendJson(
  res: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
) {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** What a request must match before it reaches MCP; hosts and origins are known once the port is bound. */
interface Gate {
  hosts: Set<string>;
  origins: Set<string>;
  expected: Buffer | undefined;
}

/**
 * Answers a request that fails the checks (Host, Origin, token, path, method) and returns true;
 * returns false for one MCP may handle.
 */
function refused(deps: Deps, gate: Gate, req: IncomingMessage, res: ServerResponse): boolean {
  const host = (req.headers.host ?? '').toLowerCase();
  if (!gate.hosts.has(host)) {
    deps.logger.warn({ transport: 'http', host: host.slice(0, 100) }, 'refused a request for a foreign Host');
    sendJson(res, 403, 'Forbidden: Host not allowed');
    return true;
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !gate.origins.has(origin.toLowerCase())) {
    deps.logger.warn(
      { transport: 'http', origin: origin.slice(0, 100) },
      'refused a request from a foreign Origin',
    );
    sendJson(res, 403, 'Forbidden: Origin not allowed');
    return true;
  }
  if (gate.expected && !tokenMatches(req.headers.authorization, gate.expected)) {
    sendJson(res, 401, 'Unauthorized: send Authorization: Bearer <token>', {
      'www-authenticate': 'Bearer realm="snapguard"',
    });
    return true;
  }
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (path !== MCP_PATH) {
    sendJson(res, 404, `Not found: the MCP endpoint is ${MCP_PATH}`);
    return true;
  }
  if (req.method !== 'POST') {
    // Stateless: no standalone SSE stream (GET) and no session to delete (DELETE).
    sendJson(res, 405, 'Method not allowed: this server is stateless, use POST', { allow: 'POST' });
    return true;
  }
  return false;
}

/** Hands one checked POST to its own MCP server and transport, closed when the response ends. */
async function answerMcp(
  deps: Deps,
  remoteHosts: HostSessions | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  let body: unknown;
  try {
    body = JSON.parse(await readBody(req));
  } catch {
    return sendJson(res, 400, 'Bad request: the body must be JSON-RPC of at most 4 MiB');
  }
  const { server, cleanup } = createServer(deps, remoteHosts ? { hosts: remoteHosts } : {});
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => {
    void transport.close().finally(() => cleanup());
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
}

async function listenOn(http: Server, listen: HttpAddress): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    http.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new SnapguardError(
          'PRECONDITION_FAILED',
          `Cannot listen on ${listen.host}:${listen.port}: ${error.code ?? error.message}`,
          error.code === 'EADDRINUSE'
            ? 'Another process uses that port: pick another one.'
            : 'Check the address (it must be one of this host) and the permissions.',
        ),
      ),
    );
    http.listen(listen.port, listen.host, () => resolve());
  });
}

/** Stops accepting, waits for requests in flight up to the grace period, then closes everything. */
async function shutDown(
  deps: Deps,
  http: Server,
  inFlight: Set<Promise<void>>,
  remoteHosts: HostSessions | undefined,
): Promise<void> {
  const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
  http.closeIdleConnections();
  const grace = new Promise<void>((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS).unref());
  await Promise.race([Promise.allSettled([...inFlight]), grace]);
  http.closeAllConnections();
  await stopped;
  await remoteHosts?.close();
  deps.logger.info({ transport: 'http' }, 'snapguard MCP server stopped');
}

/**
 * Serves MCP over Streamable HTTP, stateless: every POST gets its own server and transport, which
 * are closed when the response ends. Host and Origin are checked before anything else (DNS
 * rebinding), then the bearer token.
 */
export async function startHttpServer(deps: Deps, options: HttpOptions): Promise<RunningHttpServer> {
  if (!options.token && !(options.noAuth && isLoopback(options.listen.host))) {
    throw new SnapguardError(
      'CONFIG_INVALID',
      'Refusing to serve MCP over HTTP without a bearer token.',
      'Give a token, or --no-auth on a loopback address.',
    );
  }
  const gate: Gate = {
    hosts: new Set<string>(),
    origins: new Set<string>(),
    expected: options.token ? digest(options.token) : undefined,
  };
  const inFlight = new Set<Promise<void>>();
  // One session per other host for the server's lifetime, shared by the per-request servers.
  const remoteHosts =
    Object.keys(deps.config.hosts).length > 0 ? new HostSessions(deps.config.hosts) : undefined;
  const http = createHttpServer((req, res) => {
    // A request is in flight until its response is closed (an SSE answer outlives handleRequest).
    const responseClosed = new Promise<void>((resolve) => res.once('close', () => resolve()));
    const work = (async () => {
      if (!refused(deps, gate, req, res)) await answerMcp(deps, remoteHosts, req, res);
    })()
      .catch((error: unknown) => {
        deps.logger.error({ transport: 'http', error: String(error) }, 'request failed');
        sendJson(res, 500, 'Internal server error');
      })
      .then(() => responseClosed);
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  });
  await listenOn(http, options.listen);
  const bound = http.address() as AddressInfo;
  const address = { host: options.listen.host, port: bound.port };
  gate.hosts = allowedHostHeaders(address, options.allowedHosts ?? []);
  gate.origins = new Set([
    ...[...gate.hosts].map((h) => `http://${h}`),
    ...(options.allowedOrigins ?? []).map((o) => o.toLowerCase().replace(/\/$/, '')),
  ]);
  const url = `http://${hostForms(address.host, address.port)[0]}${MCP_PATH}`;
  deps.logger.info(
    { transport: 'http', url, auth: gate.expected ? 'bearer' : 'none', readOnly: deps.config.readOnly },
    'snapguard MCP server listening',
  );
  let closing: Promise<void> | undefined;
  return {
    url,
    address,
    close: () => (closing ??= shutDown(deps, http, inFlight, remoteHosts)),
  };
}

/** Runs the HTTP server until SIGTERM or SIGINT, then shuts it down gracefully. */
export async function serveHttp(deps: Deps, options: HttpOptions): Promise<void> {
  const running = await startHttpServer(deps, options);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await running.close();
}
