import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import { consumeToken, issueToken } from '../core/confirm.js';
import type { Deps } from '../core/deps.js';

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export interface GateRequest<P> {
  /** The tool name, bound into the token. */
  tool: string;
  /** The call's arguments (confirmationToken and dryRun are ignored when binding). */
  args: Record<string, unknown>;
  /** The state the plan was made from; a token is refused when it differs at confirmation time. */
  fingerprint: string;
  plan: P;
  /** The plan in a few lines of text, shown to the user when asked. */
  summary: string;
  /** The confirmationToken of this call, if any. */
  token?: string | undefined;
}

export type GateOutcome<P> =
  | { proceed: true; via: 'elicitation' | 'token' | 'never' }
  | {
      proceed: false;
      status: 'confirmation_required';
      plan: P;
      confirmationToken: string;
      expiresAt: string;
    }
  | { proceed: false; status: 'declined' | 'cancelled'; plan: P };

/**
 * Shows a plan to the user through the client (elicitation) with one "Proceed" tick box: only an
 * explicit accept with the box ticked counts as yes; an accept without it is a decline.
 */
export async function askToProceed(
  server: McpServer,
  plan: string,
  signal: AbortSignal,
): Promise<'accept' | 'decline' | 'cancel'> {
  const answer = await server.server.elicitInput(
    {
      mode: 'form',
      message: `${plan}\n\nProceed?`,
      requestedSchema: {
        type: 'object',
        properties: {
          confirm: {
            type: 'boolean',
            title: 'Proceed',
            description: 'Tick to carry out the plan above.',
          },
        },
        required: ['confirm'],
      },
    },
    { signal },
  );
  if (answer.action === 'accept') return answer.content?.confirm === true ? 'accept' : 'decline';
  return answer.action;
}

/** True when the connected client declared form elicitation (an empty elicitation capability means form). */
export function clientCanElicit(server: McpServer): boolean {
  return Boolean(server.server.getClientCapabilities()?.elicitation?.form);
}

/**
 * The confirmation gate of every destructive tool (DESIGN.md §4). With a token: checks and spends
 * it (throws CONFIRMATION_INVALID with the reason). Without: asks the user through form
 * elicitation when the client supports it and the config allows it, acting only on an explicit
 * accept; otherwise returns confirmation_required with the plan and a fresh token. `confirm: never`
 * skips the gate.
 */
export async function confirmGate<P>(
  deps: Deps,
  server: McpServer,
  extra: ToolExtra,
  request: GateRequest<P>,
): Promise<GateOutcome<P>> {
  const { config, clock, logger } = deps;
  if (config.confirm === 'never') return { proceed: true, via: 'never' };
  const subject = { tool: request.tool, args: request.args, fingerprint: request.fingerprint };
  if (request.token !== undefined) {
    await consumeToken(config.stateDir, subject, request.token, clock(), logger);
    return { proceed: true, via: 'token' };
  }
  if (config.confirm === 'elicit-or-token' && clientCanElicit(server)) {
    const answer = await askToProceed(server, request.summary, extra.signal);
    if (answer === 'accept') {
      return { proceed: true, via: 'elicitation' };
    }
    const status = answer === 'cancel' ? 'cancelled' : 'declined';
    logger.info({ tool: request.tool, answer }, `user ${status} the confirmation`);
    return { proceed: false, status, plan: request.plan };
  }
  const issued = await issueToken(config.stateDir, subject, clock(), logger);
  return {
    proceed: false,
    status: 'confirmation_required',
    plan: request.plan,
    confirmationToken: issued.token,
    expiresAt: issued.expiresAt,
  };
}
