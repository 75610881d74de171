import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Deps } from '../../core/deps.js';
import { registerCompleteOperationTool } from './complete-operation.js';
import { registerCreateSnapshotTool } from './create-snapshot.js';
import { registerHealthCheckTool } from './health-check.js';
import { registerListSnapshotsTool } from './list-snapshots.js';
import { registerRecoverTool } from './recover.js';
import { registerOrchestrateTool } from './orchestrate.js';
import { registerRunRestoreTestTool } from './run-restore-test.js';
import { registerPinSnapshotTool } from './pin-snapshot.js';
import { registerPlanStrategyTool } from './plan-strategy.js';
import { registerPruneSnapshotsTool } from './prune-snapshots.js';
import { registerFileVersionsTool } from './file-versions.js';
import { registerFindDeletedTool } from './find-deleted.js';
import { registerDiffSnapshotsTool } from './diff-snapshots.js';
import { registerReadSnapshotFileTool } from './read-snapshot-file.js';
import { withHostArgument } from '../fleet.js';
import { READ_ONLY_TOOLS } from '../../shared/read-only-tools.js';

export interface ToolEntry {
  name: string;
  /** Read-only tools stay registered when the config says readOnly: true (guardrail 8). */
  readOnly: boolean;
  register(server: McpServer, deps: Deps): void;
}

const entry = (name: string, register: ToolEntry['register']): ToolEntry => ({
  name,
  readOnly: READ_ONLY_TOOLS.has(name),
  register,
});

export const tools: readonly ToolEntry[] = [
  entry('create_snapshot', registerCreateSnapshotTool),
  entry('list_snapshots', registerListSnapshotsTool),
  entry('complete_operation', registerCompleteOperationTool),
  entry('recover', registerRecoverTool),
  entry('orchestrate', registerOrchestrateTool),
  entry('run_restore_test', registerRunRestoreTestTool),
  entry('health_check', registerHealthCheckTool),
  entry('prune_snapshots', registerPruneSnapshotsTool),
  entry('pin_snapshot', registerPinSnapshotTool),
  entry('plan_strategy', registerPlanStrategyTool),
  entry('file_versions', registerFileVersionsTool),
  entry('find_deleted', registerFindDeletedTool),
  entry('diff_snapshots', registerDiffSnapshotsTool),
  entry('read_snapshot_file', registerReadSnapshotFileTool),
];

export function registerTools(server: McpServer, deps: Deps): string[] {
  const chosen = tools.filter((tool) => tool.readOnly || !deps.config.readOnly);
  // With other hosts configured, every tool takes `host` (see ../fleet.ts).
  const target = Object.keys(deps.config.hosts).length > 0 ? withHostArgument(server) : server;
  for (const tool of chosen) tool.register(target, deps);
  return chosen.map((tool) => tool.name);
}
