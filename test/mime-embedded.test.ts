/**
 * The embedded post-pass (src/mime/embedded) beyond one level: finds read again down to
 * MAX_EMBEDDED_DEPTH, messages found inside walked (and their parts read again),
 * begin-base64 blocks in text bodies, percent-encoded data: URIs; and clean look-alikes that
 * must give no extra part. Through extractParts on generated messages; EICAR at run time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MAX_EMBEDDED_DEPTH } from '../src/mime/embedded/index.js';
import { looksLikeMessage } from '../src/mime/embedded/message.js';
import { PercentDecoder } from '../src/mime/embedded/percent.js';
import { MIN_DATA_URI_BYTES } from '../src/mime/embedded/scan.js';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput, type ExtractedPart, type MimeLimits } from '../src/mime/index.js';
import { uuencode, yencode } from './helpers/corpus.js';
import { eicar } from './helpers/eicar.js';
import * as mail from './helpers/mail.js';

interface Got {
  path: string;
  reading: string;
  filename: string | undefined;
  bytes: Buffer;
}

async function extract(msg: Buffer, limits: Partial<MimeLimits> = {}): Promise<{ parts: Got[]; limit: string | undefined }> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-embedded-'));
  try {
    const x = await extractParts(MessageInput.fromStream(Readable.from([msg])), { limits: { ...DEFAULT_MIME_LIMITS, ...limits }, tmpdir: dir });
    try {
      const parts: Got[] = [];
      for (const p of x.parts as ExtractedPart[]) parts.push({ path: p.path, reading: p.reading, filename: p.filename, bytes: await p.source.buffer() });
      return { parts, limit: x.limit?.code };
    } finally {
      await x.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The part holding exactly `payload`, as [path, reading, filename]. */
function whereIs(parts: Got[], payload: Buffer): Array<[string, string, string | undefined]> {
  return parts.filter((p) => p.bytes.equals(payload)).map((p) => [p.path, p.reading, p.filename]);
}

const text = (body: string, cte: '7bit' | 'quoted-printable' = '7bit'): Buffer => mail.message(mail.textPart(body, { cte }));
const latin1 = (b: Buffer): string => b.toString('latin1');

test('recursion: uuencode inside uuencode is found, with the inner name', async () => {
  const E = eicar();
  const { parts, limit } = await extract(text('outer:\n' + uuencode(Buffer.from('inner:\n' + uuencode(E, 'invoice.com'), 'latin1'), 'outer.txt')));
  assert.equal(limit, undefined);
  assert.deepEqual(whereIs(parts, E), [['1/uuencode1/uuencode1', 'uuencode', 'invoice.com']]);
});

test('recursion: yEnc inside uuencode, and an HTML file inside uuencode holding a data: URI', async () => {
  const E = eicar();
  const y = await extract(text(uuencode(Buffer.from('news\n' + yencode(E, 'invoice.com'), 'latin1'), 'post.txt')));
  assert.deepEqual(whereIs(y.parts, E), [['1/uuencode1/yenc1', 'yenc', 'invoice.com']]);
  const html = `<html><body><img src="data:application/octet-stream;base64,${E.toString('base64')}"></body></html>\n`;
  const h = await extract(text('page attached\n' + uuencode(Buffer.from(html, 'latin1'), 'page.html')));
  assert.deepEqual(whereIs(h.parts, E), [['1/uuencode1/data-uri1', 'data-uri', undefined]]);
});

