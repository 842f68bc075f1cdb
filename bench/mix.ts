/**
 * The benchmark's message mix, generated from a fixed seed so every run (and every mode in a
 * run) sends the same bytes: 60% small text messages (plain, quoted-printable, or
 * multipart/alternative; 0.5–4 KB), 30% with one base64 attachment of 50–200 KB of
 * pseudo-random data, 10% with the EICAR test file as a base64 attachment. The counts are exact
 * (rounded) and the order is shuffled with the same seed.
 *
 * EICAR comes from test/helpers/eicar.ts at run time; this file never holds it.
 *
 * Outputs: MixMessage (the bytes an SMTP client sends, CRLF) and courierDataFile(), the same
 * message as Courier's data file holds it (its own Received: header in front, LF line ends).
 * Fails with nothing.
 */
import { eicar } from '../test/helpers/eicar.js';
import { pseudoRandom } from '../test/helpers/mail.js';

export const MIX_SEED = 20260701;

export type MessageKind = 'small' | 'attachment' | 'eicar';
export const KINDS: readonly MessageKind[] = ['small', 'attachment', 'eicar'];

export interface MixMessage {
  index: number;
  kind: MessageKind;
  from: string;
  subject: string;
  /** the message as sent over SMTP: CRLF line ends, no dot-stuffing yet */
  raw: Buffer;
  /** whether a virus filter must refuse it */
  infected: boolean;
}

/** mulberry32: a small seeded PRNG, good enough to pick sizes and words. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but ' +
  'have an they you were her she there been one all we their has would when if so what no out up ' +
  'invoice meeting report quarter budget schedule delivery customer account project review draft ' +
  'please attached find regards thanks tomorrow monday friday office server update release notes'
).split(' ');

function words(rand: () => number, bytes: number): string {
  const lines: string[] = [];
  let line = '';
  let total = 0;
  while (total < bytes) {
    const w = WORDS[Math.floor(rand() * WORDS.length)]!;
    if (line.length + w.length + 1 > 72) {
      lines.push(line);
      total += line.length + 2;
      line = '';
    }
    line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join('\r\n');
}

function qp(text: string): string {
  // soft line breaks are not needed: the lines are short; only the UTF-8 bytes are encoded
  return Buffer.from(text, 'utf8').toString('latin1').replace(/[^\r\n\x20-\x3c\x3e-\x7e]/g, (c) => `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

function b64(data: Buffer): string {
  return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

function headers(i: number, kind: MessageKind, from: string, subject: string, extra: string[]): string[] {
  return [
    `From: Bench Sender ${i} <${from}>`,
    'To: <avtest@avfilter.test>',
    `Subject: ${subject}`,
    'Date: Wed, 01 Jul 2026 12:00:00 +0000',
    `Message-ID: <bench-${kind}-${i}@example.test>`,
    'MIME-Version: 1.0',
    ...extra,
  ];
}

function smallMessage(i: number, rand: () => number, from: string, subject: string): string {
  const text = words(rand, 500 + Math.floor(rand() * 3500));
  const style = rand();
  if (style < 0.5) {
    return [...headers(i, 'small', from, subject, ['Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit']), '', text, ''].join('\r\n');
  }
  if (style < 0.75) {
    const body = qp(`Grüße, ${text}\r\n— bench`);
    return [...headers(i, 'small', from, subject, ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable']), '', body, ''].join('\r\n');
  }
  const boundary = `=_alt_${i}`;
  return [
    ...headers(i, 'small', from, subject, [`Content-Type: multipart/alternative; boundary="${boundary}"`]),
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    text,
    `--${boundary}`,
    'Content-Type: text/html; charset=us-ascii',
    '',
    `<html><body><p>${text.replace(/\r\n/g, '</p>\r\n<p>')}</p></body></html>`,
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

function attachmentMessage(i: number, kind: MessageKind, rand: () => number, from: string, subject: string, file: { name: string; type: string; data: Buffer }): string {
  const boundary = `=_mix_${i}`;
  return [
    ...headers(i, kind, from, subject, [`Content-Type: multipart/mixed; boundary="${boundary}"`]),
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
    '',
    words(rand, 200 + Math.floor(rand() * 600)),
    '',
    `--${boundary}`,
    `Content-Type: ${file.type}; name="${file.name}"`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${file.name}"`,
    '',
    b64(file.data),
    '',
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

/** `count` messages in the 60/30/10 mix (at least one of each kind when count >= 3). */
export function generateMix(count: number, seed = MIX_SEED): MixMessage[] {
  const rand = prng(seed);
  const nEicar = Math.max(count >= 3 ? 1 : 0, Math.round(count * 0.1));
  const nAtt = Math.max(count >= 3 ? 1 : 0, Math.round(count * 0.3));
  const kinds: MessageKind[] = [];
  for (let i = 0; i < count; i++) kinds.push(i < nEicar ? 'eicar' : i < nEicar + nAtt ? 'attachment' : 'small');
  // Fisher–Yates with the seeded generator
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  return kinds.map((kind, i) => {
    const from = `bench-${i}@example.test`;
    const subject = `bench ${kind} ${i}`;
    let text: string;
    if (kind === 'small') {
      text = smallMessage(i, rand, from, subject);
    } else if (kind === 'attachment') {
      const size = 50 * 1024 + Math.floor(rand() * 150 * 1024);
      text = attachmentMessage(i, kind, rand, from, subject, { name: `data-${i}.bin`, type: 'application/octet-stream', data: pseudoRandom(size, seed + i) });
    } else {
      text = attachmentMessage(i, kind, rand, from, subject, { name: 'eicar.com', type: 'application/octet-stream', data: eicar() });
    }
    return { index: i, kind, from, subject, raw: Buffer.from(text, 'latin1'), infected: kind === 'eicar' };
  });
}

/**
 * The message as Courier's data file holds it: Courier's Received: header (3 lines) in front,
 * LF line ends (see ../shared/samples/courier-requests/README.md).
 */
export function courierDataFile(m: MixMessage, queueId: string): Buffer {
  const received = [
    'Received: from client.example.test ([::ffff:127.0.0.1])',
    '  by bench with ESMTP',
    `  id ${queueId}; Wed, 01 Jul 2026 12:00:01 +0000`,
    '',
  ].join('\n');
  return Buffer.concat([Buffer.from(received, 'latin1'), Buffer.from(m.raw.toString('latin1').replace(/\r\n/g, '\n'), 'latin1')]);
}

/** Message counts and bytes per kind, for the report. */
export function describeMix(mix: readonly MixMessage[]): string {
  const parts = KINDS.map((k) => {
    const ms = mix.filter((m) => m.kind === k);
    const bytes = ms.reduce((s, m) => s + m.raw.length, 0);
    return `${ms.length} ${k} (avg ${ms.length ? (bytes / ms.length / 1024).toFixed(1) : 0} KiB)`;
  });
  return `${mix.length} messages, seed ${MIX_SEED}: ${parts.join(', ')}`;
}
