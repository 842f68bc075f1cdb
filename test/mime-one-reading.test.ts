/**
 * A message in memory read once (extract.ts extractOnce): the lenient reading alone stands in
 * for both readings only when everything it meets is plain (lenient/vouch.ts), and then gives
 * what both readings give. Compared, message by message, with both readings
 * (ExtractOptions.bothReadings) over every sample of the test corpora, the benchmark's mix
 * and mutations of them: the same decoded contents, each under the same path, type, names,
 * encoding and reading; the same limit; the same irregularity note. And the regression for the
 * class of evasions the union reading exists for: a message with any irregularity (a `;`
 * inside a quoted boundary over a decoy, a boundary by prefix, a bare CR) gets both readings.
 * A message read once lists the base64 bodies it decoded (Extraction.decodedBodies, what clamd's
 * raw_message = "text" leaves out of the raw message): each must decode to one of its parts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { courierDataFile, generateMix } from '../bench/mix.js';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput, type Extraction } from '../src/mime/index.js';
import { corpus } from './helpers/corpus.js';
import { attachmentMessage, asStored, envelope } from './helpers/e2e-messages.js';
import { eicar } from './helpers/eicar.js';
import { caseRng, fuzzIterations, fuzzSeed, mutateBytes } from './helpers/fuzz.js';
import * as mail from './helpers/mail.js';
import { divergentMessages, readerDecodedMessages } from './helpers/parser-divergence.js';
import { SHAPES } from './helpers/shapes.js';

const FIXTURES = new URL('../../test/fixtures/mime/', import.meta.url);

interface Sample {
  readonly name: string;
  readonly bytes: Buffer;
}

function samples(): Sample[] {
  const out: Sample[] = [];
  for (const m of corpus()) out.push({ name: `corpus ${m.name}`, bytes: m.bytes });
  for (const m of divergentMessages()) out.push({ name: `divergence ${m.name}`, bytes: m.bytes });
  for (const m of readerDecodedMessages()) out.push({ name: `reader-decoded ${m.name}`, bytes: m.bytes });
  for (const s of SHAPES) out.push({ name: `shape ${s.name}`, bytes: s.make(20_000) });
  for (const m of generateMix(60)) {
    out.push({ name: `mix ${m.index} ${m.kind}`, bytes: m.raw });
    out.push({ name: `mix ${m.index} ${m.kind} (data file)`, bytes: courierDataFile(m, `q${m.index}`) });
  }
  const env = envelope('one-reading');
  const att = attachmentMessage(env, ['rcpt@example.test'], { filename: 'report.pdf', contentType: 'application/pdf', data: mail.pseudoRandom(3000, 9) });
  out.push({ name: 'e2e attachment', bytes: att }, { name: 'e2e attachment (stored)', bytes: asStored(att) });
  // mailsplit makes no part of a multipart without bytes (found by the mutation test below)
  out.push({ name: 'multipart without a body', bytes: Buffer.from('From: a@example.test\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="b"\n\n', 'latin1') });
  for (const f of readdirSync(FIXTURES)) out.push({ name: `fixture ${f}`, bytes: readFileSync(new URL(f, FIXTURES)) });
  return out;
}

/** Everything an engine, the policy and the log get from an extraction, by content. */
async function summary(x: Extraction): Promise<{ parts: Map<string, string>; limit?: string | undefined; irregular?: string | undefined }> {
  const parts = new Map<string, string>();
  for (const p of x.parts) {
    const digest = createHash('sha256').update(await p.source.buffer()).digest('hex');
    const names = [...new Set([p.filename ?? '', ...(p.alsoNamed ?? [])])].sort();
    parts.set(digest, JSON.stringify({ path: p.path, type: p.contentType, encoding: p.encoding, reading: p.reading, filename: p.filename, names, size: p.size }));
  }
  return { parts, limit: x.limit?.code, irregular: x.irregular };
}

async function both(bytes: Buffer, dir: string): Promise<{ once: Extraction; twice: Extraction }> {
  const opts = { limits: DEFAULT_MIME_LIMITS, tmpdir: dir };
  const once = await extractParts(MessageInput.fromBuffer(bytes), opts);
  const twice = await extractParts(MessageInput.fromBuffer(bytes), { ...opts, bothReadings: true });
  return { once, twice };
}

/**
 * An irregularity the embedded post-pass notes (a find read as a message), after the readings
 * and alike whether they were one or two; undefined: none at all.
 */
function fromPostPass(irregular: string | undefined): boolean {
  return irregular === undefined || /^read as (?:uuencode|base64-block|qp-block|yenc|binhex|data-uri)\b/.test(irregular);
}

