/**
 * Messages that our standard MIME reading decodes and clamd's own mail parser does not: the
 * class of evasion that made routing on "clamd finds the standard reading's parts by itself"
 * unsound. Each shape is generated in several variants (the acceptance checks use cases we
 * never see, so the tests cover the shape, not one message):
 *
 * - quoted-printable soft line breaks written `=` + trailing blanks (RFC 2045 §6.7 rule 3: a
 *   decoder removes trailing whitespace, so the `=` is a soft break; clamd keeps the blanks
 *   and the decoded bytes are not the payload);
 * - a `;` (or another special) inside a quoted boundary with a decoy multipart under the
 *   delimiter cut at that character (ClamAV's own fixture `mail-semicolon-boundary` has it);
 * - an attached message/rfc822 sent base64 or quoted-printable encoded (RFC 2046 forbids it,
 *   mail readers open it anyway; clamd does not walk into it);
 * - quoted-printable soft breaks written "=" CR, then anything up to LF (Python's email
 *   package drops it all, clamd does not), and base64 with a stray "=" inside a group (Python
 *   skips it; clamd stops there): test/helpers/decoder-shapes.ts makes them, the lenient
 *   reading decodes them as Python does (src/mime/lenient/walk.ts rereadFor).
 *
 * The payload is EICAR, made at run time. Line ends are LF (Courier's) unless a variant says CRLF.
 */
import { decoderMessages } from './decoder-shapes.js';
import { uuencode } from './corpus.js';
import { eicar } from './eicar.js';

export interface DivergentMessage {
  readonly name: string;
  readonly shape: 'qp-soft-break-blanks' | 'boundary-special' | 'encoded-attached-message' | 'qp-soft-break-cr' | 'base64-stray-pad';
  readonly bytes: Buffer;
}

const TOP = 'From: sender@example.test\nTo: sink@harness.test\nSubject: divergence\nMIME-Version: 1.0\n';

/** The payload cut at `cuts`, joined by a soft break `=` + `blanks` + EOL. */
function qpSoftBroken(payload: string, cuts: readonly number[], blanks: string, eol: string): string {
  const pieces: string[] = [];
  let at = 0;
  for (const c of cuts) {
    pieces.push(payload.slice(at, c));
    at = c;
  }
  pieces.push(payload.slice(at));
  // `=` itself must be written =3D in quoted-printable (EICAR has none, other payloads may)
  return pieces.map((p) => p.replace(/=/g, '=3D')).join(`=${blanks}${eol}`);
}

function attachmentHead(cte: string, name = 'invoice.com'): string {
  return `Content-Type: application/octet-stream; name="${name}"\nContent-Disposition: attachment; filename="${name}"\nContent-Transfer-Encoding: ${cte}\n`;
}

