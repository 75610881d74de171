import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/core/config.js';
import { readJournals } from '../../src/core/recovery/journal.js';
import { HistoryStore } from '../../src/core/history/store.js';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { cliPath } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';
import { pidFromFile, processGone } from '../helpers/process.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs']);

describe.runIf(run)('the stdio MCP server when its client goes away mid-recovery (built CLI)', () => {
  let box: BtrfsSandbox;
  let path: string;
  let configFile: string;

  beforeAll(async () => {
    box = await createBtrfsSandbox(384, 'mcp-close');
    path = await box.subvolume('app');
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('finishes the step in flight, resolves the journal, leaves the volume whole and no temp files, then exits', async () => {
    const marks = (name: string) => join(box.dir, `validate-${name}`);
    // The volume's validation command is the step in flight when the client leaves: it says it
    // started, then runs (with a forked child) until the server stops it.
    const validate = `echo $$ > ${marks('started')}; sleep 60 & echo $! > ${marks('grandchild')}; wait`;
    const input: ConfigInput & { contextDir: string; stateDir: string } = {
      contextDir: join(box.dir, 'context'),
      stateDir: join(box.dir, 'state'),
      confirm: 'never',
      volumes: {
        app: { backend: 'btrfs', path, validate: [{ command: ['sh', '-c', validate], timeout: 120 }] },
      },
    };
    configFile = join(box.dir, 'snapguard.yaml');
    await writeFile(configFile, stringify(input));
    await writeFile(join(path, 'app.conf'), 'good\n');
    const deps = box.deps(input);
    const snapshot = (await createSnapshots(deps, { volumes: ['app'], type: 'manual' })).created[0]!.name;
    await writeFile(join(path, 'app.conf'), 'broken\n');

    const server = spawn(process.execPath, [cliPath, 'mcp', '--config', configFile], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    server.stdout.resume();
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      server.on('close', (code, signal) => resolve({ code, signal })),
    );
    const send = (message: object) => server.stdin.write(`${JSON.stringify(message)}\n`);
    try {
      send({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'test', version: '0' },
        },
      });
      send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      send({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'recover', arguments: { volume: 'app', snapshot, mode: 'rollback' } },
      });
      for (let i = 0; i < 1200 && !existsSync(marks('started')); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(existsSync(marks('started')), stderr).toBe(true);
      // The client goes away: its end of stdin closes (and it reads nothing more).
      server.stdin.end();
      server.stdout.destroy();
      const end = await ended;
      expect(end, stderr).toEqual({ code: 0, signal: null });
    } finally {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
    expect(stderr).not.toMatch(/EPIPE|Unhandled|at .*\.js:\d+/);
    // The journal is resolved, the rollback it had done is in place, the validation is stopped.
    expect(await readJournals(deps.config.stateDir)).toEqual([]);
    expect(await readFile(join(path, 'app.conf'), 'utf8')).toBe('good\n');
    expect(await processGone(await pidFromFile(marks('grandchild')))).toBe(true);
    const recoveries = (await new HistoryStore({ contextDir: input.contextDir }).read()).history.recoveries;
    expect(recoveries).toHaveLength(1);
    // No temp files: neither next to the volume nor in the context and state folders.
    const leftovers = [
      ...(await readdir(box.pool.mountPoint)).filter((name) => /snapguard-(partial|undone)/.test(name)),
      ...(await readdir(input.contextDir)).filter((name) => name.includes('.tmp')),
      ...(await readdir(input.stateDir, { recursive: true })).filter((name) => String(name).includes('.tmp')),
    ];
    expect(leftovers).toEqual([]);
  });
});
