import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig, type ConfigInput } from '../../src/core/config.js';
import { createDeps } from '../../src/core/deps.js';
import { silentLogger } from '../../src/core/logger.js';
import { redactSecrets, redactUrls } from '../../src/shared/redact.js';
import { CONFIG_URI } from '../../src/mcp/resources.js';
import { connect } from '../helpers/mcp.js';

const SECRETS = [
  'hdr-s3cr3t-bearer',
  'ntfy-query-t0ken',
  'rest-pw-9f8e7d',
  's3-secret-key-5a5a',
  'restic-pass-1234',
  'cmd-env-abcd',
  'https-user-token-77',
];

/** A config holding a secret in every place the configuration can hold one. */
function secretConfig(dir: string): ConfigInput {
  return {
    contextDir: join(dir, 'context'),
    stateDir: join(dir, 'state'),
    readOnly: true,
    volumes: {
      data: {
        backend: 'dir',
        path: join(dir, 'data'),
        external: [
          {
            kind: 'restic',
            repository: `rest:https://backup:${SECRETS[2]}@backup.lan:8000/data`,
            passwordFile: '/etc/restic/pw',
          },
        ],
      },
    },
    orchestrate: {
      notify: {
        url: `https://ntfy.example.org/backups?auth=${SECRETS[1]}&priority=high`,
        headers: { Authorization: `Bearer ${SECRETS[0]}` },
      },
      stages: [
        {
          name: 'backup',
          timeout: '1h',
          jobs: [
            {
              kind: 'command',
              name: 'offsite',
              argv: ['/usr/local/bin/offsite'],
              env: { AWS_SECRET_ACCESS_KEY: SECRETS[3]!, UPLOAD_TOKEN: SECRETS[5]! },
              verify: {
                kind: 'restic',
                repository: `s3:https://${SECRETS[6]}@s3.example.org/bucket`,
                env: { RESTIC_PASSWORD: SECRETS[4]! },
              },
            },
          ],
        },
      ],
    },
  };
}

describe('secrets are redacted from every output of the configuration', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapguard-redact-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('redactUrls hides passwords, http userinfo tokens and query values, and keeps the rest', () => {
    expect(redactUrls('rest:https://backup:pw@host:8000/repo')).toBe(
      'rest:https://backup:[redacted]@host:8000/repo',
    );
    expect(redactUrls('https://tok@github.com/x.git')).toBe('https://[redacted]@github.com/x.git');
    expect(redactUrls('sftp://backup@nas.lan//srv/restic')).toBe('sftp://backup@nas.lan//srv/restic');
    expect(redactUrls('see https://h/p?a=1&b=two#f and /srv/plain')).toBe(
      'see https://h/p?a=[redacted]&b=[redacted]#f and /srv/plain',
    );
    expect(redactUrls('/srv/restic-repo')).toBe('/srv/restic-repo');
  });

  it('redactSecrets leaves no secret of the config and keeps what is not secret', () => {
    const config = buildConfig(secretConfig(dir), dir);
    const text = JSON.stringify(redactSecrets(config));
    for (const secret of SECRETS) expect(text).not.toContain(secret);
    expect(text).toContain('/etc/restic/pw');
    expect(text).toContain('backup.lan:8000/data');
    expect(text).toContain('AWS_SECRET_ACCESS_KEY');
    expect(text).toContain('ntfy.example.org/backups');
    // The config itself is not changed.
    expect(JSON.stringify(config)).toContain(SECRETS[0]);
  });

  it('snapguard://config over MCP (readOnly: true too) holds none of the secrets', async () => {
    const deps = createDeps(buildConfig(secretConfig(dir), dir), { logger: silentLogger() });
    const mcp = await connect(deps);
    try {
      const read = await mcp.client.readResource({ uri: CONFIG_URI });
      const text = read.contents.map((c) => ('text' in c ? c.text : '')).join('');
      expect(text).toContain('"volumes"');
      for (const secret of SECRETS) expect(text).not.toContain(secret);
      expect(text).toContain('[redacted]');
    } finally {
      await mcp.close();
    }
  });
});
