/**
 * A corpus of messages, one per evasion technique the MIME readings must undo, each with its expected verdict,
 * plus clean messages that must stay clean, plus containers (the payload zipped,
 * gzipped, in a 7z, in an attached mail or mbox typed as data; some archives are made by
 * Python and 7-Zip: container-corpus.ts). Generated at run time: the payload is eicar()
 * (never written into the repository); writeCorpus() puts the messages in a temp directory for
 * the CLI tests.
 *
 * Each entry: a name (also the file name), the technique it exercises, the expected verdict,
 * and the bytes. Line ends are LF (Courier's) unless the technique is about line ends.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eicar } from './eicar.js';
import { gzipSync } from 'node:zlib';
import { makeArchive, payloadBytes } from './container-corpus.js';
import * as mail from './mail.js';
import { buildZip } from './zip.js';

export interface CorpusMessage {
  readonly name: string;
  readonly technique: string;
  readonly expect: 'infected' | 'clean';
  readonly bytes: Buffer;
  /**
   * The payload sits inside a container (an archive, a compressed file, a mail or mbox file
   * attached as data): MIME extraction alone does not show it; the container stage
   * must. The format, outermost first.
   */
  readonly container?: string;
  /** Where one engine is known to differ from `expect` (ClamAV misses EICAR in an LZMA zip). */
  readonly expectBy?: { readonly [engine: string]: 'infected' | 'clean' };
}

const TOP = 'From: sender@example.test\nTo: sink@harness.test\nSubject: corpus\nMIME-Version: 1.0\n';

function msg(head: string, body: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from(TOP + head + '\n', 'latin1'), typeof body === 'string' ? Buffer.from(body, 'latin1') : body]);
}

function b64(data: Buffer, lineLen = 76): string {
  return mail.base64Lines(data, lineLen);
}

/** A uuencoded file, "begin MODE NAME" through "end", 45 bytes a line; the mode as written (any digits). */
export function uuencode(data: Buffer, name: string, mode = '644'): string {
  let out = `begin ${mode} ${name}\n`;
  for (let i = 0; i < data.length; i += 45) {
    const chunk = data.subarray(i, i + 45);
    let line = String.fromCharCode(32 + chunk.length);
    for (let j = 0; j < chunk.length; j += 3) {
      const a = chunk[j]!, b = chunk[j + 1] ?? 0, c = chunk[j + 2] ?? 0;
      for (const v of [a >> 2, ((a & 3) << 4) | (b >> 4), ((b & 15) << 2) | (c >> 6), c & 63]) line += v === 0 ? '`' : String.fromCharCode(32 + v);
    }
    out += line + '\n';
  }
  return out + '`\nend\n';
}

/** A yEnc-encoded file, lines of 128, with its =ybegin and =yend lines. */
export function yencode(data: Buffer, name: string): string {
  let line = '';
  const lines: string[] = [];
  for (const byte of data) {
    const v = (byte + 42) & 0xff;
    line += v === 0 || v === 0x0a || v === 0x0d || v === 0x3d ? '=' + String.fromCharCode((v + 64) & 0xff) : String.fromCharCode(v);
    if (line.length >= 128) {
      lines.push(line);
      line = '';
    }
  }
  if (line) lines.push(line);
  return `=ybegin line=128 size=${data.length} name=${name}\n${lines.join('\n')}\n=yend size=${data.length}\n`;
}

/** RFC 3986 percent-encoding of every byte but letters and digits (those stay as they are). */
function percentEncode(data: Buffer): string {
  let out = '';
  for (const byte of data) out += /[A-Za-z0-9]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  return out;
}

function binhex(data: Buffer, name: string): string {
  const alphabet = '!"#$%&\'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr';
  const n = Buffer.from(name, 'latin1');
  const header = Buffer.alloc(1 + n.length + 1 + 4 + 4 + 2 + 4 + 4 + 2);
  header[0] = n.length;
  n.copy(header, 1);
  header.write('TEXT', 2 + n.length, 'latin1');
  header.write('ttxt', 6 + n.length, 'latin1');
  header.writeUInt32BE(data.length, 12 + n.length);
  header.writeUInt32BE(0, 16 + n.length);
  const raw = Buffer.concat([header, data, Buffer.alloc(2), Buffer.alloc(2)]);
  // escape 0x90 for the run-length scheme (no runs are compressed: valid, just longer)
  const rle: number[] = [];
  for (const b of raw) b === 0x90 ? rle.push(0x90, 0) : rle.push(b);
  let bits = 0, acc = 0, text = '';
  for (const b of rle) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      text += alphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) text += alphabet[(acc << (6 - bits)) & 63];
  const lines = (':' + text + ':').match(/.{1,64}/g)!.join('\n');
  return `(This file must be converted with BinHex 4.0)\n${lines}\n`;
}

