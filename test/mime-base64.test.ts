/**
 * Base64Decoder (Node's decoder for runs of regular lines) against JsBase64Decoder (byte by
 * byte, the decoder of record): for any input split anywhere, the same bytes, the same
 * `irregular` flag after every chunk, and the same state (what the next chunk and final() see).
 * Random regular bodies (widths and line ends of every kind, padded or not), the same bodies
 * with the things a strict reader reads differently put in, and the cases at the edges of the
 * fast path: padding mid-stream, CR-only lines, junk, a chunk boundary inside a group, inside
 * CRLF, right after "=". Seeded; see test/helpers/fuzz.ts for AVFILTER_FUZZ_ITERATIONS / _SEED.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Base64Decoder, JsBase64Decoder, NATIVE_FAST_PATH } from '../src/mime/base64.js';
import { fuzz, fuzzIterations, fuzzSeed, Rng } from './helpers/fuzz.js';

const SEED = fuzzSeed(0x5eed00b6);

interface Decoded { bytes: Buffer; flags: boolean[] }

/** Feeds `input` cut at `cuts` through update(), as the pipeline does, noting `irregular` after each chunk. */
function viaUpdate(d: JsBase64Decoder, input: Buffer, cuts: readonly number[]): Decoded {
  const parts: Buffer[] = [];
  const flags: boolean[] = [];
  let prev = 0;
  for (const c of [...cuts, input.length]) {
    parts.push(Buffer.from(d.update(input.subarray(prev, c))));
    flags.push(d.irregular);
    prev = c;
  }
  parts.push(d.final());
  return { bytes: Buffer.concat(parts), flags };
}

/** The same through updateInto() on ranges of one buffer into one output, as the embedded scanner does. */
function viaUpdateInto(d: JsBase64Decoder, input: Buffer, cuts: readonly number[], lead: number): Decoded {
  const buf = Buffer.concat([Buffer.alloc(lead, 0x41), input]); // bytes before `start` that must not be read
  const out = Buffer.alloc(lead + Math.ceil(((input.length + 4) * 3) / 4) + 8, 0xee);
  const flags: boolean[] = [];
  let o = lead;
  let prev = 0;
  for (const c of [...cuts, input.length]) {
    o = d.updateInto(buf, lead + prev, lead + c, out, o);
    flags.push(d.irregular);
    prev = c;
  }
  o = d.finalInto(out, o);
  assert.ok(out.subarray(0, lead).every((x) => x === 0xee), 'wrote before its offset');
  return { bytes: out.subarray(lead, o), flags };
}

/** Base64Decoder gives what JsBase64Decoder gives, through update() and updateInto(); returns that. */
function assertSame(input: Buffer, cuts: readonly number[], lead: number): Decoded {
  const want = viaUpdate(new JsBase64Decoder(), input, cuts);
  assert.deepEqual(viaUpdate(new Base64Decoder(), input, cuts), want, 'update()');
  assert.deepEqual(viaUpdateInto(new Base64Decoder(), input, cuts, lead), want, 'updateInto()');
  return want;
}

const WIDTHS = [76, 76, 76, 64, 72, 60, 73, 74, 75, 77, 78, 1, 2, 3, 4, 5, 57, 100, 998, 4096];

/** A regular body: random bytes encoded in lines of one width, CRLF or LF, padding kept or dropped. */
function regularBody(rnd: Rng): { input: Buffer; data: Buffer } {
  const size = rnd.chance(0.5) ? rnd.range(0, 300_000) : rnd.size(300_000);
  const data = rnd.bytes(size);
  const b64 = data.toString('base64');
  const text = rnd.chance(0.1) ? b64.replace(/=+$/, '') : b64;
  const width = rnd.chance(0.8) ? rnd.pick(WIDTHS) : rnd.range(1, 300);
  const eol = rnd.pick(['\r\n', '\r\n', '\n', '\r']);
  let out = '';
  for (let i = 0; i < text.length; i += width) out += text.slice(i, i + width) + eol;
  if (rnd.chance(0.2)) out = out.slice(0, out.length - eol.length);
  return { input: Buffer.from(out, 'latin1'), data };
}

/** What a strict reader reads differently, and what only looks odd: each at a random place. */
const INSERTS = ['=', '==', '=\r\n', '-', '_', '*', ' ', '\t', '\r', '\n', '\r\r\n', '\0', '\xff', '\xe9', '.', 'A', 'QQ==', '\r\n\r\n', 'YWJj='];

function irregularBody(rnd: Rng): Buffer {
  let b = regularBody(rnd).input;
  const n = 1 + rnd.int(4);
  for (let k = 0; k < n; k++) {
    const at = rnd.int(b.length + 1);
    const what = rnd.chance(0.1) ? rnd.bytes(1 + rnd.int(8)) : Buffer.from(rnd.pick(INSERTS), 'latin1');
    b = rnd.chance(0.2) && at < b.length
      ? Buffer.concat([b.subarray(0, at), what, b.subarray(Math.min(b.length, at + what.length))]) // overwrite
      : Buffer.concat([b.subarray(0, at), what, b.subarray(at)]);
  }
  return b;
}

