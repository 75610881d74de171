import { SnapguardError } from './errors.js';

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

/**
 * The refusal of a tool that changes something on a read-only host: one message for both places
 * readOnly is set, the controller's entry for the host (`hosts.NAME.readOnly`) and the host's own
 * configuration (`readOnly` there). `setting` says which one.
 */
export function readOnlyRefusal(host: string, tool: string, setting: 'controller' | 'own'): SnapguardError {
  const where =
    setting === 'controller'
      ? `through this snapguard (hosts.${host}.readOnly: true)`
      : '(readOnly: true in its own configuration)';
  const change =
    setting === 'controller'
      ? `remove readOnly from hosts.${host} in this configuration`
      : `remove readOnly from the configuration on ${host}`;
  return new SnapguardError(
    'READ_ONLY_MODE',
    `Host "${host}" is read-only ${where}: ${tool} not found among the tools offered there (only the read-only ones are).`,
    {
      mcp: `Use the read-only tools (${[...READ_ONLY_TOOLS].join(', ')}) there, or ask the user to run ${tool} on ${host} itself.`,
      cli: `Run the command on ${host} itself, or ${change}.`,
    },
  );
}
