/**
 * Shared machinery of the codec fuzz suites (test/fuzz-*.test.ts): a seeded PRNG, byte and
 * line mutators, input splitting, and a runner that turns a property failure into a message
 * with the suite, seed, iteration and input, so any failure can be replayed exactly.
 *
 * Iterations: each property has a CI default chosen so the whole set runs in a few seconds.
 * AVFILTER_FUZZ_ITERATIONS is the knob the MIME fuzz suite already reads as its own count
 * (default 2000); here it scales every property by AVFILTER_FUZZ_ITERATIONS / 2000, so one
 * setting lengthens every fuzz suite in proportion (20000 = ten times the CI run everywhere).
 * AVFILTER_FUZZ_SEED replaces each suite's fixed seed. Iteration i draws from its own PRNG,
 * seeded from (seed, property, i): changing the count never changes the inputs of earlier
 * iterations, so "seed S iteration i" names one input whatever else was run.
 * Replaying: AVFILTER_FUZZ_ONLY=i runs iteration i alone (with the same seed); a failure also
 * writes each noted value whole into AVFILTER_FUZZ_DUMP_DIR when that is set (the message
 * itself cuts long inputs).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';

/** The MIME fuzz suite's default count: the unit AVFILTER_FUZZ_ITERATIONS is measured in. */
export const MIME_FUZZ_DEFAULT_ITERATIONS = 2000;

/** Iterations for a property whose CI count is `ciDefault`. */
export function fuzzIterations(ciDefault: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['AVFILTER_FUZZ_ITERATIONS'];
  if (raw === undefined || raw === '') return ciDefault;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`AVFILTER_FUZZ_ITERATIONS must be a positive number, got ${JSON.stringify(raw)}`);
  return Math.max(1, Math.round((ciDefault * n) / MIME_FUZZ_DEFAULT_ITERATIONS));
}

