import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ElicitRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildConfig } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { confirmGate } from '../../src/mcp/confirm.js';
import { errorResult } from '../../src/mcp/result.js';

// The gate on its own, behind a throwaway destructive tool that counts how often it acted.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapguard-gate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function connect(
  confirm: 'elicit-or-token' | 'token' | 'never',
  answer?: 'accept' | 'decline' | 'cancel' | 'accept-unticked',
) {
  const deps: Deps = createDeps(
    buildConfig({ contextDir: join(dir, 'ctx'), stateDir: join(dir, 'state'), confirm }, dir),
    { logger: silentLogger() },
  );
  const state = { acted: 0, fingerprint: 'v1', asked: [] as string[] };
  const server = new McpServer({ name: 't', version: '0' });
  server.registerTool(
    'wipe',
    { inputSchema: { target: z.string(), confirmationToken: z.string().optional() } },
    async (args, extra): Promise<CallToolResult> => {
      try {
        const gate = await confirmGate(deps, server, extra, {
          tool: 'wipe',
          args,
          fingerprint: state.fingerprint,
          plan: { steps: [`wipe ${args.target}`] },
          summary: `Will wipe ${args.target}.`,
          token: args.confirmationToken,
        });
        if (gate.proceed) {
          state.acted++;
          return { content: [{ type: 'text', text: `wiped via ${gate.via}` }] };
        }
        return { content: [{ type: 'text', text: JSON.stringify(gate) }] };
      } catch (error) {
        return errorResult(error);
      }
    },
  );
  const client = new Client({ name: 'c', version: '0' }, { capabilities: answer ? { elicitation: {} } : {} });
  if (answer) {
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      state.asked.push(String(request.params.message));
      if (answer === 'accept') return { action: 'accept', content: { confirm: true } };
      if (answer === 'accept-unticked') return { action: 'accept', content: { confirm: false } };
      return { action: answer };
    });
  }
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  const call = async (args: Record<string, unknown>) => {
    const result = (await client.callTool({ name: 'wipe', arguments: args })) as CallToolResult;
    const text = (result.content[0] as { text: string }).text;
    return {
      result,
      text,
      json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : undefined,
    };
  };
  return { state, call, close: () => Promise.all([client.close(), server.close()]) };
}

describe('confirmation gate over MCP (SDK client)', () => {
  it('token path: plan + token first, the token acts once, reuse and changed state are refused', async () => {
    const t = await connect('elicit-or-token');
    const first = await t.call({ target: 'a' });
    expect(first.json?.status).toBe('confirmation_required');
    expect(first.json?.plan).toEqual({ steps: ['wipe a'] });
    expect(t.state.acted).toBe(0);
    const token = String(first.json?.confirmationToken);
    expect((await t.call({ target: 'b', confirmationToken: token })).text).toMatch(
      /CONFIRMATION_INVALID.*different arguments/s,
    );
    expect((await t.call({ target: 'a', confirmationToken: token })).text).toBe('wiped via token');
    expect((await t.call({ target: 'a', confirmationToken: token })).text).toMatch(/already used/);
    const second = await t.call({ target: 'a' });
    t.state.fingerprint = 'v2';
    const stale = await t.call({ target: 'a', confirmationToken: String(second.json?.confirmationToken) });
    expect(stale.result.isError).toBe(true);
    expect(stale.text).toMatch(/state changed/);
    expect(t.state.acted).toBe(1);
    await t.close();
  });

  it('elicitation: accept acts, decline / cancel / an unticked accept change nothing', async () => {
    for (const [answer, acted, status] of [
      ['accept', 1, undefined],
      ['decline', 0, 'declined'],
      ['cancel', 0, 'cancelled'],
      ['accept-unticked', 0, 'declined'],
    ] as const) {
      const t = await connect('elicit-or-token', answer);
      const out = await t.call({ target: 'x' });
      expect(t.state.asked[0]).toContain('Will wipe x.');
      expect(t.state.acted).toBe(acted);
      if (status) expect(out.json?.status).toBe(status);
      else expect(out.text).toBe('wiped via elicitation');
      await t.close();
    }
  });

  it('confirm: token never elicits; confirm: never skips the gate', async () => {
    const t = await connect('token', 'accept');
    expect((await t.call({ target: 'x' })).json?.status).toBe('confirmation_required');
    expect(t.state.asked).toHaveLength(0);
    await t.close();
    const n = await connect('never');
    expect((await n.call({ target: 'x' })).text).toBe('wiped via never');
    await n.close();
  });
});
