#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/version.js';
import { dropOutputWhenReaderLeaves } from './closed-output.js';

type CommandLoader = () => Promise<Command[]>;

// Each verb's module (and the core it pulls in) is loaded only when that verb runs: a CLI call
// pays for what it does, and only `mcp` loads the MCP SDK and the HTTP stack. Help loads them all.
// The order is the order of `snapguard --help`.
const commandLoaders: [names: string[], load: CommandLoader][] = [
  [['snapshot'], async () => [(await import('./commands/snapshot.js')).snapshotCommand()]],
  [['complete'], async () => [(await import('./commands/complete.js')).completeCommand()]],
  [['history'], async () => [(await import('./commands/history.js')).historyCommand()]],
  [['mcp'], async () => [(await import('./commands/mcp.js')).mcpCommand()]],
  [['demo'], async () => [(await import('./commands/demo.js')).demoCommand()]],
  [['init'], async () => [(await import('./commands/init.js')).initCommand()]],
  [['recover'], async () => [(await import('./commands/recover.js')).recoverCommand()]],
  [['wrap'], async () => [(await import('./commands/wrap.js')).wrapCommand()]],
  [['doctor'], async () => [(await import('./commands/doctor.js')).doctorCommand()]],
  [['orchestrate'], async () => [(await import('./commands/orchestrate.js')).orchestrateCommand()]],
  [
    ['restore-test', 'health', 'units'],
    async () => (await import('./commands/restore-test.js')).restoreTestCommands(),
  ],
  [
    ['prune', 'pin', 'unpin'],
    async () => {
      const prune = await import('./commands/prune.js');
      return [prune.pruneCommand(), prune.pinCommand(), prune.unpinCommand()];
    },
  ],
  [['plan'], async () => [(await import('./commands/plan.js')).planCommand()]],
  [['report'], async () => [(await import('./commands/report.js')).reportCommand()]],
  [
    ['fleet', 'authorize-key'],
    async () => {
      const fleet = await import('./commands/fleet.js');
      return [fleet.fleetCommand(), fleet.authorizeKeyCommand()];
    },
  ],
  [
    ['versions', 'deleted', 'diff', 'cat'],
    async () => (await import('./commands/files.js')).fileHistoryCommands(),
  ],
];

/** The command modules one invocation needs: the verb's own, none for --version, all otherwise (help, typos). */
function loadersFor(argv: readonly string[]): CommandLoader[] {
  const first = argv[0];
  if (argv.length === 1 && (first === '--version' || first === '-V')) return [];
  const match = commandLoaders.find(([names]) => first !== undefined && names.includes(first));
  return match ? [match[1]] : commandLoaders.map(([, load]) => load);
}

/** The program with the commands that `argv` (the arguments after the script) needs; all when omitted. */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const program = new Command('snapguard')
    .description(
      'Snapshots before every risky change, recovery behind a confirmation gate, proof that backups restore.',
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const loaders = argv ? loadersFor(argv) : commandLoaders.map(([, load]) => load);
  for (const commands of await Promise.all(loaders.map((load) => load()))) {
    for (const command of commands) program.addCommand(command);
  }
  // Usage errors of subcommands exit with 3 as well.
  const override = (command: Command) => {
    command.exitOverride();
    command.commands.forEach(override);
  };
  override(program);
  return program;
}

async function main(): Promise<void> {
  dropOutputWhenReaderLeaves();
  const program = await buildProgram(process.argv.slice(2));
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit 0; everything else commander rejects is bad usage.
      process.exitCode = error.exitCode === 0 ? 0 : 3;
      return;
    }
    throw error;
  }
}

await main();
