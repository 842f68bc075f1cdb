/**
 * src/mime: the decoders split at every offset, then extractParts() on built messages, the
 * Courier samples, limits, temp files, abort and memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Base64Decoder } from '../src/mime/base64.js';
import type { ChunkDecoder } from '../src/mime/chunk-decoder.js';
import { QpDecoder } from '../src/mime/qp.js';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput, type ExtractedPart, type Extraction, type MimeLimits } from '../src/mime/index.js';
import { eicar } from './helpers/eicar.js';
import * as mail from './helpers/mail.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/mime/', import.meta.url));

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'avfilter-mime-test-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Extracts `msg` (fed in chunks of `chunkSize`), hands the result to `fn`, then disposes. */
async function extract<T>(msg: Buffer, fn: (x: Extraction) => Promise<T> | T, limits: Partial<MimeLimits> = {}, chunkSize = 65536): Promise<T> {
  return withTmp(async (dir) => {
    const chunks: Buffer[] = [];
    for (let i = 0; i < msg.length; i += chunkSize) chunks.push(msg.subarray(i, i + chunkSize));
    const x = await extractParts(MessageInput.fromStream(Readable.from(chunks)), { limits: { ...DEFAULT_MIME_LIMITS, ...limits }, tmpdir: dir });
    try {
      return await fn(x);
    } finally {
      await x.dispose();
    }
  });
}

function byPath(x: Extraction, path: string): ExtractedPart {
  const p = x.parts.find((q) => q.path === path);
  assert.ok(p, `no part ${path}; have ${x.parts.map((q) => q.path).join(', ')}`);
  return p;
}

async function sha256(s: NodeJS.ReadableStream): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return h.digest('hex');
}

// ---------- pure decoders, input split at every offset ----------

function decodeSplit(make: () => ChunkDecoder, input: Buffer, at: number[]): Buffer {
  const d = make();
  const out: Buffer[] = [];
  let prev = 0;
  for (const cut of [...at, input.length]) {
    out.push(Buffer.from(d.update(input.subarray(prev, cut))));
    prev = cut;
  }
  out.push(d.final());
  return Buffer.concat(out);
}

function assertEveryOffset(make: () => ChunkDecoder, input: Buffer, expected: Buffer): void {
  assert.deepEqual(decodeSplit(make, input, []), expected, 'whole input');
  for (let i = 0; i <= input.length; i++) {
    assert.deepEqual(decodeSplit(make, input, [i]), expected, `split at ${i}`);
  }
  for (let i = 0; i + 1 <= input.length; i++) {
    assert.deepEqual(decodeSplit(make, input, [i, i + 1]), expected, `one-byte chunk at ${i}`);
  }
}

test('base64: strict input, every split offset', () => {
  const data = mail.pseudoRandom(200, 3);
  assertEveryOffset(() => new Base64Decoder(), Buffer.from(mail.base64Lines(data, 76, '\r\n')), data);
});

test('base64: junk characters, whitespace, bare CR, odd line lengths', () => {
  const data = mail.pseudoRandom(61, 5);
  const b64 = data.toString('base64');
  // junk after every 7th character and line ends of every kind
  let noisy = '';
  for (let i = 0; i < b64.length; i++) noisy += b64[i] + (i % 7 === 6 ? ['*', ' \t', '\r', '\n', '\r\n', '!~', '\u00e9'][i % 7]! : '');
  assertEveryOffset(() => new Base64Decoder(), Buffer.from(noisy, 'latin1'), data);
});

test('base64: missing padding at the end, and a padded group in the middle', () => {
  for (const n of [1, 2, 3, 4, 5]) {
    const data = mail.pseudoRandom(n, 9 + n);
    const unpadded = data.toString('base64').replace(/=+$/, '');
    assertEveryOffset(() => new Base64Decoder(), Buffer.from(unpadded + '\n'), data);
  }
  // two encodings glued together: "=" ends the first group, decoding resumes after it
  const a = Buffer.from('ab');
  const b = Buffer.from('cde');
  assertEveryOffset(() => new Base64Decoder(), Buffer.from(a.toString('base64') + b.toString('base64')), Buffer.concat([a, b]));
});

test('base64: a lone trailing character makes no byte', () => {
  assert.deepEqual(decodeSplit(() => new Base64Decoder(), Buffer.from('QUJD\nR'), []), Buffer.from('ABC'));
});

