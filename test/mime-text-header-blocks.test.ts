/**
 * Header blocks written into a text body, which clamd's mail parser decodes and a message that
 * reads one way (the clamd engine's raw_message = "parts" then gives clamd its decoded parts
 * only) hid from both engines:
 * - a `Content-Transfer-Encoding:` line whose token is not base64, quoted-printable, 7bit, 8bit
 *   or binary (`x-base64`, `zzz`, `b64`, a comment first, a value folded onto the next line):
 *   clamd tries its decoders on a token it does not know, so both a base64 and a
 *   quoted-printable reading of the lines after the next blank line are scanned;
 * - a block that starts with `Received:` or `From:` and has a `Content-Type:` line (a bounce
 *   quoting a message): clamd decodes its body as base64 whatever its transfer encoding says
 *   (7bit, none, an unknown token).
 * Each shape in variants: at the top level, in a multipart's text part, in an attached message,
 * in HTML, with LF and CRLF line ends. Checked: the message still reads one way (the premise of
 * the miss), and the payload is a part of its own. A header block that is no bounce (a quoted
 * "From:" without a Content-Type line, a 7bit token) adds no part.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput } from '../src/mime/index.js';
import { eicar } from './helpers/eicar.js';
import * as mail from './helpers/mail.js';

const TOP = 'From: a@example.test\nTo: b@example.test\nSubject: t\nMIME-Version: 1.0\n';

interface Read { readings: number; payloadIn: string[]; parts: number }

async function read(msg: Buffer): Promise<Read> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-text-blocks-'));
  try {
    const x = await extractParts(MessageInput.fromBuffer(msg), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
    try {
      const E = eicar();
      const payloadIn: string[] = [];
      for (const p of x.parts) if ((await p.source.buffer()).includes(E)) payloadIn.push(p.path);
      return { readings: x.readings ?? 0, payloadIn, parts: x.parts.length };
    } finally {
      await x.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A text body holding `block`, placed at the top level, in a multipart, in an attached message, as HTML. */
function placements(block: string): Array<[string, string]> {
  const body = `hello there\n${block}\n`;
  return [
    ['top', `${TOP}Content-Type: text/plain\n\n${body}`],
    ['top-no-type', `${TOP}\n${body}`],
    ['html', `${TOP}Content-Type: text/html\n\n<p>${body}`],
    ['multipart', `${TOP}Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n${body}\n--b\nContent-Type: text/plain\n\nbye\n--b--\n`],
    ['attached-message', `${TOP}Content-Type: multipart/mixed; boundary="o"\n\n--o\nContent-Type: text/plain\n\nfwd\n--o\nContent-Type: message/rfc822\n\nFrom: x@example.test\nSubject: i\nContent-Type: text/plain\n\n${body}\n--o--\n`],
  ];
}

const variants = (block: string): Array<[string, Buffer]> => placements(block).flatMap(([where, m]): Array<[string, Buffer]> => [
  [`${where} LF`, Buffer.from(m, 'latin1')],
  [`${where} CRLF`, Buffer.from(m.replace(/\n/g, '\r\n'), 'latin1')],
]);

const B64 = (): string => mail.base64Lines(eicar());
const QP = (): string => [...eicar()].map((c) => `=${c.toString(16).toUpperCase().padStart(2, '0')}`).join('').replace(/(.{1,72})/g, '$1=\n');

test('a Content-Transfer-Encoding line with a token clamd does not know, in a text: the lines after it are read as base64 and as quoted-printable (was no part: both engines answered OK)', async () => {
  const tokens = ['x-base64', 'zzz', 'b64', 'base-64', '(c) base64', '\n base64', 'x-uuencode', '', 'base64x'];
  for (const tok of tokens) {
    for (const [name, msg] of variants(`Content-Transfer-Encoding: ${tok}\n\n${B64()}`)) {
      const r = await read(msg);
      assert.equal(r.readings, 1, `${JSON.stringify(tok)} ${name}: the premise, a message that reads one way`);
      assert.ok(r.payloadIn.length > 0, `${JSON.stringify(tok)} ${name}: the base64 block is a part`);
    }
  }
  for (const tok of ['x-qp', 'qp', 'zzz']) {
    for (const [name, msg] of variants(`Content-Transfer-Encoding: ${tok}\n\n${QP()}`)) {
      assert.ok((await read(msg)).payloadIn.length > 0, `${tok} ${name}: the quoted-printable block is a part`);
    }
  }
});

test('a bounce quoted in a text (a block led by Received: or From: with a Content-Type line): its body is read as base64 whatever its transfer encoding says (was no part)', async () => {
  for (const lead of ['Received: from x.example.test by y.example.test', 'From: x@example.test', 'FROM: x@example.test', 'received: from x']) {
    for (const cte of ['', 'Content-Transfer-Encoding: 7bit\n', 'Content-Transfer-Encoding: x-base64\n', 'X-Note: 1\nContent-Transfer-Encoding: 8bit\n']) {
      const block = `${lead}\nSubject: returned\nContent-Type: application/octet-stream; name="e.com"\n${cte}\n${B64()}`;
      for (const [name, msg] of variants(block)) {
        const r = await read(msg);
        assert.equal(r.readings, 1, `${lead} / ${cte.trim() || 'no CTE'} / ${name}: the premise, a message that reads one way`);
        assert.ok(r.payloadIn.length > 0, `${lead} / ${cte.trim() || 'no CTE'} / ${name}: the bounced body is a part`);
      }
    }
  }
});

test('header-like lines that are no bounce and no encoding add no part: a quoted From: without a Content-Type, a 7bit token, a Content-Type line with no From: or Received: before it', async () => {
  const plain = await read(Buffer.from(`${TOP}Content-Type: text/plain\n\nhello\n`));
  for (const block of [
    'From: John <j@example.test>\nSent: Monday\nTo: me\nSubject: lunch\n\nSee you at noon.',
    'Content-Transfer-Encoding: 7bit\n\nSee you at noon.',
    'Content-Transfer-Encoding: "8bit"\n\nSee you at noon.',
    'Content-Type: text/plain\n\nSee you at noon.',
    'From: j@example.test\n\nContent-Type: text/plain\n\nSee you at noon.',
  ]) {
    const r = await read(Buffer.from(`${TOP}Content-Type: text/plain\n\nhello\n${block}\n`));
    assert.equal(r.parts, plain.parts, `${JSON.stringify(block.slice(0, 40))}: no part beyond the text`);
  }
});
