/**
 * File names are bytes: Linux allows any byte but '/' and NUL, and a name need not be valid UTF-8.
 * Inside snapguard such names travel as Buffers or as "binary strings" (one char per byte, latin1),
 * which keep every byte; they are shown to people with displayName.
 */

/** Length of the valid UTF-8 sequence starting at `i`, or 0 when the byte there does not start one. */
function utf8Length(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i] as number;
  if (b0 < 0x80) return 1;
  const cont = (j: number, lo = 0x80, hi = 0xbf) => {
    const b = bytes[i + j];
    return b !== undefined && b >= lo && b <= hi;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const lo = b0 === 0xe0 ? 0xa0 : 0x80;
    const hi = b0 === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const lo = b0 === 0xf0 ? 0x90 : 0x80;
    const hi = b0 === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** True when `bytes` are valid UTF-8 (a name that a string holds exactly). */
export function isUtf8(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length;) {
    const length = utf8Length(bytes, i);
    if (length === 0) return false;
    i += length;
  }
  return true;
}

/**
 * How a name is shown: valid UTF-8 as it is (Café.txt), each byte that is not part of valid
 * UTF-8 as \xNN (a\xff).
 */
export function displayName(bytes: Buffer): string {
  let out = '';
  let start = 0;
  let i = 0;
  while (i < bytes.length) {
    const length = utf8Length(bytes, i);
    if (length > 0) {
      i += length;
      continue;
    }
    out += bytes.toString('utf8', start, i) + `\\x${(bytes[i] as number).toString(16).padStart(2, '0')}`;
    i++;
    start = i;
  }
  return out + bytes.toString('utf8', start);
}

/** A binary string (one char per byte) back to its bytes. */
export function bytesOf(binary: string): Buffer {
  return Buffer.from(binary, 'latin1');
}

/** The binary string (one char per byte) of a name. */
export function binaryOf(bytes: Buffer): string {
  return bytes.toString('latin1');
}

/** How a binary-string name is shown (see displayName). */
export function displayBinary(binary: string): string {
  return displayName(bytesOf(binary));
}

/** `root` joined with a relative path given as a binary string: the exact bytes, for fs calls. */
export function pathUnder(root: string | Buffer, rel: string): Buffer {
  const base = Buffer.isBuffer(root) ? root : Buffer.from(root);
  if (rel === '') return base;
  const slash = base.length > 0 && base[base.length - 1] === 0x2f ? '' : '/';
  return Buffer.concat([base, Buffer.from(slash), bytesOf(rel)]);
}

/** The folder part of a path given as bytes (like dirname). */
export function parentOf(path: Buffer): Buffer {
  const slash = path.lastIndexOf(0x2f);
  if (slash < 0) return Buffer.from('.');
  return slash === 0 ? Buffer.from('/') : path.subarray(0, slash);
}

/**
 * A path given as base64 of its bytes (as file_versions and find_deleted return pathBase64), back
 * to its binary string; undefined when the text is not canonical base64 of at least one byte.
 */
export function binaryOfBase64(text: string): string | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length === 0 || bytes.toString('base64') !== text) return undefined;
  return binaryOf(bytes);
}