test('quoted-printable: upper and lower case hex, soft breaks with CRLF, LF, bare CR and padding', () => {
  const input = Buffer.from('a=3Db=3db=\r\nc=\nd=\re=  \t\nf =E9=e9\r\nlast=', 'latin1');
  const expected = Buffer.from('a=b=bcdef \u00e9\u00e9\r\nlast=', 'latin1');
  assertEveryOffset(() => new QpDecoder(), input, expected);
});

test('quoted-printable: invalid escapes stay literal', () => {
  const input = Buffer.from('=ZZ =4 =4G x= y =', 'latin1');
  assertEveryOffset(() => new QpDecoder(), input, Buffer.from('=ZZ =4 =4G x= y =', 'latin1'));
});

test('quoted-printable: a padding run longer than a line keeps the "=" and stays bounded', () => {
  const pad = ' '.repeat(2000);
  const d = new QpDecoder();
  // each result is valid until the next call (ChunkDecoder): copied before the next one
  const out = Buffer.concat([Buffer.from(d.update(Buffer.from('a=' + pad))), Buffer.from(d.update(Buffer.from('\nb'))), d.final()]);
  assert.equal(out.toString('latin1'), 'a=' + pad + '\nb');
});

test('quoted-printable: round trip of random bytes through the test encoder', () => {
  const data = mail.pseudoRandom(300, 21);
  const enc = Buffer.from(mail.qpEncode(data, { lowerHex: true }), 'latin1');
  assertEveryOffset(() => new QpDecoder(), enc, data);
});

// ---------- extraction ----------

test('single-part message: its body is part "1"', async () => {
  const msg = mail.message(mail.textPart('just text\n'));
  await extract(msg, async (x) => {
    assert.equal(x.limit, undefined);
    assert.equal(x.parts.length, 1);
    const p = byPath(x, '1');
    assert.equal(p.contentType, 'text/plain');
    assert.equal(p.encoding, '7bit');
    assert.equal(p.reading, 'standard');
    assert.equal((await p.source.buffer()).toString(), 'just text\n');
    assert.equal(p.size, 10);
  });
});

test('Courier sample 01-clean parses to one text part', async () => {
  const data = await readFile(join(FIXTURES, '01-clean-data'));
  await extract(data, async (x) => {
    assert.equal(x.limit, undefined);
    assert.deepEqual(x.parts.map((p) => [p.path, p.contentType, p.encoding]), [['1', 'text/plain', '7bit']]);
    assert.equal((await x.parts[0]!.source.buffer()).toString(), 'Hello,\nthis is a clean test message.\n');
  });
});

test('Courier sample 03-dsn (no MIME headers, dot lines) parses to one text part', async () => {
  const data = await readFile(join(FIXTURES, '03-dsn-nullsender-3rcpt-dots-data'));
  await extract(data, async (x) => {
    assert.equal(x.limit, undefined);
    assert.equal(x.parts.length, 1);
    const body = (await x.parts[0]!.source.buffer()).toString();
    assert.equal(body, 'line one\n.line starting with a dot (dot-stuffed on the wire)\n..two dots\nlast line\n');
  });
});

test('multipart/mixed with a base64 attachment: decoded bytes equal the original', async () => {
  const payload = mail.pseudoRandom(10_000, 42);
  for (const eol of ['\n', '\r\n'] as const) {
    const msg = mail.message(mail.multipart([mail.textPart('see attached', { eol }), mail.attachment(payload, { cte: 'base64', filename: 'data.bin', eol })], { eol }), { eol });
    await extract(msg, async (x) => {
      assert.equal(x.limit, undefined);
      assert.deepEqual(x.parts.map((p) => p.path), ['1', '2']);
      const p = byPath(x, '2');
      assert.equal(p.encoding, 'base64');
      assert.equal(p.filename, 'data.bin');
      assert.equal(p.contentType, 'application/octet-stream');
      assert.equal(p.size, payload.length);
      assert.deepEqual(await p.source.buffer(), payload);
      assert.equal((await byPath(x, '1').source.buffer()).toString(), 'see attached');
    }, {}, 1000);
  }
});

