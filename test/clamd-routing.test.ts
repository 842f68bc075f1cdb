/**
 * clamd gets every decoded part, whatever its own mail parser makes of the message: the
 * regression for routing that spared clamd the standard reading's parts ("clamd finds them in
 * the raw message by itself") and so let through what clamd's parser reads otherwise — a
 * quoted-printable soft break followed by blanks, a `;` inside a quoted boundary under a decoy,
 * a base64-encoded attached message (test/helpers/parser-divergence.ts generates each shape in
 * variants). Through `avfilter -t` with a real clamd as the only engine, in every raw_message
 * mode, and the trade-offs between them: "mail" lets clamd's mail signatures (target type 4)
 * see the message, "data" and "text" do not; all three scan the raw bytes with clamd's byte
 * signatures, except that "text" leaves out the base64 bodies of a message read one way only
 * (each is scanned decoded): a signature over base64 text there is what it gives up.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput } from '../src/mime/index.js';
import { MAIL_PREFIX } from '../src/engines/clamd/raw-message.js';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { eicar } from './helpers/eicar.js';
import { divergentMessages, readerDecodedMessages } from './helpers/parser-divergence.js';

const messages = divergentMessages();
let clamd: RunningClamd;
let dir: string;
const MAIL_SIG = 'Avfilter.Test.MailOnly';
const RAW_SIG = 'Avfilter.Test.HeaderBytes';
const MAIL_MARKER = 'mail-target-marker-7f3a';
const RAW_MARKER = 'raw-header-marker-91c2';
const B64_SIG = 'Avfilter.Test.Base64Text';
/** Decoded bytes whose base64 text (from the body's first byte) the B64_SIG signature matches. */
const B64_CONTENT = Buffer.from('zz-base64-text-marker-5e81-zz '.repeat(8));
const B64_TEXT = B64_CONTENT.toString('base64').slice(0, 40);

