/**
 * clamd gets every decoded part, whatever its own mail parser makes of the message: the
 * regression for routing that spared clamd the standard reading's parts ("clamd finds them in
 * the raw message by itself") and so let through what clamd's parser reads otherwise — a
 * quoted-printable soft break followed by blanks, a `;` inside a quoted boundary under a decoy,
 * a base64-encoded attached message (test/helpers/parser-divergence.ts generates each shape in
 * variants). Through `avfilter -t` with a real clamd as the only engine, in both raw_message
 * modes, and the trade-off between them: "mail" lets clamd's mail signatures (target type 4)
 * see the message, "data" does not; both scan the raw bytes with clamd's byte signatures.
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
import { divergentMessages } from './helpers/parser-divergence.js';

const messages = divergentMessages();
let clamd: RunningClamd;
let dir: string;
const MAIL_SIG = 'Avfilter.Test.MailOnly';
const RAW_SIG = 'Avfilter.Test.HeaderBytes';
const MAIL_MARKER = 'mail-target-marker-7f3a';
const RAW_MARKER = 'raw-header-marker-91c2';

before(async () => {
  clamd = await startClamd();
  // a target-type-4 (mail) body signature, and a target-type-0 (any file) one
  await writeFile(join(clamd.dbDir, 'routing.ndb'),
    `${MAIL_SIG}:4:*:${Buffer.from(MAIL_MARKER).toString('hex')}\n${RAW_SIG}:0:*:${Buffer.from(RAW_MARKER).toString('hex')}\n`);
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

async function scanWith(rawMessage: 'mail' | 'data', files: ReadonlyMap<string, Buffer>): Promise<Map<string, string>> {
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

for (const mode of ['mail', 'data'] as const) {
  test(`raw_message = "${mode}": clamd alone as the engine finds the payload in every message its own parser misreads (was OK)`, async () => {
    const verdicts = await scanWith(mode, new Map(messages.map((m) => [m.name, m.bytes])));
    const wrong = [...verdicts].filter(([, v]) => !v.endsWith(' FOUND'));
    assert.deepEqual(wrong, [], 'every message is infected');
  });
}

test('raw_message: "mail" lets clamd\'s mail signatures see the message, "data" scans the raw bytes only; both find byte signatures in headers and attachments', async () => {
  const top = 'From: a@example.test\nTo: b@example.test\nSubject: t\nMIME-Version: 1.0\n';
  const files = new Map<string, Buffer>([
    ['mail-sig', Buffer.from(`${top}Content-Type: text/plain\n\nplease click ${MAIL_MARKER}\n`)],
    ['raw-sig-in-header', Buffer.from(`${top}X-Note: ${RAW_MARKER}\nContent-Type: text/plain\n\nhello\n`)],
    ['base64-attachment', Buffer.from(`${top}Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${eicar().toString('base64')}\n--b--\n`)],
    ['clean', Buffer.from(`${top}Content-Type: text/plain\n\nnothing to see\n`)],
  ]);
  const mail = await scanWith('mail', files);
  const data = await scanWith('data', files);
  assert.match(mail.get('mail-sig')!, new RegExp(`^${MAIL_SIG}\\S* FOUND$`));
  assert.equal(data.get('mail-sig'), 'OK', 'as plain data the message is not mail: target-type-4 signatures do not apply');
  for (const v of [mail, data]) {
    assert.match(v.get('raw-sig-in-header')!, new RegExp(`^${RAW_SIG}\\S* FOUND$`));
    assert.match(v.get('base64-attachment')!, / FOUND$/);
    assert.equal(v.get('clean'), 'OK');
  }
});