test(`recursion: finds are read ${MAX_EMBEDDED_DEPTH} levels deep; deeper ones are kept, and one that holds more is EMIME_EMBED_DEPTH`, async () => {
  const E = eicar();
  const nest = (levels: number): Buffer => {
    let body = E;
    for (let i = levels; i >= 1; i--) body = Buffer.from(`level ${i}\n` + uuencode(body, `l${i}.txt`), 'latin1');
    return text(latin1(body));
  };
  const path = (n: number): string => `1/${Array.from({ length: n }, () => 'uuencode1').join('/')}`;
  const atLimit = await extract(nest(MAX_EMBEDDED_DEPTH));
  assert.equal(atLimit.limit, undefined);
  assert.deepEqual(whereIs(atLimit.parts, E), [[path(MAX_EMBEDDED_DEPTH), 'uuencode', `l${MAX_EMBEDDED_DEPTH}.txt`]]);
  // the last level's finds are read, so one more level is still found, with nothing left unread
  const oneMore = await extract(nest(MAX_EMBEDDED_DEPTH + 1));
  assert.equal(oneMore.limit, undefined);
  assert.deepEqual(whereIs(oneMore.parts, E), [[path(MAX_EMBEDDED_DEPTH + 1), 'uuencode', `l${MAX_EMBEDDED_DEPTH + 1}.txt`]]);
  // two more: the deepest item kept still holds an encoding that was not read: a limit, never clean
  const beyond = await extract(nest(MAX_EMBEDDED_DEPTH + 2));
  assert.equal(beyond.limit, 'EMIME_EMBED_DEPTH');
  assert.ok(beyond.parts.some((p) => p.path === path(MAX_EMBEDDED_DEPTH + 1) && latin1(p.bytes).startsWith(`level ${MAX_EMBEDDED_DEPTH + 2}\nbegin 644`)));
  // a message found below the last level is not walked: a limit too
  const eml = mail.message(mail.attachment(E, { cte: 'base64', filename: 'x.com' }));
  let body = eml;
  for (let i = MAX_EMBEDDED_DEPTH + 1; i >= 1; i--) body = Buffer.from(`level ${i}\n` + uuencode(body, `l${i}.txt`), 'latin1');
  assert.equal((await extract(text(latin1(body)))).limit, 'EMIME_EMBED_DEPTH');
});

test('EICAR 6 levels deep in begin-base64 blocks is EMIME_EMBED_DEPTH, never clean (the post-pass once stopped at 4 and called the rest clean)', async () => {
  const E = eicar();
  let body = E;
  for (let i = 6; i >= 1; i--) body = Buffer.from(`level ${i}\nbegin-base64 644 l${i}.txt\n${mail.base64Lines(body)}====\n`, 'latin1');
  const { parts, limit } = await extract(text(latin1(body)));
  assert.equal(limit, 'EMIME_EMBED_DEPTH');
  assert.deepEqual(whereIs(parts, E), [], 'the payload itself lies below what is read');
});

test('recursion respects the store limits: the part limit is reported, parts found before are kept', async () => {
  const E = eicar();
  // eight distinct files inside one uuencoded file: more parts than allowed
  let inner = '';
  for (let i = 0; i < 8; i++) inner += uuencode(Buffer.concat([E, Buffer.from(` copy ${i}`)]), `f${i}.com`);
  const msg = text(uuencode(Buffer.from(inner, 'latin1'), 'bundle.txt'));
  const { parts, limit } = await extract(msg, { maxParts: 4 });
  assert.equal(limit, 'EMIME_PART_LIMIT');
  assert.ok(parts.length <= 4, `${parts.length} parts`);
  assert.ok(parts.some((p) => p.path === '1/uuencode1/uuencode1'), 'the first inner file was kept');
});

/** A forwarded message: a text part and a base64 attachment holding `payload`. */
function forward(payload: Buffer, textCte: '7bit' | 'quoted-printable' = '7bit', note = 'see attached'): Buffer {
  return mail.message(mail.multipart([mail.textPart(note, { cte: textCte }), mail.attachment(payload, { cte: 'base64', filename: 'invoice.com' })]), { subject: 'fwd' });
}

test('a uuencoded .eml is walked as a message: its base64 attachment is a part', async () => {
  const E = eicar();
  const { parts, limit } = await extract(text('the forward:\n' + uuencode(forward(E), 'fwd.eml')));
  assert.equal(limit, undefined);
  assert.deepEqual(whereIs(parts, E), [['1/uuencode1.2', 'uuencode', 'invoice.com']]);
  assert.ok(parts.some((p) => p.path === '1/uuencode1' && p.filename === 'fwd.eml'), 'the .eml itself is a part too');
});