test('the input split at every offset gives the same parts', async () => {
  const payload = mail.pseudoRandom(300, 77);
  const msg = mail.message(mail.multipart([mail.textPart('t=C3=A9', { cte: 'quoted-printable' }), mail.attachment(payload, { cte: 'base64', filename: 'x' })]));
  const expected = await extract(msg, async (x) => Promise.all(x.parts.map(async (p) => [p.path, (await p.source.buffer()).toString('hex')])));
  for (const size of [1, 2, 3, 7, 64, 333]) {
    const got = await extract(msg, async (x) => Promise.all(x.parts.map(async (p) => [p.path, (await p.source.buffer()).toString('hex')])), {}, size);
    assert.deepEqual(got, expected, `chunk size ${size}`);
  }
});

test('quoted-printable attachment with lowercase hex and soft breaks', async () => {
  const payload = mail.pseudoRandom(500, 8);
  const qp = mail.qpEncode(payload, { lowerHex: true, lineLen: 40 });
  const node: mail.MailNode = {
    headers: ['Content-Type: application/octet-stream', 'Content-Transfer-Encoding: Quoted-Printable', 'Content-Disposition: attachment; filename=q.bin'],
    body: Buffer.from(qp, 'latin1'),
  };
  await extract(mail.message(mail.multipart([mail.textPart('x'), node])), async (x) => {
    const p = byPath(x, '2');
    assert.equal(p.encoding, 'quoted-printable');
    assert.deepEqual(await p.source.buffer(), payload);
  });
});

test('8bit, binary and unknown encodings pass through unchanged; a missing CTE is 7bit (an unknown one is also read under the other decodings)', async () => {
  const bytes = Buffer.from([0x00, 0xff, 0x80, 0x41, 0x3d, 0x0d, 0x42]);
  const parts = [
    mail.attachment(bytes, { cte: '8bit', filename: 'a' }),
    mail.attachment(Buffer.concat([bytes, Buffer.from('b')]), { cte: 'binary', filename: 'b' }),
    mail.attachment(Buffer.concat([bytes, Buffer.from('c')]), { cte: 'X-Weird', filename: 'c' }),
    { headers: ['Content-Type: application/octet-stream'], body: Buffer.concat([bytes, Buffer.from('d')]) },
  ];
  await extract(mail.message(mail.multipart(parts)), async (x) => {
    assert.deepEqual(x.parts.filter((p) => p.reading === 'standard').map((p) => p.encoding), ['8bit', 'binary', 'x-weird', '7bit']);
    assert.deepEqual(await byPath(x, '1').source.buffer(), bytes);
    assert.deepEqual(await byPath(x, '3').source.buffer(), Buffer.concat([bytes, Buffer.from('c')]));
    // the unknown token's other decodings are extra readings of part 3 (lenient/walk.ts)
    const others = x.parts.filter((p) => p.reading !== 'standard');
    assert.ok(others.length > 0 && others.every((p) => p.path === '3'), others.map((p) => `${p.path} ${p.reading}`).join(', '));
    for (const r of ['unknown-CTE-qp', 'unknown-CTE-base64']) assert.ok(others.some((p) => p.reading === r), `no ${r} reading`);
  });
});

test('lenient base64 in a message: junk, no padding, LF and CRLF line ends', async () => {
  const payload = mail.pseudoRandom(1000, 11); // 1000 bytes: the encoding ends in "="
  const b64 = payload.toString('base64').replace(/=+$/, '');
  for (const eol of ['\n', '\r\n']) {
    let body = '';
    for (let i = 0; i < b64.length; i += 60) body += b64.slice(i, i + 60).replace(/(.{9})/g, '$1*') + ' !' + eol;
    const node: mail.MailNode = { headers: ['Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64'], body: Buffer.from(body) };
    await extract(mail.message(mail.multipart([node], { eol: eol as mail.Eol }), { eol: eol as mail.Eol }), async (x) => {
      assert.equal(x.limit, undefined);
      assert.deepEqual(await byPath(x, '1').source.buffer(), payload);
    });
  }
});

