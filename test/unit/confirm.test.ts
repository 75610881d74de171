import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumeToken, issueToken, normaliseArgs, TOKEN_LIFETIME_MS } from '../../src/core/confirm.js';
import { SnapguardError } from '../../src/core/errors.js';

let stateDir: string;
beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'snapguard-confirm-'));
});
afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

const subject = {
  tool: 'recover',
  args: { volume: 'containers', snapshot: 'containers-manual-20261121-100000', mode: 'rollback' },
  fingerprint: 'snapshots:a,b',
};
const now = new Date('2026-11-21T12:00:00Z');

async function reason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SnapguardError);
    expect((error as SnapguardError).code).toBe('CONFIRMATION_INVALID');
    expect((error as SnapguardError).hint).not.toBe('');
    return String((error as SnapguardError).details?.reason);
  }
  throw new Error('expected a refusal');
}

describe('confirmation tokens', () => {
  it('normalises arguments: key order, undefined values, token and dryRun do not matter', () => {
    expect(
      normaliseArgs({ b: 1, a: [2, { d: 1, c: 2 }], x: undefined, confirmationToken: 't', dryRun: true }),
    ).toBe(normaliseArgs({ a: [2, { c: 2, d: 1 }], b: 1 }));
  });

  it('keeps the secret in stateDir with mode 0600', async () => {
    await issueToken(stateDir, subject, now);
    const info = await stat(join(stateDir, 'confirm', 'secret'));
    expect(info.mode & 0o777).toBe(0o600);
  });

  it('a token works once; reuse is refused as already used', async () => {
    const { token, expiresAt } = await issueToken(stateDir, subject, now);
    expect(new Date(expiresAt).getTime() - now.getTime()).toBe(TOKEN_LIFETIME_MS);
    await consumeToken(stateDir, subject, token, new Date(now.getTime() + 1000));
    expect(await reason(consumeToken(stateDir, subject, token, new Date(now.getTime() + 2000)))).toBe(
      'already-used',
    );
  });

  it('spent tokens stay spent across a restart (recorded on disk)', async () => {
    const { token } = await issueToken(stateDir, subject, now);
    await consumeToken(stateDir, subject, token, now);
    expect((await readdir(join(stateDir, 'confirm', 'spent'))).length).toBeGreaterThan(0);
    // Another process (a restarted server) has no memory of this one; only the files can refuse it.
    const script = `import { consumeToken } from ${JSON.stringify(new URL('../../dist/core/confirm.js', import.meta.url).href)};
      try { await consumeToken(process.argv[1], JSON.parse(process.argv[2]), process.argv[3], new Date(process.argv[4])); console.log('accepted'); }
      catch (e) { console.log(e.details?.reason ?? e.message); }`;
    const out = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', script, stateDir, JSON.stringify(subject), token, now.toISOString()],
      { encoding: 'utf8' },
    );
    expect(out.trim()).toBe('already-used');
  });

  it('refuses changed arguments, another tool, a changed state, expiry and forgery', async () => {
    const { token } = await issueToken(stateDir, subject, now);
    expect(
      await reason(
        consumeToken(stateDir, { ...subject, args: { ...subject.args, mode: 'files' } }, token, now),
      ),
    ).toBe('arguments-changed');
    expect(await reason(consumeToken(stateDir, { ...subject, tool: 'prune_snapshots' }, token, now))).toBe(
      'arguments-changed',
    );
    expect(
      await reason(consumeToken(stateDir, { ...subject, fingerprint: 'snapshots:a,b,c' }, token, now)),
    ).toBe('state-changed');
    expect(
      await reason(consumeToken(stateDir, subject, token, new Date(now.getTime() + TOKEN_LIFETIME_MS + 1))),
    ).toBe('expired');
    const [body, mac] = token.split('.');
    const tampered = Buffer.from(
      Buffer.from(body!, 'base64url').toString().replace('"recover"', '"recovex"'),
    ).toString('base64url');
    expect(await reason(consumeToken(stateDir, subject, `${tampered}.${mac}`, now))).toBe('signature');
    expect(await reason(consumeToken(stateDir, subject, 'garbage', now))).toBe('malformed');
    // None of the refusals spent it: the right call still works.
    await consumeToken(stateDir, subject, token, now);
  });

  it('of two concurrent uses of one token exactly one succeeds', async () => {
    const { token } = await issueToken(stateDir, subject, now);
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => consumeToken(stateDir, subject, token, now)),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });
});
