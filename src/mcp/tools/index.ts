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

export interface ToolEntry {
  name: string;
  /** Read-only tools stay registered when the config says readOnly: true (guardrail 8). */
  readOnly: boolean;
  register(server: McpServer, deps: Deps): void;
}

export const tools: readonly ToolEntry[] = [
  { name: 'create_snapshot', readOnly: false, register: registerCreateSnapshotTool },
  { name: 'list_snapshots', readOnly: true, register: registerListSnapshotsTool },
  { name: 'complete_operation', readOnly: false, register: registerCompleteOperationTool },
  { name: 'recover', readOnly: false, register: registerRecoverTool },
  { name: 'orchestrate', readOnly: false, register: registerOrchestrateTool },
  { name: 'run_restore_test', readOnly: false, register: registerRunRestoreTestTool },
  { name: 'health_check', readOnly: true, register: registerHealthCheckTool },
  { name: 'prune_snapshots', readOnly: false, register: registerPruneSnapshotsTool },
  { name: 'pin_snapshot', readOnly: false, register: registerPinSnapshotTool },
  { name: 'plan_strategy', readOnly: true, register: registerPlanStrategyTool },
  { name: 'file_versions', readOnly: true, register: registerFileVersionsTool },
  { name: 'find_deleted', readOnly: true, register: registerFindDeletedTool },
  { name: 'diff_snapshots', readOnly: true, register: registerDiffSnapshotsTool },
  { name: 'read_snapshot_file', readOnly: true, register: registerReadSnapshotFileTool },
];

export function registerTools(server: McpServer, deps: Deps): string[] {
  const chosen = tools.filter((tool) => tool.readOnly || !deps.config.readOnly);
  // With other hosts configured, every tool takes `host` (see ../fleet.ts).
  const target = Object.keys(deps.config.hosts).length > 0 ? withHostArgument(server) : server;
  for (const tool of chosen) tool.register(target, deps);
  return chosen.map((tool) => tool.name);
}
