import { describe, expect, it } from 'vitest';
import { SnapguardError } from '../../src/core/errors.js';
import type { Exec, ExecOptions } from '../../src/system/exec.js';
import {
  createSystemdDriver,
  journalctlArgv,
  journalctlPrefix,
  applyJournalRun,
  parseJournalRun,
  parseListUnitFiles,
  parseListUnits,
  parseShowOutput,
  parseTimestampUsec,
  systemctlArgv,
  validateUnitName,
  validateUnitPattern,
} from '../../src/system/systemd.js';

/** Records argv and answers like systemctl would; only argument building is under test here. */
function recordingExec(answer: (argv: string[]) => string = () => '') {
  const calls: { argv: string[]; options: ExecOptions | undefined }[] = [];
  const exec: Exec = async (file, args, options) => {
    const argv = [file, ...args];
    calls.push({ argv, options });
    return { command: argv.join(' '), stdout: answer(argv), stderr: '', exitCode: 0, durationMs: 1 };
  };
  return { exec, calls };
}

describe('systemctl argument building', () => {
  it('adds --user right after the prefix for the user scope', () => {
    expect(systemctlArgv({ systemctl: ['systemctl'], scope: 'user' }, ['start', '--', 'a.service'])).toEqual([
      'systemctl',
      '--user',
      'start',
      '--',
      'a.service',
    ]);
    expect(
      systemctlArgv({ systemctl: ['ssh', 'nas', 'systemctl'], scope: 'system' }, ['stop', '--', 'a.service']),
    ).toEqual(['ssh', 'nas', 'systemctl', 'stop', '--', 'a.service']);
  });

  it('derives journalctl from the systemctl prefix', () => {
    expect(
      journalctlPrefix({ systemctl: ['nsenter', '-t', '42', '-a', 'systemctl'], scope: 'system' }),
    ).toEqual(['nsenter', '-t', '42', '-a', 'journalctl']);
    expect(journalctlPrefix({ systemctl: ['/usr/bin/systemctl'], scope: 'system' })).toEqual([
      '/usr/bin/journalctl',
    ]);
    expect(
      journalctlArgv({ systemctl: ['ssh', 'nas', 'systemctl'], scope: 'user' }, 'a.service', 20),
    ).toEqual([
      'ssh',
      'nas',
      'journalctl',
      '--user',
      '-u',
      'a.service',
      '-n',
      '20',
      '--no-pager',
      '-o',
      'cat',
    ]);
  });

  it('runs every call of a user-scope driver with --user and a timeout', async () => {
    const { exec, calls } = recordingExec((argv) =>
      argv.includes('show') ? 'Id=a.service\nLoadState=loaded\nActiveState=inactive\nResult=success\n' : '',
    );
    const driver = createSystemdDriver(exec, { systemctl: ['ssh', 'nas', 'systemctl'], scope: 'user' });
    await driver.start('a.service', { noBlock: true });
    await driver.stop('a.service');
    await driver.listUnits(['backup-*']);
    await driver.journal('a.service', 5);
    const argvs = calls.map((call) => call.argv);
    expect(argvs).toContainEqual([
      'ssh',
      'nas',
      'systemctl',
      '--user',
      'start',
      '--no-block',
      '--',
      'a.service',
    ]);
    expect(argvs).toContainEqual(['ssh', 'nas', 'systemctl', '--user', 'stop', '--', 'a.service']);
    expect(argvs).toContainEqual([
      'ssh',
      'nas',
      'systemctl',
      '--user',
      'list-units',
      '--all',
      '--plain',
      '--no-legend',
      '--',
      'backup-*',
    ]);
    expect(argvs).toContainEqual([
      'ssh',
      'nas',
      'journalctl',
      '--user',
      '-u',
      'a.service',
      '-n',
      '5',
      '--no-pager',
      '-o',
      'cat',
    ]);
    for (const argv of argvs) expect(argv[3]).toBe('--user');
    for (const call of calls) expect(call.options?.timeoutMs).toBeGreaterThan(0);
  });
});

describe('unit name guardrail', () => {
  it.each(['backup-db.service', 'getty@tty1.service', 'mnt-data\\x2dpool.mount', 'a:b.timer'])(
    'accepts %s',
    (name) => {
      expect(validateUnitName(name)).toBe(name);
    },
  );

  it.each([
    '',
    '-x.service',
    '--root=/',
    'a b',
    'a;b',
    '$(id)',
    'a/b.service',
    'x*.service',
    'a\nb',
    'é.service',
  ])('refuses %j with BAD_INPUT', (name) => {
    expect(() => validateUnitName(name)).toThrow(SnapguardError);
    try {
      validateUnitName(name);
    } catch (error) {
      expect((error as SnapguardError).code).toBe('BAD_INPUT');
    }
  });

  it('allows globs only in list patterns', () => {
    expect(validateUnitPattern('backup-*.service')).toBe('backup-*.service');
    expect(validateUnitPattern('sg-[ab]?.timer')).toBe('sg-[ab]?.timer');
    expect(() => validateUnitPattern('--all')).toThrow(SnapguardError);
    expect(() => validateUnitPattern('a{b,c}')).toThrow(SnapguardError);
  });

  it('refuses a bad name before running anything', async () => {
    const { exec, calls } = recordingExec();
    const driver = createSystemdDriver(exec, { systemctl: ['systemctl'], scope: 'system' });
    await expect(driver.start('--root=/')).rejects.toMatchObject({ code: 'BAD_INPUT' });
    await expect(driver.listUnits(['ok-*', '-x'])).rejects.toMatchObject({ code: 'BAD_INPUT' });
    await expect(driver.journal('a b', 5)).rejects.toMatchObject({ code: 'BAD_INPUT' });
    expect(calls).toEqual([]);
  });

  it('refuses an empty prefix or unknown scope', () => {
    const { exec } = recordingExec();
    expect(() => createSystemdDriver(exec, { systemctl: [], scope: 'system' })).toThrow(SnapguardError);
    expect(() =>
      createSystemdDriver(exec, { systemctl: ['systemctl'], scope: 'global' as unknown as 'user' }),
    ).toThrow(SnapguardError);
  });
});

