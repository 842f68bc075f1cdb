/**
 * Fuzz of the Courier request reader (src/courierfilter/request.ts): request-like and random
 * inputs, split at random offsets, checked against a reference decoder written here from
 * courier-filter-protocol.md §2.2 and the reader's documented rules. Properties: the reader
 * never throws; its result does not depend on how the bytes are split; it equals the reference
 * (state, error code, paths); a final result stays final. Seeded and bounded; see
 * test/helpers/fuzz.ts for AVFILTER_FUZZ_ITERATIONS and AVFILTER_FUZZ_SEED.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_REQUEST_LIMITS, RequestReader, type ReadResult, type RequestLimits } from '../src/courierfilter/request.js';
import { cutPoints, fuzz, fuzzIterations, fuzzSeed, mutateBytes, piecesAt, repeat, type Rng } from './helpers/fuzz.js';

const SEED = fuzzSeed(0x5eed0001);

/** What the reference decides: the reader's result without its message text. */
type Expected =
  | { state: 'incomplete' }
  | { state: 'done'; dataPath: string; controlPaths: string[] }
  | { state: 'error'; code: string };

/**
 * Reference decoder, deliberately written another way than the reader: the whole input at
 * once, lines cut with split(), UTF-8 strictness checked by a lossless round trip (a BOM is
 * kept as data: it is a byte submit sent, and a path starting with it is not absolute).
 */
function reference(input: Buffer, limits: RequestLimits): Expected {
  const text = input.toString('latin1');
  const parts = text.split('\n');
  const last = parts.pop()!; // bytes after the last "\n": an unterminated line
  const paths: string[] = [];
  for (const raw of parts) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.length > limits.maxLineBytes) return { state: 'error', code: 'ELINE_TOO_LONG' };
    if (line === '') {
      if (paths.length < 2) return { state: 'error', code: 'ENO_CONTROL' };
      return { state: 'done', dataPath: paths[0]!, controlPaths: paths.slice(1) };
    }
    if (paths.length === limits.maxLines) return { state: 'error', code: 'ETOO_MANY_LINES' };
    const bytes = Buffer.from(line, 'latin1');
    const path = bytes.toString('utf8');
    if (!Buffer.from(path, 'utf8').equals(bytes)) return { state: 'error', code: 'EBAD_PATH' };
    for (const ch of path) {
      const cp = ch.codePointAt(0)!;
      if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return { state: 'error', code: 'EBAD_PATH' };
    }
    if (path[0] !== '/') return { state: 'error', code: 'ERELATIVE_PATH' };
    paths.push(path);
  }
  // A line may be one byte over the limit while its "\n" could still show that byte was a CR.
  if (last.length > limits.maxLineBytes + 1) return { state: 'error', code: 'ELINE_TOO_LONG' };
  return { state: 'error', code: 'ETRUNCATED' }; // after end(); before it, 'incomplete'
}

function strip(r: ReadResult): Expected {
  if (r.state === 'done') return { state: 'done', dataPath: r.request.dataPath, controlPaths: [...r.request.controlPaths] };
  if (r.state === 'error') return { state: 'error', code: r.code };
  return r;
}

/** Feeds the pieces in order, stops at the first final result, else end(). */
function feed(pieces: readonly Buffer[], limits: RequestLimits): { result: ReadResult; reader: RequestReader } {
  const reader = new RequestReader(limits);
  for (const p of pieces) {
    const r = reader.push(p);
    if (r.state !== 'incomplete') return { result: r, reader };
  }
  return { result: reader.end(), reader };
}

function pickLimits(rnd: Rng): RequestLimits {
  return rnd.chance(0.4) ? { ...DEFAULT_REQUEST_LIMITS } : { maxLineBytes: rnd.range(1, 80), maxLines: rnd.range(2, 8) };
}

const PATHS = [
  '/var/lib/courier/tmp/179526/D1482753',
  '/var/lib/courier/tmp/179526/1795264714.7365.vm',
  '/var/lib/courier/tmp/179526/C1482754.1',
  '/var/lib/courier/tmp/179526/C1482754.2',
  '/var/lib/courier/tmp/é/D1',
  '/q/D1',
  '/',
];

/** A path of about `n` bytes, often right at the line limit. */
function pathOfLength(rnd: Rng, n: number): string {
  const body = 'var/lib/courier/tmp/1795/D'.padEnd(Math.max(0, n - 1), String(rnd.int(10)));
  return `/${body.slice(0, Math.max(0, n - 1))}`;
}

