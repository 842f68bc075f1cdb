/**
 * Fuzz of the Courier reply codec (src/courierfilter/reply.ts). The text of a reply may carry
 * engine output we do not trust (virus names, error messages), so for any text:
 * - formatReply never throws for a valid code, and throws EBAD_REPLY_CODE exactly for an invalid
 *   one; its output is a well-formed reply for submit: every line "NNN-" or "NNN " with one code,
 *   the last one "NNN ", only printable ASCII inside a line (so no CR, LF, NUL, C0/C1 control,
 *   DEL, U+2028/U+2029 line separators or bidi controls such as U+202E), bounded line length
 *   and line count, a 0xx reply on one line; parseReply reads it back whole;
 * - sanitizeLine returns one trimmed line of printable ASCII within its byte bound;
 * - parseReply never throws and its answer for a prefix, once final, stays the answer.
 * Seeded and bounded; see test/helpers/fuzz.ts for AVFILTER_FUZZ_ITERATIONS / AVFILTER_FUZZ_SEED.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_REPLY_LINE_BYTES, MAX_REPLY_LINES, formatReply, isReplyCode, parseReply, sanitizeLine,
} from '../src/courierfilter/reply.js';
import { AvError } from '../src/errors.js';
import { fuzz, fuzzIterations, fuzzSeed, mutateBytes, type Rng } from './helpers/fuzz.js';

const SEED = fuzzSeed(0x5eed0003);

/** Characters that must never reach submit, plus ordinary text around them. */
const HOSTILE = [
  '\r', '\n', '\r\n', '\0', '\t', '\x0b', '\x0c', '\x1b[31m', '\x7f', '\u0085', '\u0080', '\u009b', '\u009f',
  '\u2028', '\u2029', '\u202e', '\u202d', '\u2066', '\u200b', '\u200f', '\ufeff', '\ufffd', '\ud800', '\udfff',
  '\ud83d\ude00', 'é', '€', '\u00a0', '\u3000', '550 ', '250-', '\n250 Ok', '\r\n.\r\n', '%s', '  ', ' ',
];
const WORDS = ['virus', 'found:', 'Win.Test.EICAR_HDB-1', 'stream:', 'Eicar-Signature', '4.7.1', 'Message', 'rejected', 'x'];

function hostileText(rnd: Rng): string {
  const parts: string[] = [];
  const n = rnd.size(60);
  for (let i = 0; i < n; i++) {
    switch (rnd.int(5)) {
      case 0:
        parts.push(rnd.pick(HOSTILE));
        break;
      case 1: // any UTF-16 code unit, lone surrogates included
        parts.push(String.fromCharCode(rnd.int(0x10000)));
        break;
      case 2: // any code point
        parts.push(String.fromCodePoint(rnd.int(0x110000)));
        break;
      case 3: // a long run, past the line bound
        parts.push(rnd.pick(['z', ' ', '\u2028', '\r\n']).repeat(rnd.size(2000)));
        break;
      default:
        parts.push(rnd.pick(WORDS));
    }
  }
  return parts.join(rnd.chance(0.5) ? ' ' : '');
}

/** Text as formatReply may get it: a string, or an array of them (rarely something else). */
function replyText(rnd: Rng): string | string[] {
  if (rnd.chance(0.4)) return hostileText(rnd);
  const lines = Array.from({ length: rnd.size(40) }, () => hostileText(rnd));
  // Engine text typed as string can still be undefined or a number at run time.
  if (rnd.chance(0.05)) (lines as unknown[]).push(rnd.pick([undefined, null, 42, {}, ['nested']]));
  return lines;
}

function replyCode(rnd: Rng): number {
  if (rnd.chance(0.8)) return rnd.pick([0, 50, 99, 200, 250, 432, 451, 550, 554, 599, rnd.range(0, 99), rnd.range(200, 599)]);
  return rnd.pick([-1, -0, 1, 100, 150, 199, 600, 999, 1000, 1.5, 250.0001, Number.NaN, Infinity, -Infinity, rnd.range(-2000, 2000)]);
}

