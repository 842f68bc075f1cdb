// Tests for src/courierfilter/request.ts: the reader must give the same result however the
// bytes are split, trigger every error code, and never hold more than one line's limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { DEFAULT_REQUEST_LIMITS, RequestReader, type ReadResult, type RequestLimits } from '../src/courierfilter/request.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/courier/', import.meta.url));
const LIMITS: RequestLimits = { maxLineBytes: 64, maxLines: 4 };

/** Push the input cut at the given offsets; stop at the first final result; else end(). */
function feed(input: Buffer, cuts: number[], limits: RequestLimits = LIMITS): ReadResult {
  const r = new RequestReader(limits);
  let prev = 0;
  for (const cut of [...cuts, input.length]) {
    const res = r.push(input.subarray(prev, cut));
    prev = cut;
    if (res.state !== 'incomplete') return res;
  }
  return r.end();
}

/** Every way of cutting the input once, twice (short inputs) and byte by byte gives `expected`. */
function assertSplitInvariant(input: Buffer, expected: ReadResult, limits: RequestLimits = LIMITS): void {
  assert.deepEqual(feed(input, [], limits), expected, 'whole');
  assert.deepEqual(feed(input, Array.from({ length: input.length }, (_, i) => i), limits), expected, 'byte by byte');
  for (let i = 0; i <= input.length; i++) {
    assert.deepEqual(feed(input, [i], limits), expected, `cut at ${i}`);
    if (input.length <= 120) {
      for (let j = i; j <= input.length; j++) assert.deepEqual(feed(input, [i, j], limits), expected, `cuts ${i},${j}`);
    }
  }
}

const done = (dataPath: string, ...controlPaths: string[]): ReadResult => ({
  state: 'done',
  request: { dataPath, controlPaths },
});

function errorCode(res: ReadResult): string | undefined {
  return res.state === 'error' ? res.code : undefined;
}

test('real Courier requests from the samples parse to their resolved paths at every split', () => {
  const samples = readdirSync(FIXTURES).filter((f) => f.endsWith('-request.json'));
  assert.ok(samples.length >= 4, 'fixtures present');
  for (const name of samples) {
    const json = JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as { request_lines_raw: string[]; resolved_paths: string[] };
    const input = Buffer.from(json.request_lines_raw.join(''), 'utf8');
    const [data, ...controls] = json.resolved_paths;
    assertSplitInvariant(input, done(data!, ...controls), DEFAULT_REQUEST_LIMITS);
  }
});

test('several control paths, CRLF line ends, and bytes after the empty line', () => {
  const expected = done('/q/D1', '/q/C1.1', '/q/C1.2');
  assertSplitInvariant(Buffer.from('/q/D1\n/q/C1.1\n/q/C1.2\n\n'), expected);
  assertSplitInvariant(Buffer.from('/q/D1\r\n/q/C1.1\r\n/q/C1.2\r\n\r\n'), expected);
  assertSplitInvariant(Buffer.from('/q/D1\n/q/C1.1\n/q/C1.2\n\ntrailing garbage\x00\n\n'), expected);
});

test('a done or error result is final; later pushes are ignored', () => {
  const r = new RequestReader(LIMITS);
  const first = r.push(Buffer.from('/d\n/c\n\n'));
  assert.deepEqual(first, done('/d', '/c'));
  assert.deepEqual(r.push(Buffer.from('/x\n/y\n\n')), first);
  assert.deepEqual(r.end(), first);
  const bad = new RequestReader(LIMITS);
  const err = bad.push(Buffer.from('rel\n'));
  assert.equal(errorCode(err), 'ERELATIVE_PATH');
  assert.deepEqual(bad.push(Buffer.from('/d\n/c\n\n')), err);
  assert.deepEqual(bad.end(), err);
});

test('non-ASCII UTF-8 paths keep their exact bytes', () => {
  const path = '/var/lib/courier/tmp/é/D1';
  const res = feed(Buffer.from(`${path}\n/c\n\n`, 'utf8'), []);
  assert.equal(res.state, 'done');
  if (res.state === 'done') assert.deepEqual(Buffer.from(res.request.dataPath, 'utf8'), Buffer.from(path, 'utf8'));
});

test('ELINE_TOO_LONG at the limit, with a trailing CR allowed', () => {
  const max = 'x'.repeat(LIMITS.maxLineBytes - 1);
  assertSplitInvariant(Buffer.from(`/${max}\n/c\n\n`), done(`/${max}`, '/c'));
  assertSplitInvariant(Buffer.from(`/${max}\r\n/c\n\n`), done(`/${max}`, '/c'));
  const err = feed(Buffer.from(`/${max}x\n/c\n\n`), []);
  assert.equal(errorCode(err), 'ELINE_TOO_LONG');
  assertSplitInvariant(Buffer.from(`/${max}x\n/c\n\n`), err);
  assertSplitInvariant(Buffer.from(`/d\n/${max}x\r\n\n`), feed(Buffer.from(`/d\n/${max}x\r\n\n`), []));
  assert.equal(errorCode(feed(Buffer.from(`/d\n/${max}x\r\n\n`), [])), 'ELINE_TOO_LONG');
  // A line with no end at all: the error comes before end(), as soon as the bytes prove it.
  assert.equal(errorCode(new RequestReader(LIMITS).push(Buffer.from(`/${max}xy`))), 'ELINE_TOO_LONG');
});

