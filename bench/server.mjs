// Shared by the bench scripts: a warm `snapguard mcp` over stdio, as an assistant's client runs it.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

/** Starts the built CLI's MCP server on `config` and connects a client; `pid` is the server's. */
export async function startMcpServer(cli, config, name = 'bench') {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [cli, 'mcp', '--config', config],
    stderr: 'ignore',
  });
  const client = new Client({ name, version: '1' });
  await client.connect(transport);
  return { client, pid: transport.pid };
}
