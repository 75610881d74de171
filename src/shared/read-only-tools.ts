/**
 * The MCP tools that change nothing. They stay registered when the configuration says
 * readOnly: true, and they are the only ones a readOnly host offers through this snapguard
 * (both from the MCP server's host routing and from the CLI's --host).
 */
export const READ_ONLY_TOOLS: ReadonlySet<string> = new Set([
  'list_snapshots',
  'health_check',
  'plan_strategy',
  'file_versions',
  'find_deleted',
  'diff_snapshots',
  'read_snapshot_file',
]);
