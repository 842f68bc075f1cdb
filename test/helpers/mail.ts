/**
 * Builders of test messages: single parts, multiparts, attachments in base64 / quoted-printable
 * / 8bit, attached messages, and large messages written to disk as a stream.
 *
 * A MailNode is a header list plus an encoded body; render() turns it into bytes. Every builder
 * takes the line end to use (LF by default: Courier's data files are LF only). Nothing here
 * holds EICAR: tests pass eicar() in as the payload.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export type Eol = '\n' | '\r\n';

export interface MailNode {
  /** Header lines without line ends; folded lines may contain the eol followed by a space. */
  readonly headers: readonly string[];
  readonly body: Buffer;
}

export interface EolOption {
  eol?: Eol;
}

export function render(node: MailNode, opts: EolOption = {}): Buffer {
  const eol = opts.eol ?? '\n';
  const head = node.headers.length > 0 ? node.headers.join(eol) + eol : '';
  return Buffer.concat([Buffer.from(head + eol, 'latin1'), node.body]);
}

/** Base64 in lines of `lineLen` characters, each ended by `eol` (the last one too). */
export function base64Lines(data: Buffer, lineLen = 76, eol: Eol = '\n'): string {
  const b64 = data.toString('base64');
  let out = '';
  for (let i = 0; i < b64.length; i += lineLen) out += b64.slice(i, i + lineLen) + eol;
  return out;
}

/** Quoted-printable: "=XY" (upper or lower case hex) for everything but printable ASCII; soft breaks. */
export function qpEncode(data: Buffer, opts: { eol?: Eol; lowerHex?: boolean; lineLen?: number } = {}): string {
  const eol = opts.eol ?? '\n';
  const lineLen = opts.lineLen ?? 76;
  let out = '';
  let line = '';
  for (const b of data) {
    let tok: string;
    if (b === 0x0a) {
      out += line + eol;
      line = '';
      continue;
    }
    if (b >= 0x21 && b <= 0x7e && b !== 0x3d) tok = String.fromCharCode(b);
    else {
      const hex = b.toString(16).padStart(2, '0');
      tok = '=' + (opts.lowerHex ? hex : hex.toUpperCase());
    }
    if (line.length + tok.length > lineLen - 1) {
      out += line + '=' + eol;
      line = '';
    }
    line += tok;
  }
  return out + line;
}

export function textPart(text: string, opts: EolOption & { cte?: '7bit' | '8bit' | 'quoted-printable'; headers?: string[] } = {}): MailNode {
  const eol = opts.eol ?? '\n';
  const cte = opts.cte ?? '7bit';
  const body = cte === 'quoted-printable' ? qpEncode(Buffer.from(text, 'utf8'), { eol }) : text.replace(/\r?\n/g, eol);
  return {
    headers: ['Content-Type: text/plain; charset=utf-8', `Content-Transfer-Encoding: ${cte}`, ...(opts.headers ?? [])],
    body: Buffer.from(body, 'utf8'),
  };
}

export interface AttachmentOptions extends EolOption {
  cte: 'base64' | 'quoted-printable' | '8bit' | '7bit' | 'binary' | string;
  filename?: string;
  contentType?: string;
  /** A whole Content-Disposition value, replacing the one built from filename. */
  disposition?: string;
  /** Extra header lines. */
  headers?: string[];
}

export function attachment(data: Buffer, opts: AttachmentOptions): MailNode {
  const eol = opts.eol ?? '\n';
  const ct = opts.contentType ?? 'application/octet-stream';
  const disp = opts.disposition ?? (opts.filename !== undefined ? `attachment; filename="${opts.filename}"` : 'attachment');
  let body: Buffer;
  if (opts.cte === 'base64') body = Buffer.from(base64Lines(data, 76, eol), 'latin1');
  else if (opts.cte === 'quoted-printable') body = Buffer.from(qpEncode(data, { eol }), 'latin1');
  else body = data;
  return {
    headers: [`Content-Type: ${ct}`, `Content-Transfer-Encoding: ${opts.cte}`, `Content-Disposition: ${disp}`, ...(opts.headers ?? [])],
    body,
  };
}

