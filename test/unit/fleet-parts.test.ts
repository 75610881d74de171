import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { authorizedKeyLine, mergeHealth, shellQuote } from '../../src/core/fleet.js';
import { SnapguardError } from '../../src/core/errors.js';
import { commandToRun } from '../../src/mcp/transports/hosts.js';

const odd = [
  '/etc/my dir/x.yaml',
  "it's",
  'a"b',
  '$(touch /tmp/x)',
  '*.txt',
  'semi;colon',
  'back\\slash',
  'tab\there',
  '',
];

describe('the remote words of an ssh command', () => {
  it('quotes only the words after the destination, whatever form the options take', () => {
    expect(
      commandToRun([
        'ssh',
        '-T',
        '-p',
        '2222',
        '-o',
        'BatchMode=yes',
        'root@nas',
        'snapguard',
        'mcp',
        '--config',
        '/a b.yaml',
      ]),
    ).toEqual([
      'ssh',
      '-T',
      '-p',
      '2222',
      '-o',
      'BatchMode=yes',
      'root@nas',
      'snapguard',
      'mcp',
      '--config',
      "'/a b.yaml'",
    ]);
    expect(commandToRun(['ssh', '-p2222', '-Ti', '/k ey', 'nas', "it's"])).toEqual([
      'ssh',
      '-p2222',
      '-Ti',
      '/k ey',
      'nas',
      "'it'\\''s'",
    ]);
    expect(commandToRun(['/usr/bin/ssh', '--', 'nas', 'a b'])).toEqual([
      '/usr/bin/ssh',
      '--',
      'nas',
      "'a b'",
    ]);
    // Nothing after the destination (a forced command), or not ssh at all: run as given.
    expect(commandToRun(['ssh', '-T', '-i', '/k', 'root@nas'])).toEqual([
      'ssh',
      '-T',
      '-i',
      '/k',
      'root@nas',
    ]);
    expect(commandToRun(['snapguard', 'mcp', '--config', '/a b.yaml'])).toEqual([
      'snapguard',
      'mcp',
      '--config',
      '/a b.yaml',
    ]);
  });

  it('a POSIX shell reads each quoted word back exactly as written', () => {
    const script = `printf '%s\\0' ${odd.map(shellQuote).join(' ')}`;
    const out = execFileSync('sh', ['-c', script], { encoding: 'utf8' });
    expect(out.split('\0').slice(0, -1)).toEqual(odd);
  });
});

describe('authorize-key', () => {
  it('writes the forced command with restrict and refuses what is not a public key', () => {
    const line = authorizedKeyLine(
      ['/usr/bin/node', '/opt/sg/cli.js'],
      '/etc/my "dir"/x.yaml',
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB key@ctl\n',
    );
    expect(line).toBe(
      `command="/usr/bin/node /opt/sg/cli.js mcp --config '/etc/my \\"dir\\"/x.yaml'",restrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB key@ctl`,
    );
    expect(() => authorizedKeyLine(['snapguard'], '/x.yaml', '-----BEGIN OPENSSH PRIVATE KEY-----')).toThrow(
      SnapguardError,
    );
    expect(() => authorizedKeyLine(['snapguard'], '/x\n.yaml', 'ssh-ed25519 AAAA k')).toThrow(/line break/);
  });
});

describe('health of several hosts', () => {
  it('is the worst of the hosts that answered and at least WARNING when one did not', () => {
    const good = {
      overall: 'GOOD' as const,
      checkedAt: '2026-12-07T00:00:00Z',
      volumes: [],
      findings: [],
      summary: {
        deployments: 2,
        deploymentsWithSnapshotShare: 1,
        recoveries: 0,
        recoverySuccessRate: null,
        meanRecoverySeconds: null,
      },
    };
    const merged = mergeHealth(
      [
        { host: 'a', result: good },
        {
          host: 'c',
          error: {
            code: 'HOST_UNREACHABLE',
            message: 'Host "c" cannot be reached: refused',
            hint: 'check ssh',
          },
        },
      ],
      new Date('2026-12-07T00:00:00Z'),
    );
    expect(merged.overall).toBe('WARNING');
    expect(merged.unreachable).toEqual([
      { host: 'c', error: 'Host "c" cannot be reached: refused', hint: 'check ssh' },
    ]);
    expect(merged.hosts).toEqual([
      { host: 'a', overall: 'GOOD' },
      { host: 'c', overall: 'UNREACHABLE' },
    ]);
    expect(mergeHealth([{ host: 'a', result: { ...good, overall: 'CRITICAL' } }], new Date()).overall).toBe(
      'CRITICAL',
    );
  });
});
