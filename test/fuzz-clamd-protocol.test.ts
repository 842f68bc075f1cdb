/**
 * Fuzz of the clamd reply codec (src/engines/clamd/protocol.ts): clamd's replies mutated by byte
 * (NULs moved, added, removed; garbage; huge lines; "COMMAND READ TIMED OUT\n"), fed to the
 * ReplyParser whole, at random cuts and byte by byte, and compared with a splitter written here.
 * The property that matters: only exact, well-formed "stream: OK\0" replies may ever become a
 * clean result; anything malformed is an error result, never clean; "FOUND" gives an infected
 * result only with a sane name (printable ASCII, no space, bounded). Also: the parser's lines
 * do not depend on the split, no line it returns is longer than REPLY_MAX_BYTES, and the
 * classifier and resultFromReplies never throw.
 * Seeded and bounded; see test/helpers/fuzz.ts for AVFILTER_FUZZ_ITERATIONS / AVFILTER_FUZZ_SEED.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_VIRUS_NAME_BYTES, REPLY_MAX_BYTES, REPLY_MAX_TOTAL_BYTES, ReplyParser, classifyReply, resultFromReplies,
} from '../src/engines/clamd/protocol.js';
import { cutPoints, fuzz, fuzzIterations, fuzzSeed, mutateBytes, piecesAt, repeat, type Rng } from './helpers/fuzz.js';

const SEED = fuzzSeed(0x5eed0004);
const OK = 'stream: OK';
const TIMED_OUT_LF = Buffer.from('COMMAND READ TIMED OUT\n');
const SANE_NAME = new RegExp(`^[\\x21-\\x7e]{1,${MAX_VIRUS_NAME_BYTES}}$`);
const ERROR_CODES = new Set(['EPROTOCOL', 'ESCANNER', 'ESIZE_LIMIT']);

interface Split {
  lines: string[];
  partial: string;
  overflowed: boolean;
  /** Bytes up to the end of the last returned line (model only). */
  consumed: number;
}

/**
 * The splitter, written from peers-and-engines.md §B1 and the parser's contract: NUL ends a
 * reply line; the one reply clamd ends with "\n" is recognised at a line start; a line (ended
 * or not) longer than REPLY_MAX_BYTES, or a reply past REPLY_MAX_TOTAL_BYTES with its
 * terminators, means "not clamd" and nothing from there on counts.
 */
function model(bytes: Buffer): Split {
  const lines: string[] = [];
  let pos = 0;
  const overflow = (): Split => ({ lines, partial: '', overflowed: true, consumed: pos });
  for (;;) {
    const timedOut = bytes.subarray(pos, pos + TIMED_OUT_LF.length).equals(TIMED_OUT_LF);
    const end = timedOut ? pos + TIMED_OUT_LF.length - 1 : bytes.indexOf(0, pos);
    if (end === -1) break;
    if (end - pos > REPLY_MAX_BYTES || end + 1 > REPLY_MAX_TOTAL_BYTES) return overflow();
    lines.push(bytes.subarray(pos, end).toString('utf8'));
    pos = end + 1;
  }
  if (bytes.length - pos > REPLY_MAX_BYTES || bytes.length > REPLY_MAX_TOTAL_BYTES) return overflow();
  return { lines, partial: bytes.subarray(pos).toString('utf8'), overflowed: false, consumed: pos };
}

function parse(pieces: readonly Buffer[]): Omit<Split, 'consumed'> {
  const p = new ReplyParser();
  const lines: string[] = [];
  // The parser keeps references to what it is given: hand it copies, as a socket would.
  for (const piece of pieces) for (const l of p.push(Buffer.from(piece))) lines.push(l);
  return { lines, partial: p.partial, overflowed: p.overflowed };
}

const NAMES = ['Win.Test.EICAR_HDB-1', 'Eicar-Signature', 'Heuristics.Limits.Exceeded.MaxFileSize', '(null)', 'YARA.rule.UNOFFICIAL', 'a'];

/** A reply clamd could send, or a near miss. */
function replyLike(rnd: Rng): Buffer {
  const one = (): string =>
    rnd.pick([
      `${OK}\0`, `stream: ${rnd.pick(NAMES)} FOUND\0`, 'INSTREAM size limit exceeded. ERROR\0', "stream: Can't allocate memory ERROR\0",
      'COMMAND READ TIMED OUT\n', 'UNKNOWN COMMAND\0', `${OK}`, 'stream: OK\n', `stream: ${'N'.repeat(rnd.size(3 * MAX_VIRUS_NAME_BYTES))} FOUND\0`,
    ]);
  return Buffer.from(Array.from({ length: 1 + rnd.int(rnd.chance(0.8) ? 1 : 4) }, one).join(''), 'utf8');
}

const CLAMD_TOKENS = ['\0', 'stream: ', ': ', ' FOUND', ' ERROR', 'OK', ' OK', 'ok', 'COMMAND READ TIMED OUT\n', '\n'].map((s) => Buffer.from(s));