export interface MultipartOptions extends EolOption {
  subtype?: string;
  boundary?: string;
  preamble?: string;
  epilogue?: string;
  /** Leave out the close delimiter. */
  noClose?: boolean;
  headers?: string[];
}

let boundaryCounter = 0;

export function multipart(children: readonly MailNode[], opts: MultipartOptions = {}): MailNode {
  const eol = opts.eol ?? '\n';
  const boundary = opts.boundary ?? `=_test-${++boundaryCounter}-${Date.now().toString(36)}`;
  const chunks: Buffer[] = [];
  if (opts.preamble !== undefined) chunks.push(Buffer.from(opts.preamble + eol, 'latin1'));
  for (const child of children) {
    chunks.push(Buffer.from(`--${boundary}${eol}`, 'latin1'), render(child, { eol }), Buffer.from(eol, 'latin1'));
  }
  if (!opts.noClose) chunks.push(Buffer.from(`--${boundary}--${eol}`, 'latin1'));
  if (opts.epilogue !== undefined) chunks.push(Buffer.from(opts.epilogue + eol, 'latin1'));
  return {
    headers: [`Content-Type: multipart/${opts.subtype ?? 'mixed'}; boundary="${boundary}"`, ...(opts.headers ?? [])],
    body: Buffer.concat(chunks),
  };
}

/** A message/rfc822 (or message/global) part holding `inner`, optionally encoded. */
export function messagePart(inner: Buffer, opts: EolOption & { cte?: '7bit' | 'base64' | 'quoted-printable'; contentType?: string; disposition?: string } = {}): MailNode {
  const eol = opts.eol ?? '\n';
  const cte = opts.cte ?? '7bit';
  const body = cte === 'base64' ? Buffer.from(base64Lines(inner, 76, eol), 'latin1') : cte === 'quoted-printable' ? Buffer.from(qpEncode(inner, { eol }), 'latin1') : inner;
  return {
    headers: [
      `Content-Type: ${opts.contentType ?? 'message/rfc822'}`,
      `Content-Transfer-Encoding: ${cte}`,
      ...(opts.disposition !== undefined ? [`Content-Disposition: ${opts.disposition}`] : []),
    ],
    body,
  };
}

/** A whole message: envelope-ish headers in front of the root node's headers. */
export function message(root: MailNode, opts: EolOption & { subject?: string } = {}): Buffer {
  const top = ['From: sender@example.test', 'To: sink@harness.test', `Subject: ${opts.subject ?? 'test'}`, 'MIME-Version: 1.0'];
  return render({ headers: [...top, ...root.headers], body: root.body }, opts);
}

/** Deterministic pseudo-random bytes (xorshift), so a failing test can be rerun exactly. */
export function pseudoRandom(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * Writes a multipart message with one base64 attachment of `size` pseudo-random bytes to
 * `path`, as a stream (the payload is never whole in memory). Returns the payload's SHA-256.
 */
export async function writeLargeBase64Message(path: string, size: number, opts: EolOption & { filename?: string } = {}): Promise<string> {
  const eol = opts.eol ?? '\n';
  const boundary = '=_large-boundary';
  const out = createWriteStream(path);
  const hash = createHash('sha256');
  const write = async (s: string | Buffer): Promise<void> => {
    if (!out.write(s)) await once(out, 'drain');
  };
  const head = [
    'From: sender@example.test',
    'To: sink@harness.test',
    'Subject: large',
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain',
    '',
    'see attachment',
    `--${boundary}`,
    'Content-Type: application/octet-stream',
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${opts.filename ?? 'large.bin'}"`,
    '',
    '',
  ].join(eol);
  await write(head);
  // 57 bytes → one 76-character line; blocks of 57 * 1024 keep lines whole across blocks
  const block = 57 * 1024;
  let seed = 7;
  for (let done = 0; done < size; done += block) {
    const chunk = pseudoRandom(Math.min(block, size - done), seed++);
    hash.update(chunk);
    await write(base64Lines(chunk, 76, eol));
  }
  await write(`--${boundary}--${eol}`);
  out.end();
  await once(out, 'finish');
  return hash.digest('hex');
}