test('a message in a base64 data: URI is walked too (CRLF line ends)', async () => {
  const E = eicar();
  const eml = Buffer.from(latin1(forward(E)).replace(/\n/g, '\r\n'), 'latin1');
  const { parts } = await extract(mail.message(mail.textPart(`<a href="data:message/rfc822;base64,${eml.toString('base64')}">fwd</a>`)));
  assert.deepEqual(whereIs(parts, E), [['1/data-uri1.2', 'data-uri', 'invoice.com']]);
});

test('the parts of a message found inside get the post-pass: a QP text part holding uuencode', async () => {
  const E = eicar();
  // QP hides the uuencoded lines from a scan of the raw .eml: only the walk's decoded text shows them
  const eml = forward(Buffer.from('harmless attachment\n'), 'quoted-printable', 'here:\n' + uuencode(E, 'invoice.com'));
  assert.ok(!latin1(eml).includes('begin 644 invoice.com'), 'the test hides the uuencoding');
  const { parts } = await extract(text(uuencode(eml, 'fwd.eml')));
  assert.deepEqual(whereIs(parts, E), [['1/uuencode1.1/uuencode1', 'uuencode', 'invoice.com']]);
});

test('begin-base64 blocks in 7bit text: decoded up to "====", or to the end of the part', async () => {
  const E = eicar();
  const term = await extract(text(`Here:\nbegin-base64 644 invoice.com\n${mail.base64Lines(E, 60)}====\nmore text after the block\n`));
  assert.deepEqual(whereIs(term.parts, E), [['1/base64-block1', 'base64-block', 'invoice.com']]);
  const open = await extract(text(`Here:\nbegin-base64 600 invoice.com\n${mail.base64Lines(E, 20)}`));
  assert.deepEqual(whereIs(open.parts, E), [['1/base64-block1', 'base64-block', 'invoice.com']]);
  // in a quoted-printable part too (nothing base64-decoded it before)
  const qp = await extract(text(`begin-base64 644 invoice.com\n${mail.base64Lines(E)}====\n`, 'quoted-printable'));
  assert.deepEqual(whereIs(qp.parts, E), [['1/base64-block1', 'base64-block', 'invoice.com']]);
});

test('begin-base64 file names are sanitised as the others are', async () => {
  const E = eicar();
  const { parts } = await extract(text(`begin-base64 644 a\tb.com\n${mail.base64Lines(E)}====\n`));
  assert.deepEqual(whereIs(parts, E), [['1/base64-block1', 'base64-block', 'a b.com']]);
});

/** Percent-encodes every byte but letters and digits; lower-case hex. */
function pct(data: Buffer): string {
  let out = '';
  for (const b of data) out += /[A-Za-z0-9]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '%' + b.toString(16).padStart(2, '0');
  return out;
}

test('percent-encoded data: URIs, ended by a quote, ")", ">", whitespace or the end of the part', async () => {
  const E = eicar();
  for (const [wrap, what] of [
    [(u: string) => `<a href="${u}">x</a>`, 'double quote'],
    [(u: string) => `<a href='${u}'>x</a>`, 'single quote'],
    [(u: string) => `<style>a { background: url(${u}) }</style>`, 'CSS url()'],
    [(u: string) => `<${u}>`, '>'],
    [(u: string) => `see ${u} here`, 'space'],
    [(u: string) => `see\n${u}\nhere`, 'line end'],
    [(u: string) => `see ${u}`, 'end of part'],
  ] as const) {
    const body = wrap(`data:application/octet-stream;name=x,${pct(E)}`);
    const msg = mail.message({ headers: ['Content-Type: text/html'], body: Buffer.from(body, 'latin1') });
    const { parts } = await extract(msg);
    assert.deepEqual(whereIs(parts, E), [['1/data-uri1', 'data-uri', undefined]], what);
  }
  // bytes that need no escape are kept as they are; a "%" without two hex digits too
  const { parts } = await extract(mail.message({ headers: ['Content-Type: text/html'], body: Buffer.from('<a href="data:text/plain,100%25 sure%zz%4 and%2 more!">', 'latin1') }));
  assert.deepEqual(
    parts.filter((p) => p.reading === 'data-uri').map((p) => latin1(p.bytes)),
    [],
    'the URI ends at the space after "100%25": "100%" is too short for an item',
  );
  const kept = await extract(mail.message({ headers: ['Content-Type: text/html'], body: Buffer.from('<a href="data:,100%25-sure-%zz-%4-and-%2-m%6Fre%">', 'latin1') }));
  assert.deepEqual(kept.parts.filter((p) => p.reading === 'data-uri').map((p) => latin1(p.bytes)), ['100%-sure-%zz-%4-and-%2-more%']);
});