/** Cuts: none, the pipeline's 64 KiB chunks, or a few anywhere (small pieces too). */
function cuts(rnd: Rng, length: number): number[] {
  switch (rnd.int(4)) {
    case 0: return [];
    case 1: {
      const size = rnd.pick([65536, 16384, 4096, 1500]);
      const out: number[] = [];
      for (let i = size; i < length; i += size) out.push(i);
      return out;
    }
    default: return Array.from({ length: 1 + rnd.int(12) }, () => rnd.int(length + 1)).sort((a, b) => a - b);
  }
}

test('this runtime reads base64 as the fast path needs (else every test below compares the byte-by-byte path with itself)', () => {
  assert.equal(NATIVE_FAST_PATH, true);
});

/** Runs `make`'s bodies through both decoders at random cuts; a regular one must also decode to its data, unflagged. */
function fuzzBodies(property: string, iterations: number, make: (rnd: Rng) => { input: Buffer; data?: Buffer }): void {
  fuzz(property, { seed: SEED, iterations: fuzzIterations(iterations) }, ({ rnd, note }) => {
    const { input, data } = make(rnd);
    const at = cuts(rnd, input.length);
    note('input', input);
    note('cuts', at);
    const got = assertSame(input, at, rnd.int(5));
    if (data !== undefined) {
      assert.deepEqual(got.bytes, data, 'the standard decoding');
      assert.equal(got.flags.at(-1), false, 'a regular body is not irregular');
    }
  });
}

test('fuzz: regular bodies, split anywhere, decode as the byte-by-byte decoder does, to the standard decoding', () => {
  fuzzBodies('base64 regular', 150, regularBody);
});

test('fuzz: irregular bodies, split anywhere, give the same bytes and the same irregular flag after every chunk', () => {
  fuzzBodies('base64 irregular', 250, (rnd) => ({ input: irregularBody(rnd) }));
});

/** A body of `lines` 76-character CRLF lines of random data, as mail clients write attachments. */
function attachment(rnd: Rng, lines: number): string {
  const b64 = rnd.bytes(lines * 57).toString('base64');
  return b64.replace(/.{76}/g, '$&\r\n');
}

test('edges of the fast path: padding mid-stream, CR-only lines, junk, boundaries inside a group, inside CRLF, after "="', () => {
  const rnd = new Rng(SEED);
  const a = attachment(rnd, 1500); // about 117 KB: several 48 KiB runs
  const cases: [string, string][] = [
    ['padding mid-stream, then more lines', `${a}QQ==\r\n${a}`],
    ['two encodings glued on one line', `${a}YQ==YmM=\r\n${a}`],
    ['"=" inside a line of the first run', `${a.slice(0, 1000)}=${a.slice(1000)}`],
    ['CR-only line ends', a.replace(/\r\n/g, '\r')],
    ['LF line ends', a.replace(/\r\n/g, '\n')],
    ['mixed line ends', a.replace(/\r\n/g, (_, i: number) => (i % 3 === 0 ? '\n' : '\r\n'))],
    ['junk in the middle of a run', `${a.slice(0, 50_001)}*${a.slice(50_001)}`],
    ['a space at the end of one line', a.replace('\r\n', ' \r\n')],
    ['base64url characters', `${a.slice(0, 70_000)}-_${a.slice(70_000)}`],
    ['a short line in the middle', a.replace('\r\n', '\r\nQUJD\r\n')],
    ['a long line in the middle', a.replace('\r\n', 'QUJD\r\n')],
    ['a line one character longer with a bare LF (the same length as the others)', a.replace(/\r\n/g, (m, i: number) => (i === 78 * 300 + 76 ? 'Q\n' : m))],
    ['blank lines', a.replace(/\r\n/g, '\r\n\r\n')],
    ['data after the final padding', `${a}QQ==\r\n\r\nQUJD\r\n`],
    ['a lone character at the end', `${a}Q\r\n`],
    ['high bytes', `${a.slice(0, 200)}\xe9\xff${a.slice(200)}`],
  ];
  for (const [name, text] of cases) {
    const input = Buffer.from(text, 'latin1');
    // boundaries in every position of a group and of a line end, around several places
    const points = new Set<number>();
    for (const base of [0, 7, 78 * 10, 49_152, input.indexOf('='), input.indexOf('\r\n', 60_000)]) {
      if (base < 0) continue;
      for (let d = -3; d <= 4; d++) if (base + d > 0 && base + d < input.length) points.add(base + d);
    }
    for (const p of points) {
      assertSame(input, [p], 0);
      assertSame(input, [p, Math.min(input.length, p + 1), Math.min(input.length, p + 65_536)], 3);
    }
    assertSame(input, [], 1);
    const flag = viaUpdate(new JsBase64Decoder(), input, []).flags.at(-1);
    assert.equal(viaUpdate(new Base64Decoder(), input, []).flags.at(-1), flag, name);
  }
});

test('a regular attachment decodes to its bytes and is not irregular, in 64 KiB chunks', () => {
  const rnd = new Rng(SEED + 1);
  const data = rnd.bytes(175_000);
  const input = Buffer.from(`${data.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`, 'latin1');
  const at: number[] = [];
  for (let i = 65_536; i < input.length; i += 65_536) at.push(i);
  const got = viaUpdate(new Base64Decoder(), input, at);
  assert.deepEqual(got.bytes, data);
  assert.deepEqual(got.flags, at.map(() => false).concat(false));
});
