/**
 * Messages whose payload only a reader that decodes a transfer encoding its own way finds: the
 * class src/mime/lenient/walk.ts (decodersFor, rereadFor) covers. Each shape comes in several
 * variants (the acceptance checks use cases we never see, so the tests cover the shape):
 *
 * - `cte-token-qp`: a quoted-printable body under a Content-Transfer-Encoding that is not
 *   exactly "quoted-printable" (a parameter, quotes, a comment, an "x-" prefix, misspelt, an
 *   encoded word, a NUL or a punctuation mark after it, folded), at the top, in a multipart, in
 *   an attached message;
 * - `cte-token-base64`: the same for base64, the body led by more junk than a sniff of its
 *   start would look at, and base64 under a uuencode token; an attached message sent so;
 * - `qp-soft-break-cr`: quoted-printable soft breaks Python's email package reads ("=" CR,
 *   then anything up to LF) or clamd's does ("=" NUL, "=" LF CR) and a strict decoder does not;
 * - `base64-stray-pad`: base64 with an "=" inside a group, which Python skips and a decoder
 *   that flushes the group (or stops) at every "=" misreads.
 *
 * `python`: Python's email package finds the payload (test/mime-decoders.test.ts checks it, so
 * the variants prove what they claim). The payload is EICAR, made at run time; LF line ends.
 */
import { eicar } from './eicar.js';

export type DecoderShape = 'cte-token-qp' | 'cte-token-base64' | 'qp-soft-break-cr' | 'base64-stray-pad';

export interface DecoderMessage {
  readonly name: string;
  readonly shape: DecoderShape;
  readonly bytes: Buffer;
  /** Python's email package decodes the payload out of it. */
  readonly python: boolean;
}

const TOP = 'From: sender@example.test\nTo: sink@example.test\nSubject: decoders\nMIME-Version: 1.0\n';

