/**
 * The release marker: the header `X-Avfilter-Released: ID MAC` a message released from the
 * quarantine carries when it is handed to sendmail, so the filter it passes through again
 * accepts it without scanning (an admin decided it goes through), instead of quarantining it
 * once more.
 *
 * MAC = HMAC-SHA256(key, "avfilter-release-v1\n" ID "\n" SHA-256(canonical body)), hex, where the
 * body is every byte after the first blank line, made canonical for what Courier rewrites on
 * every submission: it gives each multipart a new boundary (`=_HOST-PID-TIME-...`), so every line
 * that starts with "--" counts as "--", every `boundary=` value in the body as empty, and CRLF as
 * LF; every other byte counts as it is. The key is 32 random bytes in
 * `quarantine_dir/.release-key` (0600, made on first use), readable only by avfilter's user and
 * root: a sender cannot make a MAC, and a header copied onto another message does not verify
 * because the body is not the same. Headers are not covered: Courier adds its own on the way in.
 * Any X-Avfilter-Released a stored message already carries is removed before ours is put first,
 * and a message with more than one such header does not verify.
 *
 * Owns: the key file, the header's form, making and checking MACs, finding the header block.
 * Fails with AvError EQUARANTINE_KEY (a key file that is not ours: wrong size, mode or type) and
 * errno codes from the file system. Checking a message never throws for what the message holds.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AvError, codeOf } from '../errors.js';
import { fsyncPath, ownLikeDir, writeNewFile } from './store.js';

export const MARKER_HEADER = 'X-Avfilter-Released';
export const KEY_FILE = '.release-key';
const KEY_BYTES = 32;
const MAC_CONTEXT = 'avfilter-release-v1';
const MARKER_LINE_RE = /^x-avfilter-released[ \t]*:/i;
const VALUE_RE = /^([A-Za-z0-9][A-Za-z0-9-]{0,63}) ([0-9a-f]{64})$/;

/** Where the header block ends: `headerEnd` is just after its last line, `bodyStart` after the blank line. */
export interface HeadSplit {
  readonly headerEnd: number;
  readonly bodyStart: number;
}

/** The first blank line in `buf` (LF or CRLF line ends), or undefined when `buf` has none. */
export function splitHead(buf: Buffer): HeadSplit | undefined {
  if (buf.length > 0 && buf[0] === 0x0a) return { headerEnd: 0, bodyStart: 1 };
  if (buf.length > 1 && buf[0] === 0x0d && buf[1] === 0x0a) return { headerEnd: 0, bodyStart: 2 };
  for (let i = buf.indexOf(0x0a); i >= 0 && i < buf.length - 1; i = buf.indexOf(0x0a, i + 1)) {
    if (buf[i + 1] === 0x0a) return { headerEnd: i + 1, bodyStart: i + 2 };
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return { headerEnd: i + 1, bodyStart: i + 3 };
  }
  return undefined;
}

/** The header block's logical lines (a folded header with its continuation lines), as byte ranges. */
function headerFields(head: Buffer): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  let pos = 0;
  while (pos < head.length) {
    let nl = head.indexOf(0x0a, pos);
    let end = nl < 0 ? head.length : nl + 1;
    // continuation lines start with a space or a tab
    while (end < head.length && (head[end] === 0x20 || head[end] === 0x09)) {
      nl = head.indexOf(0x0a, end);
      end = nl < 0 ? head.length : nl + 1;
    }
    out.push({ start: pos, end });
    pos = end;
  }
  return out;
}

/** The header block without any X-Avfilter-Released field. */
export function stripMarkers(head: Buffer): Buffer {
  const keep = headerFields(head).filter((f) => !MARKER_LINE_RE.test(head.subarray(f.start, Math.min(f.end, f.start + 40)).toString('latin1')));
  return Buffer.concat(keep.map((f) => head.subarray(f.start, f.end)));
}

/** The one marker in a header block: id and MAC; undefined when there is none, more than one, or a malformed one. */
export function findMarker(head: Buffer): { id: string; mac: Buffer } | undefined {
  const found = headerFields(head).filter((f) => MARKER_LINE_RE.test(head.subarray(f.start, Math.min(f.end, f.start + 40)).toString('latin1')));
  if (found.length !== 1) return undefined;
  const text = head.subarray(found[0]!.start, found[0]!.end).toString('latin1');
  const value = text.slice(text.indexOf(':') + 1).replace(/\r?\n[ \t]*/g, ' ').trim();
  const m = VALUE_RE.exec(value);
  return m ? { id: m[1]!, mac: Buffer.from(m[2]!, 'hex') } : undefined;
}

