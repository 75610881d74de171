import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/core/config.js';
import { SnapguardError } from '../../src/core/errors.js';

function refusal(raw: unknown): SnapguardError {
  try {
    buildConfig(raw, '/etc/snapguard', '/etc/snapguard/snapguard.yaml');
  } catch (error) {
    return error as SnapguardError;
  }
  throw new Error('expected the config to be refused');
}

describe('hosts: in the configuration', () => {
  it('accepts hosts and no local volumes, with readOnly defaulting to false', () => {
    const config = buildConfig(
      {
        host: 'controller',
        hosts: {
          nas: { command: ['ssh', '-T', '-i', '/root/.ssh/snapguard', 'root@nas.lan'] },
          vps: { command: ['ssh', '-T', 'snapguard@vps.example.org'], readOnly: true },
        },
      },
      '/etc/snapguard',
    );
    expect(Object.keys(config.volumes)).toEqual([]);
    expect(config.hosts.nas).toEqual({
      command: ['ssh', '-T', '-i', '/root/.ssh/snapguard', 'root@nas.lan'],
      readOnly: false,
    });
    expect(config.hosts.vps?.readOnly).toBe(true);
  });

  it("refuses the reserved name local and the host's own name, saying how to fix it", () => {
    const local = refusal({ hosts: { local: { command: ['ssh', 'x'] } } });
    expect(local.code).toBe('CONFIG_INVALID');
    expect(local.message).toContain('hosts.local: "local" is reserved for this host');
    expect(local.hint).toContain('Rename the entry under hosts:');
    const self = refusal({ host: 'nas', hosts: { nas: { command: ['ssh', 'x'] } } });
    expect(self.message).toContain(`hosts.nas: "nas" is this host's own name`);
  });

  it('refuses a missing or empty command, a command that is a string, unknown keys and bad names', () => {
    expect(refusal({ hosts: { nas: {} } }).message).toContain('hosts.nas.command: is required');
    expect(refusal({ hosts: { nas: { command: [] } } }).message).toContain(
      'hosts.nas.command: must name the program to run',
    );
    expect(refusal({ hosts: { nas: { command: 'ssh nas' } } }).message).toContain(
      'hosts.nas.command: expected a list of words',
    );
    expect(refusal({ hosts: { nas: { command: ['ssh', ''] } } }).message).toContain(
      'hosts.nas.command.1: must not be empty',
    );
    expect(refusal({ hosts: { nas: { command: ['ssh'], readonly: true } } }).message).toContain(
      'unknown key "readonly"; did you mean readOnly?',
    );
    expect(refusal({ hosts: { 'NAS box': { command: ['ssh'] } } }).message).toContain(
      'host names are lowercase letters',
    );
  });
});
