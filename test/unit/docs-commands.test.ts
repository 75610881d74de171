import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist', 'cli', 'index.js');

// In Markdown a command is in a console line (`$ `) or in backticks; in a script it starts a line or an array.
const MD_COMMAND = /(?:\$ |`)snapguard ((?:[a-z][a-z-]*)(?: (?:create|list))?)([^\n`|]*)/g;
const SH_COMMAND = /(?:^\s*|\()snapguard ((?:[a-z][a-z-]*)(?: (?:create|list))?)([^\n`|]*)/gm;

async function markdownFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && (e.name.endsWith('.md') || e.name.endsWith('.sh')))
    .map((e) => join(e.parentPath, e.name));
}

/** `snapguard VERB [SUBVERB] --option` as written in the guides, the skills and their scripts. */
async function namedCommands(): Promise<Map<string, Set<string>>> {
  const files = [
    ...(await markdownFiles(join(root, 'docs', 'guides'))),
    ...(await markdownFiles(join(root, 'skills'))),
    ...(await markdownFiles(join(root, 'docs', 'runbooks'))),
    join(root, 'docs', 'mcp.md'),
    join(root, 'docs', 'packaging.md'),
  ];
  const commands = new Map<string, Set<string>>();
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    for (const match of text.matchAll(file.endsWith('.sh') ? SH_COMMAND : MD_COMMAND)) {
      const verb = match[1]!;
      const options = commands.get(verb) ?? new Set<string>();
      for (const option of match[2]!.matchAll(/(?:^|\s)(--[a-z][a-z-]*)/g)) options.add(option[1]!);
      commands.set(verb, options);
    }
  }
  return commands;
}

describe('the guides and skills name only commands that exist', () => {
  it('every `snapguard VERB --option` they show is accepted by the CLI', async () => {
    const commands = await namedCommands();
    expect(commands.size).toBeGreaterThan(5);
    const missing: string[] = [];
    for (const [verb, options] of commands) {
      const help = await run(process.execPath, [cli, ...verb.split(' '), '--help']).then(
        (r) => r.stdout,
        () => undefined,
      );
      if (help === undefined || !help.startsWith(`Usage: snapguard ${verb}`)) {
        missing.push(verb);
        continue;
      }
      for (const option of options) if (!help.includes(option)) missing.push(`${verb} ${option}`);
    }
    expect(missing).toEqual([]);
  }, 240_000);
});
