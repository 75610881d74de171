import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Deps } from '../core/deps.js';
import { SnapguardError, toSnapguardError } from '../core/errors.js';
import { mergeHealth, mergeOrchestrations, mergeSnapshotLists, type HostAnswer } from '../core/fleet.js';
import type { HealthCheckResult } from '../core/health/schemas.js';
import type { OrchestrateResult } from '../core/orchestrate/schema.js';
import type { ListSnapshotsResult } from '../core/schemas.js';
import { LOCAL_HOST } from '../core/config.js';
import { readOnlyRefusal } from '../shared/read-only-tools.js';
import { askToProceed, clientCanElicit } from './confirm.js';
import { sendProgress } from './progress.js';
import { errorResult, okResult } from './result.js';
import { failureOfResult, isLocalHost, type HostSessions } from './transports/hosts.js';

/** Tools that take `host: "*"` (every host) and put the answers together. */
const FAN_OUT = new Set(['list_snapshots', 'health_check', 'orchestrate']);

/**
 * The `host` argument, kept short: tools/list is read into the assistant's context on every
 * session. Its value is checked by installHostRouting, not by the schema (a name that is too long
 * is simply not a configured host).
 */
function hostArgument(tool: string) {
  if (tool === 'orchestrate')
    return z
      .union([z.string(), z.array(z.string())])
      .optional()
      .describe('host(s) from hosts:, or "*"');
  return z
    .string()
    .optional()
    .describe(FAN_OUT.has(tool) ? 'host from hosts:, or "*"' : 'host from hosts:');
}

type ToolConfig = { inputSchema?: unknown } & Record<string, unknown>;
type Register = (name: string, config: ToolConfig, handler: unknown) => unknown;

/**
 * The server as the tool files see it, with `host` added to every tool's input schema. The tool
 * files stay as they are: what `host` does is decided once, in installHostRouting.
 */
