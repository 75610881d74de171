import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { CallToolResult, JSONRPCMessage, Progress } from '@modelcontextprotocol/sdk/types.js';
import type { Config } from '../../core/config.js';
import { LOCAL_HOST } from '../../core/config.js';
import { SnapguardError, toSnapguardError } from '../../core/errors.js';
import { shellQuote } from '../../core/fleet.js';
import { startOwnedProcess, type OwnedProcess } from '../../core/processes.js';
import { VERSION } from '../../core/version.js';
import { READ_ONLY_TOOLS, readOnlyRefusal } from '../../shared/read-only-tools.js';

/** One entry of `hosts:`. */
export interface HostEntry {
  command: string[];
  readOnly: boolean;
}

/** The words of a host's command as a reader would type them (for messages). */
export function showCommand(argv: readonly string[]): string {
  return argv.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : JSON.stringify(word))).join(' ');
}

const STDERR_TAIL = 4096;

/** ssh options that take a value (`-p 22`, `-o X=Y`): the destination is the first word that is neither. */
const SSH_OPTIONS_WITH_VALUE = new Set('BbcDEeFIiJLlmOoPpQRSWw'.split(''));

/** An ssh argv taken apart: its options (each with its value), the destination, the remote words. */
interface SshWords {
  file: string;
  options: string[][];
  destination: string;
  remote: string[];
}

function splitSsh(argv: readonly string[]): SshWords | undefined {
  const [file, ...args] = argv;
  if (file === undefined || !/(^|\/)ssh$/.test(file)) return undefined;
  const options: string[][] = [];
  let i = 0;
  while (i < args.length) {
    const word = args[i] as string;
    if (word === '--') {
      i += 1;
      break;
    }
    if (!word.startsWith('-') || word === '-') break;
    const letters = word.slice(1);
    // -p22 carries its value; -p 22 takes the next word; -Tv are flags only.
    const valueAt = [...letters].findIndex((letter) => SSH_OPTIONS_WITH_VALUE.has(letter));
    const size = valueAt === letters.length - 1 ? 2 : 1;
    options.push(args.slice(i, i + size));
    i += size;
  }
  const destination = args[i];
  if (destination === undefined) return undefined;
  return { file, options, destination, remote: args.slice(i + 1) };
}

/**
 * The argv to run for a host. ssh joins the words after the destination into one string that the
 * remote user's shell reads, so `[ssh, nas, snapguard, mcp, --config, "/etc/my dir/x.yaml"]`
 * would arrive split at the space: each of those words is quoted for that shell, so every word
 * arrives as written. (With a forced command the remote side ignores them.) Other commands run
 * as given, without a shell.
 */
export function commandToRun(argv: readonly string[]): string[] {
  const ssh = splitSsh(argv);
  if (!ssh) return [...argv];
  const local = argv.length - ssh.remote.length;
  return [...argv.slice(0, local), ...ssh.remote.map(shellQuote)];
}

/** ssh options that say where to log in (port, user, jump host); the key and the rest stay out. */
const LOGIN_OPTIONS = new Set(['-p', '-l', '-J']);

/**
 * How a person runs `snapguard WORDS` on a host: over ssh to the same destination (port, user and
 * jump host kept; not the key, whose forced command only speaks MCP), else the words alone.
 */
export function commandOnHost(argv: readonly string[], words: readonly string[]): string {
  const ssh = splitSsh(argv);
  if (!ssh) return showCommand(['snapguard', ...words]);
  const login = ssh.options.filter((option) => LOGIN_OPTIONS.has(option[0]?.slice(0, 2) ?? ''));
  return showCommand(['ssh', ...login.flat(), ssh.destination, 'snapguard', ...words]);
}

/**
 * MCP over the stdin/stdout of a command (ssh with a forced command, or `snapguard mcp` itself),
 * started through core's owned processes: a group of its own, stopped with the session, on a
 * signal to snapguard and when snapguard exits.
 */
class CommandTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private process: OwnedProcess | undefined;
  private readonly buffer = new ReadBuffer();
  private stderr = '';
  private closed = false;

  constructor(private readonly argv: readonly string[]) {}

  /** The last lines the command wrote on stderr (ssh's reason when it could not connect). */
  stderrTail(): string {
    return (
      this.stderr
        .trim()
        .split('\n')
        // The remote snapguard's own log lines (JSON) are not the reason a connection ended.
        .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('{'))
        .slice(-3)
        .join('; ')
    );
  }

  async start(): Promise<void> {
    const [file, ...args] = commandToRun(this.argv) as [string, ...string[]];
    const child = startOwnedProcess(file, args);
    this.process = child;
    child.stdout.on('data', (chunk: Buffer) => {
      this.buffer.append(chunk);
      for (;;) {
        let message: JSONRPCMessage | null;
        try {
          message = this.buffer.readMessage();
        } catch (error) {
          this.onerror?.(error as Error);
          continue;
        }
        if (message === null) break;
        this.onmessage?.(message);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-STDERR_TAIL);
    });
    child.stdin.on('error', (error) => this.onerror?.(error));
    child.exited.then(
      () => this.finish(),
      () => this.finish(),
    );
    await child.started;
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.buffer.clear();
    this.onclose?.();
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.process?.stdin;
    if (!stdin || this.closed) throw new Error('not connected');
    await new Promise<void>((resolve) => {
      if (stdin.write(serializeMessage(message))) resolve();
      else stdin.once('drain', resolve);
    });
  }

  async close(): Promise<void> {
    const child = this.process;
    if (!child) return;
    child.stdin.end();
    await child.stop();
    this.finish();
  }
}

interface Session {
  client: Client;
  transport: CommandTransport;
  alive: boolean;
}

interface HostState {
  session?: Session;
  connecting?: Promise<Session>;
  /** Failed connection attempts in a row; the next one waits backoffMs(failures). */
  failures: number;
  retryAt: number;
  lastError?: SnapguardError;
  /** Sessions started (attempts included). */
  connections: number;
  /** A session of this host ended: it is being started again in the background until it is back. */
  restarting: boolean;
  restart?: NodeJS.Timeout;
}

export interface HostSessionsOptions {
  /** How long connecting (start + initialize) may take. */
  connectTimeoutMs?: number;
  /** How long one call may run without progress. */
  callTimeoutMs?: number;
  /** First delay after a failed connection; doubled per failure up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

export interface HostCallOptions {
  signal?: AbortSignal | undefined;
  onprogress?: ((progress: Progress) => void) | undefined;
}

/** What a host's error result says: its text is `[CODE] message\nWhat to do: hint`. */
export function failureOfResult(result: CallToolResult): { code: string; message: string; hint: string } {
  const first = result.content?.[0];
  const text = first?.type === 'text' ? first.text : 'the host answered with an error';
  const match = /^\[([A-Z_]+)\] ([\s\S]*?)(?:\nWhat to do: ([\s\S]*))?$/.exec(text);
  return match
    ? { code: match[1] as string, message: match[2] as string, hint: match[3] ?? '' }
    : { code: 'COMMAND_FAILED', message: text, hint: '' };
}

/** The names `host` accepts for this host itself. */
export function isLocalHost(config: Pick<Config, 'host'>, name: string | undefined): boolean {
  return name === undefined || name === LOCAL_HOST || name === config.host;
}

/**
 * One MCP client session per configured host: started on first use, kept open, started again in
 * the background after it ended (a failed start waits a growing back-off before the next), closed
 * with close(), which also stops those restarts.
 */
export class HostSessions {
  private readonly states = new Map<string, HostState>();
  private readonly options: Required<HostSessionsOptions>;
  private closing = false;

  constructor(
    readonly hosts: Readonly<Record<string, HostEntry>>,
    options: HostSessionsOptions = {},
  ) {
    this.options = {
      connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
      callTimeoutMs: options.callTimeoutMs ?? 6 * 3600_000,
      backoffMs: options.backoffMs ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
    };
  }

  names(): string[] {
    return Object.keys(this.hosts);
  }

