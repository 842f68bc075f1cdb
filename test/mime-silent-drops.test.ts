/**
 * Searches that once stopped at a count, a length or a depth and dropped the rest without a
 * word. Each is now either read whole or a limit outcome (never clean): more boundary= or
 * Content-Transfer-Encoding values than the lenient reading tries, a long boundary, a long
 * delimiter line, a data: URI with a long media type, a forwarded .eml whose deciding header
 * field comes late, BinHex text after the marker, a "begin" line right after the BinHex marker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput } from '../src/mime/index.js';
import { MAX_BOUNDARY_CANDIDATES, MAX_CTE_CANDIDATES } from '../src/mime/lenient/interpret.js';
import { uuencode } from './helpers/corpus.js';
import { eicar } from './helpers/eicar.js';
import * as mail from './helpers/mail.js';

const E = eicar();
const TOP = 'From: a@example.test\nSubject: t\nMIME-Version: 1.0\n';

async function extract(msg: Buffer | string): Promise<{ holding: string[]; limit: string | undefined }> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-silent-'));
  try {
    const x = await extractParts(MessageInput.fromStream(Readable.from([typeof msg === 'string' ? Buffer.from(msg, 'latin1') : msg])), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
    try {
      const holding: string[] = [];
      for (const p of x.parts) if ((await p.source.buffer()).includes(E)) holding.push(`${p.path} ${p.reading}`);
      return { holding, limit: x.limit?.code };
    } finally {
      await x.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const att = `Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${E.toString('base64')}\n`;

test('more boundary= values than the lenient reading tries: EMIME_CANDIDATE_LIMIT, not a silent drop', async () => {
  const params = Array.from({ length: MAX_BOUNDARY_CANDIDATES + 1 }, (_, i) => `boundary="b${i}"`).join('; ');
  const last = `b${MAX_BOUNDARY_CANDIDATES}`;
  const r = await extract(`${TOP}Content-Type: multipart/mixed; ${params}\n\n--${last}\n${att}--${last}--\n`);
  assert.equal(r.limit, 'EMIME_CANDIDATE_LIMIT');
  // at the bound, every one is read: no limit, and the last one splits the body
  const ok = Array.from({ length: MAX_BOUNDARY_CANDIDATES }, (_, i) => `boundary="b${i}"`).join('; ');
  const atBound = await extract(`${TOP}Content-Type: multipart/mixed; ${ok}\n\n--b${MAX_BOUNDARY_CANDIDATES - 1}\n${att}--b${MAX_BOUNDARY_CANDIDATES - 1}--\n`);
  assert.equal(atBound.limit, undefined);
  assert.equal(atBound.holding.length, 1, JSON.stringify(atBound));
});

test('more Content-Transfer-Encoding values than the lenient reading tries: EMIME_CANDIDATE_LIMIT', async () => {
  const ctes = ['7bit', '8bit', 'binary', 'x-a', 'base64'].slice(0, MAX_CTE_CANDIDATES + 1).map((t) => `Content-Transfer-Encoding: ${t}`).join('\n');
  const r = await extract(`${TOP}Content-Type: application/octet-stream\n${ctes}\n\n${E.toString('base64')}\n`);
  assert.equal(r.limit, 'EMIME_CANDIDATE_LIMIT');
});

test('a boundary longer than 998 bytes is still tried by the lenient reading', async () => {
  const b = 'x'.repeat(1500);
  // with an unused boundary= next to it, one order or the other leaves it to the lenient reading
  for (const params of [`boundary="unused"; boundary="${b}"`, `boundary="${b}"; boundary="unused"`]) {
    const r = await extract(`${TOP}Content-Type: multipart/mixed; ${params}\n\n--${b}\n${att}--${b}--\n`);
    assert.equal(r.limit, undefined);
    assert.equal(r.holding.length, 1, JSON.stringify(r));
  }
});

test('a delimiter line longer than 4 KiB still counts for readers that match by prefix', async () => {
  for (const eol of ['\n', '\r\n']) {
    const junk = 'j'.repeat(10_000);
    const msg = `${TOP}Content-Type: multipart/mixed; boundary="b"\n\n--b${junk}\n${att}--b--\n`.replace(/\n/g, eol);
    const r = await extract(msg);
    assert.ok(r.holding.some((h) => h.includes('prefix-boundary')), `${JSON.stringify(eol)}: ${JSON.stringify(r)}`);
  }
});

test('a data: URI with a media type longer than 256 bytes is decoded', async () => {
  const type = 'application/x-' + 'a'.repeat(400);
  const r = await extract(`${TOP}Content-Type: text/html\n\n<a href="data:${type};base64,${E.toString('base64')}">x</a>\n`);
  assert.deepEqual(r.holding, ['1/data-uri1 data-uri']);
});

test('a uuencoded .eml whose first mail field comes after 150 other fields, or after a 70 KiB one, is walked', async () => {
  for (const [pad, what] of [
    [Array.from({ length: 150 }, (_, i) => `X-Pad-${i}: y`).join('\n') + '\n', '150 fields'],
    [`X-Pad: ${'a'.repeat(70 * 1024)}\n`, 'a 70 KiB first field'],
    [Array.from({ length: 4000 }, (_, i) => `X-Pad-${i}: yyyyyyyyyyyyyyyyyyyy`).join('\n') + '\n', 'fields past the 64 KiB sniff'],
  ] as const) {
    const eml = Buffer.concat([Buffer.from(pad, 'latin1'), mail.message(mail.attachment(E, { cte: 'base64', filename: 'x.com' }))]);
    const r = await extract(`${TOP}Content-Type: text/plain\n\nfwd:\n${uuencode(eml, 'fwd.eml')}`);
    assert.deepEqual(r.holding, ['1/uuencode1 uuencode'], what);
  }
});

test('BinHex after a text line following the marker, and a "begin" line right after the marker', async () => {
  const { corpus } = await import('./helpers/corpus.js');
  const bin = corpus().find((c) => c.name === 'binhex-in-text')!.bytes.toString('latin1');
  const block = bin.slice(bin.indexOf('(This file'));
  const [marker, ...rest] = block.split('\n');
  const r1 = await extract(`${TOP}Content-Type: text/plain\n\n${marker}\nconverted on a Mac\n${rest.join('\n')}`);
  assert.ok(r1.holding.some((h) => h.includes('binhex')), JSON.stringify(r1));
  const r2 = await extract(`${TOP}Content-Type: text/plain\n\n${marker}\n${uuencode(E, 'x.com')}`);
  assert.ok(r2.holding.some((h) => h.includes('uuencode')), JSON.stringify(r2));
});