before(async () => {
  clamd = await startClamd();
  // a target-type-4 (mail) body signature, and a target-type-0 (any file) one
  await writeFile(join(clamd.dbDir, 'routing.ndb'),
    `${MAIL_SIG}:4:*:${Buffer.from(MAIL_MARKER).toString('hex')}\n${RAW_SIG}:0:*:${Buffer.from(RAW_MARKER).toString('hex')}\n` +
    `${B64_SIG}:0:*:${Buffer.from(B64_TEXT).toString('hex')}\n`);
  await clamd.reload();
  dir = await mkdtemp(join(tmpdir(), 'avf-routing-'));
  await mkdir(join(dir, 'work'), { mode: 0o700 });
  await mkdir(join(dir, 'msgs'));
});
after(async () => {
  await clamd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** clamd's own verdict on the raw message, presented as mail (what the old routing relied on). */
function clamdAlone(bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(clamd.socketPath);
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('end', () => resolve(out.replace(/\0/g, '').replace(/^stream: /, '')));
    s.on('error', reject);
    const body = Buffer.concat([MAIL_PREFIX, bytes]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    s.end(Buffer.concat([Buffer.from('zINSTREAM\0'), len, body, Buffer.alloc(4)]));
  });
}

async function scanWith(rawMessage: 'mail' | 'data' | 'text' | 'parts', files: ReadonlyMap<string, Buffer>): Promise<Map<string, string>> {
  const cfg = join(dir, `avfilter-${rawMessage}.toml`);
  await writeFile(cfg, `tmpdir = "${join(dir, 'work')}"\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]\nraw_message = "${rawMessage}"\n`);
  const paths: string[] = [];
  for (const [name, bytes] of files) {
    const p = join(dir, 'msgs', `${name}.eml`);
    await writeFile(p, bytes);
    paths.push(p);
  }
  const r = runAvfilter(['-f', cfg, '-t', ...paths]);
  const out = new Map<string, string>();
  for (const name of files.keys()) {
    const p = join(dir, 'msgs', `${name}.eml`);
    out.set(name, r.stdout.split('\n').filter((l) => l.startsWith(`${p}: `)).map((l) => l.slice(p.length + 2)).join('; ') || `no line (${r.stderr.trim()})`);
  }
  return out;
}

test('each shape is one our standard reading decodes and clamd alone misses in at least one variant (so these messages prove the routing)', async () => {
  const E = eicar();
  const missedByShape = new Map<string, number>();
  const rows: string[] = [];
  for (const m of messages) {
    const x = await extractParts(MessageInput.fromBuffer(m.bytes), { limits: DEFAULT_MIME_LIMITS, tmpdir: join(dir, 'work') });
    try {
      const holders = [];
      for (const p of x.parts) if ((await p.source.buffer()).includes(E)) holders.push(`${p.path}:${p.reading}`);
      assert.ok(holders.length > 0, `${m.name}: our readings do not decode the payload`);
      const alone = await clamdAlone(m.bytes);
      if (alone === 'OK') missedByShape.set(m.shape, (missedByShape.get(m.shape) ?? 0) + 1);
      rows.push(`| ${m.name} | ${m.shape} | ${holders.join(' ')} | ${alone} |`);
    } finally {
      await x.dispose();
    }
  }
  console.log(['| message | shape | our parts holding the payload | clamd alone on the raw message |', '|---|---|---|---|', ...rows].join('\n'));
  for (const shape of new Set(messages.map((m) => m.shape))) {
    assert.ok((missedByShape.get(shape) ?? 0) > 0, `clamd's own parser now reads every ${shape} variant as we do: pick variants it still misses, or this test proves nothing`);
  }
});

for (const mode of ['mail', 'data', 'text', 'parts'] as const) {
  test(`raw_message = "${mode}": clamd alone as the engine finds the payload in every message its own parser misreads (was OK)`, async () => {
    const verdicts = await scanWith(mode, new Map(messages.map((m) => [m.name, m.bytes])));
    const wrong = [...verdicts].filter(([, v]) => !v.endsWith(' FOUND'));
    assert.deepEqual(wrong, [], 'every message is infected');
  });
}

test('regression: a message clamd\'s own parser decodes through an irregular boundary, delimiter or header, or uuencode in any part, is found by clamd as the engine in every raw_message mode (was OK: our readings did not decode it, and clamd got the raw message as plain bytes)', async () => {
  const others = readerDecodedMessages();
  // the premise: clamd's own mail parser decodes at least one variant of each shape
  const foundByShape = new Map<string, number>();
  for (const m of others) if ((await clamdAlone(m.bytes)).endsWith(' FOUND')) foundByShape.set(m.shape, (foundByShape.get(m.shape) ?? 0) + 1);
  for (const shape of new Set(others.map((m) => m.shape))) assert.ok((foundByShape.get(shape) ?? 0) > 0, `clamd alone decodes no ${shape} variant: the shape proves nothing here`);
  for (const mode of ['parts', 'text', 'data'] as const) {
    const verdicts = await scanWith(mode, new Map(others.map((m) => [m.name, m.bytes])));
    const wrong = [...verdicts].filter(([, v]) => !v.endsWith(' FOUND'));
    assert.deepEqual(wrong, [], `raw_message = "${mode}": every message is infected`);
  }
});

test('raw_message: "mail" lets clamd\'s mail signatures see the message, "data" and "text" scan the raw bytes only; all find byte signatures in headers and attachments', async () => {
  const files = new Map<string, Buffer>([
    ['mail-sig', Buffer.from(`${TOP}Content-Type: text/plain\n\nplease click ${MAIL_MARKER}\n`)],
    ['raw-sig-in-header', Buffer.from(`${TOP}X-Note: ${RAW_MARKER}\nContent-Type: text/plain\n\nhello\n`)],
    ['base64-attachment', Buffer.from(`${TOP}Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${eicar().toString('base64')}\n--b--\n`)],
    ['clean', Buffer.from(`${TOP}Content-Type: text/plain\n\nnothing to see\n`)],
  ]);
  const mail = await scanWith('mail', files);
  const data = await scanWith('data', files);
  const text = await scanWith('text', files);
  assert.match(mail.get('mail-sig')!, new RegExp(`^${MAIL_SIG}\\S* FOUND$`));
  assert.equal(data.get('mail-sig'), 'OK', 'as plain data the message is not mail: target-type-4 signatures do not apply');
  assert.equal(text.get('mail-sig'), 'OK', 'as plain data the message is not mail: target-type-4 signatures do not apply');
  for (const v of [mail, data, text]) {
    assert.match(v.get('raw-sig-in-header')!, new RegExp(`^${RAW_SIG}\\S* FOUND$`));
    assert.match(v.get('base64-attachment')!, / FOUND$/);
    assert.equal(v.get('clean'), 'OK');
  }
});

const TOP = 'From: a@example.test\nTo: b@example.test\nSubject: t\nMIME-Version: 1.0\n';
const b64 = (b: Buffer): string => (b.toString('base64').match(/.{1,76}/g) ?? []).join('\n');
const ATTACH = `--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${b64(B64_CONTENT)}\n`;
/** A text part and a base64 attachment (B64_CONTENT), with what is given around them. */
const multi = (before: string, after: string, textPart = 'hi', preamble = '', epilogue = '', extraHeader = ''): Buffer =>
  Buffer.from(`${TOP}${extraHeader}Content-Type: multipart/mixed; boundary="b"\n\n${preamble}--b\nContent-Type: text/plain\n\n${textPart}\n${before}${ATTACH}${after}--b--\n${epilogue}`);

test('raw_message = "text": everything but a decoded base64 body still reaches clamd\'s byte signatures (headers, text bodies, preamble, epilogue, around the bodies left out); a signature over base64 text is given up only where one reading vouched for the message', async () => {
  const files = new Map<string, Buffer>([
    ['marker-in-header', multi('', '', 'hi', '', '', `X-Note: ${RAW_MARKER}\n`)],
    ['marker-in-text-before', multi('', '', `text ${RAW_MARKER} text`)],
    ['marker-in-qp-after', multi('', `--b\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nsee ${RAW_MARKER}=\n done\n`)],
    ['marker-in-preamble', multi('', '', 'hi', `preamble ${RAW_MARKER}\n`)],
    ['marker-in-epilogue', multi('', '', 'hi', '', `epilogue ${RAW_MARKER}\n`)],
    // base64 text itself: only the raw bytes hold it
    ['base64-text-vouched', multi('', '')],
    // the same body in a message read both ways (a second Content-Type): nothing is left out
    ['base64-text-read-twice', multi('', '', 'hi', '', '', 'Content-Type: text/plain\n')],
  ]);
  // the premise of each row: what the extraction made of the message
  for (const [name, bytes] of files) {
    const x = await extractParts(MessageInput.fromBuffer(bytes), { limits: DEFAULT_MIME_LIMITS, tmpdir: join(dir, 'work') });
    try {
      if (name === 'base64-text-read-twice') assert.equal(x.decodedBodies, undefined, `${name}: read both ways, yet bodies were to be left out`);
      else assert.equal(x.decodedBodies?.length, 1, `${name}: the attachment's body is not a decoded body of a message read once`);
    } finally {
      await x.dispose();
    }
  }
  const data = await scanWith('data', files);
  const text = await scanWith('text', files);
  for (const name of ['marker-in-header', 'marker-in-text-before', 'marker-in-qp-after', 'marker-in-preamble', 'marker-in-epilogue']) {
    assert.match(text.get(name)!, new RegExp(`^${RAW_SIG}\\S* FOUND$`), `${name} (text)`);
    // "data" also sends the attachment's base64 text, which the other signature matches
    assert.match(data.get(name)!, new RegExp(`${RAW_SIG}\\S* FOUND`), `${name} (data)`);
  }
  assert.match(data.get('base64-text-vouched')!, new RegExp(`^${B64_SIG}\\S* FOUND$`), 'the premise: "data" sends the base64 text');
  assert.equal(text.get('base64-text-vouched'), 'OK', 'the trade-off "text" makes: the base64 text of a body scanned decoded');
  assert.match(text.get('base64-text-read-twice')!, new RegExp(`^${B64_SIG}\\S* FOUND$`), 'a message read both ways is sent whole');
});

test('raw_message = "parts": a message read one way reaches clamd as its decoded parts only (its headers are what it gives up); a message read both ways still goes whole', async () => {
  const irregular = 'Content-Type: text/plain\n';
  const files = new Map<string, Buffer>([
    ['marker-in-header', multi('', '', 'hi', '', '', `X-Note: ${RAW_MARKER}\n`)],
    ['marker-in-part-header', multi('', `--b\nContent-Type: text/plain\nX-Note: ${RAW_MARKER}\n\nhello\n`)],
    ['marker-in-text', multi('', '', `text ${RAW_MARKER} text`)],
    ['marker-in-qp', multi('', `--b\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nsee ${RAW_MARKER}=\n done\n`)],
    ['marker-in-preamble', multi('', '', 'hi', `preamble ${RAW_MARKER}\n`)],
    ['marker-in-epilogue', multi('', '', 'hi', '', `epilogue ${RAW_MARKER}\n`)],
    // a MIME notice is no part (mime/lenient/notices.ts); a notice with anything more is one
    ['marker-after-notice-in-preamble', multi('', '', 'hi', `This is a MIME-formatted message.  If you see this text it means that your\nE-mail software does not support MIME-formatted messages.\n${RAW_MARKER}\n`)],
    ['marker-in-notice-line-of-epilogue', multi('', '', 'hi', '', `This is a multi-part message in MIME format. ${RAW_MARKER}\n`)],
    ['eicar-attachment', Buffer.from(`${TOP}Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${eicar().toString('base64')}\n--b--\n`)],
    // read both ways (a second Content-Type): the raw message goes too, as "mail" sends it
    ['read-twice-marker-in-header', multi('', '', 'hi', '', '', `${irregular}X-Note: ${RAW_MARKER}\n`)],
    ['clean', multi('', '')],
  ]);
  // what the extraction made of each message: the readings, and whether a decoded part holds the marker
  const inAPart = new Map<string, boolean>();
  for (const [name, bytes] of files) {
    const x = await extractParts(MessageInput.fromBuffer(bytes), { limits: DEFAULT_MIME_LIMITS, tmpdir: join(dir, 'work') });
    try {
      assert.equal(x.readings, name.startsWith('read-twice') ? 2 : 1, `${name}: readings`);
      let held = false;
      for (const p of x.parts) if ((await p.source.buffer()).includes(RAW_MARKER)) held = true;
      inAPart.set(name, held);
    } finally {
      await x.dispose();
    }
  }
  assert.equal(inAPart.get('marker-in-header'), false, 'the premise: a top-level header is in no part');
  assert.equal(inAPart.get('marker-in-text'), true, 'the premise: a text body is a part');
  assert.equal(inAPart.get('marker-after-notice-in-preamble'), true, 'the premise: a notice with more is a part');
  assert.equal(inAPart.get('marker-in-notice-line-of-epilogue'), true, 'the premise: a notice with more is a part');
  const text = await scanWith('text', files);
  const parts = await scanWith('parts', files);
  // a message read twice is sent whole: the attachment's base64 text is found too
  const found = new RegExp(`(^|; )${RAW_SIG}\\S* FOUND`);
  for (const name of [...files.keys()].filter((n) => n.includes('marker'))) {
    assert.match(text.get(name)!, found, `${name}: "text" sends the raw message`);
    if (inAPart.get(name) === true || name.startsWith('read-twice')) assert.match(parts.get(name)!, found, `${name} (parts)`);
    else assert.equal(parts.get(name), 'OK', `${name}: the trade-off "parts" makes for a message read one way`);
  }
  assert.match(parts.get('eicar-attachment')!, / FOUND$/);
  assert.equal(parts.get('clean'), 'OK');
});

test('raw_message = "parts": a message our readings could not vouch for goes to clamd as mail, so that clamd\'s own MIME reading is one of its readings (was sent as plain data: what only clamd\'s parser decodes never met clamd)', async () => {
  // a second Content-Type: read both ways; the marker is met by a target-type-4 (mail) signature only
  const body = `Content-Type: text/plain\n\nplease click ${MAIL_MARKER}\n`;
  const files = new Map<string, Buffer>([
    ['read-twice-mail-sig', Buffer.from(`${TOP}Content-Type: text/plain\n${body}`)],
    ['read-once-mail-sig', Buffer.from(`${TOP}${body}`)],
  ]);
  for (const [name, bytes] of files) {
    const x = await extractParts(MessageInput.fromBuffer(bytes), { limits: DEFAULT_MIME_LIMITS, tmpdir: join(dir, 'work') });
    try {
      assert.equal(x.readings, name.startsWith('read-twice') ? 2 : 1, `${name}: the premise, its readings`);
    } finally {
      await x.dispose();
    }
  }
  const parts = await scanWith('parts', files);
  const text = await scanWith('text', files);
  assert.match(parts.get('read-twice-mail-sig')!, new RegExp(`^${MAIL_SIG}\\S* FOUND$`), 'read both ways: clamd parses it as mail');
  assert.equal(parts.get('read-once-mail-sig'), 'OK', 'read one way: its parts stand for it (the trade-off "parts" makes)');
  assert.equal(text.get('read-twice-mail-sig'), 'OK', '"text" sends it as plain data, never as mail');
});