function part(head: string, body: string): string {
  return head + '\n\n' + body;
}

function multipartBody(boundary: string, parts: string[], opts: { close?: boolean; preamble?: string; epilogue?: string; delimSuffix?: string } = {}): string {
  let out = opts.preamble !== undefined ? opts.preamble + '\n' : '';
  for (const p of parts) out += `--${boundary}${opts.delimSuffix ?? ''}\n${p}\n`;
  if (opts.close !== false) out += `--${boundary}--${opts.delimSuffix ?? ''}\n`;
  if (opts.epilogue !== undefined) out += opts.epilogue + '\n';
  return out;
}

const TEXT = part('Content-Type: text/plain', 'Please see the attachment.');
const ATT_HEAD = 'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="invoice.com"';

/** The payload in the archives only outside tools make (Python, 7-Zip): built once per process. */
let archived: { zipLzma: Buffer; tarGz: Buffer; sevenZ: Buffer } | undefined;
function archivedPayload(): { zipLzma: Buffer; tarGz: Buffer; sevenZ: Buffer } {
  if (archived) return archived;
  const files = [{ name: 'invoice.com', data: eicar() }];
  // 7-Zip's LZMA2 keeps an incompressible 68 bytes as they are (readable without unpacking):
  // the 7z case holds the payload followed by text that compresses
  archived = { zipLzma: makeArchive('zip-lzma', files), tarGz: makeArchive('tar-gz', files), sevenZ: makeArchive('7z', [{ name: 'invoice.com', data: payloadBytes() }]) };
  return archived;
}

