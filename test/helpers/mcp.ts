import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Deps } from '../../src/core/deps.js';
import { createServer } from '../../src/mcp/server.js';

export interface Connected {
  client: Client;
  tools: string[];
  call(name: string, args: Record<string, unknown>): Promise<CallToolResult>;
  close(): Promise<void>;
}

/** An SDK Client linked in memory to a snapguard server built on the given deps. */
export async function connect(deps: Deps, capabilities: Record<string, unknown> = {}): Promise<Connected> {
  const { server, tools, cleanup } = createServer(deps);
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'snapguard-test', version: '1.0.0' }, { capabilities });
  await Promise.all([server.connect(serverTransport), client.connect(clientTransport)]);
  return {
    client,
    tools,
    call: async (name, args) => (await client.callTool({ name, arguments: args })) as CallToolResult,
    close: async () => {
      await client.close();
      await cleanup();
    },
  };
}

export function textOf(result: CallToolResult): string {
  return result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');
}
