/**
 * Fuzz of the Courier control-file parser (src/courierfilter/control.ts): the real control
 * files of test/fixtures/courier and two constructed ones (done records, several recipients),
 * mutated by line and by byte, compared with a model of how Courier itself reads a control
 * file (libs/comctlfile.c ctlfile_openfn, courier-filter-protocol.md §4.1, §4.4), written here:
 * the file ends at the first NUL (Courier reads it as a C string), "\r" is a space, empty lines
 * are skipped, the N-th `r` line is recipient N, and an S or F line marks the recipient whose
 * number glibc's atoi() reads from it (strtol clamped to a long, then cut to an int, then
 * compared unsigned) as done.
 * Properties: only ControlError EBAD_CONTROL is thrown, exactly when the file holds a NUL (what
 * a drop appends would be invisible to Courier) or has no `s` or no `M` record; recipients and
 * their indices match Courier's; a recipient is never reported
 * done when Courier does not think so (that recipient would miss a drop and get the mail), and
 * done flags are equal whenever every S/F index is plainly written; clientIp is an address
 * taken from the file; each parse ends within a generous bound (no back-tracking blow-up).
 * Seeded and bounded; see test/helpers/fuzz.ts for AVFILTER_FUZZ_ITERATIONS / AVFILTER_FUZZ_SEED.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlError, parseControl, summarize, type ControlFile } from '../src/courierfilter/control.js';
import { fuzz, fuzzIterations, fuzzSeed, mutateBytes, mutateLines, timed, type Rng } from './helpers/fuzz.js';

const SEED = fuzzSeed(0x5eed0002);
const FIXTURES = fileURLToPath(new URL('../../test/fixtures/courier/', import.meta.url));
/** A parse of a few hundred KB takes milliseconds; seconds means back-tracking or a loop. */
const PARSE_BOUND_MS = 1500;

/** Constructed files with what the captured ones lack: done records, several recipients, i/O records. */
const CONSTRUCTED = [
  [
    'sbob@example.org', 'fdns; laptop (host.example.org [::ffff:192.0.2.7])', 'e', 't',
    'M00000000000000AA.0000000065F0A1B2.00003039',
    'ralice@example.com', 'Rrfc822;alice@example.com', 'NF',
    'ralias-done@example.com', 'R', 'N', 'I1 R 250 Ok - delivered to alias.', 'S1 1700000000 r',
    'rcarol@example.net', 'R', 'NS', 'F2 1700000001', 'D0 1700000002',
    'ibob@example.org', 'ORELAYCLIENT=', 'OTCPREMOTEIP=::ffff:192.0.2.7', 'uauthsmtp', 'E1711234567', '',
  ].join('\n'),
  [
    's', 'fdns; localhost (localhost [127.0.0.1])', 'M0000000000AB12CD.0000000065F0A1B2.00003039',
    'ra@x', 'R', 'N', 'rb@x', 'R', 'N', 'rc@x', 'R', 'N', 'ulocal', 'I0 R 250 Ok', 'S0 1700000000', '8', 'm',
  ].join('\n'),
];

function seeds(): Buffer[] {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('-control1')).sort();
  assert.ok(files.length >= 4, 'control fixtures present');
  return [...files.map((f) => readFileSync(join(FIXTURES, f))), ...CONSTRUCTED.map((s) => Buffer.from(s))];
}

// ---- Courier's view of a control file (the model) ----

const C_SPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]); // isspace() in the C locale
const LONG_MAX = 2n ** 63n - 1n;
const LONG_MIN = -(2n ** 63n);

/** (unsigned)(int)atoi(s) with glibc: strtol saturates at LONG_MIN/MAX, the int cast wraps. */
function atoiUnsigned(s: Buffer): number {
  let i = 0;
  while (i < s.length && C_SPACE.has(s[i]!)) i++;
  let negative = false;
  if (s[i] === 0x2b || s[i] === 0x2d) negative = s[i++] === 0x2d;
  let v = 0n;
  for (; i < s.length && s[i]! >= 0x30 && s[i]! <= 0x39; i++) {
    if (v <= LONG_MAX) v = v * 10n + BigInt(s[i]! - 0x30); // past LONG_MAX it only saturates
  }
  let l = negative ? -v : v;
  if (l > LONG_MAX) l = LONG_MAX;
  if (l < LONG_MIN) l = LONG_MIN;
  return Number(BigInt.asUintN(32, l));
}

