/**
 * Message shapes built to make a MIME parser work hard, next to an ordinary message, each made
 * at any size: for the cost table of `npm run bench` (bench/shapes.ts) and for the tests that
 * a deadline stops the work on each of them (test/mime-deadline.test.ts). Nothing here holds
 * a payload: only the cost matters.
 */
import { DEFAULT_MIME_LIMITS } from '../../src/mime/index.js';
import * as mail from './mail.js';

export interface Shape {
  readonly name: string;
  /** A message of at least `size` bytes (about). */
  make(size: number): Buffer;
}

const HEAD = 'From: sender@example.test\nTo: sink@harness.test\nSubject: shape\nMIME-Version: 1.0\n';

/** `unit` repeated until the result holds at least `size` bytes. */
function fill(unit: string | Buffer, size: number): Buffer {
  const u = typeof unit === 'string' ? Buffer.from(unit, 'latin1') : unit;
  return Buffer.alloc(Math.ceil(size / u.length) * u.length, u);
}

function single(head: string, body: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from(HEAD + head + '\n', 'latin1'), typeof body === 'string' ? Buffer.from(body, 'latin1') : body]);
}

/** A uuencode-looking line: "M" then 60 characters. */
const M_LINE = 'M' + '9'.repeat(20) + "86(0;'@^" + 'A'.repeat(32) + '\n';

/** Lines of pseudo-random printable text (no encodings in it). */
function prose(size: number, seed = 1): Buffer {
  const words = ['the', 'meeting', 'is', 'at', 'ten', 'please', 'bring', 'your', 'notes', 'and', 'a', 'pen', 'regards', 'report', 'figures'];
  const r = mail.pseudoRandom(Math.ceil(size / 4), seed);
  const parts: string[] = [];
  let n = 0;
  let line = 0;
  for (let i = 0; n < size; i++) {
    const w = words[r[i % r.length]! % words.length]!;
    line += w.length + 1;
    const sep = line > 70 ? '\n' : ' ';
    if (line > 70) line = 0;
    parts.push(w, sep);
    n += w.length + 1;
  }
  return Buffer.from(parts.join(''), 'latin1');
}

/** A multipart of parts with header `block` and a short body, about `size` bytes. */
function headerParts(block: string, size: number): Buffer {
  const part = Buffer.from(`--b\nContent-Type: text/plain\n${block}\nshort\n`, 'latin1');
  return single('Content-Type: multipart/mixed; boundary="b"\n', Buffer.concat([...Array.from({ length: Math.ceil(size / part.length) }, () => part), Buffer.from('--b--\n')]));
}

