import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

// tools/list is read into the assistant's context on every session, so its size is paid again and
// again. The JSON Schemas generated from the zod schemas carry boilerplate that says nothing to a
// client: a `$schema` line per schema, ±2^53 bounds on every integer, `additionalProperties: false`
// on every output object, and whole object schemas repeated (a snapshot appears in three places of
// create_snapshot's result). This keeps every field and constraint a client can act on.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const SAFE_INTEGER_BOUND = Number.MAX_SAFE_INTEGER;
/** Subschemas shorter than this (as JSON) cost less inline than as a reference. */
const MIN_SHARED_LENGTH = 160;

const isObject = (value: Json | undefined): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function stripBoilerplate(value: Json, isOutput: boolean): Json {
  if (Array.isArray(value)) return value.map((item) => stripBoilerplate(item, isOutput));
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    if (key === '$schema') continue;
    if ((key === 'minimum' || key === 'maximum') && Math.abs(Number(item)) === SAFE_INTEGER_BOUND) continue;
    // Output objects are produced by snapguard itself; closing them tells the client nothing.
    if (isOutput && key === 'additionalProperties' && item === false) continue;
    out[key] = stripBoilerplate(item, isOutput);
  }
  return out;
}

/** Keywords whose value is a map from names to schemas, not a schema: never replaced by a `$ref`. */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'definitions', '$defs', 'dependencies']);

/** Moves object subschemas that occur more than once into `definitions`, referenced by `$ref`. */
function shareRepeated(schema: JsonObject): JsonObject {
  const counts = new Map<string, number>();
  const count = (value: Json, depth: number, key: string | undefined) => {
    if (Array.isArray(value)) return value.forEach((item) => count(item, depth + 1, undefined));
    if (!isObject(value)) return;
    if (depth > 0 && !(key !== undefined && SCHEMA_MAPS.has(key))) {
      const text = JSON.stringify(value);
      if (text.length >= MIN_SHARED_LENGTH) counts.set(text, (counts.get(text) ?? 0) + 1);
    }
    for (const [childKey, item] of Object.entries(value)) count(item, depth + 1, childKey);
  };
  count(schema, 0, undefined);
  // Largest first: a shared parent makes its repeated children single again.
  const repeated = [...counts].filter(([, n]) => n > 1).sort((a, b) => b[0].length - a[0].length);
  if (repeated.length === 0) return schema;
  const names = new Map<string, string>();
  const definitions: JsonObject = {};
  const shared = new Set(repeated.map(([text]) => text));
  const replace = (value: Json, depth: number, inDefinition: string | undefined, key?: string): Json => {
    if (Array.isArray(value)) return value.map((item) => replace(item, depth + 1, inDefinition));
    if (!isObject(value)) return value;
    const text = depth > 0 ? JSON.stringify(value) : '';
    if (
      depth > 0 &&
      !(key !== undefined && SCHEMA_MAPS.has(key)) &&
      text !== inDefinition &&
      shared.has(text)
    ) {
      let name = names.get(text);
      if (!name) {
        name = `shared${names.size + 1}`;
        names.set(text, name);
        definitions[name] = replaceChildren(value, text);
      }
      return { $ref: `#/definitions/${name}` };
    }
    return replaceChildren(value, inDefinition);
  };
  const replaceChildren = (value: JsonObject, inDefinition: string | undefined): JsonObject =>
    Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, replace(item, 1, inDefinition, key)]),
    );
  const compacted = replace(schema, 0, undefined) as JsonObject;
  return { ...compacted, definitions };
}

export function compactSchema(schema: JsonObject, kind: 'input' | 'output'): JsonObject {
  const stripped = stripBoilerplate(schema, kind === 'output') as JsonObject;
  return kind === 'output' ? shareRepeated(stripped) : stripped;
}

type ListHandler = (request: unknown, extra: unknown) => Promise<{ tools: JsonObject[] }>;

/** Wraps the SDK's tools/list handler so every listed schema is compacted (must run after registration). */
export function installCompactToolList(server: McpServer): void {
  const handlers = (server.server as unknown as { _requestHandlers: Map<string, ListHandler> })
    ._requestHandlers;
  const inner = handlers.get('tools/list');
  if (!inner) throw new Error('installCompactToolList must run after the tools are registered');
  handlers.set('tools/list', async (request, extra) => {
    const result = await inner(request, extra);
    return {
      ...result,
      tools: result.tools.map((tool) => ({
        ...tool,
        ...(isObject(tool.inputSchema) ? { inputSchema: compactSchema(tool.inputSchema, 'input') } : {}),
        ...(isObject(tool.outputSchema) ? { outputSchema: compactSchema(tool.outputSchema, 'output') } : {}),
      })),
    };
  });
}
