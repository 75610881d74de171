import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { orchestrate } from '../../src/core/orchestrate/index.js';
import { createExec } from '../../src/system/exec.js';
import { requireComponents } from '../helpers/env.js';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const run = requireComponents(['pgbackrest', 'runuser', `${PG_BIN}/pg_ctl`]);
const exec = createExec({ defaultTimeoutMs: 120_000 });

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe.skipIf(!run)('orchestrate: real pgBackRest full backup of PostgreSQL 15 on loopback', () => {
  let dir: string;
  let conf: string;
  let started = false;
  const asPostgres = (argv: string[]) => exec('runuser', ['-u', 'postgres', '--', ...argv]);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-test-orch-pg-'));
    await chmod(dir, 0o755);
    const port = await freePort();
    for (const sub of ['data', 'sock', 'repo', 'log', 'lock', 'spool']) {
      await mkdir(join(dir, sub));
      await chown(join(dir, sub), 101, 104);
    }
    await chmod(join(dir, 'data'), 0o700);
    conf = join(dir, 'pgbackrest.conf');
    await writeFile(
      conf,
      [
        '[global]',
        `repo1-path=${join(dir, 'repo')}`,
        'repo1-retention-full=2',
        `log-path=${join(dir, 'log')}`,
        `lock-path=${join(dir, 'lock')}`,
        `spool-path=${join(dir, 'spool')}`,
        'start-fast=y',
        'log-level-console=warn',
        '',
        '[main]',
        `pg1-path=${join(dir, 'data')}`,
        `pg1-port=${port}`,
        `pg1-socket-path=${join(dir, 'sock')}`,
        '',
      ].join('\n'),
    );
    await chmod(conf, 0o644);
    await asPostgres([`${PG_BIN}/initdb`, '-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres']);
    await writeFile(
      join(dir, 'data', 'postgresql.auto.conf'),
      [
        `port = ${port}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${join(dir, 'sock')}'`,
        'wal_level = replica',
        'archive_mode = on',
        `archive_command = 'pgbackrest --config=${conf} --stanza=main archive-push %p'`,
        'max_wal_senders = 2',
        '',
      ].join('\n'),
    );
    await asPostgres([
      `${PG_BIN}/pg_ctl`,
      '-D',
      join(dir, 'data'),
      '-l',
      join(dir, 'log', 'postgres.log'),
      '-w',
      'start',
    ]);
    started = true;
    await asPostgres(['pgbackrest', `--config=${conf}`, '--stanza=main', 'stanza-create']);
  });
  afterAll(async () => {
    if (started)
      await asPostgres([`${PG_BIN}/pg_ctl`, '-D', join(dir, 'data'), '-m', 'immediate', 'stop']).catch(
        () => undefined,
      );
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const deps = (argv: string[]) =>
    createDeps(
      buildConfig(
        {
          contextDir: join(dir, 'context'),
          stateDir: join(dir, 'state'),
          orchestrate: {
            stages: [
              {
                name: 'backups',
                timeout: '5m',
                jobs: [
                  {
                    kind: 'command',
                    name: 'pgbackrest-main-full-backup',
                    argv,
                    verify: {
                      kind: 'pgbackrest',
                      stanza: 'main',
                      config: conf,
                      runAs: ['runuser', '-u', 'postgres', '--'],
                    },
                  },
                ],
              },
            ],
          },
        },
        dir,
      ),
      { logger: silentLogger(), exec },
    );

  it('verifies a full backup through pgbackrest info --output=json', async () => {
    const result = await orchestrate(
      deps([
        'runuser',
        '-u',
        'postgres',
        '--',
        'pgbackrest',
        `--config=${conf}`,
        '--stanza=main',
        '--type=full',
        'backup',
      ]),
      {},
    );
    expect(result.exitCode).toBe(0);
    const job = result.stages[0]!.jobs[0]!;
    expect(job.result).toBe('verified');
    expect(job.verification).toMatch(/^pgBackRest full backup \d{8}-\d{6}F of stanza main$/);
  });

  it('a command that exits 0 without a new backup is not verified', async () => {
    const result = await orchestrate(
      deps(['runuser', '-u', 'postgres', '--', 'pgbackrest', `--config=${conf}`, '--stanza=main', 'check']),
      {},
    );
    expect(result.exitCode).toBe(1);
    expect(result.stages[0]!.jobs[0]!.result).toBe('failed');
    expect(result.stages[0]!.jobs[0]!.detail).toMatch(/no pgBackRest backup of stanza main newer than/);
  });
});
