import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildConfig } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import {
  parseListenAddress,
  resolveToken,
  startHttpServer,
  type RunningHttpServer,
} from '../../src/mcp/transports/http.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist', 'cli', 'index.js');
const TOKEN = 'test-token-0123456789abcdef';
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

/** node:http lets a test send any Host header (fetch does not). */
function raw(
  url: string,
  headers: Record<string, string>,
  body: unknown = INIT,
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

describe('MCP over Streamable HTTP on loopback', () => {
  let dir: string;
  let deps: Deps;
  let server: RunningHttpServer;
  let configFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sg-http-'));
    await mkdir(join(dir, 'data', 'containers'), { recursive: true });
    await writeFile(join(dir, 'data', 'containers', 'compose.yml'), 'services: {}\n');
    const input = {
      contextDir: 'context',
      stateDir: 'state',
      host: 'http-test',
      volumes: { containers: { backend: 'dir' as const, path: 'data/containers' } },
    };
    configFile = join(dir, 'snapguard.yaml');
    await writeFile(configFile, stringify(input));
    deps = createDeps(buildConfig(input, dir, configFile), { logger: silentLogger() });
    server = await startHttpServer(deps, { listen: { host: '127.0.0.1', port: 0 }, token: TOKEN });
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 401 without a token and with a wrong one', async () => {
    const none = await raw(server.url, {});
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await raw(server.url, { authorization: `Bearer ${TOKEN}x` })).status).toBe(401);
    expect((await raw(server.url, { authorization: TOKEN })).status).toBe(401);
    expect((await raw(server.url, { authorization: `Basic ${TOKEN}` })).status).toBe(401);
  });

  it('answers 403 to a foreign Host or Origin, even with the right token (DNS rebinding)', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const port = server.address.port;
    const foreignHost = await raw(server.url, { ...auth, host: `evil.example:${port}` });
    expect(foreignHost.status).toBe(403);
    expect(foreignHost.text).toMatch(/Host not allowed/);
    expect((await raw(server.url, { ...auth, host: `127.0.0.1:${port + 1}` })).status).toBe(403);
    const foreignOrigin = await raw(server.url, { ...auth, origin: 'http://evil.example' });
    expect(foreignOrigin.status).toBe(403);
    expect(foreignOrigin.text).toMatch(/Origin not allowed/);
    // The same request from the server's own origin and via localhost is served.
    const own = await raw(server.url, { ...auth, origin: `http://127.0.0.1:${port}` });
    expect(own.status).toBe(200);
    expect(own.text).toContain('"serverInfo"');
    expect((await raw(server.url, { ...auth, host: `localhost:${port}` })).status).toBe(200);
  });

  it('serves only POST on /mcp', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await raw(server.url.replace('/mcp', '/other'), auth)).status).toBe(404);
    const get = await fetch(server.url, { headers: { ...auth, accept: 'text/event-stream' } });
    expect(get.status).toBe(405);
    expect((await raw(server.url, auth, 'not json')).status).toBe(400);
  });

  it('runs the tools for an SDK client that sends the token: a snapshot is made and recorded', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(server.url), {
      requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
    });
    const client = new Client({ name: 'http-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['create_snapshot', 'list_snapshots']));
      const { prompts } = await client.listPrompts();
      expect(prompts.map((p) => p.name)).toContain('safe-deploy');
      const created = (await client.callTool({
        name: 'create_snapshot',
        arguments: { volumes: ['containers'], type: 'pre-deploy', operation: 'http' },
      })) as CallToolResult;
      expect(created.isError).toBeFalsy();
      const name = (created.structuredContent as { created: { name: string }[] }).created[0]!.name;
      expect(name).toMatch(/^containers-pre-deploy-http-\d{8}-\d{6}$/);
      const snapshotDir = deps.config.volumes.containers!.snapshotDir;
      expect(await readdir(snapshotDir)).toContain(name);
      expect(await readFile(join(snapshotDir, name, 'compose.yml'), 'utf8')).toBe('services: {}\n');
      const history = JSON.parse(await readFile(join(dir, 'context', 'backup-history.json'), 'utf8'));
      expect(history.snapshots.map((s: { snapshot_name: string }) => s.snapshot_name)).toContain(name);
    } finally {
      await client.close();
    }
  });

  it('an SDK client without the token cannot connect', async () => {
    const client = new Client({ name: 'http-test', version: '1.0.0' });
    await expect(client.connect(new StreamableHTTPClientTransport(new URL(server.url)))).rejects.toThrow(
      /401|Unauthorized/,
    );
  });

  it('the CLI refuses to start without a token on a non-loopback address, and --no-auth there', async () => {
    const noToken = await runCli(['mcp', '--config', configFile, '--http', '0.0.0.0:0']);
    expect(noToken.code).toBe(3);
    expect(noToken.stderr).toMatch(/Refusing to serve MCP over HTTP on 0\.0\.0\.0:0 without a bearer token/);
    expect(noToken.stderr).toMatch(/--no-auth is only allowed on loopback/);
    const noAuth = await runCli(['mcp', '--config', configFile, '--http', '0.0.0.0:0', '--no-auth']);
    expect(noAuth.code).toBe(3);
    expect(noAuth.stderr).toMatch(/--no-auth is only allowed on a loopback address/);
    const loopbackNoToken = await runCli(['mcp', '--config', configFile, '--http', '127.0.0.1:0']);
    expect(loopbackNoToken.code).toBe(3);
    expect(loopbackNoToken.stderr).toMatch(/or pass --no-auth/);
  });

  it('the CLI serves with a token file, never logs the token, and stops cleanly on SIGTERM', async () => {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const child = spawn(
      process.execPath,
      [cli, 'mcp', '--config', configFile, '--http', '127.0.0.1:0', '--token-file', tokenFile],
      { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await expect.poll(() => /"url":"([^"]+)"/.exec(stderr)?.[1], { timeout: 20_000 }).toBeTruthy();
      const url = /"url":"([^"]+)"/.exec(stderr)![1]!;
      expect((await raw(url, {})).status).toBe(401);
      const ok = await raw(url, { authorization: `Bearer ${TOKEN}` });
      expect(ok.status).toBe(200);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toContain('snapguard MCP server stopped');
      expect(stderr).not.toContain(TOKEN);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('takes the token from $SNAPGUARD_MCP_TOKEN, prefers --token-file, and rejects short or empty tokens', async () => {
    const listen = parseListenAddress('[::1]:8765');
    expect(listen).toEqual({ host: '::1', port: 8765 });
    expect(await resolveToken({ listen, env: { SNAPGUARD_MCP_TOKEN: ` ${TOKEN} ` } })).toBe(TOKEN);
    const file = join(dir, 'other-token');
    await writeFile(file, 'from-the-file-0123456789');
    expect(await resolveToken({ listen, tokenFile: file, env: { SNAPGUARD_MCP_TOKEN: TOKEN } })).toBe(
      'from-the-file-0123456789',
    );
    await expect(resolveToken({ listen, env: { SNAPGUARD_MCP_TOKEN: 'short' } })).rejects.toThrow(/16/);
    await writeFile(file, '\n');
    await expect(resolveToken({ listen, tokenFile: file, env: {} })).rejects.toThrow(/is empty/);
    expect(await resolveToken({ listen, noAuth: true, env: {} })).toBeUndefined();
    expect(() => parseListenAddress('8765')).toThrow(/not a listen address/);
  });

  it('graceful shutdown: a request in flight when close() starts is still answered; new connections are refused', async () => {
    const own = await startHttpServer(deps, { listen: { host: '127.0.0.1', port: 0 }, token: TOKEN });
    const body = JSON.stringify(INIT);
    const answered = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(own.url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${TOKEN}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': String(Buffer.byteLength(body)),
        },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      // Half the body now, the rest after shutdown has begun.
      req.write(body.slice(0, 20));
      setTimeout(() => req.end(body.slice(20)), 300);
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = own.close();
    await expect(raw(own.url, { authorization: `Bearer ${TOKEN}` })).rejects.toThrow(
      /ECONNREFUSED|ECONNRESET|socket hang up/,
    );
    const result = await answered;
    expect(result.status).toBe(200);
    expect(result.text).toContain('"serverInfo"');
    await closed;
  });

  it('accepts the Host and Origin names given with allowedHosts / allowedOrigins, and still no others', async () => {
    const own = await startHttpServer(deps, {
      listen: { host: '127.0.0.1', port: 0 },
      token: TOKEN,
      allowedHosts: ['nas.lan'],
      allowedOrigins: ['https://mcp.example.org'],
    });
    try {
      const auth = { authorization: `Bearer ${TOKEN}` };
      const port = own.address.port;
      expect((await raw(own.url, { ...auth, host: `nas.lan:${port}` })).status).toBe(200);
      expect((await raw(own.url, { ...auth, host: 'nas.lan' })).status).toBe(200);
      expect((await raw(own.url, { ...auth, origin: 'https://mcp.example.org' })).status).toBe(200);
      expect((await raw(own.url, { ...auth, host: `nas.lan.evil:${port}` })).status).toBe(403);
      expect((await raw(own.url, { ...auth, origin: 'https://mcp.example.org.evil' })).status).toBe(403);
    } finally {
      await own.close();
    }
  });
});