test('nested message/rfc822 two levels deep: IMAP numbering, attachment at 2.2.2', async () => {
  const deepPayload = mail.pseudoRandom(3000, 99);
  const innermost = mail.message(mail.multipart([mail.textPart('innermost text'), mail.attachment(deepPayload, { cte: 'base64', filename: 'deep.bin' })]));
  const middle = mail.message(mail.multipart([mail.textPart('middle text'), mail.messagePart(innermost)]));
  const msg = mail.message(mail.multipart([mail.textPart('outer text'), mail.messagePart(middle, { cte: 'base64', disposition: 'attachment; filename="fwd.eml"' })]));
  await extract(msg, async (x) => {
    assert.equal(x.limit, undefined);
    assert.deepEqual(x.parts.map((p) => `${p.path} ${p.contentType}`), [
      '1 text/plain',
      '2 message/rfc822',
      '2.1 text/plain',
      '2.2 message/rfc822',
      '2.2.1 text/plain',
      '2.2.2 application/octet-stream',
    ]);
    assert.deepEqual(await byPath(x, '2').source.buffer(), middle, 'the attached message itself is a part, decoded');
    assert.equal(byPath(x, '2').filename, 'fwd.eml');
    assert.deepEqual(await byPath(x, '2.2').source.buffer(), innermost);
    assert.deepEqual(await byPath(x, '2.2.2').source.buffer(), deepPayload);
    assert.equal(byPath(x, '2.2.2').filename, 'deep.bin');
  });
});

test('message/global and a single-part attached message: body at P.1', async () => {
  const inner = mail.message(mail.textPart('inside global'));
  const msg = mail.message(mail.multipart([mail.messagePart(inner, { contentType: 'message/global', cte: 'quoted-printable' })]));
  await extract(msg, async (x) => {
    assert.deepEqual(x.parts.map((p) => p.path), ['1', '1.1']);
    assert.equal((await byPath(x, '1.1').source.buffer()).toString(), 'inside global');
  });
});

test('a comment in Content-Type does not hide an attached message', async () => {
  const inner = mail.message(mail.textPart('inner body'));
  const node: mail.MailNode = { headers: ['Content-Type: Message/RFC822 (forwarded)'], body: inner };
  await extract(mail.message(mail.multipart([node])), async (x) => {
    assert.equal(byPath(x, '1').contentType, 'message/rfc822');
    assert.equal((await byPath(x, '1.1').source.buffer()).toString(), 'inner body');
  });
});

test('regression: a message whose bytes came first as a plain attachment is still walked', async () => {
  const payload = mail.pseudoRandom(700, 31);
  const inner = mail.message(mail.multipart([mail.attachment(payload, { cte: 'base64', filename: 'in.bin' })]));
  const msg = mail.message(mail.multipart([
    mail.attachment(inner, { cte: 'base64', filename: 'decoy.bin' }),
    mail.messagePart(inner, { cte: 'quoted-printable' }),
    mail.messagePart(inner),
  ]));
  await extract(msg, async (x) => {
    assert.deepEqual(x.parts.map((p) => p.path), ['1', '2.1']);
    assert.deepEqual(await byPath(x, '2.1').source.buffer(), payload);
  });
});

test('RFC 2231 and RFC 2047 filenames are decoded', async () => {
  const parts = [
    mail.attachment(Buffer.from('a'), { cte: '7bit', disposition: "attachment; filename*0*=utf-8''%E2%82%AC%20rates; filename*1*=%20report.txt" }),
    mail.attachment(Buffer.from('b'), { cte: '7bit', contentType: 'application/pdf; name="=?UTF-8?B?0YHRh9C10YIucGRm?="', disposition: 'attachment' }),
    mail.attachment(Buffer.from('c'), { cte: '7bit', disposition: 'attachment; filename="=?ISO-8859-1?Q?r=E9sum=E9?=.doc"' }),
    mail.attachment(Buffer.from('d'), { cte: '7bit', disposition: "attachment; filename*=iso-8859-1'en'%E9t%E9.txt" }),
    mail.attachment(Buffer.from('e'), { cte: '7bit', disposition: 'attachment' }),
  ];
  await extract(mail.message(mail.multipart(parts)), async (x) => {
    assert.deepEqual(x.parts.map((p) => p.filename), ['€ rates report.txt', 'счет.pdf', 'résumé.doc', 'été.txt', undefined]);
    assert.equal(byPath(x, '2').contentType, 'application/pdf');
  });
});

test('identical content is kept once, with the first part\'s metadata', async () => {
  const payload = mail.pseudoRandom(2000, 5);
  const msg = mail.message(mail.multipart([
    mail.attachment(payload, { cte: 'base64', filename: 'first.bin' }),
    mail.attachment(payload, { cte: 'quoted-printable', filename: 'second.bin' }),
    mail.attachment(payload, { cte: 'base64', filename: 'third.bin' }),
  ]));
  await extract(msg, async (x) => {
    assert.equal(x.parts.length, 1);
    assert.equal(x.parts[0]!.path, '1');
    assert.equal(x.parts[0]!.filename, 'first.bin');
  });
});

