// Tests for src/courierfilter/reply.ts: what we send submit is always one well-formed,
// sanitised reply, and the parser gives the same answer however the bytes arrive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_PARSE_LINE_BYTES,
  MAX_REPLY_LINE_BYTES,
  MAX_REPLY_LINES,
  formatReply,
  isReplyCode,
  parseReply,
  sanitizeLine,
  type ParsedReply,
} from '../src/courierfilter/reply.js';

const str = (b: Buffer): string => b.toString('latin1');

/** Every output line is "NNN-" or "NNN " with one code, then printable ASCII, then "\n". */
function assertWellFormed(buf: Buffer, code: number): void {
  const nnn = String(code).padStart(3, '0');
  assert.ok(buf.length > 0 && buf[buf.length - 1] === 0x0a, 'ends with LF');
  const lines = str(buf).slice(0, -1).split('\n');
  assert.ok(lines.length >= 1 && lines.length <= MAX_REPLY_LINES, `line count ${lines.length}`);
  lines.forEach((l, i) => {
    const sep = i === lines.length - 1 ? ' ' : '-';
    assert.ok(l.startsWith(nnn + sep), `line ${i} prefix: ${JSON.stringify(l)}`);
    const text = l.slice(4);
    assert.match(text, /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/, `line ${i} printable, trimmed, non-empty`);
    assert.ok(text.length <= MAX_REPLY_LINE_BYTES, `line ${i} length ${text.length}`);
    assert.ok(!text.includes('  '), 'spaces collapsed');
  });
  if (code < 100) assert.equal(lines.length, 1, '0xx is one line');
}

test('simple and multi-line replies', () => {
  assert.equal(str(formatReply(200, 'Ok')), '200 Ok\n');
  assert.equal(str(formatReply(550, ['virus found', 'in part 2', 'rejected'])), '550-virus found\n550-in part 2\n550 rejected\n');
  assert.equal(str(formatReply(451, ['only'])), '451 only\n');
  assert.equal(str(formatReply(550, ['', 'a', '   ', 'b'])), '550-a\n550 b\n', 'empty lines dropped');
});

test('0xx replies are one line, zero-padded', () => {
  assert.equal(str(formatReply(50, 'OK')), '050 OK\n');
  assert.equal(str(formatReply(50, ['dropped', 'virus X', 'in part 1'])), '050 dropped virus X in part 1\n');
  assert.equal(str(formatReply(0, 'x')), '000 x\n');
  const long = formatReply(50, Array.from({ length: 50 }, () => 'y'.repeat(100)));
  assertWellFormed(long, 50);
});

test('sanitising: CR, LF, NUL, ESC, DEL, C1 become spaces; non-ASCII becomes ?', () => {
  assert.equal(str(formatReply(550, 'a\r\nb\x00c\x1b[31md\x7fe\u0085f')), '550 a b c [31md e f\n');
  assert.equal(str(formatReply(550, 'virus\n550 fake second line')), '550 virus 550 fake second line\n');
  assert.equal(str(formatReply(550, 'Ünïcode 😀 name')), '550 ?n?code ? name\n');
  assert.equal(str(formatReply(550, '  lots   of\t\tspace  ')), '550 lots of space\n');
  assert.equal(sanitizeLine('\r\n\x00', 10), '');
});

test('never empty text: defaults per class', () => {
  assert.equal(str(formatReply(200, '')), '200 Ok\n');
  assert.equal(str(formatReply(50, ['', '\r\n'])), '050 Ok\n');
  assertWellFormed(formatReply(451, '\x00\x00'), 451);
  assertWellFormed(formatReply(554, []), 554);
  assert.notEqual(str(formatReply(451, '')), '451 Ok\n', 'a tempfail does not say Ok');
});

test('caps: line length and number of lines', () => {
  const out = formatReply(550, 'z'.repeat(5000));
  assert.equal(str(out), `550 ${'z'.repeat(MAX_REPLY_LINE_BYTES)}\n`);
  const many = formatReply(550, Array.from({ length: 100 }, (_, i) => `line ${i}`));
  assertWellFormed(many, 550);
  assert.equal(str(many).split('\n').length - 1, MAX_REPLY_LINES);
  assert.ok(str(many).endsWith(`550 line ${MAX_REPLY_LINES - 1}\n`));
});

test('invalid codes throw EBAD_REPLY_CODE', () => {
  for (const c of [-1, 100, 199, 600, 1000, 1.5, Number.NaN]) {
    assert.equal(isReplyCode(c), false, String(c));
    assert.throws(() => formatReply(c, 'x'), (e: unknown) => (e as { code?: string }).code === 'EBAD_REPLY_CODE');
  }
  for (const c of [0, 50, 99, 200, 250, 432, 451, 550, 599]) assert.equal(isReplyCode(c), true, String(c));
});

test('random hostile text always gives a well-formed reply that round-trips', () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let round = 0; round < 300; round++) {
    const nLines = rnd(30);
    const text = Array.from({ length: nLines }, () =>
      Buffer.from(Array.from({ length: rnd(600) }, () => rnd(256))).toString('latin1'),
    );
    const code = [0, 50, 200, 432, 451, 550, 554][rnd(7)]!;
    const out = formatReply(code, text);
    assertWellFormed(out, code);
    const parsed = parseReply(out);
    assert.equal(parsed.state, 'done');
    if (parsed.state === 'done') {
      assert.equal(parsed.code, code);
      assert.equal(parsed.length, out.length);
      assert.equal(formatReply(code, parsed.lines).toString('latin1'), str(out), 'formatting is idempotent');
    }
  }
});