  /** The host's entry, or UNKNOWN_HOST naming the hosts there are. */
  entry(name: string): HostEntry {
    const entry = Object.hasOwn(this.hosts, name) ? this.hosts[name] : undefined;
    if (!entry) {
      throw new SnapguardError(
        'UNKNOWN_HOST',
        `Host "${String(name).slice(0, 80)}" is not configured.`,
        `Use one of: ${[LOCAL_HOST, ...this.names()].join(', ')} (hosts: in the configuration lists the others).`,
      );
    }
    return entry;
  }

  /**
   * Refuses a tool a host does not offer through this snapguard: with readOnly in the host's entry,
   * every tool that changes something. (A host read-only by its own configuration refuses on its side.)
   */
  checkOffered(name: string, tool: string): void {
    if (this.entry(name).readOnly && !READ_ONLY_TOOLS.has(tool))
      throw readOnlyRefusal(name, tool, 'controller');
  }

  private state(name: string): HostState {
    let state = this.states.get(name);
    if (!state) {
      state = { failures: 0, retryAt: 0, connections: 0, restarting: false };
      this.states.set(name, state);
    }
    return state;
  }

  private unreachable(name: string, why: string): SnapguardError {
    const command = showCommand(this.entry(name).command);
    return new SnapguardError('HOST_UNREACHABLE', `Host "${name}" cannot be reached: ${why}`, {
      mcp: `Check the host and its ssh setup (the user can run \`snapguard doctor --host ${name}\`); the command is \`${command}\`. The next call tries again.`,
      cli: `Run \`snapguard doctor --host ${name}\` and check that \`${command}\` reaches snapguard mcp on that host (key, known_hosts, forced command).`,
    });
  }

  private async connect(name: string): Promise<Session> {
    const entry = this.entry(name);
    const transport = new CommandTransport(entry.command);
    const client = new Client({ name: 'snapguard-controller', version: VERSION }, { capabilities: {} });
    const session: Session = { client, transport, alive: true };
    const state = this.state(name);
    state.connections += 1;
    let established = false;
    client.onclose = () => {
      session.alive = false;
      if (state.session === session) delete state.session;
      // A session that was up and ended (the host rebooted, its snapguard or ssh died): started
      // again in the background, so the next call finds it ready.
      if (established && !this.closing) {
        state.restarting = true;
        this.restartLater(name);
      }
    };
    try {
      await client.connect(transport, { timeout: this.options.connectTimeoutMs });
      established = true;
    } catch (error) {
      await transport.close().catch(() => undefined);
      const code = (error as NodeJS.ErrnoException).code;
      const reason =
        code === 'ENOENT'
          ? `\`${entry.command[0]}\` is not installed or not on PATH`
          : transport.stderrTail() || toSnapguardError(error).message.replace(/^MCP error -?\d+: /, '');
      throw this.unreachable(name, reason);
    }
    return session;
  }

  /** The live session of a host, connecting when there is none (after the backoff of a failed attempt). */
  async session(name: string): Promise<Session> {
    this.entry(name);
    if (this.closing) throw this.unreachable(name, 'snapguard is shutting down');
    const state = this.state(name);
    if (state.session?.alive) return state.session;
    if (!state.connecting) {
      const wait = state.retryAt - Date.now();
      if (wait > 0 && state.lastError) {
        throw new SnapguardError(
          'HOST_UNREACHABLE',
          `${state.lastError.message} (next attempt in ${Math.ceil(wait / 1000)} s)`,
          { mcp: state.lastError.hintFor('mcp'), cli: state.lastError.hintFor('cli') },
        );
      }
      return this.startConnecting(name, state);
    }
    return state.connecting;
  }

  /** One attempt to start the host's session; a failure sets the back-off of the next one. */
  private startConnecting(name: string, state: HostState): Promise<Session> {
    const connecting = this.connect(name).then(
      (session) => {
        state.failures = 0;
        state.retryAt = 0;
        state.restarting = false;
        delete state.lastError;
        state.session = session;
        return session;
      },
      (error: SnapguardError) => {
        state.failures += 1;
        state.retryAt = Date.now() + this.backoff(state.failures);
        state.lastError = error;
        if (state.restarting) this.restartLater(name);
        throw error;
      },
    );
    state.connecting = connecting;
    connecting
      .finally(() => {
        if (state.connecting === connecting) delete state.connecting;
      })
      .catch(() => undefined);
    return connecting;
  }

