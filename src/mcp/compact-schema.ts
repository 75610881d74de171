import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';

// tools/list is read into the assistant's context on every session, so its size is paid again and
// again. The JSON Schemas generated from the zod schemas carry boilerplate that says nothing to a
// client: a `$schema` line per schema, ±2^53 bounds on every integer, `additionalProperties: false`
// on every output object, and whole object schemas repeated (a snapshot appears in three places of
// create_snapshot's result). compactSchema drops that and keeps every field and constraint; it is
// what input schemas and the snapguard://tool-outputs/{tool} resources carry. tools/list itself
// shows output schemas by their top-level fields (listedOutputSchema): the nested fields of a
// result, about half of the listing before, are one resource read away instead.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const SAFE_INTEGER_BOUND = Number.MAX_SAFE_INTEGER;
/** Subschemas shorter than this (as JSON) cost less inline than as a reference. */
const MIN_SHARED_LENGTH = 160;

const isObject = (value: Json | undefined): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The longest string a pattern of the form `^atoms$` can match, where each atom is a literal character,
 * an escape such as `\\d` or a `[class]`, optionally with a bounded `{n}` or `{m,n}`; undefined for any
 * other pattern (alternation, `*`, `+`, groups...).
 */
export function patternMaxLength(pattern: string): number | undefined {
  const body = /^\^(.*)\$$/.exec(pattern)?.[1];
  if (body === undefined) return undefined;
  const atom = /^(\\.|\[(?:\\.|[^\]\\])*\]|[^\\[\](){}|*+?.^$])(?:\{(\d+)(?:,(\d+))?\})?/;
  let rest = body;
  let total = 0;
  while (rest.length > 0) {
    const match = atom.exec(rest);
    if (!match) return undefined;
    total += Number(match[3] ?? match[2] ?? 1);
    rest = rest.slice(match[0].length);
  }
  return total;
}

/** A `maxLength` that the string's own `pattern` already enforces says nothing more. */
function isImpliedMaxLength(schema: JsonObject): boolean {
  const pattern = schema['pattern'];
  const maxLength = schema['maxLength'];
  if (typeof pattern !== 'string' || typeof maxLength !== 'number') return false;
  const longest = patternMaxLength(pattern);
  return longest !== undefined && longest <= maxLength;
}

