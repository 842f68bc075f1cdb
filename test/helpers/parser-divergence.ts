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