export function divergentMessages(): DivergentMessage[] {
  const payload = eicar().toString('latin1');
  const b64 = eicar().toString('base64');
  const out: DivergentMessage[] = [];
  const add = (name: string, shape: DivergentMessage['shape'], text: string): void => {
    out.push({ name, shape, bytes: Buffer.from(text, 'latin1') });
  };

  // 1. quoted-printable soft breaks followed by blanks
  const blankings: Array<[string, string]> = [['space', ' '], ['tab', '\t'], ['two-spaces', '  '], ['space-tab-space', ' \t '], ['many', ' '.repeat(40)]];
  const cutSets: Array<[string, number[]]> = [['one-cut', [33]], ['three-cuts', [7, 20, 45]], ['every-8', [8, 16, 24, 32, 40, 48, 56, 64]]];
  for (const [bn, blanks] of blankings) {
    for (const [cn, cuts] of cutSets) {
      add(`qp-${bn}-${cn}`, 'qp-soft-break-blanks',
        `${TOP}Content-Type: application/octet-stream\nContent-Transfer-Encoding: quoted-printable\n\n${qpSoftBroken(payload, cuts, blanks, '\n')}\n`);
    }
  }
  add('qp-space-crlf', 'qp-soft-break-blanks',
    `${TOP}Content-Type: application/octet-stream\nContent-Transfer-Encoding: quoted-printable\n\n${qpSoftBroken(payload, [20, 45], ' ', '\r\n')}\n`.replace(/(?<!\r)\n/g, '\r\n'));
  add('qp-tab-in-multipart', 'qp-soft-break-blanks',
    `${TOP}Content-Type: multipart/mixed; boundary="b1"\n\n--b1\nContent-Type: text/plain\n\nsee attached\n--b1\n${attachmentHead('quoted-printable')}\n${qpSoftBroken(payload, [12, 50], '\t', '\n')}\n--b1--\n`);
  add('qp-space-in-attached-message', 'qp-soft-break-blanks',
    `${TOP}Content-Type: multipart/mixed; boundary="o1"\n\n--o1\nContent-Type: text/plain\n\nforwarded\n--o1\nContent-Type: message/rfc822\n\nFrom: x@example.test\nMIME-Version: 1.0\n${attachmentHead('quoted-printable')}\n${qpSoftBroken(payload, [30], '  ', '\n')}\n--o1--\n`);

  // 2. a special character inside a quoted boundary, a decoy under the cut delimiter
  for (const special of [';', ',', ' ', '"']) {
    const quoted = special === '"' ? '\\"' : special;
    for (const [dn, decoy] of [['decoy', true], ['no-decoy', false]] as const) {
      const inner = decoy
        ? `--Zq\nContent-Type: multipart/alternative; boundary="decoy"\n\n--decoy\nContent-Type: text/plain\n\nnothing here\n--decoy--\n`
        : '';
      add(`boundary-${special === ' ' ? 'space' : special === '"' ? 'quote' : special === ';' ? 'semicolon' : 'comma'}-${dn}`, 'boundary-special',
        `${TOP}Content-Type: multipart/mixed; boundary="Zq${quoted}"\n\n${inner}--Zq${special}\n${attachmentHead('base64')}\n${b64}\n--Zq${special}--\n`);
    }
  }
  add('boundary-semicolon-mid', 'boundary-special',
    `${TOP}Content-Type: multipart/mixed; boundary="a;b"\n\n--a\nContent-Type: text/plain\n\ndecoy\n--a--\n--a;b\n${attachmentHead('base64')}\n${b64}\n--a;b--\n`);

  // 3. an attached message sent encoded
  const inner = `From: x@example.test\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="i1"\n\n--i1\nContent-Type: text/plain\n\nhello\n--i1\n${attachmentHead('base64')}\n${b64}\n--i1--\n`;
  add('attached-message-base64', 'encoded-attached-message',
    `${TOP}Content-Type: multipart/mixed; boundary="o1"\n\n--o1\nContent-Type: text/plain\n\nsee the forwarded message\n--o1\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n${Buffer.from(inner, 'latin1').toString('base64').replace(/.{76}/g, '$&\n')}\n--o1--\n`);
  add('attached-message-base64-top', 'encoded-attached-message',
    `${TOP}Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n${Buffer.from(inner, 'latin1').toString('base64').replace(/.{76}/g, '$&\n')}\n`);
  add('attached-message-qp-encoded-inner', 'encoded-attached-message',
    `${TOP}Content-Type: multipart/mixed; boundary="o1"\n\n--o1\nContent-Type: message/rfc822\nContent-Transfer-Encoding: quoted-printable\n\n${inner.replace(/=/g, '=3D').replace(/Content-Transfer-Encoding: base64\n/, 'Content-Transfer-Encoding: base64\n')}\n--o1--\n`);

  // 4. and 5. soft breaks "=" CR ... LF, a stray "=" in base64: the variants Python decodes
  for (const m of decoderMessages()) {
    if ((m.shape === 'qp-soft-break-cr' || m.shape === 'base64-stray-pad') && m.python) out.push({ name: m.name, shape: m.shape, bytes: m.bytes });
  }
  return out;
}

/**
 * The other way round: messages that clamd's own mail parser (or Python's email package)
 * decodes and our readings once did not, so that every engine answered OK. Where the
 * boundary parameter, the delimiter lines or the header grammar are irregular, readers take
 * other boundaries (trimmed, quotes kept, single quotes stripped, a comment removed, a fold
 * removed whole, found without a ";" before it, guessed from the body's delimiter lines,
 * delimiter lines after blanks), and uuencode is found with any mode digits and in any part;
 * and clamd's own heuristics: a base64 block after a Content-Transfer-Encoding line written
 * into a text, in any part (a mail after binary bytes in an attachment among them).
 * Each shape in several variants; the payload is EICAR, made at run time.
 */