/** Every property of a reply as submit must see it. */
function assertWellFormed(out: Buffer, code: number): void {
  const nnn = String(code).padStart(3, '0');
  assert.ok(out.length > 0 && out[out.length - 1] === 0x0a, 'ends with "\\n"');
  for (const b of out) assert.ok(b === 0x0a || (b >= 0x20 && b <= 0x7e), `byte 0x${b.toString(16)} is printable ASCII or "\\n"`);
  const lines = out.toString('latin1').slice(0, -1).split('\n');
  assert.ok(lines.length >= 1 && lines.length <= MAX_REPLY_LINES, `${lines.length} lines`);
  if (code < 100) assert.equal(lines.length, 1, 'a 0xx reply is one line');
  lines.forEach((l, i) => {
    const sep = i === lines.length - 1 ? ' ' : '-';
    assert.ok(l.startsWith(nnn + sep), `line ${i} starts with "${nnn}${sep}": ${JSON.stringify(l.slice(0, 20))}`);
    const text = l.slice(4);
    assert.ok(text.length >= 1 && text.length <= MAX_REPLY_LINE_BYTES, `line ${i} text length ${text.length}`);
    assert.ok(text[0] !== ' ' && text[text.length - 1] !== ' ' && !text.includes('  '), `line ${i} trimmed, spaces collapsed`);
  });
  const back = parseReply(out);
  assert.ok(back.state === 'done', `parseReply reads it: ${JSON.stringify(back)}`);
  assert.ok(back.code === code, `code read back ${back.code}`); // -0 is a valid 0 (written "000")
  assert.equal(back.length, out.length, 'one reply, nothing after it');
  assert.equal(back.lines.length, lines.length);
}

test('fuzz: formatReply gives a well-formed reply for any text, or EBAD_REPLY_CODE for a bad code', () => {
  const run = fuzz('reply: formatReply', { seed: SEED, iterations: fuzzIterations(1500) }, ({ rnd, note }) => {
    const code = replyCode(rnd);
    const text = replyText(rnd);
    note('code', code);
    note('text', text);
    if (!isReplyCode(code)) {
      assert.throws(() => formatReply(code, text), (e: unknown) => e instanceof AvError && e.origin === 'internal' && e.code === 'EBAD_REPLY_CODE');
      return;
    }
    const out = formatReply(code, text);
    note('output', out);
    assertWellFormed(out, code);
    // Formatting what was sent again changes nothing: the sanitising is complete in one pass.
    const back = parseReply(out);
    if (back.state === 'done') assert.deepEqual(formatReply(code, back.lines), out, 'idempotent');
  });
  console.log(`fuzz: ${run.iterations} replies in ${run.ms} ms (seed ${run.seed})`);
});

test('fuzz: sanitizeLine returns one printable, trimmed line within its bound', () => {
  const run = fuzz('reply: sanitizeLine', { seed: SEED, iterations: fuzzIterations(3000) }, ({ rnd, note }) => {
    const text = rnd.chance(0.97) ? hostileText(rnd) : (rnd.pick([undefined, null, 7, {}, []]) as unknown as string);
    const max = rnd.pick([0, 1, 2, 10, 400, 512, rnd.size(5000), -1, 2.5, Number.NaN, Infinity]);
    note('text', text);
    note('maxBytes', max);
    const s = sanitizeLine(text, max);
    assert.equal(typeof s, 'string');
    assert.match(s, /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/, 'printable ASCII, trimmed');
    assert.ok(!s.includes('  '), 'spaces collapsed');
    const bound = Number.isNaN(max) ? 0 : Math.max(0, Math.floor(max));
    assert.ok(s.length <= bound, `length ${s.length} within ${max}`);
  });
  console.log(`fuzz: ${run.iterations} sanitized lines in ${run.ms} ms`);
});

const REPLY_SEEDS = ['200 Ok\n', '050 OK\n', '550-a\n550 b\n', '451 later\r\n', '250\n', '550-harness-probe: rejected\r\n550 (header X)\r\n'].map((s) => Buffer.from(s));
const REPLY_TOKENS = ['250-', '250 ', '550 ', '\r\n', '-', ' ', '0', '9'].map((s) => Buffer.from(s));

test('fuzz: parseReply never throws, and a final answer for a prefix stays final', () => {
  const run = fuzz('reply: parseReply', { seed: SEED, iterations: fuzzIterations(1500) }, ({ rnd, note }) => {
    const bytes = rnd.chance(0.2) ? rnd.bytes(rnd.size(64)) : mutateBytes(rnd.pick(REPLY_SEEDS), rnd, { tokens: REPLY_TOKENS, donors: REPLY_SEEDS, maxRun: 3000 });
    note('input', bytes);
    const full = parseReply(bytes);
    const ended = parseReply(bytes, true);
    assert.notEqual(ended.state, 'incomplete', 'with ended=true the answer is final');
    if (full.state !== 'incomplete') assert.deepEqual(ended, full, 'ending the stream does not change a final answer');
    let first: ReturnType<typeof parseReply> | undefined;
    for (let k = 0; k <= bytes.length; k++) {
      const r = parseReply(bytes.subarray(0, k));
      if (first === undefined) {
        if (r.state !== 'incomplete') first = r;
      } else {
        assert.deepEqual(r, first, `prefix ${k} after the answer was final at a shorter prefix`);
      }
    }
    if (first !== undefined) assert.deepEqual(full, first);
    if (full.state === 'done') {
      assert.ok(full.length <= bytes.length);
      assert.ok(full.code >= 0 && full.code <= 999);
    }
  });
  console.log(`fuzz: ${run.iterations} reply byte strings parsed at every prefix in ${run.ms} ms`);
});
