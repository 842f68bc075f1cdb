/**
 * The strip effect on real messages scanned by the embedded engine (and its container stage):
 * what is cut, what stays byte for byte, when it drops instead, and that every failure leaves
 * the data file as it was.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRuntime, scanDepsOf } from '../src/app/runtime.js';
import { parseConfig } from '../src/config/load.js';
import { stripMessage, stripRunner, type StripInput } from '../src/effects/strip.js';
import { headersRunner } from '../src/effects/headers.js';
import { runEffects } from '../src/effects/run.js';
import type { EffectEnv } from '../src/effects/types.js';
import { DEFAULT_MIME_LIMITS } from '../src/mime/index.js';
import { standardParts } from './helpers/parts.js';
import { scanMessage } from '../src/scan/scan-message.js';
import type { Finding, Verdict } from '../src/policy/verdict.js';
import { eicar } from './helpers/eicar.js';
import { attachment, message, messagePart, multipart, pseudoRandom, textPart, type Eol } from './helpers/mail.js';
import { buildZip } from './helpers/zip.js';
import { unwritable } from './helpers/unwritable.js';

const dir = mkdtempSync(join(tmpdir(), 'avf-strip-'));
const work = join(dir, 'work');
mkdirSync(work, { mode: 0o700 });
const rt = createRuntime(parseConfig(`tmpdir = ${JSON.stringify(work)}\n[[engine]]\ntype = "yara"\n`, 'strip.toml'), { makeTmpdir: true, noCache: true });
after(async () => {
  await rt.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function dataFile(bytes: Buffer): string {
  const p = join(dir, `D${++n}`);
  writeFileSync(p, bytes);
  return p;
}

const RECEIVED = (eol: Eol): Buffer => Buffer.from(`Received: from client.example.test ([::ffff:192.0.2.7])${eol}  by mx with ESMTP${eol}  id 1; Mon, 7 Dec 2026 00:00:00 +0000${eol}`, 'latin1');

function courierMessage(root: Parameters<typeof message>[0], eol: Eol = '\n'): Buffer {
  return Buffer.concat([RECEIVED(eol), message(root, { eol })]);
}

async function scan(path: string, bytes?: Buffer): Promise<Verdict> {
  const size = statSync(path).size;
  return (await scanMessage({ path, size, bytes }, scanDepsOf(rt), new AbortController().signal)).verdict;
}

function input(path: string, findings: readonly Finding[], extra: Partial<StripInput> = {}): StripInput {
  return {
    path, size: statSync(path).size, findings, tmpdir: work, maxHeaderBytes: DEFAULT_MIME_LIMITS.maxHeaderBytes,
    signal: new AbortController().signal, rescan: (i) => scan(i.path, i.bytes), ...extra,
  };
}

/** The standard reading's decoded parts: path -> bytes. */
const decodedParts = (bytes: Buffer): Promise<Map<string, Buffer>> => standardParts(bytes, work);

async function findingsOf(path: string): Promise<Finding[]> {
  const v = await scan(path);
  assert.equal(v.kind, 'infected', JSON.stringify(v));
  return v.kind === 'infected' ? [...v.findings] : [];
}

const PDF = pseudoRandom(40_000, 7);
const ZIP = buildZip([{ name: 'docs/readme.txt', data: Buffer.from('hello') }, { name: 'docs/a.com', data: eicar() }]);

function zipMessage(eol: Eol = '\n', zipName = 'invoice.zip'): Buffer {
  return courierMessage(multipart([
    textPart('See the attachments.\n', { eol }),
    attachment(PDF, { cte: 'base64', filename: 'report.pdf', contentType: 'application/pdf', eol }),
    attachment(ZIP, { cte: 'base64', filename: zipName, contentType: 'application/zip', eol }),
    attachment(Buffer.from('a,b\n1,2\n'), { cte: 'quoted-printable', filename: 'data.csv', contentType: 'text/csv', eol }),
  ], { eol }), eol);
}