export interface ReaderDecodedMessage {
  readonly name: string;
  readonly shape:
    | 'boundary-trimmed'
    | 'boundary-quotes-kept'
    | 'boundary-single-quoted'
    | 'boundary-comment'
    | 'boundary-folded-in-quotes'
    | 'parameters-unindented'
    | 'boundary-no-separator'
    | 'boundary-missing'
    | 'delimiter-indented'
    | 'uuencode-any-mode'
    | 'uuencode-in-media-or-binary'
    | 'header-block-in-text'
    | 'cte-line-in-text'
    | 'message-after-binary-bytes'
    | 'header-name-nul';
  readonly bytes: Buffer;
}

export function readerDecodedMessages(): ReaderDecodedMessage[] {
  const E = eicar();
  const b64 = (E.toString('base64').match(/.{1,76}/g) ?? []).join('\n');
  const out: ReaderDecodedMessage[] = [];
  const add = (name: string, shape: ReaderDecodedMessage['shape'], text: string, crlf = false): void => {
    out.push({ name, shape, bytes: Buffer.from(crlf ? text.replace(/\r?\n/g, '\r\n') : text, 'latin1') });
  };
  /** A multipart under `ct` with a text part and the payload, each delimiter line `indent--delim`. */
  const multipart = (ct: string, delim: string, indent = '', name = 'invoice.com'): string =>
    `${TOP}Content-Type: ${ct}\n\n${indent}--${delim}\nContent-Type: text/plain\n\nsee below\n${indent}--${delim}\n${attachmentHead('base64', name)}\n${b64}\n${indent}--${delim}--\n`;

  // blanks inside the quotes: clamd and Python trim them
  for (const [n, value, delim, crlf] of [['trailing-space', '"b "', 'b', false], ['trailing-tab', '"b\t"', 'b', false], ['leading-space', '" b"', 'b', false],
    ['both-sides', '"\tZq7 "', 'Zq7', false], ['part-style-crlf', '"  ----=_Part_3_1.77  "', '----=_Part_3_1.77', true]] as const) {
    add(`boundary-${n}`, 'boundary-trimmed', multipart(`multipart/mixed; boundary=${value}`, delim), crlf);
  }
  // a quoted string followed by more, or never closed: clamd keeps the quotes
  for (const [n, value] of [['quote-then-junk', '"Zq"x'], ['quote-then-token', '"=_a1"_tail'], ['unterminated', '"Zq'], ['unterminated-part', '"----=_b9']] as const) {
    add(`boundary-${n}`, 'boundary-quotes-kept', multipart(`multipart/mixed; boundary=${value}`, value));
  }
  add('boundary-unterminated-then-param', 'boundary-quotes-kept', multipart('multipart/mixed; boundary="q5; charset=us-ascii', '"q5'));
  // single quotes are quotes to some readers
  for (const [n, value, delim] of [['zq', "'Zq'", 'Zq'], ['part', "'=_x1.y'", '=_x1.y'], ['then-param', "'b2'; charset=us-ascii", 'b2']] as const) {
    add(`boundary-single-quoted-${n}`, 'boundary-single-quoted', multipart(`multipart/mixed; boundary=${value}`, delim));
  }
  // a comment inside the quotes, removed by some readers
  for (const [n, value, delim] of [['zq', '"Zq(c)"', 'Zq'], ['long', '"b7(a comment here)"', 'b7'], ['spaced', '"=_q (note)"', '=_q']] as const) {
    add(`boundary-comment-${n}`, 'boundary-comment', multipart(`multipart/mixed; boundary=${value}`, delim));
  }
  // a fold inside the quotes, removed whole
  for (const [n, value, delim, crlf] of [['space', '"ab\n cd"', 'abcd', false], ['tab-crlf', '"ab\n\tcd"', 'abcd', true], ['two-blanks', '"=_x\n  y9"', '=_xy9', false]] as const) {
    add(`boundary-folded-${n}`, 'boundary-folded-in-quotes', multipart(`multipart/mixed; boundary=${value}`, delim), crlf);
  }
  // a parameter on the next line without the blank that makes it a continuation
  for (const [n, ct, delim, crlf] of [['quoted', 'multipart/mixed;\nboundary="b"', 'b', false], ['token-crlf', 'multipart/mixed;\nboundary=b9', 'b9', true],
    ['after-param', 'multipart/mixed; charset=us-ascii;\nboundary="Zq"', 'Zq', false]] as const) {
    add(`parameters-unindented-${n}`, 'parameters-unindented', multipart(ct, delim), crlf);
  }
  // no ";" before the boundary, or another separator
  for (const [n, ct, delim] of [['space', 'multipart/mixed boundary="b"', 'b'], ['comma', 'multipart/mixed, boundary="b"', 'b'], ['colon', 'multipart/mixed: boundary=q4', 'q4'],
    ['after-param', 'multipart/mixed; charset=us-ascii boundary="=_p"', '=_p']] as const) {
    add(`boundary-no-separator-${n}`, 'boundary-no-separator', multipart(ct, delim));
  }
  // no boundary at all, or one no line of the body matches: clamd splits at the body's delimiter lines
  for (const [n, ct, delim, crlf] of [['mixed', 'multipart/mixed', 'b', false], ['related-crlf', 'multipart/related', '=_abc.1', true], ['with-param', 'multipart/mixed; charset=us-ascii', 'q', false],
    ['unmatched', 'multipart/mixed; boundary="zzz"', 'b', false]] as const) {
    add(`boundary-missing-${n}`, 'boundary-missing', multipart(ct, delim), crlf);
  }
  add('boundary-missing-preamble', 'boundary-missing', `${TOP}Content-Type: multipart/mixed\n\nThis is a multi-part message in MIME format.\n-- \nsigned\n\n--b1\nContent-Type: text/plain\n\nhi\n--b1\n${attachmentHead('base64')}\n${b64}\n--b1--\n`);
  // every delimiter line after blanks
  for (const [n, indent, crlf] of [['space', ' ', false], ['tab', '\t', false], ['two-spaces-crlf', '  ', true], ['mixed-blanks', ' \t ', false]] as const) {
    add(`delimiter-indented-${n}`, 'delimiter-indented', multipart('multipart/mixed; boundary="b"', 'b', indent), crlf);
  }
  // uuencode whose mode is not octal: clamd takes any digits
  for (const mode of ['999', '888', '900', '808']) {
    add(`uuencode-mode-${mode}`, 'uuencode-any-mode', `${TOP}Content-Type: text/plain\n\nhello\n${uuencode(E, 'invoice.com', mode)}`);
  }
  add('uuencode-mode-998-in-multipart', 'uuencode-any-mode', multipart('multipart/mixed; boundary="b"', 'b').replace(`${attachmentHead('base64')}\n${b64}\n`, `Content-Type: text/plain\n\nnotes\n${uuencode(E, 'x.com', '998')}`));
  // uuencode in a media part, or in a part whose first bytes are binary: clamd finds it anyway
  for (const [n, type, lead] of [['gif', 'image/gif', 'GIF89a\n'], ['wav', 'audio/x-wav', 'hello\n'], ['font', 'font/ttf', '\n'], ['nul-octet-stream', 'application/octet-stream', '\x00\n'],
    ['exe', 'application/x-msdownload', 'MZ\x90\x00\x03\x00\x00\x00\n'], ['nul-then-long', 'application/octet-stream', '\x00' + 'z'.repeat(9000) + '\r\n']] as const) {
    add(`uuencode-in-${n}`, 'uuencode-in-media-or-binary', `${TOP}Content-Type: ${type}\n\n${lead}${uuencode(E, 'e.com', '644')}`);
  }
  const exeB64 = (Buffer.concat([Buffer.from([0x4d, 0x5a, 0x90, 0x00]), Buffer.from(`\n${uuencode(E, 'e.com', '644')}`, 'latin1')]).toString('base64').match(/.{1,76}/g) ?? []).join('\n');
  add('uuencode-in-base64-binary-attachment', 'uuencode-in-media-or-binary', multipart('multipart/mixed; boundary="b"', 'b').replace(b64, exeB64));
  // a header block written into a text body after other text
  add('header-block-in-text', 'header-block-in-text', `${TOP}Content-Type: text/plain\n\nhello there\n\n${attachmentHead('base64', 'e.com')}\n${b64}\n`);
  add('header-block-in-text-crlf', 'header-block-in-text', `${TOP}Content-Type: text/plain\n\nhello there\nsee below\n${attachmentHead('base64', 'e.com')}\n${b64}\n\nbye\n`, true);
  add('header-block-in-text-cte-first', 'header-block-in-text', `${TOP}Content-Type: text/plain\n\nnotes\ncontent-transfer-encoding: BASE64\nContent-Type: application/x-msdownload\n\n${b64}\n`);
  add('header-block-in-text-part', 'header-block-in-text', multipart('multipart/mixed; boundary="b"', 'b').replace(`${attachmentHead('base64')}\n${b64}\n`, `Content-Type: text/plain\n\nforwarded:\n\n${attachmentHead('base64', 'x.com')}\n${b64}\n`));
  // the same in quoted-printable (every byte escaped, lines cut by soft breaks)
  const qp = [...E].map((c) => '=' + c.toString(16).toUpperCase().padStart(2, '0')).join('').replace(/.{72}/g, '$&=\n');
  add('header-block-in-text-qp', 'header-block-in-text', `${TOP}Content-Type: text/plain\n\nhello there\n\n${attachmentHead('quoted-printable', 'e.com')}\n${qp}\n`);
  add('header-block-in-text-qp-crlf', 'header-block-in-text', `${TOP}Content-Type: text/plain\n\nhi\nContent-Transfer-Encoding: Quoted-Printable\n\n${qp}\n\nbye\n`, true);
  // a bare Content-Transfer-Encoding line, a blank line, base64
  add('cte-line-in-text', 'cte-line-in-text', `${TOP}Content-Type: text/plain\n\nhello\nContent-Transfer-Encoding: base64\n\n${b64}\n`);
  add('cte-line-spaced', 'cte-line-in-text', `${TOP}Content-Type: text/plain\n\nhello\nContent-Transfer-Encoding : base64\n\n${b64}\n`);
  add('cte-line-crlf-no-type', 'cte-line-in-text', `${TOP}\nhi\nContent-Transfer-Encoding: base64\n\n${b64}\n`, true);
  add('cte-line-in-epilogue', 'cte-line-in-text', `${multipart('multipart/mixed; boundary="b"', 'b').replace(`${attachmentHead('base64')}\n${b64}\n`, 'Content-Type: text/plain\n\nnothing\n')}Content-Transfer-Encoding: base64\n\n${b64}\n`);
  // a mail message after binary bytes, in a base64 attachment
  const innerMail = `From: x@example.test\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="i"\n\n--i\n${attachmentHead('base64', 'in.com')}\n${b64}\n--i--\n`;
  for (const [n, lead] of [['nul-junk', '\x00\x01junk\n'], ['nuls', '\x00\x00\x00\x00\n'], ['exe-head', 'MZ\x90\x00\x03\x00\x00\x00\x04\x00\r\n'], ['long-binary', '\x00'.repeat(5000) + '\n']] as const) {
    const data = Buffer.from(lead + innerMail, 'latin1').toString('base64').replace(/.{76}/g, '$&\n');
    add(`message-after-${n}`, 'message-after-binary-bytes', `${TOP}Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${data}\n--b--\n`);
  }
  // NUL bytes inside a structure field's name: clamd drops them
  add('header-name-nul-cte', 'header-name-nul', `${TOP}Content-Type: application/octet-stream\nContent-Transfer\x00-Encoding: base64\n\n${b64}\n`);
  add('header-name-nul-both', 'header-name-nul', `${TOP}Content-Type\x00: application/octet-stream\nContent-Transfer-\x00Encoding: base64\n\n${b64}\n`);
  add('header-name-nul-in-part', 'header-name-nul', multipart('multipart/mixed; boundary="b"', 'b').replace('Content-Transfer-Encoding: base64', '\x00Content-Transfer-Encoding\x00: base64'));
  return out;
}
