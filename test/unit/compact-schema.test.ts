import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { compactSchema } from '../../src/mcp/compact-schema.js';
import { connect } from '../helpers/mcp.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Replaces every local `$ref` by what it points at, so a compacted schema can be compared with the original. */
function inline(value: Json, root: { [key: string]: Json }): Json {
  if (Array.isArray(value)) return value.map((item) => inline(item, root));
  if (typeof value !== 'object' || value === null) return value;
  const ref = value['$ref'];
  if (typeof ref === 'string') {
    const target = ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<Json>((node, key) => (node as { [key: string]: Json })[key] as Json, root);
    return inline(target, root);
  }
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== 'definitions')
      .map(([key, item]) => [key, inline(item, root)]),
  );
}

const snapshot = {
  type: 'object',
  properties: {
    name: { type: 'string', description: 'the snapshot name' },
    volume: { type: 'string' },
    size: { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 },
    location: { type: 'string', enum: ['local', 'external'] },
  },
  required: ['name', 'volume', 'location'],
  additionalProperties: false,
};

describe('compactSchema', () => {
  const original = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    properties: {
      created: { type: 'array', items: snapshot },
      planned: { type: 'array', items: snapshot },
      skipped: { type: 'object', properties: { existing: snapshot, count: { type: 'integer', minimum: 0 } } },
    },
    required: ['created'],
    additionalProperties: false,
  };

  it('drops $schema and the ±2^53 integer bounds, keeps real bounds, shares the repeated object', () => {
    const compacted = compactSchema(original, 'output');
    const text = JSON.stringify(compacted);
    expect(text).not.toContain('$schema');
    expect(text).not.toContain('9007199254740991');
    expect(text).toContain('"minimum":0');
    // The array of snapshots (twice) and the snapshot (three times, once inside that array) are shared.
    expect(Object.keys(compacted['definitions'] as object)).toHaveLength(2);
    expect(text.match(/"\$ref"/g)).toHaveLength(4);
    // A map of property schemas is never itself replaced by a reference.
    expect(text).not.toMatch(/"properties":\{"\$ref"/);
    expect(text.length).toBeLessThan(JSON.stringify(original).length * 0.6);
  });

  it('loses no field, type, enum, description or requirement: inlining the references gives the schema back', () => {
    const compacted = compactSchema(original, 'output');
    const withoutBoilerplate = JSON.parse(
      JSON.stringify(original, (key, value: unknown) =>
        key === '$schema' ||
        key === 'additionalProperties' ||
        (key === 'maximum' && value === 9007199254740991)
          ? undefined
          : key === 'minimum' && value === -9007199254740991
            ? undefined
            : value,
      ),
    ) as Json;
    expect(inline(compacted, compacted)).toEqual(withoutBoilerplate);
  });

  it('keeps additionalProperties: false on inputs (unknown arguments stay refused)', () => {
    const compacted = compactSchema(original, 'input');
    expect(compacted['additionalProperties']).toBe(false);
    expect(JSON.stringify(compacted)).not.toContain('$ref');
  });
});

describe('tools/list of the server', () => {
  let dir: string;
  let deps: Deps;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-compact-'));
    await mkdir(join(dir, 'pool', 'data'), { recursive: true });
    await writeFile(join(dir, 'pool', 'data', 'a.txt'), 'alpha');
    deps = createDeps(
      buildConfig(
        { contextDir: 'ctx', stateDir: 'state', volumes: { data: { backend: 'dir', path: 'pool/data' } } },
        dir,
      ),
      { logger: silentLogger() },
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('carries no schema boilerplate, and results still validate against the compacted output schemas', async () => {
    const mcp = await connect(deps);
    try {
      const { tools } = await mcp.client.listTools();
      const text = JSON.stringify(tools);
      expect(text).not.toContain('"$schema"');
      expect(text).not.toContain('9007199254740991');
      // The client validates structuredContent against the listed (compacted) outputSchema.
      const created = await mcp.call('create_snapshot', {
        volumes: ['data'],
        type: 'pre-change',
        operation: 'x',
      });
      expect(created.isError).toBeFalsy();
      const listed = await mcp.call('list_snapshots', { volume: 'data' });
      expect(listed.isError).toBeFalsy();
      expect((listed.structuredContent as { total: number }).total).toBe(1);
    } finally {
      await mcp.close();
    }
  });
});
