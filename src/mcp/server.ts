import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../core/deps.js';
import { VERSION } from '../core/version.js';
import { installAudit } from './audit.js';
import { installCompactToolList } from './compact-schema.js';
import { installSyncOutputValidation } from './output-validation.js';
import { registerPrompts } from './prompts.js';
import { registerResources } from './resources.js';
import { registerTools, tools as toolEntries } from './tools/index.js';
import { installHostRouting, installReadOnlyRefusal } from './fleet.js';
import { HostSessions } from './transports/hosts.js';

export const INSTRUCTIONS = [
  'snapguard makes filesystem snapshots a step of every risky change on this host.',
  'Before a deployment or config change: create_snapshot (type pre-deploy/pre-change, an operation name), do the change, validate it, then complete_operation with success or failed.',
  "create_snapshot takes no new snapshot of a volume that has not changed since its newest snapshot when that one is younger than the volume's minInterval: the volume is listed in skipped, and that snapshot is the rollback point of this operation like a new one. force: true takes a new snapshot anyway (and snapshots a pool above maxPoolUsage).",
  "A snapshot's outcome (pending, success, failed...) belongs to the change made after it, not to the snapshot: the snapshot of a failed operation holds the good state from before the change, the one to return to. A pre-recover snapshot holds the state a recovery replaced. list_snapshots says this in words in meaning.",
  'Snapshots are read-only; snapguard only ever changes snapshots it made itself, never those of other tools.',
  'Destructive tools (recover, prune_snapshots) never act on the first call: they return a plan and ask the user for confirmation (directly, or by returning the plan with a confirmationToken). Show the plan to the user and call again with the same arguments and the confirmationToken only after the user agreed; never confirm on their behalf. A token is single use, valid for 10 minutes, and refused when the state changed since the plan: then plan again.',
  'Output schemas in tools/list show the top-level fields of each result; snapguard://tool-outputs/{tool} has every nested field.',
  'The history of snapshots and recoveries is the snapguard://history resource.',
  'For one file or folder: file_versions, find_deleted, diff_snapshots and read_snapshot_file only read. recover with mode files and destination: "beside" writes the snapshot\'s version next to the original (NAME.snapguard-YYYYMMDD-HHMMSS), overwrites nothing and needs no confirmation; in place (the default) goes through the confirmation. A name that is not UTF-8 comes with pathBase64: pass it back in pathsBase64.',
  'The prompts safe-deploy (before a deployment), disaster-recovery and find-lost-file walk through these step by step.',
].join('\n');

export interface CreatedServer {
  server: McpServer;
  tools: string[];
  cleanup: () => Promise<void>;
  /** Resolves once no tool call is running (after cleanup aborted them, when they reached a safe point). */
  idle: () => Promise<void>;
}

export function createServer(deps: Deps, options: { hosts?: HostSessions } = {}): CreatedServer {
  const server = new McpServer(
    { name: 'snapguard', title: 'snapguard', version: VERSION },
    {
      capabilities: {
        logging: {},
        prompts: { listChanged: false },
        resources: { subscribe: true, listChanged: true },
        tools: { listChanged: false },
      },
      instructions: INSTRUCTIONS,
    },
  );
  const tools = registerTools(server, deps);
  if (deps.config.readOnly)
    installReadOnlyRefusal(server, deps, new Set(tools), new Set(toolEntries.map((tool) => tool.name)));
  // One session per other host, opened on first use and kept while this server lives.
  const hosts =
    options.hosts ??
    (Object.keys(deps.config.hosts).length > 0 ? new HostSessions(deps.config.hosts) : undefined);
  if (hosts) installHostRouting(server, deps, hosts, new Set(tools));
  const { idle } = installAudit(server, deps.logger);
  installCompactToolList(server);
  installSyncOutputValidation(server);
  const stopResources = registerResources(server, deps);
  registerPrompts(server, deps);
  return {
    server,
    tools,
    cleanup: async () => {
      stopResources();
      await server.close();
      if (!options.hosts) await hosts?.close();
    },
    idle,
  };
}