/** The suite's seed, or AVFILTER_FUZZ_SEED when set. */
export function fuzzSeed(fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['AVFILTER_FUZZ_SEED'];
  if (raw === undefined || raw === '') return fallback >>> 0;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new RangeError(`AVFILTER_FUZZ_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return n >>> 0;
}

/** A small seeded PRNG (splitmix32 steps), with the draws the suites need. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(items.length)]!;
  }
  /** A length in [0, max], small ones far more often (log-uniform): boundaries and edge sizes. */
  size(max: number): number {
    return Math.min(max, Math.floor(Math.pow(max + 1, this.next())) - 1 + (this.chance(0.1) ? 1 : 0));
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** Iteration i's PRNG: independent of how many iterations ran before it. */
export function caseRng(seed: number, property: string, iteration: number): Rng {
  const h = createHash('sha256').update(`${seed}\0${property}\0${iteration}`).digest();
  return new Rng(h.readUInt32LE(0));
}

/** Bytes that make parsers branch: line ends, NUL, CR alone, high bytes, UTF-8 edge cases. */
export const BYTE_TOKENS: readonly Buffer[] = [
  '\n', '\r', '\r\n', '\n\n', '\0', ' ', '\t', '\x0b', '\x0c', '\x1b', '\x7f',
].map((s) => Buffer.from(s, 'latin1')).concat([
  Buffer.from([0x80]), Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xc0, 0xaf]), // bad UTF-8, overlong "/"
  Buffer.from([0xed, 0xa0, 0x80]), // UTF-8 encoded surrogate (invalid)
  Buffer.from('\ufeff', 'utf8'), // BOM
  Buffer.from('\u0085', 'utf8'), Buffer.from('\u009b', 'utf8'), // C1 controls (NEL, CSI)
  Buffer.from('\u00a0', 'utf8'), Buffer.from('\u2028', 'utf8'), Buffer.from('\u2029', 'utf8'), Buffer.from('\u202e', 'utf8'),
  Buffer.from('\u{1f600}', 'utf8'), Buffer.from('é', 'utf8'),
]);

/** Extra tokens for long runs: plain text, brackets and digits (regex back-tracking, big numbers). */
const RUN_TOKENS: readonly Buffer[] = ['a', '0', ' ', '.', ':', '[', '(', '"', '<'].map((s) => Buffer.from(s));

export interface MutateOptions {
  /** Format-specific tokens inserted or repeated (on top of BYTE_TOKENS). */
  tokens?: readonly Buffer[];
  /** Other inputs to splice pieces from. */
  donors?: readonly Buffer[];
  /** Most repetitions of one token in a "long run" mutation (huge lines, deep brackets). */
  maxRun?: number;
  /** Most mutations applied; at least one is. */
  maxOps?: number;
}

/** 1..maxOps random byte-level mutations of `input` (never modifies it). */
export function mutateBytes(input: Buffer, rnd: Rng, opts: MutateOptions = {}): Buffer {
  const tokens = [...BYTE_TOKENS, ...(opts.tokens ?? [])];
  const donors = opts.donors ?? [];
  const maxRun = opts.maxRun ?? 4096;
  let b = input;
  const ops = 1 + rnd.int(opts.maxOps ?? 4);
  for (let k = 0; k < ops; k++) {
    const at = rnd.int(b.length + 1);
    const len = rnd.size(Math.min(64, b.length - at));
    switch (rnd.int(11)) {
      case 0: // flip one bit
        if (b.length > 0) {
          b = Buffer.from(b);
          b[Math.min(at, b.length - 1)] ^= 1 << rnd.int(8);
        }
        break;
      case 1: // overwrite one byte
        if (b.length > 0) {
          b = Buffer.from(b);
          b[Math.min(at, b.length - 1)] = rnd.int(256);
        }
        break;
      case 2: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
        break;
      case 3: // duplicate a range
        b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
        break;
      case 4:
      case 5: // insert a token
        b = Buffer.concat([b.subarray(0, at), rnd.pick(tokens), b.subarray(at)]);
        break;
      case 6: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), rnd.bytes(1 + rnd.size(32)), b.subarray(at)]);
        break;
      case 7: // a long run of one token: huge lines, many lines, bracket or space runs
        b = Buffer.concat([b.subarray(0, at), repeat(rnd.pick(RUN_TOKENS.concat(tokens)), 1 + rnd.size(maxRun)), b.subarray(at)]);
        break;
      case 8: // splice in a piece of another input
        if (donors.length > 0) {
          const d = rnd.pick(donors);
          const s = rnd.int(d.length + 1);
          b = Buffer.concat([b.subarray(0, at), d.subarray(s, s + 1 + rnd.size(200)), b.subarray(at)]);
        }
        break;
      case 9: { // insert a token at the start of a line: where line-based codecs look first
        const starts = [0];
        for (let i = b.indexOf(0x0a); i !== -1 && starts.length < 4096; i = b.indexOf(0x0a, i + 1)) starts.push(i + 1);
        const s = rnd.pick(starts);
        b = Buffer.concat([b.subarray(0, s), rnd.pick(tokens), b.subarray(s)]);
        break;
      }
      default: // truncate
        b = b.subarray(0, at);
    }
  }
  return b;
}

export function repeat(token: Buffer, times: number): Buffer {
  return token.length === 0 ? Buffer.alloc(0) : Buffer.alloc(token.length * times, token);
}

/** Line-level mutations of a line-oriented text (lines without their "\n"). */
export function mutateLines(lines: readonly Buffer[], rnd: Rng, insertable: readonly Buffer[], maxOps = 3): Buffer[] {
  const out = [...lines];
  const ops = 1 + rnd.int(maxOps);
  for (let k = 0; k < ops; k++) {
    const at = rnd.int(out.length + 1);
    switch (rnd.int(5)) {
      case 0:
        out.splice(at, 1);
        break;
      case 1:
        if (out.length > 0) out.splice(at, 0, out[Math.min(at, out.length - 1)]!);
        break;
      case 2: {
        const j = rnd.int(out.length + 1);
        if (at < out.length && j < out.length) [out[at], out[j]] = [out[j]!, out[at]!];
        break;
      }
      default:
        out.splice(at, 0, rnd.pick(insertable));
    }
  }
  return out;
}

/** Cut offsets for feeding `length` bytes in pieces: none, a few random ones, or every byte. */
export function cutPoints(length: number, rnd: Rng): number[] {
  const mode = rnd.int(4);
  if (mode === 0 || length === 0) return [];
  if (mode === 1 && length <= 4096) return Array.from({ length }, (_, i) => i);
  const n = 1 + rnd.int(Math.min(16, length + 1));
  return Array.from({ length: n }, () => rnd.int(length + 1)).sort((a, b) => a - b);
}

/** Splits `input` at `cuts` (sorted) into consecutive pieces, the last one included. */
export function piecesAt(input: Buffer, cuts: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, input.length]) {
    out.push(input.subarray(prev, c));
    prev = c;
  }
  return out;
}

/** Largest input shown whole in a failure message; longer ones are cut (the seed replays them). */
const SHOW_BYTES = 512;

/** A value as a failure message shows it: Buffers as hex (plus latin1 JSON when short), strings as JSON. */
export function show(v: unknown): string {
  if (Buffer.isBuffer(v)) {
    const cut = v.length > SHOW_BYTES;
    const part = cut ? v.subarray(0, SHOW_BYTES) : v;
    const digest = createHash('sha256').update(v).digest('hex').slice(0, 16);
    return `${v.length} bytes, sha256 ${digest}, hex ${part.toString('hex')}${cut ? '...(cut; replay with the seed)' : ''}` +
      (v.length <= 512 ? `\n    as latin1: ${JSON.stringify(v.toString('latin1'))}` : '');
  }
  if (typeof v === 'string') {
    return v.length > SHOW_BYTES ? `${v.length} chars: ${JSON.stringify(v.slice(0, SHOW_BYTES))}...(cut; replay with the seed)` : JSON.stringify(v);
  }
  return inspect(v, { depth: 6, maxArrayLength: 50, maxStringLength: SHOW_BYTES, breakLength: 160 });
}

export interface FuzzCase {
  readonly rnd: Rng;
  readonly iteration: number;
  /** Records a value shown if this iteration fails (the input, the cuts...). */
  note(label: string, value: unknown): void;
}

export interface FuzzRun {
  property: string;
  seed: number;
  iterations: number;
  ms: number;
}

/**
 * Runs `body` for each iteration. A throw from the body (an assertion, or the codec itself)
 * fails the test with the property, seed, iteration, the noted values and how to replay.
 */
export function fuzz(property: string, opts: { seed: number; iterations: number }, body: (c: FuzzCase) => void): FuzzRun {
  const started = performance.now();
  const only = process.env['AVFILTER_FUZZ_ONLY'];
  const first = only ? Number(only) : 0;
  const last = only ? Number(only) + 1 : opts.iterations;
  for (let i = first; i < last; i++) {
    const notes: [string, unknown][] = [];
    const c: FuzzCase = { rnd: caseRng(opts.seed, property, i), iteration: i, note: (label, value) => notes.push([label, value]) };
    try {
      body(c);
    } catch (err) {
      const what = err instanceof Error ? `${err.name}${(err as { code?: unknown }).code ? ` [${String((err as { code?: unknown }).code)}]` : ''}: ${err.message}` : String(err);
      const shown = notes.map(([label, value]) => `  ${label}: ${show(value)}`).join('\n');
      throw new Error(
        `fuzz "${property}" failed at seed ${opts.seed} iteration ${i}\n${shown}\n  failure: ${what}\n` +
          `  replay: AVFILTER_FUZZ_SEED=${opts.seed} AVFILTER_FUZZ_ONLY=${i}${dump(property, opts.seed, i, notes)}`,
        { cause: err },
      );
    }
  }
  return { property, seed: opts.seed, iterations: opts.iterations, ms: Math.round(performance.now() - started) };
}

/** Writes the noted values of a failed iteration whole, when AVFILTER_FUZZ_DUMP_DIR asks for it. */
function dump(property: string, seed: number, iteration: number, notes: readonly [string, unknown][]): string {
  const dir = process.env['AVFILTER_FUZZ_DUMP_DIR'];
  if (!dir) return '';
  const base = `${property.replace(/[^a-z0-9]+/gi, '-')}-${seed}-${iteration}`;
  mkdirSync(dir, { recursive: true });
  for (const [label, value] of notes) {
    const bytes = Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : inspect(value, { depth: null, maxArrayLength: null, maxStringLength: null }), 'utf8');
    writeFileSync(join(dir, `${base}-${label.replace(/[^a-z0-9]+/gi, '-')}`), bytes);
  }
  return `\n  whole inputs written to ${join(dir, base)}-*`;
}

/** Runs fn and returns its result and its wall time, for hang bounds (never speed figures). */
export function timed<T>(fn: () => T): { value: T; ms: number } {
  const t = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t };
}