for (const eol of ['\n', '\r\n'] as const) {
  test(`strip (${eol === '\n' ? 'LF' : 'CRLF'}): the zip holding EICAR becomes a note; the other parts decode to the same bytes; inode, owner and mode kept`, async () => {
    const orig = zipMessage(eol);
    const p = dataFile(orig);
    chmodSync(p, 0o640);
    if (process.getuid?.() === 0) chownSync(p, 1234, 2345);
    const before = statSync(p);
    const findings = await findingsOf(p);
    assert.ok(findings.some((f) => f.itemId.startsWith('3/invoice.zip/')), JSON.stringify(findings));
    const r = await stripMessage(input(p, findings));
    assert.equal(r.kind, 'stripped', JSON.stringify(r));
    if (r.kind !== 'stripped') return;
    assert.deepEqual(r.parts, ['3']);
    assert.deepEqual(r.names, ['Eicar-Test-Signature']);
    const out = readFileSync(p);
    const after = statSync(p);
    assert.deepEqual([after.ino, after.mode, after.uid, after.gid], [before.ino, before.mode, before.uid, before.gid]);
    assert.equal(out.length, r.size);
    assert.equal((await scan(p)).kind, 'clean');

    const was = await decodedParts(orig);
    const now = await decodedParts(out);
    for (const path of ['1', '2', '4']) assert.ok(now.get(path)!.equals(was.get(path)!), `part ${path} decodes to the same bytes`);
    assert.ok(now.get('2')!.equals(PDF));
    const note = now.get('3')!.toString('utf8');
    assert.match(note, /removed by avfilter/);
    assert.match(note, /File: invoice\.zip/);
    assert.match(note, /Inside: docs\/a\.com/);
    assert.match(note, /Virus: Eicar-Test-Signature/);
    // byte for byte outside the cut: the same prefix up to the zip's part, the same tail after it
    const text = out.toString('latin1');
    const cut = orig.toString('latin1').indexOf('Content-Type: application/zip');
    assert.ok(out.subarray(0, cut).equals(orig.subarray(0, cut)));
    const tailAt = orig.toString('latin1').indexOf('Content-Type: text/csv');
    const tail = orig.subarray(orig.lastIndexOf(Buffer.from(`${eol}--`), tailAt));
    assert.ok(out.subarray(out.length - tail.length).equals(tail), 'the tail after the cut is the original\'s');
    if (eol === '\r\n') assert.equal(text.replace(/\r\n/g, '').includes('\n'), false, 'no bare LF in a CRLF file');
    else assert.equal(text.includes('\r'), false, 'no CR in an LF file');
    assert.equal(readdirSync(work).filter((d) => d.startsWith('hdr-')).length, 0, 'a small original is back in memory once the rewrite is done');
    await r.undo();
    assert.ok(readFileSync(p).equals(orig), 'undo puts the original back byte for byte');
    assert.equal(statSync(p).ino, before.ino);
    assert.equal(readdirSync(work).filter((d) => d.startsWith('hdr-')).length, 0, 'and removes the copy');
  });
}

test('strip: the whole message infected, a finding in another reading, on the raw message only, an irregular message: drop, file untouched', async () => {
  const single = dataFile(courierMessage(attachment(eicar(), { cte: 'base64', filename: 'e.com' })));
  const r1 = await stripMessage(input(single, await findingsOf(single)));
  assert.equal(r1.kind, 'drop');
  if (r1.kind === 'drop') assert.match(r1.reason, /whole message/);

  const orig = zipMessage();
  const p = dataFile(orig);
  const base: Finding = { name: 'Eicar-Test-Signature', engine: 'yara', itemId: '3', reading: 'standard' };
  const cases: Array<[Partial<Finding>, RegExp]> = [
    [{ reading: 'lenient' }, /lenient reading/],
    [{ reading: 'uuencode', itemId: '1/uu1' }, /uuencode reading/],
    [{ itemId: 'raw', reading: 'raw' }, /raw message only/],
    [{ itemId: '9' }, /layout does not have/],
  ];
  for (const [f, why] of cases) {
    const r = await stripMessage(input(p, [{ ...base, ...f }]));
    assert.equal(r.kind, 'drop', JSON.stringify(f));
    if (r.kind === 'drop') assert.match(r.reason, why);
    assert.ok(readFileSync(p).equals(orig));
  }
  const irr = await stripMessage(input(p, [base], { irregular: 'irregular base64 at 3' }));
  assert.equal(irr.kind, 'drop');
  if (irr.kind === 'drop') assert.match(irr.reason, /irregular/);
  assert.ok(readFileSync(p).equals(orig));
  assert.equal(readdirSync(work).filter((d) => d.startsWith('hdr-')).length, 0, 'nothing left in tmpdir');
});