test('a 1 MB line fails once the limit is passed, without the reader waiting for (or holding) all of it', () => {
  const limits = { maxLineBytes: 4096, maxLines: 10 };
  const big = Buffer.alloc(1024 * 1024, 0x61);
  big[0] = 0x2f;
  // One chunk: immediate error, nothing copied.
  assert.equal(errorCode(new RequestReader(limits).push(big)), 'ELINE_TOO_LONG');
  // Byte by byte: incomplete up to maxLineBytes + 1 bytes (one may still be a CR), error at the next.
  const r = new RequestReader(limits);
  for (let i = 0; i < big.length; i++) {
    const res = r.push(big.subarray(i, i + 1));
    if (res.state !== 'incomplete') {
      assert.equal(errorCode(res), 'ELINE_TOO_LONG');
      assert.equal(i, limits.maxLineBytes + 1, 'error at the first byte beyond the bound');
      return;
    }
  }
  assert.fail('no error for a 1 MB line');
});

test('ETOO_MANY_LINES after maxLines path lines', () => {
  assertSplitInvariant(Buffer.from('/d\n/c1\n/c2\n/c3\n\n'), done('/d', '/c1', '/c2', '/c3'));
  const input = Buffer.from('/d\n/c1\n/c2\n/c3\n/c4\n\n');
  const err = feed(input, []);
  assert.equal(errorCode(err), 'ETOO_MANY_LINES');
  assertSplitInvariant(input, err);
});

test('ENO_CONTROL for an empty first line and for a data path alone', () => {
  for (const s of ['\n', '\r\n', '/d\n\n', '/d\r\n\r\n', '\n/d\n/c\n\n']) {
    const err = feed(Buffer.from(s), []);
    assert.equal(errorCode(err), 'ENO_CONTROL', JSON.stringify(s));
    assertSplitInvariant(Buffer.from(s), err);
  }
});

test('ERELATIVE_PATH for a relative data or control path', () => {
  for (const s of ['D123\n/c\n\n', '/d\nc\n\n', '/d\n/c\n./x\n\n', '/d\n /c\n\n']) {
    const err = feed(Buffer.from(s), []);
    assert.equal(errorCode(err), 'ERELATIVE_PATH', JSON.stringify(s));
    assertSplitInvariant(Buffer.from(s), err);
  }
});

test('EBAD_PATH for control characters and invalid UTF-8', () => {
  const cases = [
    Buffer.from('/d\x00x\n/c\n\n'),
    Buffer.from('/d\n/c\x1b[0m\n\n'),
    Buffer.from('/d\tx\n/c\n\n'),
    Buffer.from('/d\rx\n/c\n\n'),
    Buffer.from('/d\x7f\n/c\n\n'),
    Buffer.from('/d\n/c\u0085\n\n', 'utf8'),
    Buffer.concat([Buffer.from('/d'), Buffer.from([0xff, 0xfe]), Buffer.from('\n/c\n\n')]),
    Buffer.concat([Buffer.from('/d\n/c'), Buffer.from([0xc3]), Buffer.from('\n\n')]),
  ];
  for (const input of cases) {
    const err = feed(input, []);
    assert.equal(errorCode(err), 'EBAD_PATH', JSON.stringify(input.toString('latin1')));
    assertSplitInvariant(input, err);
  }
});

test('a UTF-8 BOM at the start of a path line is kept, not stripped into another absolute path', () => {
  // The decoder used to drop a leading EF BB BF, so "\ufeff/q/D1" became "/q/D1": a path
  // submit never sent. Kept as data, the line does not start with "/".
  for (const input of [
    Buffer.from('\ufeff/q/D1\n/q/C1\n\n', 'utf8'),
    Buffer.from('/q/D1\n\ufeff/q/C1\n\n', 'utf8'),
  ]) {
    const err = feed(input, []);
    assert.equal(errorCode(err), 'ERELATIVE_PATH', input.toString('hex'));
    assertSplitInvariant(input, err);
  }
  // Inside a path it is an ordinary character, and stays in the decoded name.
  const res = feed(Buffer.from('/q/\ufeffD1\n/q/C1\n\n', 'utf8'), []);
  assert.deepEqual(res, done('/q/\ufeffD1', '/q/C1'));
});

test('ETRUNCATED when the peer closes before the empty line', () => {
  for (const s of ['', '/d', '/d\n', '/d\n/c', '/d\n/c\n', '/d\n/c\r', '/d\n/c\n\r']) {
    const err = feed(Buffer.from(s), []);
    assert.equal(errorCode(err), 'ETRUNCATED', JSON.stringify(s));
    assertSplitInvariant(Buffer.from(s), err);
  }
});

test('limits are validated up front', () => {
  for (const bad of [
    { maxLineBytes: 0, maxLines: 4 },
    { maxLineBytes: 10, maxLines: 1 },
    { maxLineBytes: 1.5, maxLines: 4 },
    { maxLineBytes: Number.NaN, maxLines: 4 },
  ]) {
    assert.throws(() => new RequestReader(bad), (e: unknown) => (e as { code?: string }).code === 'EINVALID_LIMITS');
  }
});