  /** The wait before the attempt after `failures` failed ones: 0.5 s, doubled per failure, at most 30 s. */
  private backoff(failures: number): number {
    return Math.min(this.options.maxBackoffMs, this.options.backoffMs * 2 ** Math.max(0, failures - 1));
  }

  /**
   * Starts a host's session again after the back-off, in the background; a failed attempt schedules
   * the next one (the back-off grows) until the session is back or close() is called. A call made
   * meanwhile connects (or waits) as usual.
   */
  private restartLater(name: string): void {
    const state = this.state(name);
    if (this.closing || state.restart) return;
    state.restart = setTimeout(() => {
      delete state.restart;
      if (this.closing || !state.restarting || state.session?.alive || state.connecting) return;
      this.startConnecting(name, state).catch(() => undefined);
    }, this.backoff(state.failures));
    // The retries alone do not keep snapguard running.
    state.restart.unref();
  }

  /** Whether the host has a live session (a call to it starts nothing). */
  ready(name: string): boolean {
    return this.states.get(name)?.session?.alive === true;
  }

  /** How many times a session to the host was started, failed attempts included. */
  connections(name: string): number {
    return this.states.get(name)?.connections ?? 0;
  }

  /** The hosts whose session ended and is being started again in the background. */
  retrying(): string[] {
    if (this.closing) return [];
    return [...this.states].filter(([, state]) => state.restarting).map(([name]) => name);
  }

  /** Calls one tool on a host; the host's result comes back as it sent it. */
  async callTool(
    name: string,
    tool: string,
    args: Record<string, unknown>,
    options: HostCallOptions = {},
  ): Promise<CallToolResult> {
    const session = await this.session(name);
    try {
      return (await session.client.callTool({ name: tool, arguments: args }, undefined, {
        signal: options.signal,
        timeout: this.options.callTimeoutMs,
        resetTimeoutOnProgress: true,
        ...(options.onprogress ? { onprogress: options.onprogress } : {}),
      })) as CallToolResult;
    } catch (error) {
      if (options.signal?.aborted) throw toSnapguardError(options.signal.reason ?? error);
      if (!session.alive || /Connection closed/i.test((error as Error).message)) {
        const why = session.transport.stderrTail();
        throw new SnapguardError(
          'HOST_UNREACHABLE',
          `The connection to host "${name}" ended during ${tool}${why ? `: ${why}` : ''}. Whether the call finished there is not known.`,
          {
            mcp: `Call list_snapshots or health_check with host "${name}" to see the host's state (the next call reconnects); recover and prune keep their own journal and gate on that host.`,
            cli: `Run \`snapguard snapshot list --host ${name}\` or \`snapguard health --host ${name}\` to see the host's state (the next call reconnects).`,
          },
        );
      }
      throw toSnapguardError(error);
    }
  }

  /** The text of one resource of a host (snapguard://history). */
  async readResource(name: string, uri: string): Promise<string> {
    const session = await this.session(name);
    const { contents } = await session.client.readResource({ uri });
    return contents.map((part) => ('text' in part ? String(part.text) : '')).join('');
  }

  /** Names of the tools a host offers (its own readOnly setting shows here). */
  async listTools(name: string): Promise<string[]> {
    const session = await this.session(name);
    const { tools } = await session.client.listTools();
    return tools.map((tool) => tool.name);
  }

  /** Ends every session and waits until their processes are gone. */
  async close(): Promise<void> {
    this.closing = true;
    for (const state of this.states.values()) {
      clearTimeout(state.restart);
      delete state.restart;
      state.restarting = false;
    }
    const pending = [...this.states.values()];
    await Promise.all(
      pending.map(async (state) => {
        const session = state.session ?? (await state.connecting?.catch(() => undefined));
        if (session) await session.client.close().catch(() => undefined);
        await session?.transport.close().catch(() => undefined);
      }),
    );
  }
}
