/**
 * Bounded fuzzing of the container stage through the CLI: mutated archives of every format of
 * the corpus (helpers/container-corpus.ts), ClamAV's test files of the document, mail and rarer
 * archive formats, and a PDF with an attached file — bit flips, truncations, a length or offset field
 * set to 0xFFFFFFFF (or its text form in tar and cpio), and the shared byte mutators
 * (helpers/fuzz.ts) — each attached to a message, scanned by `avfilter -t` in batches.
 * Properties: every file gets a line, the exit status is 0, 1 or 2 (no crash, no signal), no
 * runtime exception on stderr, each batch ends within a hang bound, and nothing is left in
 * tmpdir (or in the TMPDIR avfilter was given). A mutation may destroy the payload, so the
 * verdict itself is not asserted; the table counts them per format.
 * AVFILTER_FUZZ_ITERATIONS scales the count (helpers/fuzz.ts); AVFILTER_FUZZ_SEED changes it;
 * a failure names the seed, the case and where its input was written (AVFILTER_FUZZ_DUMP_DIR,
 * which also keeps every input called OK, to try with other readers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { ARCHIVE_KINDS, allArchives, attachmentMessage, payloadBytes, pdfWithAttachment } from './helpers/container-corpus.js';
import { TESTFILES_DIR } from './helpers/clamd.js';
import { caseRng, fuzzIterations, fuzzSeed, mutateBytes, type Rng } from './helpers/fuzz.js';
import { cliSetup, leftovers, reportFor } from './helpers/unpack-cli.js';

const CASES = fuzzIterations(300);
const SEED = fuzzSeed(20261201);
const BATCH = 50;
/** A hang bound for one batch of BATCH small files (they take seconds), not a speed figure. */
const BATCH_MAX_MS = 90_000;
/** What must never reach stderr: a JS exception or a native crash escaping the stage. */
const CRASH = /TypeError|RangeError|ReferenceError|SyntaxError|uncaught|unhandled|Segmentation fault|core dumped|Aborted|out of memory|RuntimeError/i;

const ALL_ONES = Buffer.from([0xff, 0xff, 0xff, 0xff]);

/** ClamAV's test files (clamav-testfiles) mutated beside the corpus: documents, mail, rarer archives. */
const DOCUMENT_FILES = [
  'clam.pdf', 'clam.exe.rtf', 'clam.ole.doc', 'clam.ppt', 'clam.tnef', 'clam.mail', 'clam.exe.mbox.base64',
  'clam.chm', 'clam.arj', 'clam.exe.szdd', 'clam-nsis.exe', 'clam.impl.zip', 'clam.d64.zip',
];

/** Offsets of every occurrence of `sig` in `b`. */
function offsetsOf(b: Buffer, sig: Buffer): number[] {
  const out: number[] = [];
  for (let i = b.indexOf(sig); i !== -1; i = b.indexOf(sig, i + 1)) out.push(i);
  return out;
}

/**
 * Places where a format keeps a length, a count or an offset, with the bytes that say "as much
 * as possible" there: 0xFFFFFFFF in binary fields, all 7s / all Fs in tar's and cpio's text.
 */
function lengthFields(kind: string, b: Buffer): Array<[offset: number, value: Buffer]> {
  const at = (sig: string, rel: number[], v = ALL_ONES): Array<[number, Buffer]> => offsetsOf(b, Buffer.from(sig, 'hex')).flatMap((o) => rel.map((r): [number, Buffer] => [o + r, v]));
  const f: Array<[number, Buffer]> = [];
  if (kind.startsWith('zip') || kind.startsWith('enc-zip')) {
    f.push(...at('504b0304', [18, 22]), ...at('504b0304', [26], Buffer.from([0xff, 0xff])), ...at('504b0102', [20, 24, 42]), ...at('504b0506', [12, 16]), ...at('504b0506', [8, 10], Buffer.from([0xff, 0xff])));
    f.push(...at('504b0606', [24, 32, 40, 48]), ...at('504b0607', [8]));
  }
  if (kind === '7z' || kind.startsWith('enc-7z') || kind.startsWith('nested')) f.push([12, ALL_ONES], [16, ALL_ONES], [20, ALL_ONES], [24, ALL_ONES]);
  if (['gz', 'xz', 'gz-multi', 'xz-multi', 'tar-gz', 'tar-xz'].includes(kind)) f.push([b.length - 4, ALL_ONES], [b.length - 8, ALL_ONES]);
  if (kind.startsWith('tar-') && !['tar-gz', 'tar-bz2', 'tar-xz'].includes(kind)) {
    for (let o = 0; o + 512 <= b.length; o += 512) if (b.subarray(o + 257, o + 262).toString('latin1') === 'ustar') f.push([o + 124, Buffer.from('77777777777\0', 'latin1')]);
  }
  if (kind === 'cpio-newc') f.push(...at('303730373031', [54], Buffer.from('FFFFFFFF', 'latin1')), ...at('303730373031', [94], Buffer.from('FFFFFFFF', 'latin1')));
  if (kind === 'cpio-odc') f.push(...at('303730373037', [65], Buffer.from('77777777777', 'latin1')), ...at('303730373037', [59], Buffer.from('777777', 'latin1')));
  if (kind === 'cpio-bin') f.push(...at('c771', [20], ALL_ONES), ...at('c771', [18], Buffer.from([0xff, 0xff])));
  if (kind === 'cab') f.push([8, ALL_ONES], [16, ALL_ONES], [36, ALL_ONES], [40, ALL_ONES]);
  return f.filter(([o, v]) => o >= 0 && o + v.length <= b.length);
}

type Mutation = 'bits' | 'truncate' | 'length-field' | 'bytes';