/** Compares the default extraction with both readings'; returns how it was read. */
async function compare(s: Sample, dir: string, failures: string[]): Promise<1 | 2 | undefined> {
  const { once, twice } = await both(s.bytes, dir);
  try {
    assert.equal(twice.readings, 2);
    const a = await summary(once);
    const b = await summary(twice);
    if (once.irregular !== twice.irregular) failures.push(`${s.name}: irregular ${once.irregular} vs ${twice.irregular} with both readings`);
    if (once.readings === 1 && !fromPostPass(twice.irregular)) failures.push(`${s.name}: read once, but the readings call it irregular (${twice.irregular})`);
    if (a.limit !== b.limit) failures.push(`${s.name}: limit ${a.limit} vs ${b.limit} with both readings`);
    for (const [d, meta] of b.parts) if (a.parts.get(d) !== meta) failures.push(`${s.name}: ${meta} is ${a.parts.get(d) ?? 'missing'} read ${once.readings === 1 ? 'once' : 'again'}`);
    for (const [d, meta] of a.parts) if (!b.parts.has(d)) failures.push(`${s.name}: ${meta} only read ${once.readings === 1 ? 'once' : 'again'}`);
    checkDecodedBodies(s, once, a.parts, failures);
    return once.readings;
  } finally {
    await once.dispose();
    await twice.dispose();
  }
}

/** Bodies listed in Extraction.decodedBodies over all compared samples (the check proves something). */
let decodedBodiesSeen = 0;

/**
 * What clamd's raw_message = "text" leaves out of the raw message must be scanned anyway: every
 * range in decodedBodies (sorted, disjoint, inside the message) is base64 that decodes to the
 * bytes of a part; a message read both ways lists none.
 */
function checkDecodedBodies(s: Sample, once: Extraction, parts: ReadonlyMap<string, string>, failures: string[]): void {
  if (once.readings !== 1) {
    if (once.decodedBodies !== undefined) failures.push(`${s.name}: read both ways, yet lists decoded bodies`);
    return;
  }
  let at = 0;
  for (const [start, end] of once.decodedBodies ?? []) {
    decodedBodiesSeen++;
    if (!(start >= at && end > start && end <= s.bytes.length)) failures.push(`${s.name}: decoded body ${start}-${end} out of order or outside the message`);
    at = end;
    const decoded = Buffer.from(s.bytes.toString('latin1', start, end), 'base64');
    if (!parts.has(createHash('sha256').update(decoded).digest('hex'))) failures.push(`${s.name}: the base64 body at ${start}-${end} decodes to no part`);
  }
}

test('every sample of the corpora and the benchmark mix: the same parts, names, types, paths, limit and irregularity as with both readings', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'avf-one-reading-'));
  const failures: string[] = [];
  const count = { 1: 0, 2: 0 };
  try {
    for (const s of samples()) {
      const r = await compare(s, dir, failures);
      if (r !== undefined) count[r]++;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  t.diagnostic(`read once: ${count[1]}, with both readings: ${count[2]}; decoded base64 bodies listed: ${decodedBodiesSeen}`);
  assert.deepEqual(failures, []);
  assert.ok(decodedBodiesSeen >= 50, `decoded bodies listed: ${decodedBodiesSeen}`);
  // the rule must let the common case through, or this saves nothing
  assert.ok(count[1] >= 120, `read once: ${count[1]}, with both readings: ${count[2]}`);
  assert.ok(count[2] >= 20, `read once: ${count[1]}, with both readings: ${count[2]}`);
});

test('mutations of plain messages: whatever is read once gives what both readings give', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'avf-one-reading-fuzz-'));
  const base = [...generateMix(12).map((m) => m.raw), ...corpus().filter((m) => m.name.includes('plain') || m.technique.includes('baseline')).map((m) => m.bytes)];
  const donors = ['\r', '\n', '\r\n', '--', ';', '"', '\t', ' ', 'Content-Type: multipart/mixed; boundary=x\r\n', '--x\r\n', 'boundary=', '=\r\n', '\\'].map((t) => Buffer.from(t, 'latin1'));
  const failures: string[] = [];
  let once = 0;
  try {
    const n = fuzzIterations(400);
    for (let i = 0; i < n; i++) {
      const rnd = caseRng(fuzzSeed(0x0ead), 'one-reading', i);
      const input = base[rnd.int(base.length)]!;
      const bytes = mutateBytes(input, rnd, { tokens: donors, maxRun: 64, maxOps: 3 });
      if ((await compare({ name: `mutation ${i}`, bytes }, dir, failures)) === 1) once++;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  t.diagnostic(`read once: ${once} of ${fuzzIterations(400)}`);
  assert.deepEqual(failures, []);
  assert.ok(once > 0, 'no mutation was read once: the comparison proves nothing');
});