test('EICAR built at run time: base64 attachment, and inside a base64 attached message', async () => {
  const att = mail.attachment(eicar(), { cte: 'base64', filename: 'eicar.com' });
  const inner = mail.message(mail.multipart([mail.textPart('fwd'), mail.attachment(eicar(), { cte: 'quoted-printable', filename: 'e.txt' })]));
  const msg = mail.message(mail.multipart([mail.textPart('hi'), att, mail.messagePart(inner, { cte: 'base64' })]));
  await extract(msg, async (x) => {
    assert.deepEqual(await byPath(x, '2').source.buffer(), eicar());
    // the same bytes inside the attached message were de-duplicated away
    assert.equal(x.parts.filter((p) => p.size === eicar().length).length, 1);
    assert.ok(x.parts.some((p) => p.path === '3.1'));
  });
});

test('a multipart without a usable boundary is scanned as a leaf (fail closed)', async () => {
  const noParam: mail.MailNode = { headers: ['Content-Type: multipart/mixed'], body: Buffer.from('hidden body\n') };
  await extract(mail.message(noParam), async (x) => {
    assert.equal((await byPath(x, '1').source.buffer()).toString(), 'hidden body\n');
  });
  const wrongBoundary: mail.MailNode = { headers: ['Content-Type: multipart/mixed; boundary=aaa'], body: Buffer.from('--bbb\nContent-Type: text/plain\n\nsecret\n--bbb--\n') };
  await extract(mail.message(mail.multipart([mail.textPart('one'), wrongBoundary])), async (x) => {
    assert.match((await byPath(x, '2').source.buffer()).toString(), /secret/);
  });
});

test('missing close delimiter: the last part runs to the end', async () => {
  const payload = mail.pseudoRandom(100, 3);
  await extract(mail.message(mail.multipart([mail.textPart('a'), mail.attachment(payload, { cte: 'base64' })], { noClose: true })), async (x) => {
    assert.equal(x.limit, undefined);
    assert.deepEqual(await byPath(x, '2').source.buffer(), payload);
  });
});

test('empty input and garbage do not throw', async () => {
  await extract(Buffer.alloc(0), (x) => {
    assert.equal(x.limit, undefined);
    assert.deepEqual(x.parts.map((p) => [p.path, p.size]), [['1', 0]]);
  });
  await extract(mail.pseudoRandom(100_000, 1234), (x) => {
    assert.equal(x.limit, undefined);
    assert.ok(x.parts.length >= 1);
  });
});

// ---------- limits ----------

test('depth limit: nested multiparts and nested messages', async () => {
  let node = mail.textPart('bottom');
  for (let i = 0; i < 8; i++) node = mail.multipart([node]);
  const msg = mail.message(node);
  await extract(msg, (x) => assert.equal(x.limit, undefined), { maxDepth: 8 }); // the leaf is 1.1.1.1.1.1.1.1
  await extract(msg, (x) => assert.equal(x.limit?.code, 'EMIME_DEPTH_LIMIT'), { maxDepth: 7 });

  let m = mail.message(mail.textPart('bottom'));
  for (let i = 0; i < 4; i++) m = mail.message(mail.multipart([mail.messagePart(m)]));
  // four attached messages, one in the other: the innermost body is 1.1.1.1.1
  await extract(m, async (x) => {
    assert.equal(x.limit, undefined);
    assert.equal((await byPath(x, '1.1.1.1.1').source.buffer()).toString(), 'bottom');
  }, { maxDepth: 5 });
  await extract(m, (x) => assert.equal(x.limit?.code, 'EMIME_DEPTH_LIMIT'), { maxDepth: 4 });
});

test('part limit: exact count passes, one more fails, parts so far are kept', async () => {
  const children = Array.from({ length: 5 }, (_, i) => mail.textPart(`part ${i}`));
  const msg = mail.message(mail.multipart(children)); // 6 nodes: the multipart and 5 leaves
  await extract(msg, (x) => {
    assert.equal(x.limit, undefined);
    assert.equal(x.parts.length, 5);
  }, { maxParts: 6 });
  await extract(msg, (x) => {
    assert.equal(x.limit?.code, 'EMIME_PART_LIMIT');
    assert.equal(x.parts.length, 4);
  }, { maxParts: 5 });
});

