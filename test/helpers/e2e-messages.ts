/**
 * Messages for the Courier end-to-end tests, built as the bytes an SMTP client sends (CRLF).
 * Every message carries a unique tag in its Subject and sender so a test finds exactly its own
 * message in Maildirs, the queue and the log, whatever ran before.
 */
import { randomBytes } from 'node:crypto';

let counter = 0;

export interface Envelope {
  tag: string;
  from: string;
  subject: string;
}

/** A fresh tag, sender and subject for one test message. */
export function envelope(label: string): Envelope {
  const tag = `${label}-${process.pid}-${++counter}-${randomBytes(3).toString('hex')}`;
  return { tag, from: `e2e-${tag}@example.test`, subject: `avfilter e2e ${tag}` };
}

function head(env: Envelope, to: string[], extra: string[]): string[] {
  return [
    `From: <${env.from}>`,
    `To: ${to.map((t) => `<${t}>`).join(', ')}`,
    `Subject: ${env.subject}`,
    'Date: Sat, 21 Nov 2026 12:00:00 +0000',
    `Message-ID: <${env.tag}@example.test>`,
    'MIME-Version: 1.0',
    ...extra,
  ];
}

/**
 * A single-part text message whose body exercises the SMTP/Courier path: lines starting with
 * dots (dot-stuffing), "From " (mbox escaping, which a Maildir must not do), trailing blanks,
 * tabs, 8-bit UTF-8, a 900-byte line and an empty last line.
 */
export function cleanTextMessage(env: Envelope, to: string[], extraHeaders: string[] = []): { raw: Buffer; body: Buffer } {
  const bodyLines = [
    'Hello,',
    '',
    '.a line starting with one dot',
    '..two dots',
    '.',
    'From the start of a line',
    'trailing blanks   ',
    '\ttab\tseparated\t',
    'UTF-8: Grüße, 日本語, ½',
    'x'.repeat(900),
    `tag ${env.tag}`,
    '',
  ];
  const headers = [...head(env, to, extraHeaders), 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit'];
  const body = Buffer.from(bodyLines.join('\r\n') + '\r\n', 'utf8');
  const raw = Buffer.concat([Buffer.from(headers.join('\r\n') + '\r\n\r\n', 'utf8'), body]);
  return { raw, body };
}

function base64Lines(data: Buffer): string {
  return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

/** multipart/mixed: a short text part and one base64 attachment. */
export function attachmentMessage(
  env: Envelope,
  to: string[],
  att: { filename: string; contentType: string; data: Buffer },
  extraHeaders: string[] = [],
): Buffer {
  const boundary = `=_e2e_${env.tag}`;
  const lines = [
    ...head(env, to, extraHeaders),
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
    '',
    `See the attachment (${env.tag}).`,
    '',
    `--${boundary}`,
    `Content-Type: ${att.contentType}; name="${att.filename}"`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${att.filename}"`,
    '',
    base64Lines(att.data),
    '',
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

/** The body as a Maildir stores it: LF line ends. */
export function asStored(body: Buffer): Buffer {
  return Buffer.from(body.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
}