test('regression: a message with any irregularity gets both readings, and the payload is caught', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'avf-one-reading-irr-'));
  const E = eicar();
  const b64 = mail.base64Lines(E);
  const top = 'From: a@example.test\nTo: b@example.test\nSubject: t\nMIME-Version: 1.0\n';
  const att = 'Content-Type: application/octet-stream; name="x.com"\nContent-Transfer-Encoding: base64\n';
  const shapes: Array<[string, string]> = [
    // a ";" inside the quoted boundary, a decoy multipart under the delimiter cut at it
    ['semicolon boundary over a decoy', `${top}Content-Type: multipart/mixed; boundary="a;b"\n\n--a\nContent-Type: text/plain\n\ndecoy\n--a--\n--a;b\n${att}\n${b64}\n--a;b--\n`],
    // a delimiter by prefix ("--b" + text): only a reader that matches by prefix splits there
    ['delimiter by prefix', `${top}Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhi\n--bogus\n${att}\n${b64}\n--b--\n`],
    // a bare CR before a delimiter: mailsplit splits lines at LF only
    ['bare CR before a delimiter', `${top}Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhi\r--b\n${att}\n${b64}\n--b--\n`],
    // two Content-Transfer-Encoding fields
    ['two encodings', `${top}Content-Type: application/octet-stream\nContent-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: base64\n\n${b64}\n`],
    // base64 with junk in it (a strict decoder reads it otherwise)
    ['junk in base64', `${top}${att}\n${b64.slice(0, 20)}!!${b64.slice(20)}\n`],
    // a quoted-printable soft break followed by blanks inside a multipart with a delimiter padded by blanks
    ['padded delimiter, soft break with blanks', `${top}Content-Type: multipart/mixed; boundary="b"\n\n--b  \nContent-Type: application/octet-stream\nContent-Transfer-Encoding: quoted-printable\n\n${E.toString('latin1').slice(0, 30)}=  \n${E.toString('latin1').slice(30)}\n--b--\n`],
  ];
  try {
    for (const [name, text] of shapes) {
      const { once, twice } = await both(Buffer.from(text, 'latin1'), dir);
      try {
        assert.equal(once.readings, 2, `${name}: read once`);
        const hit = [];
        for (const p of once.parts) if ((await p.source.buffer()).includes(E)) hit.push(p.path);
        assert.ok(hit.length > 0, `${name}: the payload is in no part`);
        assert.deepEqual(await summary(once), await summary(twice), name);
      } finally {
        await once.dispose();
        await twice.dispose();
      }
    }
    // every divergent message and corpus message that both readings call irregular gets both
    for (const m of [...divergentMessages(), ...readerDecodedMessages(), ...corpus()]) {
      const { once, twice } = await both(m.bytes, dir);
      try {
        if (!fromPostPass(twice.irregular)) assert.equal(once.readings, 2, `${m.name}: irregular (${twice.irregular}) but read once`);
      } finally {
        await once.dispose();
        await twice.dispose();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a plain message is read once, its parts labelled and numbered as the standard reading\'s (strip and [banned] depend on it)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'avf-one-reading-plain-'));
  const inner = 'From: x@example.test\nMIME-Version: 1.0\nContent-Type: text/plain\n\ninner body\n';
  const text = 'From: a@example.test\nTo: b@example.test\nSubject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n\tboundary="=_b1"\n\n--=_b1\nContent-Type: text/plain; charset=us-ascii\n\nhello\n--=_b1\nContent-Type: application/pdf; name="r.pdf"\nContent-Disposition: attachment; filename="report 1.pdf"\nContent-Transfer-Encoding: base64\n\n' +
    mail.base64Lines(mail.pseudoRandom(500, 3)) + '\n--=_b1\nContent-Type: message/rfc822\n\n' + inner + '\n--=_b1--\n';
  try {
    const { once, twice } = await both(Buffer.from(text, 'latin1'), dir);
    try {
      assert.equal(once.readings, 1);
      assert.equal(once.irregular, undefined);
      const rows = once.parts.map((p) => `${p.path} ${p.contentType} ${p.reading} ${p.filename ?? '-'} ${(p.alsoNamed ?? []).join(',')}`);
      assert.deepEqual(rows, ['1 text/plain standard - ', '2 application/pdf standard report 1.pdf r.pdf', '3 message/rfc822 standard - ', '3.1 text/plain standard - ']);
      assert.deepEqual(await summary(once), await summary(twice));
    } finally {
      await once.dispose();
      await twice.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