test('decoded bytes limit counts across parts', async () => {
  const msg = mail.message(mail.multipart([
    mail.attachment(mail.pseudoRandom(30_000, 1), { cte: 'base64' }),
    mail.attachment(mail.pseudoRandom(30_000, 2), { cte: 'base64' }),
  ]));
  await extract(msg, (x) => assert.equal(x.limit, undefined), { maxDecodedBytes: 60_000 });
  await extract(msg, (x) => {
    assert.equal(x.limit?.code, 'EMIME_DECODED_LIMIT');
    // the part that crossed the limit is kept, cut short: a virus in it still counts
    assert.deepEqual(x.parts.map((p) => [p.path, p.size <= 30_000]), [['1', true], ['2', true]]);
    assert.ok(x.parts[1]!.size < 30_000);
  }, { maxDecodedBytes: 59_999 });
});

test('header size limit: top-level block, a part\'s block, and one endless header line', async () => {
  const big = 'X-Filler: ' + 'a'.repeat(70) + '\n';
  const topHeavy: mail.MailNode = { headers: [...Array.from({ length: 100 }, () => big.trimEnd()), 'Content-Type: text/plain'], body: Buffer.from('x') };
  await extract(mail.message(topHeavy), (x) => assert.equal(x.limit?.code, 'EMIME_HEADER_LIMIT'), { maxHeaderBytes: 4096 });
  await extract(mail.message(topHeavy), (x) => assert.equal(x.limit, undefined), { maxHeaderBytes: 16384 });

  const heavyPart = mail.attachment(Buffer.from('y'), { cte: '7bit', headers: Array.from({ length: 100 }, () => big.trimEnd()) });
  await extract(mail.message(mail.multipart([mail.textPart('ok'), heavyPart])), (x) => {
    assert.equal(x.limit?.code, 'EMIME_HEADER_LIMIT');
    assert.deepEqual(x.parts.map((p) => p.path), ['1']);
  }, { maxHeaderBytes: 4096 });

  const endless = Buffer.from('Subject: ' + 'z'.repeat(200_000));
  await extract(endless, (x) => assert.equal(x.limit?.code, 'EMIME_HEADER_LIMIT'), { maxHeaderBytes: 4096 });
});

test('a read error of the input is a limit (EMIME_IO), not a throw', async () => {
  await withTmp(async (dir) => {
    const x = await extractParts(MessageInput.fromStream(createReadStream(join(dir, 'missing'))), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
    assert.equal(x.limit?.code, 'EMIME_IO');
    await x.dispose();
  });
});

test('a temp file that cannot be created is a limit (EMIME_IO); smaller parts are kept', async () => {
  await withTmp(async (dir) => {
    const msg = mail.message(mail.multipart([mail.textPart('small'), mail.attachment(mail.pseudoRandom(5000, 1), { cte: 'base64' })]));
    const x = await extractParts(MessageInput.fromStream(Readable.from([msg])), { limits: { ...DEFAULT_MIME_LIMITS, memoryPartBytes: 1000 }, tmpdir: join(dir, 'no-such-parent', 'tmp') });
    assert.equal(x.limit?.code, 'EMIME_IO');
    assert.deepEqual(x.parts.map((p) => p.path), ['1']);
    await x.dispose();
  });
});

test('invalid limits are a caller error', async () => {
  await assert.rejects(
    extractParts(MessageInput.fromStream(Readable.from([])), { limits: { ...DEFAULT_MIME_LIMITS, maxParts: Number.NaN }, tmpdir: tmpdir() }),
    (e: { code?: string }) => e.code === 'ERR_INVALID_ARG_VALUE',
  );
});

// ---------- temp files, abort, memory ----------

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(p, ...(await listFiles(p)));
    else out.push(p);
  }
  return out;
}

test('a 20 MB part spills to a private temp file; dispose() removes it', async () => {
  await withTmp(async (dir) => {
    const msgPath = join(dir, 'msg.eml');
    const digest = await mail.writeLargeBase64Message(msgPath, 20 * 1024 * 1024);
    const work = join(dir, 'work');
    await mkdir(work);
    const x = await extractParts(MessageInput.fromFile(msgPath), { limits: DEFAULT_MIME_LIMITS, tmpdir: work });
    assert.equal(x.limit, undefined);
    const big = byPath(x, '2');
    assert.equal(big.size, 20 * 1024 * 1024);
    assert.equal(await sha256(big.source.stream()), digest);

    const entries = await listFiles(work);
    const dirs = entries.filter((p) => !p.includes('part-'));
    const files = entries.filter((p) => p.includes('part-'));
    assert.equal(dirs.length, 1, 'one private directory');
    assert.equal(files.length, 1, 'only the large part spilled');
    assert.equal((await stat(dirs[0]!)).mode & 0o777, 0o700);
    const st = await stat(files[0]!);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.size, 20 * 1024 * 1024);

    await x.dispose();
    assert.deepEqual(await readdir(work), []);
    await x.dispose(); // idempotent
  });
});

