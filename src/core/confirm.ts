import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createExclusive, writeFileAtomic } from './atomic-file.js';
import { SnapguardError } from './errors.js';

/**
 * The token half of the confirmation gate (docs/recovery.md, "The confirmation gate"): an HMAC over the tool, the normalised
 * arguments and a fingerprint of the state the plan was made from. A token is single use (spent
 * tokens are recorded in stateDir and survive restarts) and valid for 10 minutes. The secret is
 * created once in stateDir with mode 0600 and never leaves it.
 */

export const TOKEN_LIFETIME_MS = 10 * 60 * 1000;

/** Argument keys that are not part of what the user confirms. */
const IGNORED_ARGS = new Set(['confirmationToken', 'dryRun']);

export interface ConfirmSubject {
  tool: string;
  args: Record<string, unknown>;
  /** What the plan depends on, e.g. the volume's snapshot names; any change invalidates the token. */
  fingerprint: string;
}

export interface IssuedToken {
  token: string;
  expiresAt: string;
}

interface TokenPayload {
  v: 1;
  tool: string;
  args: string;
  state: string;
  exp: number;
  nonce: string;
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item !== undefined) out[key] = canonical(item);
    }
    return out;
  }
  return value;
}

/** Arguments as the user confirmed them: keys sorted, undefined dropped, token and dryRun left out. */
export function normaliseArgs(args: Record<string, unknown>): string {
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(args)) if (!IGNORED_ARGS.has(key)) kept[key] = value;
  return JSON.stringify(canonical(kept));
}

const digest = (text: string) => createHash('sha256').update(text).digest('base64url').slice(0, 22);

function confirmDir(stateDir: string): string {
  return join(stateDir, 'confirm');
}

/**
 * Reads the secret, creating it (0600, exclusively) the first time. The secret is never read,
 * written or chmod-ed through a symlink: a symlink in its place is removed (what it points at is
 * left alone) and a new secret is created, which makes outstanding tokens invalid.
 */
export async function confirmationSecret(stateDir: string, logger?: Logger): Promise<Buffer> {
  const dir = confirmDir(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'secret');
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await writeFileAtomic(file, randomBytes(32).toString('hex'), { mode: 0o600, exclusive: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let handle: FileHandle;
    try {
      handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') {
        await unlink(file).catch(() => undefined);
        logger?.warn({ file }, 'confirmation secret was a symlink; removed it and created a new secret');
        continue;
      }
      if (code === 'ENOENT') continue;
      throw error;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) break;
      if ((info.mode & 0o077) !== 0) {
        await handle.chmod(0o600);
        logger?.warn({ file }, 'confirmation secret was readable by others; reset its mode to 0600');
      }
      const text = (await handle.readFile('utf8')).trim();
      if (/^[0-9a-f]{64}$/.test(text)) return Buffer.from(text, 'hex');
    } finally {
      await handle.close();
    }
    // Written by an older version that created the file in place: it may still be being written.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new SnapguardError(
    'INTERNAL',
    `The confirmation secret ${file} is damaged.`,
    'Delete that file; a new secret is created on the next call (outstanding tokens become invalid).',
  );
}

function sign(secret: Buffer, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

export async function issueToken(
  stateDir: string,
  subject: ConfirmSubject,
  now: Date,
  logger?: Logger,
): Promise<IssuedToken> {
  const secret = await confirmationSecret(stateDir, logger);
  const payload: TokenPayload = {
    v: 1,
    tool: subject.tool,
    args: digest(normaliseArgs(subject.args)),
    state: digest(subject.fingerprint),
    exp: now.getTime() + TOKEN_LIFETIME_MS,
    nonce: randomBytes(12).toString('base64url'),
  };
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  await pruneSpent(stateDir, now).catch(() => undefined);
  return { token: `${body}.${sign(secret, body)}`, expiresAt: new Date(payload.exp).toISOString() };
}

function invalid(reason: string, hint: string, kind: string): SnapguardError {
  return new SnapguardError('CONFIRMATION_INVALID', `The confirmation token ${reason}.`, hint, {
    details: { reason: kind },
  });
}

const AGAIN = 'Call again without confirmationToken to get a fresh plan and token, and confirm that plan.';

function decode(secret: Buffer, token: string): TokenPayload {
  const [body, mac, extra] = token.split('.');
  if (!body || !mac || extra !== undefined || token.length > 1024) {
    throw invalid('is malformed', AGAIN, 'malformed');
  }
  const expected = Buffer.from(sign(secret, body));
  const given = Buffer.from(mac);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw invalid('was not issued by this snapguard (signature mismatch)', AGAIN, 'signature');
  }
  try {
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as TokenPayload;
    if (payload.v !== 1 || typeof payload.nonce !== 'string' || !/^[\w-]{16}$/.test(payload.nonce))
      throw new Error('bad payload');
    return payload;
  } catch {
    throw invalid('is malformed', AGAIN, 'malformed');
  }
}

function spentDir(stateDir: string): string {
  return join(confirmDir(stateDir), 'spent');
}

/**
 * Checks a token against the subject and spends it. Spending is an exclusive file create, so of
 * two processes presenting the same token at once exactly one proceeds.
 */
export async function consumeToken(
  stateDir: string,
  subject: ConfirmSubject,
  token: string,
  now: Date,
  logger?: Logger,
): Promise<void> {
  const secret = await confirmationSecret(stateDir, logger);
  const payload = decode(secret, token);
  if (now.getTime() > payload.exp) {
    throw invalid(
      `expired at ${new Date(payload.exp).toISOString()} (tokens are valid 10 minutes)`,
      AGAIN,
      'expired',
    );
  }
  const marker = join(spentDir(stateDir), payload.nonce);
  try {
    await stat(marker);
    throw invalid('was already used (each token confirms one call)', AGAIN, 'already-used');
  } catch (error) {
    if (error instanceof SnapguardError) throw error;
  }
  if (payload.tool !== subject.tool || payload.args !== digest(normaliseArgs(subject.args))) {
    throw invalid(
      `was issued for different arguments (tool ${payload.tool}); the arguments changed since the plan was shown`,
      'Call again with exactly the arguments of the confirmed plan, or get a new plan and token for the new arguments.',
      'arguments-changed',
    );
  }
  if (payload.state !== digest(subject.fingerprint)) {
    throw invalid(
      'no longer matches: the state changed since the plan was shown (e.g. a snapshot was created or deleted)',
      'Get a fresh plan (call again without confirmationToken), review it, and confirm that one.',
      'state-changed',
    );
  }
  await mkdir(spentDir(stateDir), { recursive: true, mode: 0o700 });
  try {
    const handle = await createExclusive(marker, 0o600);
    try {
      await handle.writeFile(String(payload.exp));
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw invalid('was already used (each token confirms one call)', AGAIN, 'already-used');
    throw error;
  }
}

/** Spent markers of tokens that have expired anyway are no longer needed. */
async function pruneSpent(stateDir: string, now: Date): Promise<void> {
  const dir = spentDir(stateDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const file = join(dir, name);
    const exp = Number(await readFile(file, 'utf8').catch(() => 'NaN'));
    if (Number.isFinite(exp) && exp + 60_000 < now.getTime()) await unlink(file).catch(() => undefined);
  }
}