function input(rnd: Rng): Buffer {
  // A stream of short lines up to past the reply bound: rare, it is the slowest input.
  if (rnd.chance(0.03)) {
    return repeat(Buffer.from(rnd.pick(['\0', `${OK}\0`, 'COMMAND READ TIMED OUT\n'])), rnd.size(2 * REPLY_MAX_TOTAL_BYTES / 10));
  }
  switch (rnd.int(6)) {
    case 0:
      return rnd.bytes(rnd.size(200));
    case 1: // a line near the size bound, with or without its NUL, and maybe a clean reply after it
      return Buffer.concat([
        rnd.chance(0.3) ? Buffer.from(`${OK}\0`) : Buffer.alloc(0),
        repeat(Buffer.from(rnd.pick(['A', 'stream: OK', ' '])), REPLY_MAX_BYTES - 16 + rnd.size(64)).subarray(0, REPLY_MAX_BYTES + rnd.range(-2, 2)),
        Buffer.from(rnd.pick(['', '\0', `\0${OK}\0`])),
      ]);
    default: {
      const base = replyLike(rnd);
      return rnd.chance(0.75) ? mutateBytes(base, rnd, { tokens: CLAMD_TOKENS, maxRun: 4096 }) : base;
    }
  }
}

test('fuzz: clamd reply bytes, split anywhere: clean only for exact "stream: OK" replies', () => {
  const counts = { clean: 0, infected: 0, error: 0, overflowed: 0 };
  const run = fuzz('clamd: reply bytes', { seed: SEED, iterations: fuzzIterations(1500) }, ({ rnd, note }) => {
    const bytes = input(rnd);
    note('input', bytes);
    const want = model(bytes);
    const whole = parse([bytes]);
    assert.deepEqual(whole, { lines: want.lines, partial: want.partial, overflowed: want.overflowed }, 'whole input vs the model');
    for (let k = 0; k < 2; k++) {
      const cuts = cutPoints(bytes.length, rnd);
      note(`cuts ${k}`, cuts.length > 64 ? `${cuts.length} cuts` : cuts);
      assert.deepEqual(parse(piecesAt(bytes, cuts)), whole, 'the split does not matter');
    }
    // UTF-16 units never outnumber the bytes they were decoded from (a bad byte is one U+FFFD).
    for (const l of whole.lines) assert.ok(l.length <= REPLY_MAX_BYTES, `a line of ${l.length} characters was returned`);
    assert.ok(whole.lines.length <= REPLY_MAX_TOTAL_BYTES, 'line count bounded by the reply bound');
    if (whole.overflowed) {
      counts.overflowed++;
      return; // the exchange fails with EPROTOCOL on overflow, whatever came before
    }
    const result = resultFromReplies(whole.lines);
    counts[result.status]++;
    if (result.status === 'clean') {
      assert.ok(whole.lines.length > 0 && whole.lines.every((l) => l === OK), 'clean: every line is exactly "stream: OK"');
      assert.ok(bytes.subarray(0, want.consumed).equals(repeat(Buffer.from(`${OK}\0`), whole.lines.length)), 'clean: the bytes are exact "stream: OK\\0" replies');
    } else if (result.status === 'infected') {
      assert.ok(result.names.length > 0);
      for (const n of result.names) assert.match(n, SANE_NAME, 'a sane virus name');
    } else {
      assert.ok(ERROR_CODES.has(result.code), `error code ${result.code}`);
      assert.equal(typeof result.message, 'string');
    }
  });
  console.log(`fuzz: ${run.iterations} clamd replies in ${run.ms} ms (seed ${run.seed}): ${JSON.stringify(counts)}`);
});

test('fuzz: one reply line: clean iff exactly "stream: OK"; FOUND only with a sane name', () => {
  const run = fuzz('clamd: classify', { seed: SEED, iterations: fuzzIterations(3000) }, ({ rnd, note }) => {
    const base = rnd.pick([OK, `stream: ${rnd.pick(NAMES)} FOUND`, 'INSTREAM size limit exceeded. ERROR', "stream: Can't allocate memory ERROR", 'COMMAND READ TIMED OUT']);
    // Lines come out of the parser as UTF-8 text without NULs: mutate bytes, decode, drop NULs.
    const line = mutateBytes(Buffer.from(base), rnd, { tokens: CLAMD_TOKENS, maxRun: 600 }).toString('utf8').replace(/\0/g, '');
    note('line', line);
    const r = classifyReply(line);
    if (r.kind === 'clean') assert.equal(line, OK);
    else if (r.kind === 'infected') {
      assert.match(r.name, SANE_NAME, 'sane name');
      assert.ok(line.endsWith(`: ${r.name} FOUND`) && line.length > r.name.length + 8, 'name taken from "<where>: NAME FOUND"');
    } else assert.ok(ERROR_CODES.has(r.code), `error code ${r.code}`);
    if (line !== OK) assert.notEqual(r.kind, 'clean');
    // Several lines: clean only if every one is clean.
    const lines = Array.from({ length: 1 + rnd.int(3) }, () => (rnd.chance(0.5) ? OK : line));
    const all = resultFromReplies(lines);
    assert.equal(all.status === 'clean', lines.every((l) => l === OK), `lines ${JSON.stringify(lines)}`);
  });
  console.log(`fuzz: ${run.iterations} clamd reply lines in ${run.ms} ms`);
});