test('memoryPartBytes decides memory vs file', async () => {
  await withTmp(async (dir) => {
    const msg = mail.message(mail.multipart([mail.textPart('small'), mail.attachment(mail.pseudoRandom(5000, 1), { cte: 'base64' })]));
    const x = await extractParts(MessageInput.fromStream(Readable.from([msg])), { limits: { ...DEFAULT_MIME_LIMITS, memoryPartBytes: 4096 }, tmpdir: dir });
    const files = (await listFiles(dir)).filter((p) => p.includes('part-'));
    assert.equal(files.length, 1);
    assert.equal((await stat(files[0]!)).size, 5000);
    await x.dispose();
    assert.deepEqual(await readdir(dir), []);
  });
});

test('abort: rejects with EABORTED and leaves no temp files', async () => {
  await withTmp(async (dir) => {
    const head = Buffer.from(
      'Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n',
    );
    const line = Buffer.from(mail.pseudoRandom(57 * 100, 4).toString('base64').replace(/(.{76})/g, '$1\n') + '\n');
    let sent = 0;
    // an input that never ends, like a stalled data file read
    const input = new Readable({
      read() {
        if (sent++ === 0) this.push(head);
        else if (sent < 50) this.push(line);
      },
    });
    const ac = new AbortController();
    const p = extractParts(MessageInput.fromStream(input), { limits: { ...DEFAULT_MIME_LIMITS, memoryPartBytes: 0 }, tmpdir: dir, signal: ac.signal });
    for (let i = 0; i < 200 && (await listFiles(dir)).filter((f) => f.includes('part-')).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await listFiles(dir)).filter((f) => f.includes('part-')).length, 1, 'a part was being spilled');
    // abort only once the input has stalled: everything it had is read and nothing more comes
    for (let i = 0; i < 500 && sent < 50; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(sent >= 50, 'the input was read up to its stall');
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    await assert.rejects(p, (e: { code?: string }) => e.code === 'EABORTED');
    assert.deepEqual(await readdir(dir), []);
    assert.ok(input.destroyed, 'the input was released');
  });
});

test('deep nesting under a signal: no MaxListenersExceededWarning', async () => {
  let m = mail.message(mail.textPart('bottom'));
  for (let i = 0; i < 18; i++) m = mail.message(mail.multipart([mail.messagePart(m)]));
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    await withTmp(async (dir) => {
      const x = await extractParts(MessageInput.fromStream(Readable.from([m])), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir, signal: new AbortController().signal });
      assert.equal(x.limit, undefined);
      assert.equal(x.parts.at(-1)!.path, Array(19).fill('1').join('.'));
      await x.dispose();
    });
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings, []);
});

test('abort before the start rejects at once', async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(extractParts(MessageInput.fromStream(Readable.from([Buffer.from('x')])), { limits: DEFAULT_MIME_LIMITS, tmpdir: tmpdir(), signal: ac.signal }), (e: { code?: string }) => e.code === 'EABORTED');
});

test('peak memory: a 50 MB base64 attachment is streamed, not held', async () => {
  await withTmp(async (dir) => {
    const size = 50 * 1024 * 1024;
    const msgPath = join(dir, 'big.eml');
    const digest = await mail.writeLargeBase64Message(msgPath, size);
    const msgSize = (await stat(msgPath)).size;
    (globalThis as { gc?: () => void }).gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    const x = await extractParts(MessageInput.fromFile(msgPath), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().rss);
    try {
      assert.equal(x.limit, undefined);
      assert.equal(byPath(x, '2').size, size);
      assert.equal(await sha256(byPath(x, '2').source.stream()), digest);
      const growth = peak - base;
      assert.ok(growth < msgSize / 3, `rss grew by ${(growth / 1048576).toFixed(1)} MiB for a ${(msgSize / 1048576).toFixed(1)} MiB message`);
    } finally {
      await x.dispose();
    }
  });
});