function mutate(kind: string, base: Buffer, rnd: Rng, donors: readonly Buffer[]): { how: Mutation; bytes: Buffer } {
  const how = rnd.pick<Mutation>(['bits', 'truncate', 'length-field', 'length-field', 'bytes']);
  switch (how) {
    case 'bits': {
      const b = Buffer.from(base);
      for (let n = rnd.range(1, 8); n > 0; n--) b[rnd.int(b.length)] ^= 1 << rnd.int(8);
      return { how, bytes: b };
    }
    case 'truncate':
      return { how, bytes: base.subarray(0, rnd.int(base.length)) };
    case 'length-field': {
      const fields = lengthFields(kind, base);
      const b = Buffer.from(base);
      if (fields.length === 0) {
        ALL_ONES.copy(b, rnd.int(Math.max(1, b.length - 4)));
        return { how, bytes: b };
      }
      for (let n = rnd.range(1, 2); n > 0; n--) {
        const [o, v] = rnd.pick(fields);
        v.copy(b, o);
      }
      return { how, bytes: b };
    }
    default:
      return { how, bytes: mutateBytes(base, rnd, { donors, maxRun: 4096 }) };
  }
}

test(`fuzz: ${CASES} mutated archives through avfilter -t, ${BATCH} a run (seed ${SEED}): a line each, exit 0/1/2, no crash, no temp file left`, { timeout: 10 * 60_000 }, () => {
  const archives = allArchives();
  const bases = [
    ...ARCHIVE_KINDS.map((k) => ({ k: { kind: k.kind, filename: k.filename }, bytes: archives.get(k.kind)! })),
    // the document and mail readers, and 7-Zip's rarer formats, through ClamAV's test files
    ...DOCUMENT_FILES.map((n) => ({ k: { kind: n, filename: n }, bytes: readFileSync(join(TESTFILES_DIR, n)) })),
    { k: { kind: 'pdf-attachment', filename: 'statement.pdf' }, bytes: pdfWithAttachment('invoice.com', payloadBytes()) },
  ];
  const donors = bases.map((b) => b.bytes);
  const counts = new Map<string, Record<string, number>>();
  const failures: string[] = [];
  const dumpDir = process.env['AVFILTER_FUZZ_DUMP_DIR'];
  let slowest = 0;
  for (let first = 0; first < CASES; first += BATCH) {
    const s = cliSetup();
    try {
      const cases: Array<{ i: number; kind: string; how: Mutation; path: string; bytes: Buffer }> = [];
      for (let i = first; i < Math.min(CASES, first + BATCH); i++) {
        const rnd = caseRng(SEED, 'unpack', i);
        const { k, bytes } = bases[i % bases.length]!;
        const m = mutate(k.kind, bytes, rnd, donors);
        const path = join(s.files, `${i}-${k.kind}-${m.how}.eml`);
        writeFileSync(path, attachmentMessage(k.filename, m.bytes));
        cases.push({ i, kind: k.kind, how: m.how, path, bytes: m.bytes });
      }
      const t0 = performance.now();
      const r = runAvfilter(['-f', s.config, '-t', ...cases.map((c) => c.path)], { env: { TMPDIR: s.childTmp } });
      const ms = performance.now() - t0;
      slowest = Math.max(slowest, ms);
      const batch = `batch ${first}-${first + cases.length - 1}`;
      if (r.code !== 0 && r.code !== 1 && r.code !== 2) failures.push(`${batch}: exit ${r.code} (killed or crashed): ${r.stderr.slice(-1000)}`);
      if (ms >= BATCH_MAX_MS) failures.push(`${batch}: ${Math.round(ms)} ms`);
      if (CRASH.test(r.stderr)) failures.push(`${batch}: stderr shows a crash: ${r.stderr.slice(0, 1000)}`);
      const left = [...leftovers(s.work), ...leftovers(s.childTmp)];
      if (left.length > 0) failures.push(`${batch}: left in tmpdir: ${left.slice(0, 10).join(', ')}`);
      for (const c of cases) {
        const rep = reportFor(r.stdout, c.path);
        const row = counts.get(c.kind) ?? {};
        row[rep.verdict] = (row[rep.verdict] ?? 0) + 1;
        counts.set(c.kind, row);
        // the inputs called OK are kept too: a reader that still opens one shows a miss
        if (dumpDir && rep.verdict === 'clean') {
          mkdirSync(dumpDir, { recursive: true });
          writeFileSync(join(dumpDir, `unpack-ok-${SEED}-${c.i}-${c.kind}.bin`), c.bytes);
        }
        if (rep.verdict === 'missing') {
          let where = '';
          if (dumpDir) {
            mkdirSync(dumpDir, { recursive: true });
            where = join(dumpDir, `unpack-${SEED}-${c.i}-${c.kind}.bin`);
            writeFileSync(where, c.bytes);
          }
          failures.push(`seed ${SEED} case ${c.i} (${c.kind}, ${c.how}): no line${where ? `; input in ${where}` : ' (set AVFILTER_FUZZ_DUMP_DIR to keep the input)'}`);
        }
      }
    } finally {
      s.cleanup();
    }
  }
  const lines = ['| format | OK | FOUND | ERROR | no line |', '|---|---|---|---|---|'];
  for (const { k } of bases) {
    const c = counts.get(k.kind) ?? {};
    lines.push(`| ${k.kind} | ${c.clean ?? 0} | ${c.infected ?? 0} | ${c.error ?? 0} | ${c.missing ?? 0} |`);
  }
  console.log(`${lines.join('\n')}\nslowest batch of ${BATCH}: ${(slowest / 1000).toFixed(1)} s`);
  assert.deepEqual(failures, []);
});
