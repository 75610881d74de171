// Long-running children (sessions to other hosts) for the layers above core, which do not reach
// system/ themselves: the same process-group handling as every command snapguard runs.
export { startOwnedProcess, type OwnedProcess } from '../system/exec.js';