test('strip: a rescan that is not clean puts the original back and drops; two infected attachments are both cut over the rounds', async () => {
  const orig = zipMessage();
  const p = dataFile(orig);
  const findings = await findingsOf(p);
  const err = await stripMessage(input(p, findings, { rescan: async () => ({ kind: 'error', code: 'ECONNECT', reason: 'clamd down', origin: 'scanner' }) }));
  assert.equal(err.kind, 'drop');
  if (err.kind === 'drop') assert.match(err.reason, /did not scan clean: error ECONNECT/);
  assert.ok(readFileSync(p).equals(orig), 'the original is back');
  const still = await stripMessage(input(p, findings, { rescan: async () => ({ kind: 'infected', names: ['X'], findings: [{ name: 'X', engine: 'yara', itemId: 'raw' }] }) }));
  assert.equal(still.kind, 'drop');
  if (still.kind === 'drop') assert.match(still.reason, /raw message only/);
  assert.ok(readFileSync(p).equals(orig));

  // the scan stops at the first find: the second copy is found by the rescan and cut in round 2
  const two = courierMessage(multipart([
    textPart('two of them\n'),
    attachment(eicar(), { cte: 'base64', filename: 'one.com' }),
    attachment(PDF, { cte: 'base64', filename: 'report.pdf', contentType: 'application/pdf' }),
    attachment(Buffer.concat([eicar(), Buffer.from('\n')]), { cte: 'base64', filename: 'two.com' }),
  ]));
  const q = dataFile(two);
  const first = (await findingsOf(q)).filter((f) => f.itemId === '2');
  const r = await stripMessage(input(q, first));
  assert.equal(r.kind, 'stripped', JSON.stringify(r));
  if (r.kind === 'stripped') assert.deepEqual(r.parts, ['2', '4']);
  const parts = await decodedParts(readFileSync(q));
  assert.ok(parts.get('3')!.equals(PDF));
  assert.match(parts.get('4')!.toString(), /File: two\.com/);
  assert.equal((await scan(q)).kind, 'clean');
  if (r.kind === 'stripped') await r.dispose();
});

test('strip: an attached message holding EICAR is replaced whole; hostile file names are escaped in the note', async () => {
  const inner = message(multipart([textPart('inner\n'), attachment(eicar(), { cte: 'base64', filename: 'in.com' })]));
  const p = dataFile(courierMessage(multipart([textPart('fwd\n'), messagePart(inner, { disposition: 'attachment' })])));
  const r = await stripMessage(input(p, await findingsOf(p)));
  assert.equal(r.kind, 'stripped', JSON.stringify(r));
  if (r.kind === 'stripped') assert.deepEqual(r.parts, ['2']);
  const parts = await decodedParts(readFileSync(p));
  assert.match(parts.get('2')!.toString(), /Inside: part 2\.2/);
  assert.equal(parts.get('1')!.toString(), 'fwd\n');
  if (r.kind === 'stripped') await r.dispose();

  // RFC 2231 lets a sender put CR, LF and direction overrides into a decoded file name
  const hostile = "utf-8''evil%0D%0ABcc%3A%20victim%40example.test%E2%80%AEexe.txt";
  const h = dataFile(courierMessage(multipart([textPart('x\n'), attachment(eicar(), { cte: 'base64', disposition: `attachment; filename*=${hostile}` })])));
  const hr = await stripMessage(input(h, await findingsOf(h)));
  assert.equal(hr.kind, 'stripped', JSON.stringify(hr));
  const out = readFileSync(h).toString('latin1');
  assert.equal(/^Bcc:/m.test(out), false, 'no header forged');
  const note = (await decodedParts(readFileSync(h))).get('2')!.toString('utf8');
  assert.match(note, /^File: evil[? ]+Bcc: victim@example\.test\?exe\.txt$/m);
  assert.equal(/[\u0000-\u0009\u000b-\u001f\u202e]/.test(note), false);
  if (hr.kind === 'stripped') await hr.dispose();
});

