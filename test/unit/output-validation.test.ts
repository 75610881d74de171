import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { installSyncOutputValidation } from '../../src/mcp/output-validation.js';

describe('tool output is still checked against the output schema (synchronous parser)', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  const listingSchema = z.object({ items: z.array(z.object({ name: z.string(), readOnly: z.boolean() })) });

  /** A client of a server with one tool, 'listing', whose result is `output` checked against `outputSchema`. */
  async function connect(
    output: Record<string, unknown> | undefined,
    outputSchema: z.ZodTypeAny = listingSchema,
  ): Promise<Client> {
    const server = new McpServer({ name: 't', version: '1' });
    server.registerTool('listing', { outputSchema }, async () => ({
      content: [{ type: 'text', text: 'x' }],
      ...(output ? { structuredContent: output } : {}),
    }));
    installSyncOutputValidation(server);
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    // A result marked as an error is not checked again by the client: what is seen is the server's check.
    const client = new Client({ name: 'c', version: '1' });
    await client.connect(clientSide);
    closers.push(
      () => client.close(),
      () => server.close(),
    );
    return client;
  }

  it('passes a result that matches', async () => {
    const client = await connect({ items: [{ name: 'a', readOnly: true }] });
    const result = (await client.callTool({ name: 'listing', arguments: {} })) as CallToolResult;
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ items: [{ name: 'a', readOnly: true }] });
  });

  it('turns a result that does not match into an error naming the field', async () => {
    const client = await connect({
      items: [
        { name: 'a', readOnly: true },
        { name: 'b', readOnly: 'no' },
      ],
    });
    const result = (await client.callTool({ name: 'listing', arguments: {} })) as CallToolResult;
    expect(result.isError).toBe(true);
    const text = (result.content[0] as { text: string }).text;
    expect(text).toContain('Output validation error: Invalid structured content for tool listing');
    expect(text).toContain('readOnly');
  });

  // Long arrays are checked item by item: the answers must be those of the whole parse.
  const many = (bad?: number) =>
    Array.from({ length: 600 }, (_, i) => ({ name: `s${i}`, readOnly: i === bad ? 'no' : true }));

  it('passes a long result that matches', async () => {
    const client = await connect({ items: many() });
    const result = (await client.callTool({ name: 'listing', arguments: {} })) as CallToolResult;
    expect(result.isError).toBeFalsy();
    expect((result.structuredContent as { items: unknown[] }).items).toHaveLength(600);
  });

  it('finds one wrong entry in the middle of a long result and names its place and field', async () => {
    const client = await connect({ items: many(317) });
    const result = (await client.callTool({ name: 'listing', arguments: {} })) as CallToolResult;
    expect(result.isError).toBe(true);
    const text = (result.content[0] as { text: string }).text;
    expect(text).toContain('Output validation error: Invalid structured content for tool listing');
    expect(text).toContain('readOnly');
    expect(text).toContain('317');
  });

  it('checks the rest of a result that holds a long array', async () => {
    const client = await connect({ items: many(), extra: 1 });
    const ok = (await client.callTool({ name: 'listing', arguments: {} })) as CallToolResult;
    expect(ok.isError).toBeFalsy();
    const missing = await connect({ other: many() });
    const result = (await missing.callTool({ name: 'listing', arguments: {} })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect((result.content[0] as { text: string }).text).toContain('items');
  });

  it('turns a missing structured result into an error', async () => {
    const client = await connect(undefined);
    const result = (await client.callTool({ name: 'listing', arguments: {} })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect((result.content[0] as { text: string }).text).toContain('no structured content was provided');
  });

  it('refuses each kind of wrong entry in the middle of a long listing of snapshots, naming the field', async () => {
    const { ListSnapshotsResultSchema } = await import('../../src/core/schemas.js');
    const good = (i: number) => ({
      name: `data-manual-${i}`,
      volume: 'data',
      path: `/s/data-manual-${i}`,
      type: 'manual',
      createdAt: '2026-01-01T00:00:00.000Z',
      readOnly: true,
      location: 'local',
      rollbackPointOf: ['op-1'],
      owned: true,
      ageSeconds: i,
    });
    const wrongs: [string, Record<string, unknown>][] = [
      ['type', { type: 'weekly-ish' }],
      ['ageSeconds', { ageSeconds: Number.NaN }],
      ['ageSeconds', { ageSeconds: '5' }],
      ['readOnly', { readOnly: undefined }],
      ['rollbackPointOf', { rollbackPointOf: ['op-1', 2] }],
      ['outcome', { outcome: 'maybe' }],
      ['name', { name: 7 }],
    ];
    for (const [field, change] of wrongs) {
      const snapshots = Array.from({ length: 600 }, (_, i) =>
        i === 400 ? { ...good(i), ...change } : good(i),
      );
      const client = await connect({ snapshots, total: 600 }, ListSnapshotsResultSchema);
      const result = (await client.callTool({ name: 'listing', arguments: {} })) as CallToolResult;
      expect(result.isError, `${field}: ${JSON.stringify(change)}`).toBe(true);
      const text = (result.content[0] as { text: string }).text;
      expect(text).toContain(field);
      expect(text).toContain('400');
    }
  });
});