/** The first one is the baseline: an ordinary message. */
export const SHAPES: readonly Shape[] = [
  {
    name: 'ordinary: text + base64 attachment (baseline)',
    make: (size) =>
      mail.message(mail.multipart([mail.textPart(prose(2000).toString('latin1')), mail.attachment(mail.pseudoRandom(Math.floor((size * 3) / 4), 5), { cte: 'base64', filename: 'a.pdf' })])),
  },
  { name: 'ordinary text (7bit prose)', make: (size) => single('Content-Type: text/plain\n', prose(size)) },
  { name: 'uuencode-like: begin 644 x + 1 M line, repeated', make: (size) => single('Content-Type: text/plain\n', fill('begin 644 x\n' + M_LINE, size)) },
  { name: 'uuencode-like: begin 644 x + 20 M lines, repeated', make: (size) => single('Content-Type: text/plain\n', fill('begin 644 x\n' + M_LINE.repeat(20), size)) },
  { name: 'uuencode-like: begin 644 x + bare M lines, repeated', make: (size) => single('Content-Type: text/plain\n', fill('begin 644 x\nM\n', size)) },
  { name: 'uuencode-like: one begin, M lines to the end', make: (size) => single('Content-Type: text/plain\n', Buffer.concat([Buffer.from('begin 644 x\n'), fill(M_LINE, size)])) },
  {
    name: 'uuencode: distinct small files, repeated',
    make: (size) => {
      const parts: string[] = [];
      let n = 0;
      for (let i = 0; n < size; i++) {
        const s = `begin 644 f${i}\n` + M_LINE.slice(0, 30) + String(i).padStart(30, '0') + '\n`\nend\n';
        parts.push(s);
        n += s.length;
      }
      return single('Content-Type: text/plain\n', parts.join(''));
    },
  },
  { name: 'uuencode: the same small file, repeated', make: (size) => single('Content-Type: text/plain\n', fill('begin 644 x\n' + M_LINE + '`\nend\n', size)) },
  { name: 'x-uuencode CTE, M lines', make: (size) => single('Content-Type: application/octet-stream\nContent-Transfer-Encoding: x-uuencode\n', Buffer.concat([Buffer.from('begin 644 x\n'), fill(M_LINE, size)])) },
  { name: 'begin-base64 blocks, repeated', make: (size) => single('Content-Type: text/plain\n', fill('begin-base64 644 x\nQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\n====\n', size)) },
  { name: 'yEnc headers, repeated', make: (size) => single('Content-Type: text/plain\n', fill('=ybegin line=128 size=20 name=x\nabcdefghijklmnopqrst\n=yend size=20\n', size)) },
  { name: 'BinHex markers, repeated', make: (size) => single('Content-Type: text/plain\n', fill('(This file must be converted with BinHex 4.0)\n:!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!:\n', size)) },
  { name: 'data: base64 URIs, many', make: (size) => single('Content-Type: text/html\n', fill('<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7">\n', size)) },
  { name: 'data: headers without a comma', make: (size) => single('Content-Type: text/html\n', fill('data:' + 'x'.repeat(250) + '\n', size)) },
  { name: 'data: data: data: (no space)', make: (size) => single('Content-Type: text/html\n', fill('data:', size)) },
  { name: 'lines of only "="', make: (size) => single('Content-Type: text/plain\n', fill('====\n=\n', size)) },
  { name: 'QP soft breaks everywhere', make: (size) => single('Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n', fill('a=\n', size)) },
  { name: 'QP "=" runs', make: (size) => single('Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n', fill('= = = = = = = = =\n', size)) },
  { name: 'NUL-heavy text', make: (size) => single('Content-Type: text/plain\n', fill(Buffer.from('a\0\0\0\0\0\0\0\0\0\0\0\0\0\0\n', 'latin1'), size)) },
  { name: 'one huge line, no LF', make: (size) => single('Content-Type: text/plain\n', fill('abcdefghij', size)) },
  { name: 'CR-only line ends (prose)', make: (size) => single('Content-Type: text/plain\n', Buffer.from(prose(size).toString('latin1').replace(/\n/g, '\r'), 'latin1')) },
  { name: 'CR-only uuencode-like lines', make: (size) => single('Content-Type: text/plain\n', fill('begin 644 x\r' + M_LINE.replace('\n', '\r'), size)) },
  {
    name: 'boundary-like lines that are not boundaries',
    make: (size) => {
      const b = '=_abcdefghijklmnop123';
      return single(`Content-Type: multipart/mixed; boundary="${b}"\n`, Buffer.concat([Buffer.from(`--${b}\nContent-Type: text/plain\n\n`), fill(`--${b.slice(0, -1)}\n----------\n-- \n`, size), Buffer.from(`\n--${b}--\n`)]));
    },
  },
  {
    name: 'delimiters by prefix ("--b" + text)',
    make: (size) => single('Content-Type: multipart/mixed; boundary="b"\n', Buffer.concat([Buffer.from('--b\nContent-Type: text/plain\n\n'), fill('--bogus line\n', size), Buffer.from('--b--\n')])),
  },
  { name: 'many tiny parts', make: (size) => single('Content-Type: multipart/mixed; boundary="b"\n', Buffer.concat([fill('--b\n\nx\n', size), Buffer.from('--b--\n')])) },
  {
    name: '900 small distinct parts',
    make: (size) => {
      const each = Math.floor(size / 900);
      const parts: mail.MailNode[] = [];
      for (let i = 0; i < 900; i++) parts.push(mail.textPart(prose(each, i + 1).toString('latin1')));
      return mail.message(mail.multipart(parts));
    },
  },
  {
    name: 'deep multipart nesting (to the depth limit) around prose',
    make: (size) => {
      let node: mail.MailNode = mail.textPart(prose(size).toString('latin1'));
      for (let i = 0; i < DEFAULT_MIME_LIMITS.maxDepth - 1; i++) node = mail.multipart([node], { boundary: `lvl${i}` });
      return mail.message(node);
    },
  },
  {
    name: 'deep message/rfc822 nesting (to the depth limit) around prose',
    make: (size) => {
      let inner = mail.message(mail.textPart(prose(size).toString('latin1')));
      for (let i = 0; i < DEFAULT_MIME_LIMITS.maxDepth - 2; i++) inner = mail.message(mail.multipart([mail.textPart('fwd'), mail.messagePart(inner)]));
      return inner;
    },
  },
  { name: 'very long header lines', make: (size) => headerParts('X-Pad: ' + 'a'.repeat(Math.floor(DEFAULT_MIME_LIMITS.maxHeaderBytes / 2)), size) },
  { name: 'many header lines', make: (size) => headerParts('X-H: v\n'.repeat(Math.floor(DEFAULT_MIME_LIMITS.maxHeaderBytes / 2 / 7)).trimEnd(), size) },
  { name: 'many header lines, 9000 per part', make: (size) => headerParts('X-H: v\n'.repeat(9000).trimEnd(), size) },
  {
    name: 'folded header continuation lines',
    make: (size) =>
      single(
        'Content-Type: multipart/mixed; boundary="b"\n',
        Buffer.concat([Buffer.from('--b\nContent-Type: text/plain\nX-F: a\n'), fill(' b\n', Math.min(size, DEFAULT_MIME_LIMITS.maxHeaderBytes - 100)), Buffer.from('\nbody\n--b--\n'), prose(size)]),
      ),
  },
  {
    name: 'many boundary= candidates, delimiter-dense body',
    make: (size) => {
      const ct = 'Content-Type: multipart/mixed; ' + Array.from({ length: 8 }, (_, i) => `boundary="b${i}"`).join('; ') + '\n';
      return single(ct, Buffer.concat([fill('--b0\n\nx\n--b1 x\n', size), Buffer.from('--b0--\n')]));
    },
  },
];