const BOUNDARY_PARAM_RE = /boundary[ \t]*=[ \t]*("[^"]*"|[^;\s]*)/gi;

/**
 * SHA-256 of a body in the canonical form above, fed in chunks of any size (a line may span
 * chunks): `update()` each chunk, then `digest()`.
 */
export class BodyDigest {
  private readonly hash = createHash('sha256');
  private carry = Buffer.alloc(0);

  update(chunk: Buffer): this {
    const buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      this.line(buf.subarray(start, nl), true);
      start = nl + 1;
    }
    this.carry = Buffer.from(buf.subarray(start));
    return this;
  }

  digest(): Buffer {
    if (this.carry.length > 0) this.line(this.carry, false);
    this.carry = Buffer.alloc(0);
    return this.hash.digest();
  }

  private line(raw: Buffer, ended: boolean): void {
    const l = raw.length > 0 && raw[raw.length - 1] === 0x0d ? raw.subarray(0, -1) : raw;
    const eol = ended ? '\n' : '';
    if (l.length >= 2 && l[0] === 0x2d && l[1] === 0x2d) {
      this.hash.update(`--${eol}`);
      return;
    }
    const text = l.toString('latin1');
    BOUNDARY_PARAM_RE.lastIndex = 0;
    this.hash.update(BOUNDARY_PARAM_RE.test(text) ? Buffer.from(`${text.replace(BOUNDARY_PARAM_RE, 'boundary=""')}${eol}`, 'latin1') : Buffer.concat([l, Buffer.from(eol)]));
  }
}

export function bodyDigestOf(body: Buffer): Buffer {
  return new BodyDigest().update(body).digest();
}

export function markerMac(key: Buffer, id: string, bodySha256: Buffer): Buffer {
  return createHmac('sha256', key).update(`${MAC_CONTEXT}\n${id}\n${bodySha256.toString('hex')}`).digest();
}

export function markerLine(key: Buffer, id: string, bodySha256: Buffer): string {
  return `${MARKER_HEADER}: ${id} ${markerMac(key, id, bodySha256).toString('hex')}\n`;
}

/**
 * A whole message in memory: the released id when its one marker verifies with `key` for its
 * body, else undefined.
 */
export function verifyReleaseMarker(message: Buffer, key: Buffer): { id: string } | undefined {
  const split = splitHead(message);
  const head = split ? message.subarray(0, split.headerEnd) : message;
  const marker = findMarker(head);
  if (!marker) return undefined;
  const body = split ? message.subarray(split.bodyStart) : Buffer.alloc(0);
  return macMatches(key, marker, bodyDigestOf(body)) ? { id: marker.id } : undefined;
}

export function macMatches(key: Buffer, marker: { id: string; mac: Buffer }, bodySha256: Buffer): boolean {
  const want = markerMac(key, marker.id, bodySha256);
  return marker.mac.length === want.length && timingSafeEqual(marker.mac, want);
}

/** Reads the key; undefined when there is none yet. A key file that is not ours is EQUARANTINE_KEY. */
export async function readKey(qdir: string): Promise<Buffer | undefined> {
  const path = join(qdir, KEY_FILE);
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return undefined;
    throw err;
  }
  if (!st.isFile() || st.size !== KEY_BYTES || (st.mode & 0o077) !== 0) {
    throw new AvError('EQUARANTINE_KEY', 'internal', `${path} is not a release key (a regular file of ${KEY_BYTES} bytes, mode 0600)`);
  }
  return readFile(path, { flag: constants.O_RDONLY | constants.O_NOFOLLOW });
}

/** The key, made (32 random bytes, 0600, fsynced) when there is none; two makers race safely (O_EXCL). */
export async function ensureKey(qdir: string): Promise<Buffer> {
  const have = await readKey(qdir);
  if (have) return have;
  const path = join(qdir, KEY_FILE);
  const key = randomBytes(KEY_BYTES);
  try {
    await writeNewFile(path, key);
  } catch (err) {
    if (codeOf(err) === 'EEXIST') return (await readKey(qdir))!;
    throw err;
  }
  await ownLikeDir(qdir, path);
  await fsyncPath(qdir);
  return key;
}