/** Every byte as "=XY" (a body that is nothing but escapes: no reader finds the payload undecoded). */
export function qpHex(data: Buffer): string {
  return [...data].map((c) => `=${c.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}

/** `s` cut at `cuts`, joined by `sep`. */
export function cutAt(s: string, cuts: readonly number[], sep: string): string {
  const pieces: string[] = [];
  let at = 0;
  for (const c of cuts) {
    pieces.push(s.slice(at, c));
    at = c;
  }
  pieces.push(s.slice(at));
  return pieces.join(sep);
}

function head(cte: string, name = 'invoice.com'): string {
  return `Content-Type: application/octet-stream; name="${name}"\nContent-Disposition: attachment; filename="${name}"\nContent-Transfer-Encoding: ${cte}\n`;
}

/** The three places a leaf goes: the message itself, a multipart's second part, an attached message's body. */
function placed(where: 'top' | 'multipart' | 'attached', cte: string, body: string): string {
  if (where === 'top') return `${TOP}${head(cte)}\n${body}\n`;
  const mixed = (h: string): string => `${h}Content-Type: multipart/mixed; boundary="d1"\n\n--d1\nContent-Type: text/plain\n\nsee attached\n--d1\n${head(cte)}\n${body}\n--d1--\n`;
  if (where === 'multipart') return mixed(TOP);
  return `${TOP}Content-Type: multipart/mixed; boundary="o1"\n\n--o1\nContent-Type: text/plain\n\nforwarded\n--o1\nContent-Type: message/rfc822\n\n${mixed('From: x@example.test\nMIME-Version: 1.0\n')}--o1--\n`;
}

const PLACES = ['top', 'multipart', 'attached'] as const;

/** Junk outside the base64 alphabet, more of it than 4096 bytes, in lines. */
function junk(kind: number): string {
  const chars = ['!', '*#', '!.,;', '~^'][kind % 4]!;
  let out = '';
  while (out.length < 5000) out += chars.repeat(Math.ceil(70 / chars.length)).slice(0, 70) + '\n';
  return out;
}

const b64Lines = (data: Buffer): string => (data.toString('base64').match(/.{1,76}/g) ?? []).join('\n');

export function decoderMessages(): DecoderMessage[] {
  const E = eicar();
  const out: DecoderMessage[] = [];
  const add = (name: string, shape: DecoderShape, text: string, python = false): void => {
    out.push({ name, shape, bytes: Buffer.from(text, 'latin1'), python });
  };

  // 1. quoted-printable under a token that is not exactly "quoted-printable"
  const qpTokens = [
    'quoted-printable; x=y', 'quoted-printable;', '"quoted-printable"', "'quoted-printable'", 'x-quoted-printable',
    'qp', 'quotedprintable', 'quoted printable', 'quoted_printable', 'quoted-printable,', 'quoted-printable.',
    'quoted-printable:', '(c)quoted-printable', 'quoted-printable\x00', '<quoted-printable>', 'quoted-printablex',
    '=?us-ascii?Q?quoted-printable?=', `=?utf-8?B?${Buffer.from('quoted-printable').toString('base64')}?=`, 'quoted-\n printable',
  ];
  qpTokens.forEach((t, i) => {
    const where = PLACES[i % PLACES.length]!;
    const body = i % 2 === 0 ? qpHex(E) : cutAt(qpHex(E), [30, 99], '=\n');
    add(`qp-token-${i}-${where}`, 'cte-token-qp', placed(where, t, body));
  });

  // 2. base64 under a token that is not exactly "base64", junk before it; uuencode tokens
  const b64Tokens = ['base64; x=y', 'base64;', '"base64"', 'x-base64', 'base-64', 'b64', 'base64.', 'base_64', 'base64\x00', 'base\n 64', '(x)base64', 'base64x', 'uuencode', 'x-uuencode', 'x-uue'];
  b64Tokens.forEach((t, i) => {
    const where = PLACES[i % PLACES.length]!;
    const uu = /uu/.test(t);
    add(`base64-token-${i}-${where}`, 'cte-token-base64', placed(where, t, `${uu && i % 2 === 0 ? '' : junk(i)}${b64Lines(E)}`));
  });
  const inner = `From: x@example.test\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="i1"\n\n--i1\nContent-Type: text/plain\n\nhello\n--i1\n${head('base64')}\n${b64Lines(E)}\n--i1--\n`;
  for (const [i, t] of ['base64;', 'x-base64', 'base64 (encoded)', 'b64'].entries()) {
    add(`attached-message-base64-token-${i}`, 'cte-token-base64',
      `${TOP}Content-Type: multipart/mixed; boundary="o1"\n\n--o1\nContent-Type: text/plain\n\nforwarded\n--o1\nContent-Type: message/rfc822\nContent-Transfer-Encoding: ${t}\n\n${junk(i)}${b64Lines(Buffer.from(inner, 'latin1'))}\n--o1--\n`);
  }

  // 3. soft breaks other readers see: "=" CR ... LF (Python), "=" NUL, "=" LF CR (clamd)
  const breaks: Array<[string, string, boolean]> = [
    ['cr-crlf', '=\r\r\n', true], ['cr-junk-lf', '=\r junk \n', true], ['cr-tab-lf', '=\r\t\n', true], ['cr-nul-lf', '=\r\x00\n', true],
    ['cr-cr-cr-lf', '=\r\r\r\n', true], ['lf-cr', '=\n\r', false], ['nul-lf', '=\x00\n', false], ['nul-junk-lf', '=\x00junk\n', false],
  ];
  const cutSets: number[][] = [[33], [12, 60], [3, 90, 150]];
  breaks.forEach(([bn, sep, python], i) => {
    for (const [j, cuts] of cutSets.entries()) {
      const where = PLACES[(i + j) % PLACES.length]!;
      // cut between escapes (every 3rd character) or, for the plain-text variant, anywhere
      const body = j === 1 ? cutAt(E.toString('latin1'), cuts.map((c) => c % E.length), sep) : cutAt(qpHex(E), cuts.map((c) => c - (c % 3)), sep);
      add(`qp-break-${bn}-${j}-${where}`, 'qp-soft-break-cr', placed(where, 'quoted-printable', body), python);
    }
  });

  // 4. base64 with "=" inside a group (at its 2nd or 3rd character, once or before every group)
  const B = E.toString('base64').replace(/=+$/, '');
  const strays: Array<[string, string]> = [
    ['q1-at-41', B.slice(0, 41) + '=' + B.slice(41)],
    ['q1-at-5', B.slice(0, 5) + '=' + B.slice(5)],
    ['q2-at-42', B.slice(0, 42) + '=' + B.slice(42)],
    ['q2-at-10', B.slice(0, 10) + '=' + B.slice(10)],
    ['q1-every-group', B.replace(/(.)(.{1,3})/g, '$1=$2')],
    ['q1-and-q2', B.slice(0, 9) + '=' + B.slice(9, 18) + '=' + B.slice(18)],
    ['q1-wrapped', (B.slice(0, 41) + '=' + B.slice(41)).replace(/.{20}/g, '$&\n')],
    ['q1-junk-around', B.slice(0, 21) + ' = ' + B.slice(21)],
  ];
  strays.forEach(([sn, body], i) => {
    const where = PLACES[i % PLACES.length]!;
    add(`base64-stray-${sn}-${where}`, 'base64-stray-pad', placed(where, 'base64', body), true);
  });
  return out;
}