test('percent decoder: the same output wherever the input is split', () => {
  const input = Buffer.from('%41%4a%4A%%41%4%zz%g1%2', 'latin1');
  const expect = 'AJJ%A%4%zz%g1%2';
  const run = (cuts: number[]): string => {
    const d = new PercentDecoder();
    const out: Buffer[] = [];
    let prev = 0;
    for (const c of [...cuts, input.length]) {
      out.push(Buffer.from(d.update(input.subarray(prev, c))));
      prev = c;
    }
    out.push(d.final());
    return latin1(Buffer.concat(out));
  };
  assert.equal(run([]), expect);
  for (let i = 0; i <= input.length; i++) for (let j = i; j <= input.length; j++) assert.equal(run([i, j]), expect, `split at ${i}, ${j}`);
});

test('clean look-alikes: "begin-base64" without data, short and word-inside data: URIs give no extra part', async () => {
  const onlyText = async (msg: Buffer, what: string): Promise<void> => {
    const { parts, limit } = await extract(msg);
    assert.equal(limit, undefined, what);
    assert.deepEqual(parts.map((p) => p.reading), ['standard'], what);
  };
  await onlyText(text('To make a block, write begin-base64 and a mode.\nbegin-base64 is old.\nbegin-base64 644 notes.txt\n====\nend of the example\n'), 'begin-base64 without data');
  await onlyText(mail.message({ headers: ['Content-Type: text/html'], body: Buffer.from(`<a href="data:,${'x'.repeat(MIN_DATA_URI_BYTES - 1)}">tiny</a> <a href="data:text/plain,%41%42">AB</a>`, 'latin1') }), 'data: URIs under the minimum');
  await onlyText(text('Image metadata:exif,orientation-rotated-by-ninety-degrees-and-more\nFoodata:a,bbbbbbbbbbbbbbbbbbbbbbbbbbbb\n'), '"data:" inside a word');
});

test('clean look-alikes: header-looking text inside uuencode that is not a message is not walked', async () => {
  for (const [body, what] of [
    ['Subject: the minutes\nthese are the minutes of the meeting, no headers here\n\nmore text\n', 'a body line before any blank line'],
    ['Note: bring a pen\nPlace: room 4\n\nSee you there.\n', 'no field that only mail has'],
    [' From: indented\nSubject: x\n\nbody\n', 'the first line is not a field'],
    ['Subject: headers only, no blank line\nFrom: a@example.test\n', 'no blank line (and no body)'],
  ] as const) {
    const file = Buffer.from(body, 'latin1');
    const { parts } = await extract(text('notes:\n' + uuencode(file, 'notes.txt')));
    assert.deepEqual(parts.filter((p) => p.path.startsWith('1/uuencode1')).map((p) => [p.path, p.bytes.equals(file)]), [['1/uuencode1', true]], what);
  }
});

