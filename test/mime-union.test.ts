/**
 * Issue 3 additions to src/mime that the corpus does not show: message/partial refused unless
 * allowed, the expansion limit, the parts' reading labels and reports, and the embedded
 * decoders split at every offset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { EmbeddedScanner, type ScanEvent } from '../src/mime/embedded/scan.js';
import { DEFAULT_MIME_LIMITS, extractParts, type Extraction, type MimeLimits } from '../src/mime/index.js';
import { corpus } from './helpers/corpus.js';
import { eicar } from './helpers/eicar.js';
import * as mail from './helpers/mail.js';

async function extract<T>(msg: Buffer, fn: (x: Extraction) => T, limits: Partial<MimeLimits> = {}): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-union-'));
  try {
    const x = await extractParts(Readable.from([msg]), { limits: { ...DEFAULT_MIME_LIMITS, ...limits }, tmpdir: dir });
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
  await extract(m, (x) => assert.equal(x.limit, undefined));
  await extract(m, (x) => assert.equal(x.limit?.code, 'EMIME_EXPANSION_LIMIT'), { maxExpansionRatio: 0.5 });
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

function scanAll(input: Buffer, cuts: number[]): Map<number, Buffer> {
  const s = new EmbeddedScanner();
  const out = new Map<number, Buffer[]>();
  const apply = (evs: ScanEvent[]): void => {
    for (const e of evs) if (e.type === 'open') out.set(e.id, []);
    else if (e.type === 'data') out.get(e.id)!.push(Buffer.from(e.bytes));
  };
  let prev = 0;
  for (const c of [...cuts, input.length]) {
    apply(s.push(input.subarray(prev, c)));
    prev = c;
  }
  apply(s.end());
  return new Map([...out].map(([k, v]) => [k, Buffer.concat(v)]));
}

test('embedded scanner: uuencode, yEnc, BinHex and data: URIs, input split at every offset', () => {
  const E = eicar();
  for (const name of ['uuencode-in-text', 'yenc-in-text', 'binhex-in-text', 'data-uri-html']) {
    const m = corpus().find((c) => c.name === name)!.bytes;
    const whole = [...scanAll(m, []).values()];
    assert.ok(whole.some((b) => b.equals(E)), `${name}: whole input`);
    for (let i = 0; i <= m.length; i += 1) {
      const got = [...scanAll(m, [i]).values()];
      assert.ok(got.some((b) => b.equals(E)), `${name}: split at ${i}`);
    }
  }
});