interface CourierView {
  hasSender: boolean;
  hasQueueId: boolean;
  recipients: Buffer[];
  done: boolean[];
  /** Every S/F record's number is 1-9 ASCII digits after C blanks: no sign, overflow or odd byte. */
  plainIndices: boolean;
  text: string;
}

function courierView(file: Buffer): CourierView {
  const nul = file.indexOf(0);
  const bytes = Buffer.from(nul === -1 ? file : file.subarray(0, nul));
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0d) bytes[i] = 0x20;
  const lines: Buffer[] = [];
  for (let start = 0; start < bytes.length;) {
    let nl = bytes.indexOf(0x0a, start);
    if (nl === -1) nl = bytes.length;
    if (nl > start) lines.push(bytes.subarray(start, nl));
    start = nl + 1;
  }
  const recipients = lines.filter((l) => l[0] === 0x72).map((l) => l.subarray(1));
  const done = recipients.map(() => false);
  let plainIndices = true;
  for (const l of lines) {
    if (l[0] !== 0x53 && l[0] !== 0x46) continue;
    const j = atoiUnsigned(l.subarray(1));
    // Courier sizes its table for one more recipient than it counts; that slot is nobody.
    if (j < recipients.length) done[j] = true;
    if (!/^[ \t\v\f]*[0-9]{1,9}(?![0-9])/.test(l.subarray(1).toString('latin1'))) plainIndices = false;
  }
  return {
    hasSender: lines.some((l) => l[0] === 0x73),
    hasQueueId: lines.some((l) => l[0] === 0x4d),
    recipients,
    done,
    plainIndices,
    text: bytes.toString('utf8'),
  };
}

// ---- generators ----

const RECORD_TYPES = ['S', 'F', 'D', 'I', 'C', 'r', 'R', 'N', 's', 'M', 'f', 'O', 'u', 'i', 'X', '8'];

/** How an index after S/F/D/I may be written, plain or not. */
function indexForm(rnd: Rng, n: number): string {
  return rnd.pick([
    `${n}`, `${n} 1700000000`, `${n} 1700000000 r`, ` ${n} 1`, `\t${n}`, `\v${n}`, `\r${n}`, `+${n}`, `-${n}`, `-0`, `0${n}`,
    `${n + 2 ** 32}`, `${n - 2 ** 32}`, '99999999999999999999', '-99999999999999999999', `\u00a0${n}`, `\ufeff${n}`,
    `\u2028${n}`, `\u0660`, `${n}abc`, 'x', '', ' ',
  ]);
}

function randomRecord(rnd: Rng, nRecipients: number): Buffer {
  const type = rnd.pick(RECORD_TYPES);
  const n = rnd.int(nRecipients + 2);
  let value: string;
  if ('SFDI'.includes(type)) value = indexForm(rnd, n);
  else if (type === 'f') value = rnd.pick(['dns; h ([10.0.0.1])', 'dns; [192.0.2.9] (r [10.0.0.2])', `dns; ${'['.repeat(rnd.size(3000))}`, 'unknown; uucp (x)']);
  else if (type === 'O') value = rnd.pick(['TCPREMOTEIP=::ffff:10.1.2.3', 'TCPREMOTEIP=2001:db8::1', 'TCPREMOTEIP=', 'RELAYCLIENT=', '__proto__=x', 'A']);
  else value = rnd.pick(['', 'a@b', 'é@x', 'x'.repeat(rnd.size(500))]);
  return Buffer.from(type + value, 'utf8');
}

const CONTROL_TOKENS = ['\nS0 1\n', '\nF1 1\n', '\nr', '\nR', '\nN', '\ns', '\nM', '[', ']', ')', '::ffff:', 'S+', '\u00a0', '\ufeff', '4294967296'].map((s) => Buffer.from(s, 'utf8'));

function splitLines(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let start = 0; start <= b.length;) {
    let nl = b.indexOf(0x0a, start);
    if (nl === -1) nl = b.length;
    out.push(b.subarray(start, nl));
    start = nl + 1;
  }
  return out;
}

