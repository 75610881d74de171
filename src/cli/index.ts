#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/version.js';
import { completeCommand } from './commands/complete.js';
import { demoCommand } from './commands/demo.js';
import { doctorCommand } from './commands/doctor.js';
import { historyCommand } from './commands/history.js';
import { mcpCommand } from './commands/mcp.js';
import { reportCommand } from './commands/report.js';
import { recoverCommand } from './commands/recover.js';
import { orchestrateCommand } from './commands/orchestrate.js';
import { restoreTestCommands } from './commands/restore-test.js';
import { planCommand } from './commands/plan.js';
import { pinCommand, pruneCommand, unpinCommand } from './commands/prune.js';
import { snapshotCommand } from './commands/snapshot.js';
import { wrapCommand } from './commands/wrap.js';
import { dropOutputWhenReaderLeaves } from './output.js';

export function buildProgram(): Command {
  const program = new Command('snapguard')
    .description(
      'Snapshots before every risky change, recovery behind a confirmation gate, proof that backups restore.',
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const command of [
    snapshotCommand(),
    completeCommand(),
    historyCommand(),
    mcpCommand(),
    demoCommand(),
    recoverCommand(),
    wrapCommand(),
    doctorCommand(),
    orchestrateCommand(),
    ...restoreTestCommands(),
    pruneCommand(),
    pinCommand(),
    unpinCommand(),
    planCommand(),
    reportCommand(),
  ]) {
    program.addCommand(command);
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
  const program = buildProgram();
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