describe('output parsing', () => {
  it('parses show output with timestamps in microseconds', () => {
    const status = parseShowOutput(
      'x',
      [
        'Type=oneshot',
        'Result=exit-code',
        'ExecMainStartTimestamp=Sat 2026-11-21 19:57:12.305192 UTC',
        'ExecMainExitTimestamp=',
        'ExecMainStatus=3',
        'Id=x.service',
        'LoadState=loaded',
        'ActiveState=failed',
        'SubState=failed',
        '',
      ].join('\n'),
    );
    expect(status).toEqual({
      unit: 'x.service',
      loadState: 'loaded',
      activeState: 'failed',
      subState: 'failed',
      result: 'exit-code',
      execMainStatus: 3,
      type: 'oneshot',
      execMainStartTimestampUsec: Date.UTC(2026, 10, 21, 19, 57, 12) * 1000 + 305192,
    });
  });

  it('leaves Type and ExecMainStatus undefined when systemd prints nothing', () => {
    const status = parseShowOutput('nope.service', 'Type=\nExecMainStatus=\nLoadState=not-found\n');
    expect(status.type).toBeUndefined();
    expect(status.execMainStatus).toBeUndefined();
    expect(status.unit).toBe('nope.service');
    expect(parseTimestampUsec('n/a')).toBeUndefined();
  });

  it('parses list-units and list-unit-files lines', () => {
    expect(
      parseListUnits(
        'dbus.service loaded active running D-Bus System Message Bus\n● x.service not-found inactive dead x.service\n',
      ),
    ).toEqual([
      {
        unit: 'dbus.service',
        loadState: 'loaded',
        activeState: 'active',
        subState: 'running',
        description: 'D-Bus System Message Bus',
      },
      {
        unit: 'x.service',
        loadState: 'not-found',
        activeState: 'inactive',
        subState: 'dead',
        description: 'x.service',
      },
    ]);
    expect(parseListUnitFiles('dbus.service     static -\nsg.timer  enabled enabled\n')).toEqual([
      { unit: 'dbus.service', state: 'static' },
      { unit: 'sg.timer', state: 'enabled' },
    ]);
  });

  it('takes the last run from the manager journal messages, grouped by invocation', () => {
    const line = (fields: Record<string, string>) => JSON.stringify(fields);
    const journal = [
      line({
        MESSAGE_ID: '7d4958e842da4a758f6c1cdc7b36dcc5',
        INVOCATION_ID: 'a',
        __REALTIME_TIMESTAMP: '100',
      }),
      line({
        MESSAGE_ID: '7ad2d189f7e94e70a38c781354912448',
        INVOCATION_ID: 'a',
        __REALTIME_TIMESTAMP: '150',
      }),
      line({ MESSAGE_ID: 'c772d24e9a884cbeb9ea12625c306c01', __REALTIME_TIMESTAMP: '160' }),
      line({
        MESSAGE_ID: '7d4958e842da4a758f6c1cdc7b36dcc5',
        INVOCATION_ID: 'b',
        __REALTIME_TIMESTAMP: '200',
      }),
      line({
        MESSAGE_ID: '98e322203f7a4ed290d09fe03c09fe15',
        INVOCATION_ID: 'b',
        EXIT_CODE: 'exited',
        EXIT_STATUS: '3',
        __REALTIME_TIMESTAMP: '250',
      }),
      line({ MESSAGE_ID: 'd9b373ed55a64feb8242e02dbe79a49c', INVOCATION_ID: 'b', UNIT_RESULT: 'exit-code' }),
      'not json',
      '',
    ].join('\n');
    const run = parseJournalRun(journal);
    expect(run).toEqual({
      invocationId: 'b',
      startUsec: 200,
      exitUsec: 250,
      exitStatus: 3,
      result: 'exit-code',
    });
    const defaults = parseShowOutput(
      'x.service',
      'Id=x.service\nActiveState=inactive\nResult=success\nExecMainStatus=0\n',
    );
    expect(applyJournalRun(defaults, run!)).toMatchObject({
      result: 'exit-code',
      execMainStatus: 3,
      execMainStartTimestampUsec: 200,
      execMainExitTimestampUsec: 250,
    });
    expect(parseJournalRun('')).toBeUndefined();
  });
});

describe('parseShowManyOutput', () => {
  it('splits one show call for several units into their statuses, in order', async () => {
    const { parseShowManyOutput } = await import('../../src/system/systemd.js');
    const stdout = [
      'Id=a.service\nLoadState=loaded\nActiveState=activating\nSubState=start\nResult=success\nExecMainStatus=0\nType=oneshot\nJob=12',
      'Id=b.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nResult=success\nExecMainStatus=\nType=\nJob=',
      '',
    ].join('\n\n');
    const [a, b] = parseShowManyOutput(['a.service', 'b.service'], stdout);
    expect(a).toMatchObject({
      unit: 'a.service',
      activeState: 'activating',
      type: 'oneshot',
      execMainStatus: 0,
    });
    expect(b).toMatchObject({ unit: 'b.service', loadState: 'not-found', execMainStatus: undefined });
  });
});