/** Something shaped like what submit sends, with the limits' edges in reach. */
function requestLike(rnd: Rng, limits: RequestLimits): Buffer {
  const lines: string[] = [];
  const n = rnd.chance(0.15) ? rnd.range(limits.maxLines - 1, limits.maxLines + 2) : rnd.range(0, 4);
  for (let i = 0; i < n; i++) {
    if (rnd.chance(0.3)) lines.push(pathOfLength(rnd, limits.maxLineBytes + rnd.range(-2, 1)));
    else lines.push(rnd.pick(PATHS));
  }
  const eol = (): string => (rnd.chance(0.8) ? '\n' : '\r\n');
  let text = lines.map((l) => l + eol()).join('');
  if (rnd.chance(0.9)) text += eol();
  if (rnd.chance(0.2)) text += rnd.pick(['/x\n/y\n\n', 'garbage\0\n', '\n\n']);
  return Buffer.from(text, 'utf8');
}

const REQUEST_TOKENS = ['/', '\n/', '/var/lib/courier/tmp/', '\n\n', '\r\n\r\n', 'rel/ative', ' /', '.'].map((s) => Buffer.from(s));

function input(rnd: Rng, limits: RequestLimits): Buffer {
  switch (rnd.int(5)) {
    case 0: // random bytes, biased towards "/" and line ends
      return Buffer.from(Array.from({ length: rnd.size(300) }, () => rnd.pick([0x2f, 0x0a, 0x0d, 0x61, rnd.int(256)])));
    case 1: // a huge line, with or without its end
      return Buffer.concat([Buffer.from('/'), repeat(Buffer.from('a'), rnd.size(limits.maxLineBytes * 4)), Buffer.from(rnd.pick(['', '\n/c\n\n', '\r\n/c\n\n']))]);
    default: {
      const base = requestLike(rnd, limits);
      return rnd.chance(0.6) ? mutateBytes(base, rnd, { tokens: REQUEST_TOKENS, maxRun: limits.maxLineBytes + 8 }) : base;
    }
  }
}

test('fuzz: the request reader equals the reference decoder at any split', () => {
  const run = fuzz('request: reference and splits', { seed: SEED, iterations: fuzzIterations(2000) }, ({ rnd, note }) => {
    const limits = pickLimits(rnd);
    const bytes = input(rnd, limits);
    note('limits', limits);
    note('input', bytes);
    const whole = feed([bytes], limits);
    assert.deepEqual(strip(whole.result), reference(bytes, limits), 'whole input vs the reference decoder');
    assert.ok(whole.result.state !== 'error' || (typeof whole.result.message === 'string' && whole.result.message.length > 0), 'an error has a message');
    for (let k = 0; k < 2; k++) {
      const cuts = cutPoints(bytes.length, rnd);
      note(`cuts ${k}`, cuts);
      assert.deepEqual(feed(piecesAt(bytes, cuts), limits).result, whole.result, 'split input gives the same result, message included');
    }
    // Final means final: more bytes or end() change nothing.
    assert.equal(whole.reader.push(Buffer.from('/late\n/later\n\n')), whole.result);
    assert.equal(whole.reader.end(), whole.result);
  });
  console.log(`fuzz: ${run.iterations} request inputs in ${run.ms} ms (seed ${run.seed})`);
});

test('fuzz: short inputs give the same result at every single cut', () => {
  const run = fuzz('request: every cut', { seed: SEED, iterations: fuzzIterations(300) }, ({ rnd, note }) => {
    const limits = { maxLineBytes: rnd.range(1, 12), maxLines: rnd.range(2, 4) };
    const bytes = mutateBytes(Buffer.from(rnd.pick(['/d\n/c\n\n', '/d\r\n/c\r\n\r\n', '/d\n/c1\n/c2\n\n', '\n', '/d'])), rnd, { tokens: REQUEST_TOKENS, maxRun: 16 });
    note('limits', limits);
    note('input', bytes);
    const want = feed([bytes], limits).result;
    assert.deepEqual(strip(want), reference(bytes, limits));
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(feed([bytes.subarray(0, i), bytes.subarray(i)], limits).result, want, `cut at ${i}`);
    }
  });
  console.log(`fuzz: ${run.iterations} short request inputs cut at every offset in ${run.ms} ms`);
});
