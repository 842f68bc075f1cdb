/**
 * PDF predictors (src/unpack/formats/pdf-predictors.ts): a FlateDecode or LZWDecode stream
 * whose /DecodeParms names a PNG (10..15) or TIFF (2) predictor must come out as the bytes the
 * writer started from, not as rows of differences (found by a suite on another branch: an
 * embedded file with /Predictor 12 /Columns 17 came out scrambled). The rows are filtered
 * here, by the PNG rules, so the test does not trust the decoder it checks. Then hostile
 * parameters: a /Columns of 2^31 - 1, a last row cut short, unknown row types.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { unpackPdf } from '../src/unpack/formats/index.js';
import type { UnpackLimits, UnpackResult } from '../src/unpack/types.js';
import { asciiHexEncode, deflateSync, lzwEncode, pdf } from './helpers/documents.js';

const limits = (o: Partial<UnpackLimits> = {}): UnpackLimits => ({
  maxOutputBytes: 64 << 20, maxMembers: 1000, deadline: Date.now() + 5000, ...o,
});
const named = (r: UnpackResult, name: string): Buffer => {
  const m = r.members.find((x) => x.name === name);
  assert.ok(m, `no member ${JSON.stringify(name)} in ${JSON.stringify(r.members.map((x) => x.name))}`);
  return m.bytes;
};

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** PNG-filters `plain` in rows of `row` bytes, row r with types[r % types.length]. */
function pngFilter(plain: Buffer, row: number, bpp: number, types: number[]): Buffer {
  const out: number[] = [];
  for (let r = 0, start = 0; start < plain.length; r++, start += row) {
    const type = types[r % types.length]!;
    out.push(type);
    for (let k = 0; k < row && start + k < plain.length; k++) {
      const x = plain[start + k]!;
      const a = k >= bpp ? plain[start + k - bpp]! : 0;
      const b = r > 0 ? plain[start - row + k]! : 0;
      const c = k >= bpp && r > 0 ? plain[start - row + k - bpp]! : 0;
      const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][type]!;
      out.push((x - pred) & 0xff);
    }
  }
  return Buffer.from(out);
}

test('pdf predictor: /Predictor 12 /Columns 17 rows (Up and Paeth) come out as the original bytes', () => {
  const plain = randomBytes(17 * 40);
  const filtered = pngFilter(plain, 17, 1, [2, 4]);
  const r = unpackPdf(pdf([{ num: 1, dict: '<< /Type /EmbeddedFile /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 17 >> >>', data: deflateSync(filtered) }]), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(named(r, '[object 1]'), plain);
});

test('pdf predictor: every PNG row type with 3 colours of 8 bits (bpp 3), and a last row cut short', () => {
  const plain = randomBytes(3 * 10 * 25 + 7); // 25 rows of 30 bytes, then 7 bytes of a 26th
  const filtered = pngFilter(plain, 30, 3, [0, 1, 2, 3, 4]);
  const r = unpackPdf(pdf([{ num: 1, dict: '<< /Filter /FlateDecode /DecodeParms << /Predictor 15 /Colors 3 /BitsPerComponent 8 /Columns 10 >> >>', data: deflateSync(filtered) }]), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(named(r, '[object 1]'), plain);
});

test('pdf predictor: /DecodeParms as an array parallel to /Filter ([null <<...>>]) and after LZW', () => {
  const plain = randomBytes(17 * 12);
  const filtered = pngFilter(plain, 17, 1, [1, 3]);
  const r = unpackPdf(pdf([
    { num: 1, dict: '<< /Filter [/ASCIIHexDecode /FlateDecode] /DecodeParms [null << /Predictor 12 /Columns 17 >>] >>', data: asciiHexEncode(deflateSync(filtered)) },
    { num: 2, dict: '<< /Filter /LZWDecode /DecodeParms << /Predictor 10 /Columns 17 >> >>', data: lzwEncode(filtered) },
  ]), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(named(r, '[object 1]'), plain);
  assert.deepEqual(named(r, '[object 2]'), plain);
});

test('pdf predictor: TIFF predictor 2 with 3 colours of 8 bits', () => {
  const plain = randomBytes(3 * 9 * 11);
  const diff = Buffer.from(plain);
  for (let row = 0; row < plain.length; row += 27) {
    for (let k = 3; k < 27; k++) diff[row + k] = (plain[row + k]! - plain[row + k - 3]!) & 0xff;
  }
  const r = unpackPdf(pdf([{ num: 1, dict: '<< /Filter /FlateDecode /DecodeParms << /Predictor 2 /Colors 3 /Columns 9 >> >>', data: deflateSync(diff) }]), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(named(r, '[object 1]'), plain);
});

test('pdf predictor: /Columns 2147483647 and a truncated row: no throw, no output past the input, nothing allocated for the row', () => {
  const rows = Buffer.concat([Buffer.from([2]), randomBytes(1000)]);
  const before = process.memoryUsage().rss;
  for (const [predictor, colors] of [[12, 1], [15, 32], [2, 4]] as const) {
    const dict = `<< /Filter /FlateDecode /DecodeParms << /Predictor ${predictor} /Colors ${colors} /BitsPerComponent 8 /Columns 2147483647 >> >>`;
    const r = unpackPdf(pdf([{ num: 1, dict, data: deflateSync(rows) }]), limits());
    assert.equal(r.outcome, 'ok', r.detail);
    const out = named(r, '[object 1]');
    assert.ok(out.length <= rows.length);
    // One row cut short: Up from no row above is the bytes themselves; TIFF predicts along it.
    if (predictor === 12) assert.deepEqual(out, rows.subarray(1));
  }
  assert.ok(process.memoryUsage().rss - before < 100 << 20);
});

test('pdf predictor: parameters pdf.js still reads (/BitsPerComponent 3, /Colors 0 as 1, 16-bit TIFF) are undone as it does (were kept predicted, outcome corrupt)', () => {
  // pdf.js decodes these (its PNG rows of (columns*colors*bits+7)>>3 bytes, `Colors || 1`),
  // so the bytes a viewer saves are the unpredicted ones; worked out by hand here
  for (const [parms, data, want] of [
    ['/Predictor 12 /Columns 4 /BitsPerComponent 3', [0, 1, 2, 3, 4], [1, 2, 4]],
    ['/Predictor 2 /Columns 4 /Colors 0', [0, 1, 2, 3, 4], [0, 1, 3, 6, 4]],
    ['/Predictor 2 /Columns 4 /BitsPerComponent 16', [0, 1, 2, 3, 4], [0, 1, 2, 4, 4]],
    ['/Predictor 2 /Columns 4 /BitsPerComponent 4', [0x12, 0x34, 0x56], [0x13, 0x6a, 0x5b]],
  ] as const) {
    const r = unpackPdf(pdf([{ num: 1, dict: `<< /Filter /FlateDecode /DecodeParms << ${parms} >> >>`, data: deflateSync(Buffer.from(data)) }]), limits());
    assert.equal(r.outcome, 'ok', parms);
    assert.deepEqual([...named(r, '[object 1]')], want, parms);
  }
});

test('pdf predictor: a PNG row type no reader knows (7) keeps the inflated bytes, outcome corrupt', () => {
  const data = Buffer.from([7, 1, 2, 3, 4]);
  const r = unpackPdf(pdf([{ num: 1, dict: '<< /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 4 >> >>', data: deflateSync(data) }]), limits());
  assert.equal(r.outcome, 'corrupt');
  assert.deepEqual(named(r, '[object 1]'), data);
});