export function corpus(): CorpusMessage[] {
  const E = eicar();
  const e64 = b64(E);
  const att = (cteHead = 'Content-Transfer-Encoding: base64'): string => part(`${ATT_HEAD}\n${cteHead}`, e64);
  const inner = (): Buffer => msg('Content-Type: multipart/mixed; boundary="in"\n', multipartBody('in', [TEXT, att()]));
  const out: CorpusMessage[] = [];
  const add = (name: string, technique: string, expect: 'infected' | 'clean', bytes: Buffer, more: Pick<CorpusMessage, 'container' | 'expectBy'> = {}): void => void out.push({ name, technique, expect, bytes, ...more });

  // ---- transfer encodings
  add('base64-attachment', 'base64 attachment (baseline)', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, att()])));
  add('base64-junk', 'base64 with junk, odd line lengths, no padding', 'infected',
    msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part(`${ATT_HEAD}\nContent-Transfer-Encoding: base64`, E.toString('base64').replace(/=+$/, '').replace(/(.{7})/g, '$1!\n'))])));
  add('base64-mid-padding', 'base64 with padding in the middle (concatenated encodings)', 'infected',
    msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part(`${ATT_HEAD}\nContent-Transfer-Encoding: base64`, E.subarray(0, 1).toString('base64') + '\n' + E.subarray(1).toString('base64'))])));
  add('qp-lowercase-softbreaks', 'quoted-printable, lowercase hex, soft breaks everywhere', 'infected',
    msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part(`${ATT_HEAD}\nContent-Transfer-Encoding: quoted-printable`, mail.qpEncode(E, { lowerHex: true, lineLen: 8 }))])));
  add('crlf-line-ends', 'CRLF line ends throughout', 'infected', Buffer.from(msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, att()])).toString('latin1').replace(/\n/g, '\r\n'), 'latin1'));
  add('bare-cr-line-ends', 'bare CR line ends throughout', 'infected', Buffer.from(msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, att()])).toString('latin1').replace(/\n/g, '\r'), 'latin1'));
  add('unknown-cte-base64', 'unknown CTE whose body is base64', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, att('Content-Transfer-Encoding: x-gzip64')])));

  // ---- encodings inside text bodies
  add('uuencode-in-text', 'uuencode inside a text/plain body', 'infected', msg('Content-Type: text/plain\n', 'Here it is:\n\n' + uuencode(E, 'invoice.com') + '\nbye\n'));
  add('x-uuencode-cte', 'Content-Transfer-Encoding: x-uuencode', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part(`${ATT_HEAD}\nContent-Transfer-Encoding: x-uuencode`, uuencode(E, 'invoice.com'))])));
  add('yenc-in-text', 'yEnc inside a text body', 'infected', msg('Content-Type: text/plain\n', 'yenc follows\n' + yencode(E, 'invoice.com')));
  add('binhex-in-text', 'BinHex 4.0 inside a text body', 'infected', msg('Content-Type: text/plain\n', 'mac file\n\n' + binhex(E, 'invoice.com')));
  add('data-uri-html', 'base64 data: URI in HTML', 'infected', msg('Content-Type: text/html\n', `<html><body><a href="data:application/octet-stream;base64,${E.toString('base64')}">x</a></body></html>\n`));
  add('begin-base64-in-text', 'begin-base64 block in text', 'infected', msg('Content-Type: text/plain\n', 'Here it is:\n\nbegin-base64 644 invoice.com\n' + e64 + '\n====\n\nbye\n'));
  add('data-uri-percent', 'percent-encoded data: URI', 'infected', msg('Content-Type: text/html\n', `<html><body><a href="data:application/octet-stream,${percentEncode(E)}">x</a></body></html>\n`));
  add('uuencode-in-uuencode', 'uuencode inside uuencode', 'infected', msg('Content-Type: text/plain\n', 'Unpack this:\n\n' + uuencode(Buffer.from('It holds another file:\n\n' + uuencode(E, 'invoice.com'), 'latin1'), 'outer.txt') + '\nbye\n'));
  add('uuencoded-eml', 'uuencoded .eml with a base64 EICAR attachment', 'infected', msg('Content-Type: text/plain\n', 'The forward you asked for:\n\n' + uuencode(inner(), 'fwd.eml') + '\nbye\n'));

  // ---- nesting
  add('rfc822-base64', 'message/rfc822, base64-encoded, attachment inside', 'infected',
    msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part('Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment', b64(inner()))])));
  add('rfc822-qp-attachment', 'message/rfc822, QP-encoded, marked attachment', 'infected',
    msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part('Content-Type: message/rfc822\nContent-Transfer-Encoding: quoted-printable\nContent-Disposition: attachment; filename="fwd.eml"', mail.qpEncode(inner()))])));
  let deep = inner();
  for (let i = 0; i < 3; i++) deep = msg(`Content-Type: multipart/mixed; boundary="g${i}"\n`, multipartBody(`g${i}`, [TEXT, part('Content-Type: message/global\nContent-Transfer-Encoding: base64', b64(deep))]));
  add('message-global-deep', 'message/global nested three deep, base64', 'infected', deep);
  add('digest-default-type', 'multipart/digest: a child without Content-Type is a message', 'infected',
    msg('Content-Type: multipart/digest; boundary="d"\n', multipartBody('d', ['\n' + inner().toString('latin1')])));
  add('unknown-multipart-subtype', 'unknown multipart subtype read as mixed', 'infected', msg('Content-Type: multipart/x-weird; boundary="b"\n', multipartBody('b', [TEXT, att()])));

  // ---- headers
  add('dup-cte-last-wins', 'duplicate CTE: 7bit first, base64 last', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, att('Content-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: base64')])));
  add('dup-cte-first-wins', 'duplicate CTE: base64 first, 7bit last', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, att('Content-Transfer-Encoding: base64\nContent-Transfer-Encoding: 7bit')])));
  add('dup-content-type', 'duplicate Content-Type: text/plain first, multipart last', 'infected', msg('Content-Type: text/plain\nContent-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, att()])));
  add('ct-space-before-colon', 'obsolete "Content-Type :" syntax and odd case', 'infected', msg('CONTENT-type : multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part(`${ATT_HEAD}\ncontent-transfer-encoding : BASE64`, e64)])));
  add('comment-in-field-name', 'a comment in the field name', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part(`${ATT_HEAD}\nContent-Transfer-Encoding(x): base64`, e64)])));
  add('bare-cr-hidden-header', 'a CTE header hidden after a bare CR', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part(`${ATT_HEAD}\rContent-Transfer-Encoding: base64`, e64)])));
  add('no-blank-line', 'a part with no blank line after its headers', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, `${ATT_HEAD}\nContent-Transfer-Encoding: base64\n${e64}`])));

  // ---- boundaries
  add('dup-boundary-first', 'duplicate boundary=: the first one is used', 'infected', msg('Content-Type: multipart/mixed; boundary="one"; boundary="two"\n', multipartBody('one', [TEXT, att()])));
  add('dup-boundary-second', 'duplicate boundary=: the second one is used', 'infected', msg('Content-Type: multipart/mixed; boundary="one"; boundary="two"\n', multipartBody('two', [TEXT, att()])));
  add('boundary-trailing-ws', 'delimiter lines with trailing whitespace (transport padding)', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, att()], { delimSuffix: ' \t ' })));
  add('boundary-in-disposition', 'the boundary given in Content-Disposition', 'infected', msg('Content-Type: multipart/mixed\nContent-Disposition: inline; boundary="b"\n', multipartBody('b', [TEXT, att()])));
  add('boundary-rfc2231', 'RFC 2231 continued, encoded boundary', 'infected', msg("Content-Type: multipart/mixed; boundary*0*=us-ascii''ab%63; boundary*1=def\n", multipartBody('abcdef', [TEXT, att()])));
  add('boundary-quoted-pair', 'quoted-pair inside the boundary', 'infected', msg('Content-Type: multipart/mixed; boundary="a\\b;c"\n', multipartBody('ab;c', [TEXT, att()])));
  add('boundary-unquoted-space', 'unquoted boundary with a space', 'infected', msg('Content-Type: multipart/mixed; boundary=foo bar\n', multipartBody('foo bar', [TEXT, att()])));
  add('boundary-on-leaf', 'a text/plain part with a boundary and parts', 'infected', msg('Content-Type: text/plain; boundary="b"\n', multipartBody('b', [TEXT, att()])));
  add('ancestor-boundary', 'inner multipart without close; the outer delimiter ends it', 'infected',
    msg('Content-Type: multipart/mixed; boundary="outer"\n', multipartBody('outer', [part('Content-Type: multipart/alternative; boundary="inner"', multipartBody('inner', [TEXT], { close: false })), att()])));
  add('boundary-prefix', 'a delimiter line that only starts with the boundary', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', `--b\n${TEXT}\n--bx\n${att()}\n--b--\n`));
  add('same-boundary-nested', 'the same boundary at two levels', 'infected', msg('Content-Type: multipart/mixed; boundary="s"\n', multipartBody('s', [part('Content-Type: multipart/mixed; boundary="s"', multipartBody('s', [TEXT, att()]))])));
  add('missing-close', 'no close delimiter', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, att()], { close: false })));

  // ---- containers: the payload inside an archive, a compressed file, an attached
  // mail or mbox typed as data. Only a container stage (or an engine that unpacks) sees it.
  const attach = (type: string, filename: string, data: Buffer): Buffer =>
    msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part(`Content-Type: ${type}; name="${filename}"\nContent-Disposition: attachment; filename="${filename}"\nContent-Transfer-Encoding: base64`, b64(data))]));
  const made = archivedPayload();
  add('zip-stored', 'EICAR in a zip (stored)', 'infected', attach('application/zip', 'invoice.zip', buildZip([{ name: 'invoice.com', data: E, method: 'store' }])), { container: 'zip' });
  add('zip-deflate', 'EICAR in a zip (deflate)', 'infected', attach('application/zip', 'invoice.zip', buildZip([{ name: 'invoice.com', data: E }])), { container: 'zip' });
  add('zip-lzma', 'EICAR in a zip (LZMA method)', 'infected', attach('application/zip', 'invoice.zip', made.zipLzma), { container: 'zip' });
  add('gzip-attachment', 'EICAR gzipped, an application/gzip attachment', 'infected', attach('application/gzip', 'invoice.com.gz', gzipSync(E)), { container: 'gzip' });
  add('tar-gz', 'EICAR in a .tar.gz', 'infected', attach('application/gzip', 'invoice.tar.gz', made.tarGz), { container: 'gzip > tar' });
  add('zip-in-zip', 'EICAR in a zip inside a zip', 'infected', attach('application/zip', 'invoice.zip', buildZip([{ name: 'inner.zip', data: buildZip([{ name: 'invoice.com', data: E }]) }])), { container: 'zip > zip' });
  add('7z', 'EICAR in a 7z', 'infected', attach('application/x-7z-compressed', 'invoice.7z', made.sevenZ), { container: '7z' });
  const zipMail = msg('Content-Type: multipart/mixed; boundary="in"\n', multipartBody('in', [TEXT, part('Content-Type: application/zip; name="invoice.zip"\nContent-Disposition: attachment; filename="invoice.zip"\nContent-Transfer-Encoding: base64', b64(buildZip([{ name: 'invoice.com', data: E }])))]));
  add('zip-in-rfc822', 'a zip attached inside an attached message/rfc822', 'infected',
    msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part('Content-Type: message/rfc822\nContent-Disposition: attachment; filename="fwd.eml"', zipMail.toString('latin1'))])), { container: 'zip' });
  add('mail-as-octet-stream', 'a mail message (base64 EICAR attachment) attached as application/octet-stream', 'infected', attach('application/octet-stream', 'message.dat', inner()), { container: 'mail' });
  const mbox = Buffer.concat([
    Buffer.from('From sender@example.test Mon Jan  1 00:00:00 2024\n', 'latin1'), msg('Content-Type: text/plain\n', 'first message, nothing attached\n\n'),
    Buffer.from('From sender@example.test Mon Jan  1 00:01:00 2024\n', 'latin1'), inner(), Buffer.from('\n', 'latin1'),
  ]);
  add('mbox-as-octet-stream', 'an mbox (second message: base64 EICAR attachment) attached as application/octet-stream', 'infected', attach('application/octet-stream', 'archive.dat', mbox), { container: 'mbox' });

  // ---- content outside the leaves
  add('preamble', 'payload in the preamble', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT], { preamble: E.toString('latin1') })));
  add('epilogue', 'payload in the epilogue', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT], { epilogue: E.toString('latin1') })));
  add('preamble-uuencode', 'uuencoded payload in the preamble', 'infected', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT], { preamble: uuencode(E, 'x.com') })));

  // ---- clean messages
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), mail.pseudoRandom(200, 3)]);
  add('clean-newsletter', 'HTML newsletter with inline images', 'clean', msg('Content-Type: multipart/alternative; boundary="n"\n', multipartBody('n', [
    part('Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable', mail.qpEncode(Buffer.from('News of the week =) caf\u00e9\n'.repeat(20), 'utf8'))),
    part('Content-Type: text/html; charset=utf-8', `<html><body><h1>News</h1><img src="data:image/png;base64,${png.toString('base64')}"><p>Unsubscribe</p></body></html>`),
  ])));
  add('clean-reply', 'a reply with quoted text', 'clean', msg('Content-Type: text/plain; charset=utf-8\n', 'Thanks!\n\nOn Monday someone wrote:\n> begin the meeting at 10\n> --\n> regards\n'));
  add('clean-calendar', 'a calendar invite', 'clean', msg('Content-Type: multipart/mixed; boundary="c"\n', multipartBody('c', [TEXT,
    part('Content-Type: text/calendar; method=REQUEST\nContent-Transfer-Encoding: base64', b64(Buffer.from('BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nSUMMARY:Lunch\nDTSTART:20250101T120000Z\nEND:VEVENT\nEND:VCALENDAR\n')))])));
  add('clean-smime', 'S/MIME signed (fake signature bytes)', 'clean', msg('Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="s"\n', multipartBody('s', [TEXT,
    part('Content-Type: application/pkcs7-signature; name="smime.p7s"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="smime.p7s"', b64(mail.pseudoRandom(1500, 9)))])));
  add('clean-dsn', 'a delivery status notification', 'clean', msg('Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n', multipartBody('r', [
    part('Content-Type: text/plain', 'Delivery failed.'),
    part('Content-Type: message/delivery-status', 'Reporting-MTA: dns; mx.example.test\n\nFinal-Recipient: rfc822; x@example.test\nAction: failed\nStatus: 5.1.1'),
    part('Content-Type: text/rfc822-headers', 'From: a@example.test\nSubject: hi'),
  ])));
  add('clean-random-binary', 'a random binary attachment', 'clean', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part(`${ATT_HEAD}\nContent-Transfer-Encoding: base64`, b64(mail.pseudoRandom(100_000, 11)))])));
  add('clean-eicar-name', 'an innocent file named eicar.com', 'clean', msg('Content-Type: multipart/mixed; boundary="b"\n', multipartBody('b', [TEXT, part('Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="eicar.com"\nContent-Transfer-Encoding: base64', b64(Buffer.from('just a harmless file\n')))])));
  add('clean-talks-about-eicar', 'text that talks about viruses and EICAR', 'clean', msg('Content-Type: text/plain\n', 'The EICAR test file lets you check that your anti-virus scanner works. Viruses, worms and trojans are not in this mail.\n'));
  return out;
}

/** Writes every corpus message to `dir` as <name>.eml; returns the paths by name. */
export async function writeCorpus(dir: string, messages: readonly CorpusMessage[] = corpus()): Promise<Map<string, string>> {
  const paths = new Map<string, string>();
  for (const m of messages) {
    const p = join(dir, `${m.name}.eml`);
    await writeFile(p, m.bytes, { mode: 0o644 });
    paths.set(m.name, p);
  }
  return paths;
}
