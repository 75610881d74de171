import type { Command } from 'commander';
import { loadConfig, LOCAL_HOST, type Config } from '../core/config.js';
import { SnapguardError, type ErrorCode } from '../core/errors.js';
// Type only: the session code (MCP client, schema validation) is loaded when --host names another
// host, so a verb run here does not read it at start-up.
import type { HostSessions } from '../mcp/transports/hosts.js';
import { confirmOnTerminal } from './confirm.js';
import { printJson, printLine } from './output.js';

export interface HostOptions {
  host?: string;
  config?: string;
  json?: boolean;
}

/** Adds --host to a verb that only acts on the host it runs on: another host is refused (refuseOtherHost). */
export function withHereOnlyHost(command: Command, verb: string): Command {
  return command.option(
    '--host <name>',
    `only this host (or "local"): ${verb} acts on the host it runs on; for another host the error gives the command to run there`,
  );
}

/** Adds --host: the verb runs on that host (from hosts: in the configuration) through its snapguard. */
export function withHost(command: Command): Command {
  return command.option(
    '--host <name>',
    'run it on this host from hosts: in the configuration, through its own snapguard (default: here)',
  );
}

/** The configuration and the other host named by --host; undefined when the verb runs here. */
export async function remoteTarget(
  options: HostOptions,
): Promise<{ config: Config; host: string } | undefined> {
  if (options.host === undefined) return undefined;
  const config = await loadConfig({ explicit: options.config });
  const { HostSessions, isLocalHost } = await import('../mcp/transports/hosts.js');
  if (isLocalHost(config, options.host)) return undefined;
  new HostSessions(config.hosts).entry(options.host);
  return { config, host: options.host };
}

/**
 * This verb's words as the user typed them, without --host (and without the controller's --config
 * when that option names the controller's file, not the host's).
 */
function wordsWithout(verb: string, dropConfig: boolean): string[] {
  const args = process.argv.slice(2);
  const words = args.slice(Math.max(0, args.indexOf(verb)));
  const dropped = dropConfig ? ['--host', '--config', '-c'] : ['--host'];
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    if (dropped.includes(word)) i += 1;
    else if (!dropped.some((option) => word.startsWith(`${option}=`))) kept.push(word);
  }
  return kept;
}

/**
 * For a verb that acts on the host it runs on (init writes that host's configuration, units its
 * systemd units, demo builds its sandbox there): --host naming another host is refused before
 * anything is done, with the command that runs the verb on that host itself. --host naming this
 * host changes nothing. `hostSideConfig`: the verb's --config names a file of the host (then the
 * hosts are read from the configuration found without it).
 */
export async function refuseOtherHost(
  options: HostOptions,
  verb: string,
  what: string,
  hostSideConfig: boolean,
): Promise<void> {
  const name = options.host;
  if (name === undefined) return;
  const { commandOnHost, isLocalHost } = await import('../mcp/transports/hosts.js');
  const config = await loadConfig({ explicit: hostSideConfig ? undefined : options.config }).catch(
    () => undefined,
  );
  if (isLocalHost(config ?? { host: LOCAL_HOST }, name)) return;
  const entry = config && Object.hasOwn(config.hosts, name) ? config.hosts[name] : undefined;
  const command = commandOnHost(entry?.command ?? [], wordsWithout(verb, !hostSideConfig));
  throw new SnapguardError(
    'NOT_SUPPORTED',
    `${verb} ${what}: --host does not run it on ${name} from here; nothing was done.`,
    `Run it on ${name} itself: \`${command}\`${entry ? '' : ` (on ${name})`}.`,
  );
}

/** Runs work with one session per host and closes them all (their processes end) afterwards. */
export async function withSessions<T>(
  config: Config,
  work: (sessions: HostSessions) => Promise<T>,
): Promise<T> {
  const { HostSessions } = await import('../mcp/transports/hosts.js');
  const sessions = new HostSessions(config.hosts);
  try {
    return await work(sessions);
  } finally {
    await sessions.close();
  }
}