test('looksLikeMessage: header blocks of mail, with any line ends, and not much else', () => {
  const yes = ['From: a@example.test\nSubject: hi\n\nbody', 'X-Mailer: x\r\nMIME-Version: 1.0\r\n\r\n', 'Received: from x\n\tby y\nmessage-id: <1@x>\n\n', 'Content-Type: text/plain\r\rbody'];
  for (const s of yes) assert.equal(looksLikeMessage(Buffer.from(s, 'latin1'), false), 'yes', JSON.stringify(s));
  const no = ['', 'hello\n\n', 'Subject : spaced\n\n', 'X-Foo: bar\n\nbody', 'Subject: x\nnot a field\n\n', 'From nobody Mon Jan 1\nSubject: x\n\n', 'Subject: x'];
  for (const s of no) assert.equal(looksLikeMessage(Buffer.from(s, 'latin1'), false), 'no', JSON.stringify(s));
  // bytes that end inside a block of fields, more following: "yes" once a field only mail has
  // was seen, else "more" (read on: padding must not hide the deciding field)
  const pad = 'X-Pad: aaaaaaaaaaaaaaaa\n'.repeat(50);
  assert.equal(looksLikeMessage(Buffer.from(pad, 'latin1'), true), 'more');
  assert.equal(looksLikeMessage(Buffer.from(pad + 'From: a@example.test\n' + pad, 'latin1'), true), 'yes');
  assert.equal(looksLikeMessage(Buffer.from('X-Pad: ' + 'a'.repeat(5000), 'latin1'), true), 'more', 'a first field cut short');
  assert.equal(looksLikeMessage(Buffer.from(pad + 'not a field\n', 'latin1'), true), 'no');
  // a first line that is no `Name:` is "no" however long it runs (a binary, a text), and a name
  // is looked for in the first 1,024 bytes of the line only
  assert.equal(looksLikeMessage(Buffer.from('x'.repeat(60_000) + ': y\nFrom: a\n\n', 'latin1'), true), 'no');
  assert.equal(looksLikeMessage(Buffer.from('no name: here\nFrom: a\n\n', 'latin1'), true), 'no');
  assert.equal(looksLikeMessage(Buffer.from('From:' + 'x'.repeat(60_000) + '\nSubject: s\n\nbody', 'latin1'), false), 'yes', 'a long first field');
});

test('binary attachments are searched only for "begin" lines (a NUL in their first 4 KiB, or a media type): uuencode is found in any part, as clamd finds it; text types are read whole', async () => {
  const E = eicar();
  const inside = Buffer.from('\nnotes:\n' + uuencode(E, 'invoice.com'), 'latin1');
  const binary = Buffer.concat([Buffer.from([0x4d, 0x5a, 0x90, 0x00, 0x03, 0x00]), inside]);
  const yInside = Buffer.from('\nnotes:\n' + yencode(E, 'invoice.com'), 'latin1');
  const yBinary = Buffer.concat([Buffer.from([0x4d, 0x5a, 0x90, 0x00, 0x03, 0x00]), yInside]);
  const attach = (data: Buffer, contentType: string): Buffer =>
    mail.message(mail.multipart([mail.textPart('see attached'), mail.attachment(data, { cte: 'base64', contentType, filename: 'x.bin' })]));
  // uuencode inside an executable or an image: clamd decodes it (it was skipped)
  assert.deepEqual(whereIs((await extract(attach(binary, 'application/octet-stream'))).parts, E), [['2/uuencode1', 'uuencode', 'invoice.com']]);
  assert.deepEqual(whereIs((await extract(attach(inside, 'image/png'))).parts, E), [['2/uuencode1', 'uuencode', 'invoice.com']]);
  // the other encodings are not looked for in a binary: no "begin" line, no reading line by line
  assert.deepEqual(whereIs((await extract(attach(yBinary, 'application/octet-stream'))).parts, E), []);
  assert.deepEqual(whereIs((await extract(attach(yInside, 'image/png'))).parts, E), []);
  // the same bytes without the NUL are text a reader (or a user's uudecode) may undo
  assert.deepEqual(whereIs((await extract(attach(yInside, 'application/octet-stream'))).parts, E), [['2/yenc1', 'yenc', 'invoice.com']]);
  // labelled text, a reader shows it as text whatever it holds
  assert.deepEqual(whereIs((await extract(attach(yBinary, 'text/plain'))).parts, E), [['2/yenc1', 'yenc', 'invoice.com']]);
});
