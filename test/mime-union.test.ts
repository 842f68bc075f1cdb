/**
 * What src/mime's union extraction does that the corpus does not show: message/partial refused unless
 * allowed, the expansion limit, the parts' reading labels and reports, and the embedded
 * decoders split at every offset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { EmbeddedScanner, type ScanEvent } from '../src/mime/embedded/scan.js';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput, type Extraction, type MimeLimits } from '../src/mime/index.js';
import { corpus } from './helpers/corpus.js';
import { Base64Decoder } from '../src/mime/base64.js';
import { eicar } from './helpers/eicar.js';
import * as mail from './helpers/mail.js';

async function extract<T>(msg: Buffer, fn: (x: Extraction) => T, limits: Partial<MimeLimits> = {}, input: 'stream' | 'file' | 'buffer' = 'stream'): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-union-'));
  try {
    let source = MessageInput.fromStream(Readable.from([msg]));
    if (input === 'buffer') source = MessageInput.fromBuffer(msg);
    if (input === 'file') {
      const path = join(dir, 'message.eml');
      await writeFile(path, msg);
      source = MessageInput.fromFile(path);
    }
    const x = await extractParts(source, { limits: { ...DEFAULT_MIME_LIMITS, ...limits }, tmpdir: dir });
    try {
      return fn(x);
    } finally {
      await x.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const partial = mail.message({ headers: ['Content-Type: message/partial; id="abc@example.test"; number=1; total=2'], body: Buffer.from('From: x@example.test\nSubject: part one\n\nhalf a message\n') });

test('message/partial is the EMIME_PARTIAL limit by default, and passes with allowPartial', async () => {
  await extract(partial, (x) => {
    assert.equal(x.limit?.code, 'EMIME_PARTIAL');
    assert.ok(x.parts.length > 0, 'the fragment is still extracted (a virus in it still counts)');
  });
  await extract(partial, (x) => assert.equal(x.limit, undefined), { allowPartial: true });
});

test('expansion limit: decoded bytes out of proportion to the input', async () => {
  // a message nested many times re-counts its bytes at every level
  let m = mail.message(mail.attachment(mail.pseudoRandom(1_000_000, 5), { cte: 'base64' }));
  for (let i = 0; i < 8; i++) m = mail.message(mail.multipart([mail.messagePart(m)]));
  for (const input of ['stream', 'file', 'buffer'] as const) {
    await extract(m, (x) => assert.equal(x.limit, undefined), {}, input);
    await extract(m, (x) => assert.equal(x.limit?.code, 'EMIME_EXPANSION_LIMIT', input), { maxExpansionRatio: 0.5 }, input);
    // a limit hit deep inside nested messages is reported as itself, not as a parse failure
    await extract(m, (x) => assert.equal(x.limit?.code, 'EMIME_DECODED_LIMIT', input), { maxDecodedBytes: 3_000_000 }, input);
  }
});

test('the lenient reading does not decode again what the standard reading decoded from the same bytes', async () => {
  const data = mail.pseudoRandom(300_000, 9);
  const msg = mail.message(mail.multipart([mail.textPart('hello'), mail.attachment(data, { cte: 'base64', filename: 'a.bin' })]));
  const encoded = mail.base64Lines(data, 76).length;
  const proto = Base64Decoder.prototype;
  const update = proto.update;
  let fed = 0;
  proto.update = function (this: Base64Decoder, chunk: Buffer): Buffer {
    fed += chunk.length;
    return update.call(this, chunk);
  };
  try {
    await extract(msg, (x) => assert.deepEqual(x.parts.map((p) => [p.path, p.reading, p.size]), [['1', 'standard', 5], ['2', 'standard', data.length]]));
    assert.ok(fed >= encoded && fed < encoded * 1.5, `base64 decoded ${fed} encoded bytes for a body of ${encoded}: once, not twice`);
    // an ambiguous body (the readings disagree) is still decoded by both
    fed = 0;
    await extract(corpus().find((c) => c.name === 'dup-cte-last-wins')!.bytes, (x) => assert.ok(x.parts.some((p) => p.reading === 'last-CTE')));
    assert.ok(fed > 0);
  } finally {
    proto.update = update;
  }
});

test('every part has a path, type, size, encoding and reading; filenames decoded', async () => {
  const msg = corpus().find((c) => c.name === 'dup-cte-last-wins')!.bytes;
  await extract(msg, (x) => {
    const hit = x.parts.find((p) => p.size === eicar().length);
    assert.ok(hit);
    assert.deepEqual({ path: hit.path, type: hit.contentType, enc: hit.encoding, reading: hit.reading, name: hit.filename }, { path: '2', type: 'application/octet-stream', enc: 'base64', reading: 'last-CTE', name: 'invoice.com' });
  });
});

test('an unambiguous message gives one copy of each part (readings de-duplicated)', async () => {
  const msg = corpus().find((c) => c.name === 'base64-attachment')!.bytes;
  await extract(msg, (x) => {
    assert.equal(x.limit, undefined);
    assert.deepEqual(x.parts.map((p) => [p.path, p.reading]), [['1', 'standard'], ['2', 'standard']]);
  });
});

/** What the scanner finds, by kind in the order found (ids are internal and may differ). */
function scanAll(input: Buffer, cuts: number[]): Map<string, Buffer[]> {
  const s = new EmbeddedScanner();
  const byId = new Map<number, { kind: string; name: string | undefined; data: Buffer[] }>();
  const order: number[] = [];
  const apply = (evs: ScanEvent[]): void => {
    for (const e of evs) {
      if (e.type === 'open') {
        byId.set(e.id, { kind: e.kind, name: e.name, data: [] });
        order.push(e.id);
      } else if (e.type === 'data') byId.get(e.id)!.data.push(Buffer.from(e.bytes));
    }
  };
  let prev = 0;
  for (const c of [...cuts, input.length]) {
    apply(s.push(input.subarray(prev, c)));
    prev = c;
  }
  apply(s.end());
  const out = new Map<string, Buffer[]>();
  for (const id of order) {
    const it = byId.get(id)!;
    const key = `${it.kind} ${it.name ?? ''}`;
    out.set(key, [...(out.get(key) ?? []), Buffer.concat(it.data)]);
  }
  return out;
}

test('embedded scanner: uuencode, begin-base64, yEnc, BinHex and data: URIs (base64 and percent-encoded), input split at every offset', () => {
  const E = eicar();
  for (const name of ['uuencode-in-text', 'begin-base64-in-text', 'yenc-in-text', 'binhex-in-text', 'data-uri-html', 'data-uri-percent', 'uuencode-in-uuencode']) {
    const m = corpus().find((c) => c.name === name)!.bytes;
    const whole = scanAll(m, []);
    if (name !== 'uuencode-in-uuencode') assert.ok([...whole.values()].flat().some((b) => b.equals(E)), `${name}: whole input`);
    else assert.ok([...whole.values()].flat().some((b) => b.includes(Buffer.from('begin 644 invoice.com'))), `${name}: the outer file`);
    for (let i = 0; i <= m.length; i += 1) {
      // the same finds, kinds, names and bytes wherever the input is split
      assert.deepEqual(scanAll(m, [i]), whole, `${name}: split at ${i}`);
    }
  }
  // and in three pieces, the second one short (a carry across two pushes)
  const m = corpus().find((c) => c.name === 'data-uri-percent')!.bytes;
  const whole = scanAll(m, []);
  for (let i = 0; i + 3 <= m.length; i += 1) assert.deepEqual(scanAll(m, [i, i + 3]), whole, `data-uri-percent: split at ${i} and ${i + 3}`);
});