export interface RemoteAnswer {
  structured: Record<string, unknown>;
  text: string;
}

/** Calls a tool on a host; an error result becomes a SnapguardError with the host's code, message and hint. */
export async function callRemote(
  sessions: HostSessions,
  host: string,
  tool: string,
  args: Record<string, unknown>,
): Promise<RemoteAnswer> {
  sessions.checkOffered(host, tool);
  const result = await sessions.callTool(host, tool, args);
  if (result.isError) {
    const { failureOfResult } = await import('../mcp/transports/hosts.js');
    const failure = failureOfResult(result);
    throw new SnapguardError(failure.code as ErrorCode, `host ${host}: ${failure.message}`, failure.hint);
  }
  const text = result.content.map((part) => (part.type === 'text' ? part.text : '')).join('\n');
  return { structured: (result.structuredContent ?? {}) as Record<string, unknown>, text };
}

/**
 * One verb on another host: calls the tool there and prints its result (JSON with `host` added
 * under --json, else the human form given, or the host's own summary). Returns the exit code, or
 * undefined when --host names no other host (the verb then runs here).
 */
export async function runOnHost(
  options: HostOptions,
  tool: string,
  args: Record<string, unknown>,
  finish: {
    exitCode?: (structured: Record<string, unknown>) => number;
    print?: (structured: Record<string, unknown>, text: string) => void;
    /** false: print() alone writes stdout (file content that must stay as it is). */
    header?: boolean;
  } = {},
): Promise<number | undefined> {
  const target = await remoteTarget(options);
  if (!target) return undefined;
  return withSessions(target.config, async (sessions) => {
    const answer = await callRemote(sessions, target.host, tool, args);
    if (options.json) printJson({ ...answer.structured, host: target.host });
    else if (finish.print) {
      if (finish.header !== false) printLine(`host ${target.host}:`);
      finish.print(answer.structured, answer.text);
    } else printLine(`host ${target.host}: ${answer.text}`);
    return finish.exitCode?.(answer.structured) ?? 0;
  });
}

/**
 * A gated verb on another host: the host's plan and token come back first, the question is asked
 * here (or --yes), and the token is spent on that same host with the same arguments. Returns the
 * exit code, or undefined when --host names no other host.
 */
export async function runGatedOnHost(
  options: HostOptions & { yes?: boolean },
  tool: string,
  request: Record<string, unknown>,
  finish: {
    question: string;
    exitCode: (structured: Record<string, unknown>) => number;
    print?: (structured: Record<string, unknown>, text: string) => void;
  },
): Promise<number | undefined> {
  const target = await remoteTarget(options);
  if (!target) return undefined;
  const { host } = target;
  return withSessions(target.config, async (sessions) => {
    const first = await callRemote(sessions, host, tool, request);
    let answer = first;
    if (first.structured.status === 'confirmation_required') {
      const plan = first.text
        .split('\n')
        .filter((line) => !line.includes('confirmationToken'))
        .join('\n');
      (options.json ? process.stderr : process.stdout).write(`host ${host}:\n${plan}\n`);
      if (!(await confirmOnTerminal(`${finish.question} (on ${host})`, { yes: options.yes }))) {
        if (options.json) printJson({ status: 'declined', host });
        else printLine('Declined; nothing was changed.');
        return finish.exitCode({ status: 'declined' });
      }
      answer = await callRemote(sessions, host, tool, {
        ...request,
        confirmationToken: first.structured.confirmationToken,
      });
    }
    if (options.json) printJson({ ...answer.structured, host });
    else if (finish.print) {
      printLine(`host ${host}:`);
      finish.print(answer.structured, answer.text);
    } else printLine(`host ${host}: ${answer.text}`);
    return finish.exitCode(answer.structured);
  });
}
