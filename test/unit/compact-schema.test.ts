import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps, type Deps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import {
  compactSchema,
  compactTool,
  listedOutputSchema,
  patternMaxLength,
} from '../../src/mcp/compact-schema.js';
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

describe('patternMaxLength', () => {
  it('adds up bounded atoms and gives up on anything unbounded', () => {
    expect(patternMaxLength('^[a-z0-9][a-z0-9._-]{0,63}$')).toBe(64);
    expect(patternMaxLength('^op-\\d{8}-\\d{6}-[0-9a-f]{6}$')).toBe(25);
    expect(patternMaxLength('^[a-z]+$')).toBeUndefined();
    expect(patternMaxLength('^(a|b)$')).toBeUndefined();
    expect(patternMaxLength('[a-z]{0,3}')).toBeUndefined();
  });

  it('drops a maxLength only when the pattern already enforces it', () => {
    const schema = {
      type: 'object',
      properties: {
        id: { type: 'string', maxLength: 64, pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' },
        short: { type: 'string', maxLength: 10, pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' },
        free: { type: 'string', maxLength: 64, pattern: '^[a-z]+$' },
      },
    };
    const properties = compactSchema(schema, 'input')['properties'] as Record<
      string,
      Record<string, unknown>
    >;
    expect(properties['id']).not.toHaveProperty('maxLength');
    expect(properties['short']!['maxLength']).toBe(10);
    expect(properties['free']!['maxLength']).toBe(64);
  });
});

describe('listedOutputSchema', () => {
  const output = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    properties: {
      status: { type: 'string', enum: ['planned', 'done'] },
      exitCode: {
        anyOf: [
          { type: 'number', const: 0 },
          { type: 'number', const: 2 },
        ],
      },
      total: { type: 'integer', description: 'matches before the limit', minimum: -9007199254740991 },
      failures: {
        type: 'array',
        items: {
          type: 'object',
          properties: { volume: { type: 'string' }, error: { type: 'string' } },
          required: ['volume'],
        },
      },
      snapshots: { type: 'array', items: snapshot },
    },
    required: ['status', 'total'],
    additionalProperties: false,
  };

  it('keeps every top-level field, its allowed values, description and requirement; short nested field lists', () => {
    expect(listedOutputSchema(output)).toEqual({
      type: 'object',
      properties: {
        status: { enum: ['planned', 'done'] },
        exitCode: { enum: [0, 2] },
        total: { description: 'matches before the limit' },
        failures: { type: 'array', description: '{volume, error?}[]' },
        snapshots: { type: 'array', description: '{name, volume, size?, location}[]' },
      },
      required: ['status', 'total'],
    });
  });

  it('drops execution when it says what a client assumes anyway, and the annotations title next to a title', () => {
    const tool = {
      name: 'x',
      title: 'X',
      description: 'd',
      inputSchema: { type: 'object', properties: {} },
      annotations: { title: 'X again', readOnlyHint: true },
      execution: { taskSupport: 'forbidden' },
    };
    expect(compactTool(tool)).toEqual({
      name: 'x',
      title: 'X',
      description: 'd',
      inputSchema: { type: 'object', properties: {} },
      annotations: { readOnlyHint: true },
    });
    expect(compactTool({ ...tool, execution: { taskSupport: 'optional' } })['execution']).toEqual({
      taskSupport: 'optional',
    });
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