function assertPrefixesIncomplete(full: Buffer, expected: ParsedReply): void {
  for (let k = 0; k < full.length; k++) {
    assert.deepEqual(parseReply(full.subarray(0, k)), { state: 'incomplete' }, `prefix ${k}`);
  }
  assert.deepEqual(parseReply(full), expected);
  // Accumulating byte by byte, the first non-incomplete answer is the full answer.
  let acc = Buffer.alloc(0);
  for (let k = 0; k < full.length; k++) {
    acc = Buffer.concat([acc, full.subarray(k, k + 1)]);
    const r = parseReply(acc);
    if (r.state !== 'incomplete') {
      assert.equal(k, full.length - 1);
      assert.deepEqual(r, expected);
    }
  }
}

test('parseReply: complete only at the final newline, at every split', () => {
  assertPrefixesIncomplete(Buffer.from('200 Ok\n'), { state: 'done', code: 200, lines: ['Ok'], length: 7 });
  assertPrefixesIncomplete(Buffer.from('550-harness-probe: rejected on request\r\n550 (header X)\r\n'), {
    state: 'done',
    code: 550,
    lines: ['harness-probe: rejected on request', '(header X)'],
    length: 56, // 40 + 16 bytes, CRLF included
  });
  assertPrefixesIncomplete(Buffer.from('250\n'), { state: 'done', code: 250, lines: [''], length: 4 });
  assertPrefixesIncomplete(Buffer.from('050 OK\n'), { state: 'done', code: 50, lines: ['OK'], length: 7 });
  const withTail = Buffer.from('451 later\nEXTRA');
  assert.deepEqual(parseReply(withTail), { state: 'done', code: 451, lines: ['later'], length: 10 });
});

test('parseReply at end of stream: final line without newline accepted, anything shorter ETRUNCATED', () => {
  assert.deepEqual(parseReply(Buffer.from('200 Ok'), true), { state: 'done', code: 200, lines: ['Ok'], length: 6 });
  assert.deepEqual(parseReply(Buffer.from('200 Ok')), { state: 'incomplete' });
  for (const s of ['', '2', '20', '250-a\n', '250-a\n250-b']) {
    const r = parseReply(Buffer.from(s), true);
    assert.equal(r.state === 'error' && r.code, 'ETRUNCATED', JSON.stringify(s));
  }
});

test('parseReply errors are reported as soon as the bytes prove them, and stay the same', () => {
  const cases: [string, string, number][] = [
    ['250-a\n550 b\n', 'EBAD_REPLY', 9], // mixed codes: known once the second code is complete
    ['abc\n', 'EBAD_REPLY', 1],
    ['25x Ok\n', 'EBAD_REPLY', 3],
    ['250xOk\n', 'EBAD_REPLY', 4],
    ['250\rx\n', 'EBAD_REPLY', 6],
    ['25\n', 'EBAD_REPLY', 3],
  ];
  for (const [s, code, firstBad] of cases) {
    const full = Buffer.from(s);
    const want = parseReply(full);
    assert.equal(want.state === 'error' && want.code, code, JSON.stringify(s));
    for (let k = 0; k <= full.length; k++) {
      const r = parseReply(full.subarray(0, k));
      if (k < firstBad) assert.deepEqual(r, { state: 'incomplete' }, `${JSON.stringify(s)} prefix ${k}`);
      else assert.equal(r.state === 'error' && r.code, code, `${JSON.stringify(s)} prefix ${k}`);
    }
  }
  const long = Buffer.from(`250 ${'x'.repeat(MAX_PARSE_LINE_BYTES)}\n`);
  const r = parseReply(long);
  assert.equal(r.state === 'error' && r.code, 'ELINE_TOO_LONG');
  const unterminated = parseReply(Buffer.from(`250 ${'x'.repeat(MAX_PARSE_LINE_BYTES)}`));
  assert.equal(unterminated.state === 'error' && unterminated.code, 'ELINE_TOO_LONG', 'bounded before the newline');
});

test('parseReply: a bad line start stays EBAD_REPLY however many bytes follow (was ELINE_TOO_LONG past 2049)', () => {
  // "4" then not-a-digit is bad at byte 2; a longer prefix of the same bytes used to give
  // ELINE_TOO_LONG instead, so the answer depended on how much had arrived.
  for (const head of ['4\u2028', 'abc', '250x', '250-a\n550']) {
    const full = Buffer.from(head + 'y'.repeat(MAX_PARSE_LINE_BYTES + 10), 'utf8');
    const first = parseReply(Buffer.from(head, 'utf8'));
    assert.equal(first.state === 'error' && first.code, 'EBAD_REPLY', JSON.stringify(head));
    for (const k of [MAX_PARSE_LINE_BYTES, MAX_PARSE_LINE_BYTES + 2, full.length]) {
      assert.deepEqual(parseReply(full.subarray(0, k)), first, `${JSON.stringify(head)} prefix ${k}`);
    }
  }
});