function stripBoilerplate(value: Json, isOutput: boolean): Json {
  if (Array.isArray(value)) return value.map((item) => stripBoilerplate(item, isOutput));
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    if (key === '$schema') continue;
    if (key === 'maxLength' && isImpliedMaxLength(value)) continue;
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

/** Resolves a local `#/definitions/x` or `#/$defs/x` reference against the schema's root. */
function resolveRef(value: JsonObject, root: JsonObject): JsonObject {
  const ref = value['$ref'];
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return value;
  const target = ref
    .slice(2)
    .split('/')
    .reduce<Json | undefined>((node, key) => (isObject(node) ? node[key] : undefined), root);
  return isObject(target) ? resolveRef(target, root) : {};
}

/** The object a schema describes, directly or as the items of an array; undefined for anything else. */
function objectOf(schema: JsonObject, root: JsonObject): JsonObject | undefined {
  const value = resolveRef(schema, root);
  if (value['type'] === 'array' && isObject(value['items'])) return objectOf(value['items'], root);
  return isObject(value['properties']) ? value : undefined;
}

/** A nested object's field list is shown in tools/list up to this length (`{volume, check, ok, detail?}`). */
const MAX_LISTED_FIELDS = 80;

/**
 * The field names of a nested object, `?` after the optional ones: `{volume, snapshot, error}`, with
 * `[]` after it for an array of them; undefined when that list would be longer than MAX_LISTED_FIELDS.
 */
function fieldList(schema: JsonObject, root: JsonObject): string | undefined {
  const object = objectOf(schema, root);
  const properties = object?.['properties'];
  if (!object || !isObject(properties)) return undefined;
  const required = new Set(Array.isArray(object['required']) ? object['required'] : []);
  const names = Object.keys(properties).map((name) => (required.has(name) ? name : `${name}?`));
  const text = `{${names.join(', ')}}${resolveRef(schema, root)['type'] === 'array' ? '[]' : ''}`;
  return text.length <= MAX_LISTED_FIELDS ? text : undefined;
}

/** The values a schema allows when it is an enum, a const or a union of consts; undefined otherwise. */
function allowedValues(value: JsonObject): Json[] | undefined {
  if (Array.isArray(value['enum'])) return value['enum'];
  if (value['const'] !== undefined) return [value['const']];
  const options = value['anyOf'] ?? value['oneOf'];
  if (!Array.isArray(options) || options.length === 0) return undefined;
  const consts = options.map((option) => (isObject(option) ? option['const'] : undefined));
  return consts.every((item) => item !== undefined) ? (consts as Json[]) : undefined;
}

/**
 * One top-level field of an output schema as tools/list shows it: its name (the key), its allowed
 * values when it has a fixed set, `array`/`object` for structured values, its description, and for a
 * nested object a short list of its fields. Scalar types are left out (the names say them: `dryRun`,
 * `durationSeconds`), and so are the fields of larger nested objects: the whole schema is in the
 * snapguard://tool-outputs/{tool} resource.
 */
function listedField(schema: Json, root: JsonObject): Json {
  if (!isObject(schema)) return schema;
  const value = resolveRef(schema, root);
  const out: JsonObject = {};
  const values = allowedValues(value);
  if (values) out['enum'] = values;
  else if (value['type'] === 'array' || value['type'] === 'object') out['type'] = value['type'];
  const fields = values ? undefined : fieldList(value, root);
  const description = typeof value['description'] === 'string' ? value['description'] : undefined;
  const text = [description, fields].filter((part) => part !== undefined).join(': ');
  if (text) out['description'] = text;
  return out;
}

/**
 * An output schema as tools/list shows it: every top-level field with its requirement, allowed values
 * and description (see listedField). It still is the JSON Schema the client validates results against;
 * snapguard itself validates every result against the complete schema before sending it.
 */
export function listedOutputSchema(schema: JsonObject): JsonObject {
  const stripped = stripBoilerplate(schema, true) as JsonObject;
  const properties = stripped['properties'];
  if (!isObject(properties)) return compactSchema(stripped, 'output');
  const out: JsonObject = { type: 'object' };
  if (typeof stripped['description'] === 'string') out['description'] = stripped['description'];
  out['properties'] = Object.fromEntries(
    Object.entries(properties).map(([name, item]) => [name, listedField(item, stripped)]),
  );
  if (Array.isArray(stripped['required'])) out['required'] = stripped['required'];
  return out;
}

/**
 * One tool of tools/list, compacted. Besides the schemas: `execution.taskSupport: "forbidden"` is what
 * a client assumes when `execution` is absent, and `annotations.title` is only read when the tool has
 * no `title` of its own.
 */
export function compactTool(tool: JsonObject): JsonObject {
  const { execution, annotations, ...rest } = tool;
  const out: JsonObject = { ...rest };
  if (isObject(tool['inputSchema'])) out['inputSchema'] = compactSchema(tool['inputSchema'], 'input');
  if (isObject(tool['outputSchema'])) out['outputSchema'] = listedOutputSchema(tool['outputSchema']);
  if (isObject(annotations)) {
    const { title: _title, ...hints } = annotations;
    out['annotations'] = typeof tool['title'] === 'string' ? hints : annotations;
  }
  if (execution !== undefined && !(isObject(execution) && execution['taskSupport'] === 'forbidden'))
    out['execution'] = execution;
  return out;
}

/** The complete output schema of one tool; `{tool}` is a tool name. */
export const TOOL_OUTPUT_TEMPLATE = 'snapguard://tool-outputs/{tool}';

type ListHandler = (request: unknown, extra: unknown) => Promise<{ tools: JsonObject[] }>;

/**
 * Wraps the SDK's tools/list handler so every listed tool is compacted, and serves each tool's complete
 * output schema (boilerplate dropped, repeated objects shared) as snapguard://tool-outputs/{tool}.
 * Must run after the tools are registered.
 */
export function installCompactToolList(server: McpServer): void {
  const handlers = (server.server as unknown as { _requestHandlers: Map<string, ListHandler> })
    ._requestHandlers;
  const inner = handlers.get('tools/list');
  if (!inner) throw new Error('installCompactToolList must run after the tools are registered');
  handlers.set('tools/list', async (request, extra) => {
    const result = await inner(request, extra);
    return { ...result, tools: result.tools.map(compactTool) };
  });
  const listed = async () => (await inner({ method: 'tools/list', params: {} }, {})).tools;
  server.registerResource(
    'tool-outputs',
    new ResourceTemplate(TOOL_OUTPUT_TEMPLATE, {
      list: undefined,
      complete: {
        tool: async (value) =>
          (await listed())
            .filter((tool) => isObject(tool['outputSchema']))
            .map((tool) => String(tool['name']))
            .filter((name) => name.startsWith(value)),
      },
    }),
    {
      title: 'Complete output schema of a tool',
      description:
        "Every field of the tool's result, nested ones included, with types, allowed values and descriptions (tools/list shows the top-level fields).",
      mimeType: 'application/json',
    },
    async (uri, variables) => {
      const name = String(variables['tool']);
      const tool = (await listed()).find((item) => item['name'] === name);
      if (!tool || !isObject(tool['outputSchema']))
        throw new McpError(ErrorCode.InvalidParams, `No tool named "${name}" with an output schema.`);
      const schema = compactSchema(tool['outputSchema'], 'output');
      return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(schema) }] };
    },
  );
}