test('strip: a large message (over 1 MiB) is cut through tmpdir; its other attachment intact; undo restores it', async () => {
  const big = pseudoRandom(3 * 1024 * 1024 + 17, 3);
  const orig = courierMessage(multipart([
    attachment(ZIP, { cte: 'base64', filename: 'invoice.zip', contentType: 'application/zip' }),
    attachment(big, { cte: 'base64', filename: 'big.bin' }),
  ]));
  const p = dataFile(orig);
  const ino = statSync(p).ino;
  const r = await stripMessage(input(p, await findingsOf(p)));
  assert.equal(r.kind, 'stripped', JSON.stringify(r));
  assert.equal(readdirSync(work).filter((d) => d.startsWith('hdr-')).length, 1, 'a large original is kept in tmpdir for the undo');
  const parts = await decodedParts(readFileSync(p));
  assert.ok(parts.get('2')!.equals(big));
  assert.match(parts.get('1')!.toString(), /File: invoice\.zip/);
  assert.equal(statSync(p).ino, ino);
  if (r.kind === 'stripped') await r.undo();
  assert.ok(readFileSync(p).equals(orig));
  assert.equal(readdirSync(work).filter((d) => d.startsWith('hdr-')).length, 0, 'the undo removes it');
});

test('strip fails closed: no copy in tmpdir, an unwritable data file or an abort leave the original byte for byte', async () => {
  const orig = zipMessage();
  const p = dataFile(orig);
  const findings = await findingsOf(p);
  const notADir = join(dir, 'plain-file');
  writeFileSync(notADir, '');
  await assert.rejects(stripMessage(input(p, findings, { tmpdir: notADir })), { code: 'ESTRIP_COPY' });
  assert.ok(readFileSync(p).equals(orig));

  const unlock = unwritable(p);
  try {
    await assert.rejects(stripMessage(input(p, findings)), { code: 'EDATA_WRITE' });
  } finally {
    unlock();
  }
  assert.ok(readFileSync(p).equals(orig));

  const ac = new AbortController();
  await assert.rejects(stripMessage(input(p, findings, { signal: ac.signal, rescan: async () => { ac.abort(new Error('deadline')); return { kind: 'clean', items: 1 }; } })));
  assert.ok(readFileSync(p).equals(orig), 'an abort after the rewrite puts the original back');
  assert.equal(readdirSync(work).filter((d) => d.startsWith('hdr-')).length, 0, 'nothing left in tmpdir');
});

test('through the spine: strip then [headers] on the result; a headers failure after the strip answers 451 and puts the original back', async () => {
  const config = parseConfig(`tmpdir = ${JSON.stringify(work)}\n[action]\ninfected = "strip"\n[headers]\nscanned = true\nstatus = true\n`, 'spine.toml');
  const decision = { action: 'strip', code: 200, text: 'Ok', verdict: 'infected', effects: [{ kind: 'headers' }, { kind: 'strip' }] } as const;
  const locks = { take: (p: readonly string[]) => p, release: () => undefined };
  const envOf = async (p: string) => {
    const bytes = readFileSync(p);
    const verdict = await scan(p, bytes);
    return {
      dataPath: p, data: { readPath: p, size: bytes.length, readAll: async () => bytes }, bytes, controls: [],
      envelope: { queueId: 'Q1', sender: 's@example.test' } as unknown as EffectEnv['envelope'], verdict, config,
      log: { event: () => undefined } as unknown as EffectEnv['log'], fields: {}, signal: new AbortController().signal,
      rescan: (i: { path: string; bytes?: Buffer | undefined }) => scan(i.path, i.bytes), engines: rt.engines,
    };
  };
  const orig = zipMessage();
  const p = dataFile(orig);
  const env = await envOf(p);
  const ok = await runEffects(decision, env, locks);
  assert.equal(ok.reply.code, 200);
  assert.equal(ok.action, 'strip');
  assert.deepEqual(env.fields, { stripped: ['3'] });
  const out = readFileSync(p).toString('latin1');
  assert.match(out, /\n  id 1; [^\n]+\nX-Virus-Scanned: avfilter \S+ \(yara [0-9a-f]+\) on \S+\nX-Virus-Status: Clean \(stripped: Eicar-Test-Signature\)\nFrom: /);
  assert.match(out, /File: invoice\.zip/);

  const q = dataFile(orig);
  const failing = { ...headersRunner, run: async () => { throw Object.assign(new Error('disk full'), { code: 'ENOSPC' }); } };
  const env2 = await envOf(q);
  const bad = await runEffects(decision, env2, locks, { strip: stripRunner, headers: failing });
  assert.equal(bad.reply.code, 451);
  assert.equal(bad.failed, 'headers');
  assert.ok(readFileSync(q).equals(orig), 'the strip was taken back: the original, byte for byte');
});
