// MCP over Streamable HTTP: the cost of the stateless per-request server and transport.
// Median and p95 of list_snapshots over HTTP (a new server per request) vs the same call over a
// warm stdio server, and of a bare initialize over HTTP. A dir volume: no root needed.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { stringify } from 'yaml';
import { buildConfig } from '../dist/core/config.js';
import { createDeps } from '../dist/core/deps.js';
import { silentLogger } from '../dist/core/logger.js';
import { startHttpServer } from '../dist/mcp/transports/http.js';
import { median, percentile, timedRuns } from './stats.mjs';

const cli = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url));
const TOKEN = 'bench-token-0123456789abcdef';
const ROUNDS = 200;
const ms = (x) => `${x.toFixed(2)} ms`;

const dir = await mkdtemp(join(tmpdir(), 'snapguard-bench-http-'));
const lines = ['## MCP over Streamable HTTP', ''];
try {
  await mkdir(join(dir, 'data', 'app'), { recursive: true });
  const input = {
    contextDir: 'context',
    stateDir: 'state',
    volumes: { app: { backend: 'dir', path: 'data/app' } },
  };
  const configFile = join(dir, 'snapguard.yaml');
  await writeFile(configFile, stringify(input));
  const deps = createDeps(buildConfig(input, dir, configFile), { logger: silentLogger() });
  const http = await startHttpServer(deps, { listen: { host: '127.0.0.1', port: 0 }, token: TOKEN });

  const httpClient = new Client({ name: 'bench', version: '1' });
  await httpClient.connect(
    new StreamableHTTPClientTransport(new URL(http.url), {
      requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
    }),
  );
  const stdioClient = new Client({ name: 'bench', version: '1' });
  await stdioClient.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [cli, 'mcp', '--config', configFile],
      stderr: 'ignore',
    }),
  );

  const measure = (fn) => timedRuns(fn, ROUNDS, 10);
  const call = (client) => () => client.callTool({ name: 'list_snapshots', arguments: {} });
  const overHttp = await measure(call(httpClient));
  const overStdio = await measure(call(stdioClient));
  const initialize = await measure(async () => {
    const c = new Client({ name: 'bench', version: '1' });
    await c.connect(
      new StreamableHTTPClientTransport(new URL(http.url), {
        requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
      }),
    );
    await c.close();
  });
  await httpClient.close();
  await stdioClient.close();
  await http.close();

  lines.push(
    `${ROUNDS} calls each, after 10 warm-up calls; HTTP builds a new server and transport per request.`,
    '',
    '| call | median | p95 |',
    '| --- | --- | --- |',
    `| list_snapshots over HTTP (stateless) | ${ms(median(overHttp))} | ${ms(percentile(overHttp, 95))} |`,
    `| list_snapshots over stdio (warm server) | ${ms(median(overStdio))} | ${ms(percentile(overStdio, 95))} |`,
    `| connect (initialize + initialized) over HTTP | ${ms(median(initialize))} | ${ms(percentile(initialize, 95))} |`,
    '',
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.stdout.write(`${lines.join('\n')}\n`);