function mutant(rnd: Rng, pool: readonly Buffer[]): Buffer {
  let b = rnd.pick(pool);
  if (rnd.chance(0.6)) {
    const lines = splitLines(b);
    const nR = lines.filter((l) => l[0] === 0x72).length;
    const insertable = Array.from({ length: 6 }, () => randomRecord(rnd, nR));
    b = Buffer.concat(mutateLines(lines, rnd, insertable, 4).flatMap((l) => [l, Buffer.from('\n')]));
  }
  if (rnd.chance(0.6)) b = mutateBytes(b, rnd, { tokens: CONTROL_TOKENS, donors: pool, maxRun: 60_000 });
  return b;
}

// ---- the check ----

function check(path: string, bytes: Buffer): ControlFile | undefined {
  const courier = courierView(bytes);
  const { value: outcome, ms } = timed(() => {
    try {
      return { file: parseControl(path, bytes) };
    } catch (err) {
      return { err };
    }
  });
  assert.ok(ms < PARSE_BOUND_MS, `parseControl took ${Math.round(ms)} ms for ${bytes.length} bytes`);
  if ('err' in outcome) {
    const err = outcome.err;
    assert.ok(err instanceof ControlError, `only ControlError is thrown, got ${String(err)}`);
    assert.equal(err.code, 'EBAD_CONTROL');
    assert.ok(err.message.startsWith(`${path}: `), 'the message names the file');
    assert.ok(bytes.includes(0) || !courier.hasSender || !courier.hasQueueId, 'EBAD_CONTROL only for a NUL or without an s or M record');
    return undefined;
  }
  const c = outcome.file;
  assert.ok(!bytes.includes(0), 'a file with a NUL is refused');
  assert.ok(courier.hasSender && courier.hasQueueId, 'refused when what Courier reads has no s or no M record');
  assert.equal(c.path, path);
  assert.equal(c.recipients.length, courier.recipients.length, 'same recipients as Courier');
  c.recipients.forEach((r, i) => {
    assert.equal(r.index, i, 'index = position of its r line in this file');
    assert.equal(r.address, courier.recipients[i]!.toString('utf8'), `address of recipient ${i}`);
    if (r.done) assert.ok(courier.done[i], `recipient ${i} reported done, but Courier would still deliver to it`);
    if (courier.plainIndices) assert.equal(r.done, courier.done[i], `done flag of recipient ${i}`);
  });
  const s = summarize([c]);
  assert.equal(s.recipients, c.recipients.length);
  assert.equal(s.pending, c.recipients.filter((r) => !r.done).length);
  if (c.clientIp !== undefined) {
    assert.notEqual(isIP(c.clientIp), 0, 'clientIp is an address');
    assert.ok(courier.text.toLowerCase().includes(c.clientIp.toLowerCase()), 'clientIp comes from the file');
  }
  assert.equal(Object.getPrototypeOf(c.env), Object.prototype, 'O records never reach the prototype');
  return c;
}

test('fuzz: mutated control files against Courier\'s own reading', () => {
  const pool = seeds();
  for (const s of pool) check('/q/seed', s); // the unmutated seeds hold too
  const run = fuzz('control: model', { seed: SEED, iterations: fuzzIterations(1500) }, ({ rnd, note }) => {
    const bytes = mutant(rnd, pool);
    note('input', bytes);
    check('/var/lib/courier/tmp/1795/C1.1', bytes);
  });
  console.log(`fuzz: ${run.iterations} control files in ${run.ms} ms (seed ${run.seed})`);
});

test('fuzz: numbering restarts in each control file of a message', () => {
  const pool = seeds();
  const run = fuzz('control: several files', { seed: SEED, iterations: fuzzIterations(300) }, ({ rnd, note }) => {
    const files = Array.from({ length: 1 + rnd.int(3) }, () => mutant(rnd, pool));
    files.forEach((f, i) => note(`file ${i}`, f));
    const parsed = files.map((f, i) => check(`/q/C1.${i + 1}`, f));
    if (parsed.some((p) => p === undefined)) return;
    const ok = parsed as ControlFile[];
    const s = summarize(ok);
    assert.equal(s.recipients, ok.reduce((n, c) => n + c.recipients.length, 0));
    assert.equal(s.pending, ok.reduce((n, c) => n + c.recipients.filter((r) => !r.done).length, 0));
    assert.equal(s.queueId, ok[0]!.queueId, 'header fields come from the first file');
    for (const c of ok) c.recipients.forEach((r, i) => assert.equal(r.index, i));
  });
  console.log(`fuzz: ${run.iterations} multi-file messages in ${run.ms} ms`);
});