export function withHostArgument(server: McpServer): McpServer {
  const original = (server.registerTool as unknown as Register).bind(server);
  const register: Register = (name, config, handler) => {
    const schema = config.inputSchema;
    const extra = { host: hostArgument(name) };
    let inputSchema: unknown = schema;
    if (schema instanceof z.ZodObject) {
      inputSchema = schema.safeExtend(extra);
    } else if (schema && typeof schema === 'object' && !('_zod' in schema)) {
      inputSchema = { ...(schema as Record<string, unknown>), ...extra };
    }
    return original(name, { ...config, inputSchema }, handler);
  };
  return new Proxy(server, {
    get(target, property, receiver) {
      if (property === 'registerTool') return register;
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}

type RequestHandler = (
  request: {
    method?: string;
    params?: { name?: string; arguments?: Record<string, unknown>; _meta?: unknown };
  },
  extra: {
    signal: AbortSignal;
    _meta?: { progressToken?: string | number };
    sendNotification: (notification: { method: string; params: Record<string, unknown> }) => Promise<void>;
  },
) => Promise<unknown>;

/** The host's answer with `host` added: to the structured result, and to the first line of the text. */
function tagged(result: CallToolResult, host: string): CallToolResult {
  const [first, ...rest] = result.content ?? [];
  const content =
    first?.type === 'text'
      ? [
          {
            ...first,
            text: result.isError
              ? first.text.replace(/^(\[[A-Z_]+\] )?/, `$1host ${host}: `)
              : `Host ${host}: ${first.text}`,
          },
          ...rest,
        ]
      : (result.content ?? []);
  return {
    ...result,
    content,
    ...(result.structuredContent ? { structuredContent: { ...result.structuredContent, host } } : {}),
  };
}

/**
 * The plan and token of a host's confirmation gate when this result is one (status
 * confirmation_required): the text without the lines that tell the assistant how to use the token,
 * which is what the user reads.
 */
function confirmationAsked(result: CallToolResult): { text: string; token: string } | undefined {
  const data = result.structuredContent;
  if (result.isError || !data || data.status !== 'confirmation_required') return undefined;
  if (typeof data.confirmationToken !== 'string') return undefined;
  const first = result.content?.[0];
  const text = first?.type === 'text' ? first.text : '';
  return {
    text: text
      .split('\n')
      .filter((line) => !line.includes('confirmationToken'))
      .join('\n')
      .trim(),
    token: data.confirmationToken,
  };
}

function badHost(message: string, hint: string): SnapguardError {
  return new SnapguardError('BAD_INPUT', message, hint);
}

/**
 * One call's progress as its client sees it: a single sequence that only increases. With
 * several hosts each host counts on its own, so the value sent is the sum of every host's latest
 * progress (each of them only grows), nudged up when a host repeats its number.
 */
type ProgressSequence = { latest: Map<string, number>; sent: number };
const progressSequence = (): ProgressSequence => ({ latest: new Map<string, number>(), sent: 0 });

function forwardProgress(
  extra: Parameters<RequestHandler>[1],
  prefix: string,
  host: string,
  sequence = progressSequence(),
) {
  const token = extra._meta?.progressToken;
  if (token === undefined) return undefined;
  return (progress: { progress: number; total?: number; message?: string }) => {
    sequence.latest.set(host, Math.max(sequence.latest.get(host) ?? 0, progress.progress));
    const sum = [...sequence.latest.values()].reduce((a, b) => a + b, 0);
    sequence.sent = Math.max(sequence.sent + 1e-6, sum);
    sendProgress(
      extra,
      token,
      sequence.sent,
      prefix === '' ? progress.total : undefined,
      progress.message !== undefined ? `${prefix}${progress.message}` : undefined,
    );
  };
}

/** The answers of every host asked, put together for the tool's client. */
function fanOutResult(
  tool: string,
  answers: HostAnswer<unknown>[],
  args: Record<string, unknown>,
  now: Date,
): CallToolResult {
  if (tool === 'list_snapshots') {
    const limit = typeof args.limit === 'number' ? args.limit : undefined;
    const merged = mergeSnapshotLists(answers as HostAnswer<ListSnapshotsResult>[], limit);
    const newest = merged.snapshots.slice(0, 5).map((s) => `${s.host}/${s.name}`);
    return okResult(
      merged,
      [
        `${merged.total} snapshot(s) on ${answers.length - merged.unreachable.length - merged.failed.length} of ${answers.length} host(s)${newest.length ? `; newest: ${newest.join(', ')}` : ''}.`,
        ...merged.unreachable.map((p) => `UNREACHABLE ${p.host}: ${p.error}`),
        ...merged.failed.map((p) => `FAILED ${p.host}: [${p.code}] ${p.error}`),
      ].join('\n'),
    );
  }
  if (tool === 'health_check') {
    const merged = mergeHealth(answers as HostAnswer<HealthCheckResult>[], now);
    return okResult(
      merged,
      [
        `Overall ${merged.overall} over ${answers.length} host(s).`,
        ...merged.hosts.map((h) => `${h.host}: ${h.overall}`),
        ...merged.findings
          .filter((f) => f.severity !== 'info')
          .map(
            (f) =>
              `${f.severity.toUpperCase()} ${f.code} (${f.host}${f.volume ? `/${f.volume}` : ''}): ${f.message} Remedy: ${f.remedy}`,
          ),
      ].join('\n'),
    );
  }
  const merged = mergeOrchestrations(answers as HostAnswer<OrchestrateResult>[], now);
  return okResult(
    merged,
    [
      `Orchestration on ${answers.length} host(s): exit code ${merged.exitCode} (the worst host's).`,
      ...merged.hosts.map((h) => `${h.host}: ${h.status}, exit code ${h.exitCode}`),
      ...merged.failures.map((f) => `FAILED ${f.host}: ${f.job} (${f.stage}): ${f.result}, ${f.detail}`),
      merged.exitCode === 0
        ? "Safe to deploy: every host's backups succeeded."
        : merged.exitCode === 1
          ? 'Partial failure: show the failures to the user before deploying.'
          : 'Do not deploy: a host could not run its backups or a critical step failed.',
    ].join('\n'),
  );
}

/**
 * A call for one named host: passed through its session and its own gate. When the host asks for
 * a confirmation and this controller's client can ask its user, the host's plan is shown there and
 * only an explicit accept spends the host's token, on that host, with the same arguments.
 */
async function callOneHost(
  server: McpServer,
  deps: Deps,
  hosts: HostSessions,
  tool: string,
  host: string,
  rest: Record<string, unknown>,
  extra: Parameters<RequestHandler>[1],
): Promise<CallToolResult> {
  hosts.checkOffered(host, tool);
  const options = { signal: extra.signal, onprogress: forwardProgress(extra, '', host) };
  const result = await hosts.callTool(host, tool, rest, options);
  const plan = confirmationAsked(result);
  if (
    plan === undefined ||
    rest.confirmationToken !== undefined ||
    deps.config.confirm !== 'elicit-or-token' ||
    !clientCanElicit(server)
  )
    return tagged(result, host);
  // The host's gate answered with its plan and a token. This controller's client can ask the
  // user: the plan is shown there, and only an explicit accept spends the host's token, on that
  // host, with the same arguments.
  const answer = await askToProceed(server, `On host ${host}:\n${plan.text}`, extra.signal);
  if (answer === 'accept') {
    const confirmed = await hosts.callTool(host, tool, { ...rest, confirmationToken: plan.token }, options);
    return tagged(confirmed, host);
  }
  const status = answer === 'cancel' ? 'cancelled' : 'declined';
  deps.logger.info({ tool, host, answer }, `user ${status} the confirmation`);
  const { confirmationToken: _token, expiresAt: _expires, ...kept } = result.structuredContent ?? {};
  return tagged(
    {
      content: [
        {
          type: 'text',
          text:
            status === 'declined'
              ? `The user declined the plan; nothing was changed.\n${plan.text}`
              : `The confirmation was cancelled; nothing was changed.\n${plan.text}`,
        },
      ],
      structuredContent: { ...kept, status },
    },
    host,
  );
}

/**
 * On a snapguard whose own configuration says readOnly: true, a call to one of its tools that
 * change something (not registered there) is refused with READ_ONLY_MODE and what to do, instead
 * of the SDK's "tool not found": a controller passes that answer on unchanged, with `host` added.
 */
export function installReadOnlyRefusal(
  server: McpServer,
  deps: Deps,
  registered: ReadonlySet<string>,
  every: ReadonlySet<string>,
): void {
  const handlers = (server.server as unknown as { _requestHandlers: Map<string, RequestHandler> })
    ._requestHandlers;
  const inner = handlers.get('tools/call');
  if (!inner) throw new Error('installReadOnlyRefusal must run after the tools are registered');
  handlers.set('tools/call', async (request, extra) => {
    const tool = request.params?.name ?? '';
    if (registered.has(tool) || !every.has(tool)) return inner(request, extra);
    return errorResult(readOnlyRefusal(deps.config.host, tool, 'own'));
  });
}

/** What the routing of one server works with: its hosts and the SDK's own tools/call handler. */
interface Routing {
  server: McpServer;
  deps: Deps;
  hosts: HostSessions;
  /** The SDK's handler: runs a tool here. */
  inner: RequestHandler;
  registered: ReadonlySet<string>;
}

type CallRequest = Parameters<RequestHandler>[0];
type CallExtra = Parameters<RequestHandler>[1];

const hostList = (routing: Routing) => [LOCAL_HOST, ...routing.hosts.names()].join(', ');

/** The tool run here, its progress joining the call's one sequence under this host's name. */
async function callHere(
  routing: Routing,
  args: Record<string, unknown>,
  request: CallRequest,
  extra: CallExtra,
  sequence: ProgressSequence,
): Promise<CallToolResult> {
  const forward = forwardProgress(extra, `${LOCAL_HOST}: `, LOCAL_HOST, sequence);
  const local: CallExtra = {
    ...extra,
    sendNotification: async (notification) => {
      if (notification.method !== 'notifications/progress') return extra.sendNotification(notification);
      const params = notification.params as { progress: number; total?: number; message?: string };
      forward?.(params);
    },
  };
  return (await routing.inner(
    { ...request, params: { ...request.params, arguments: args } },
    local,
  )) as CallToolResult;
}

/** One host's answer in a fan-out: its result, or its error (it does not fail the call). */
async function askHost<T>(
  routing: Routing,
  host: string,
  tool: string,
  args: Record<string, unknown>,
  request: CallRequest,
  extra: CallExtra,
  sequence: ProgressSequence,
): Promise<HostAnswer<T>> {
  try {
    let result: CallToolResult;
    if (host === LOCAL_HOST) result = await callHere(routing, args, request, extra, sequence);
    else {
      routing.hosts.checkOffered(host, tool);
      result = await routing.hosts.callTool(host, tool, args, {
        signal: extra.signal,
        onprogress: forwardProgress(extra, `${host}: `, host, sequence),
      });
    }
    if (result.isError) return { host, error: failureOfResult(result) };
    return { host, result: (result.structuredContent ?? {}) as T };
  } catch (error) {
    const failure = toSnapguardError(error);
    return { host, error: { code: failure.code, message: failure.message, hint: failure.hintFor('mcp') } };
  }
}

/** The hosts a fan-out asks: "*" is this host (when it has volumes) and every other; a list as given. */
function fanOutTargets(routing: Routing, tool: string, host: '*' | string[]): string[] {
  const { deps, hosts } = routing;
  if (!FAN_OUT.has(tool))
    throw badHost(
      `${tool} runs on exactly one host; host "*" is for list_snapshots, health_check and orchestrate.`,
      `Call ${tool} once per host, naming it: one of ${hostList(routing)}.`,
    );
  if (Array.isArray(host) && tool !== 'orchestrate')
    throw badHost(
      `A list of hosts is for orchestrate; ${tool} takes one host or "*".`,
      'Pass host: "*" or one name.',
    );
  const targets =
    host === '*'
      ? [...(Object.keys(deps.config.volumes).length > 0 ? [LOCAL_HOST] : []), ...hosts.names()]
      : [...new Set(host.map((name) => (isLocalHost(deps.config, name) ? LOCAL_HOST : name)))];
  for (const name of targets) if (name !== LOCAL_HOST) hosts.entry(name);
  if (targets.length === 0)
    throw badHost(
      'No host to ask: this configuration has no volumes and no hosts.',
      'Add volumes or hosts: to the configuration.',
    );
  return targets;
}

async function fanOut(
  routing: Routing,
  tool: string,
  host: '*' | string[],
  args: Record<string, unknown>,
  request: CallRequest,
  extra: CallExtra,
): Promise<CallToolResult> {
  const targets = fanOutTargets(routing, tool, host);
  // Every host's progress goes to the client as one sequence, each message prefixed with its host.
  const sequence = progressSequence();
  const answers = await Promise.all(
    targets.map((name) => askHost(routing, name, tool, args, request, extra, sequence)),
  );
  return fanOutResult(tool, answers, args, routing.deps.clock());
}

/** One tools/call, sent where its `host` says. */
async function routeCall(routing: Routing, request: CallRequest, extra: CallExtra): Promise<unknown> {
  const tool = request.params?.name ?? '';
  const args = request.params?.arguments;
  if (!args || !Object.hasOwn(args, 'host') || !routing.registered.has(tool))
    return routing.inner(request, extra);
  const { host, ...rest } = args;
  try {
    if (host === undefined || (typeof host === 'string' && isLocalHost(routing.deps.config, host)))
      return await routing.inner(
        { ...request, params: { ...request.params, name: tool, arguments: rest } },
        extra,
      );
    if (host === '*' || Array.isArray(host)) {
      if (Array.isArray(host) && !host.every((name) => typeof name === 'string'))
        throw badHost('host must be a host name, "*" or a list of names.', `Hosts: ${hostList(routing)}.`);
      return await fanOut(routing, tool, host as '*' | string[], rest, request, extra);
    }
    if (typeof host !== 'string')
      throw badHost(
        'host must be a host name (or "*" where a tool says so).',
        `Hosts: ${hostList(routing)}.`,
      );
    return await callOneHost(routing.server, routing.deps, routing.hosts, tool, host, rest, extra);
  } catch (error) {
    return errorResult(error);
  }
}

/**
 * Routes every tools/call by its `host` argument: this host (none, "local" or its own name) runs
 * the tool here; a name from `hosts:` passes the call, as it came, through that host's session and
 * its own gate, and adds `host` to what comes back; "*" (and a list, for orchestrate) asks every
 * host in parallel and puts the answers together. Installed around the SDK's handler, before the
 * audit, so each call still gets one audit line.
 */
export function installHostRouting(
  server: McpServer,
  deps: Deps,
  hosts: HostSessions,
  registered: ReadonlySet<string>,
): void {
  const handlers = (server.server as unknown as { _requestHandlers: Map<string, RequestHandler> })
    ._requestHandlers;
  const inner = handlers.get('tools/call');
  if (!inner) throw new Error('installHostRouting must run after the tools are registered');
  const routing: Routing = { server, deps, hosts, inner, registered };
  handlers.set('tools/call', (request, extra) => routeCall(routing, request, extra));
}
