import { InvalidArgumentError, type Command } from 'commander';
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { findConfigFile, loadConfig, type Config } from '../core/config.js';
import { tryParseDuration } from '../core/units.js';
import { createDeps, type Deps } from '../core/deps.js';
import { createLogger } from '../core/logger.js';
import { assertPrivateDirs } from '../core/private-dirs.js';
import { reportError } from './output.js';

export interface CommonOptions {
  config?: string;
  json?: boolean;
  verbose?: boolean;
}

/** Adds the options every verb takes. */
export function withCommon(command: Command): Command {
  return command
    .option(
      '-c, --config <file>',
      'configuration file (default: $SNAPGUARD_CONFIG, ./snapguard.yaml, /etc/snapguard/snapguard.yaml)',
    )
    .option('--json', 'print machine-readable JSON on stdout')
    .option('-v, --verbose', 'log progress to stderr');
}

export async function loadDeps(options: CommonOptions): Promise<Deps> {
  const config: Config = await loadConfig({ explicit: options.config });
  // Every verb: journals and history in a folder others can write are never trusted.
  await assertPrivateDirs(config);
  // The CLI talks to humans on stdout/stderr; its logs stay quiet unless asked or sent to a file.
  const logger = createLogger({
    file: config.logFile,
    level: options.verbose ? 'debug' : config.logFile ? 'info' : 'warn',
  });
  return createDeps(config, { logger });
}

/** Runs a verb: the action returns its exit code; errors are printed with their hint and mapped to 3 or 2. */
export function action<A extends unknown[]>(
  run: (...args: A) => Promise<number>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const command = args[args.length - 1] as Command;
    const options = command.optsWithGlobals() as CommonOptions;
    try {
      process.exitCode = await run(...args);
    } catch (error) {
      process.exitCode = reportError(error, options);
    }
  };
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The argv that starts this very snapguard (this node, this CLI file), for ExecStart lines. */
export function runningCommand(): string[] {
  const script = process.argv[1];
  if (!script) return [process.execPath];
  let path = resolve(script);
  try {
    path = realpathSync(path);
  } catch {
    // A script path that cannot be resolved is written as given.
  }
  return [process.execPath, path];
}

/** The absolute path of the config file this run uses (--config, $SNAPGUARD_CONFIG, ./snapguard.yaml, /etc/...), if any. */
export function configFileInUse(explicit: string | undefined): string | undefined {
  return findConfigFile({ explicit })?.file;
}

/** A duration option: the forms of the config file (30s, 5m, 1h, 7d, 4w, 1h30m) or plain seconds. */
export function parseDurationOption(name: string) {
  return (value: string): number => {
    const seconds = /^\d+$/.test(value.trim()) ? Number(value.trim()) : tryParseDuration(value);
    if (seconds === undefined || seconds <= 0)
      throw new InvalidArgumentError(
        `${name} must be a duration like 30s, 5m, 1h or 7d (or a number of seconds), got "${value}".`,
      );
    return seconds;
  };
}

export function parseIntOption(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value))
      throw new InvalidArgumentError(`${name} must be a whole number, got "${value}".`);
    return Number(value);
  };
}
