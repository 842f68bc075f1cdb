/**
 * Bounded random mutation of the corpus through extractParts: no throw, no hang past a
 * deadline, bounded memory; a mutation that still holds the payload unencoded and contiguous
 * has it in an extracted part (the raw message is not counted: it holds the payload by
 * construction) and is never "clean" through the pipeline (raw message plus every part, the
 * embedded engine). Seeded, so a failure names the seed and iteration to replay.
 * AVFILTER_FUZZ_ITERATIONS raises the count (default 2000); AVFILTER_FUZZ_SEED changes the seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { writeFile } from 'node:fs/promises';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput, type ExtractedPart, type Extraction } from '../src/mime/index.js';
import { scanMessage } from '../src/scan/scan-message.js';
import { createYaraEngine, DEFAULT_RULES_DIR } from '../src/engines/yara/index.js';
import { corpus } from './helpers/corpus.js';
import { eicar } from './helpers/eicar.js';
import { prng } from '../bench/mix.js';

const ITERATIONS = Number(process.env.AVFILTER_FUZZ_ITERATIONS ?? 2000);
const SEED = Number(process.env.AVFILTER_FUZZ_SEED ?? 20240603);
/** One small message takes milliseconds; a second means a hang or a blow-up. */
const EXTRACTION_DEADLINE_MS = 5_000;
/** Corpus messages are < 200 KB; the heap must not grow with the iteration count. */
const MAX_RSS_BYTES = 512 * 1024 * 1024;


const TOKENS = ['\n', '\r', '\r\n', '--', '--b', '--b--', ';', '"', '=', ' ', 'boundary=', 'Content-Type: multipart/mixed; boundary="b"\n', 'Content-Transfer-Encoding: base64\n', 'Content-Type: message/rfc822\n', 'begin 644 x\n', '=ybegin name=x\n', 'data:;base64,', '(', ')', '\\', '\x00', '\xff'];

function mutate(input: Buffer, rnd: () => number, donors: readonly Buffer[]): Buffer {
  let b = input;
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rnd() * (b.length + 1));
    const len = Math.floor(rnd() * Math.min(64, b.length - at + 1));
    switch (Math.floor(rnd() * 7)) {
      case 0: // flip a byte
        if (b.length > 0) {
          b = Buffer.from(b);
          b[Math.min(at, b.length - 1)] ^= 1 << Math.floor(rnd() * 8);
        }
        break;
      case 1: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + len)]);
        break;
      case 2: // duplicate a range
        b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
        break;
      case 3: // insert a token that matters to MIME parsers
        b = Buffer.concat([b.subarray(0, at), Buffer.from(TOKENS[Math.floor(rnd() * TOKENS.length)]!, 'latin1'), b.subarray(at)]);
        break;
      case 4: { // splice in a piece of another message
        const d = donors[Math.floor(rnd() * donors.length)]!;
        const s = Math.floor(rnd() * d.length);
        b = Buffer.concat([b.subarray(0, at), d.subarray(s, s + 1 + Math.floor(rnd() * 400)), b.subarray(at)]);
        break;
      }
      case 5: // line ends changed in a range
        b = Buffer.concat([b.subarray(0, at), Buffer.from(b.subarray(at, at + len * 8).toString('latin1').replace(/\r?\n/g, rnd() < 0.5 ? '\r' : '\r\n'), 'latin1'), b.subarray(at + len * 8)]);
        break;
      default: // truncate
        b = b.subarray(0, Math.max(at, Math.floor(b.length / 2)));
    }
  }
  return b;
}

async function withDeadline(p: Promise<Extraction>, what: string): Promise<Extraction> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: extraction exceeded ${EXTRACTION_DEADLINE_MS} ms`)), EXTRACTION_DEADLINE_MS)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Does some extracted part hold `payload`? `keep` leaves parts out (to show the check can fail). */
async function inSomePart(x: Extraction, payload: Buffer, keep: (p: ExtractedPart) => boolean): Promise<boolean> {
  for (const p of x.parts) if (keep(p) && p.size >= payload.length && (await p.source.buffer()).includes(payload)) return true;
  return false;
}

/** `m` with every transfer-encoding token a reading undoes replaced by "7bit" (same length): each body read as it is. */
function asIs(m: Buffer): Buffer {
  return Buffer.from(m.toString('latin1').replace(/base64|quoted-printable|x-uuencode|uuencode|x-uue|uue/gi, (t) => '7bit'.padEnd(t.length, ' ')), 'latin1');
}

/**
 * Why an unencoded payload in `m` is in no extracted part, or undefined when it is in one.
 * Mail readers show a text body as it is, so the payload must come out in a part. The one
 * legitimate miss: it sits inside a body that a transfer encoding decodes (base64 skips its
 * characters), where no reader sees it either; then the same message with every encoding
 * token neutralised (asIs) must show it in a part.
 */
async function payloadMissing(m: Buffer, x: Extraction, payload: Buffer, tmp: string, keep: (p: ExtractedPart) => boolean = () => true): Promise<string | undefined> {
  if (await inSomePart(x, payload, keep)) return undefined;
  const y = await extractParts(MessageInput.fromStream(Readable.from([asIs(m)])), { limits: DEFAULT_MIME_LIMITS, tmpdir: tmp });
  try {
    if (await inSomePart(y, payload, keep)) return undefined;
  } finally {
    await y.dispose();
  }
  return 'payload present but in no extracted part, even with every body read as it is';
}

test('the payload check fails when the part holding the payload goes missing', async () => {
  const E = eicar();
  const dir = await mkdtemp(join(tmpdir(), 'avf-fuzz-check-'));
  try {
    for (const name of ['preamble', 'epilogue']) {
      const m = corpus().find((c) => c.name === name)!.bytes;
      assert.ok(m.includes(E));
      const x = await extractParts(MessageInput.fromStream(Readable.from([m])), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
      try {
        assert.equal(await payloadMissing(m, x, E, dir), undefined, name);
        // the reading that shows the payload (the lenient preamble / epilogue part) left out
        assert.match((await payloadMissing(m, x, E, dir, (p) => p.reading !== name)) ?? '', /in no extracted part/, name);
      } finally {
        await x.dispose();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test(`fuzz: ${ITERATIONS} mutations of the corpus (seed ${SEED})`, { timeout: 10 * 60_000 }, async () => {
  const E = eicar();
  const messages = corpus().map((m) => m.bytes);
  const rnd = prng(SEED);
  const dir = await mkdtemp(join(tmpdir(), 'avf-fuzz-'));
  let withPayload = 0;
  let limits = 0;
  // The whole pipeline (raw message + every part, embedded engine) must never call such a
  // mutation clean: this is what fails if the raw scan or a part's bytes go missing.
  const yara = createYaraEngine({ rulesDir: DEFAULT_RULES_DIR, maxScanBytes: 64 * 1024 * 1024, scanTimeoutMs: 30_000 });
  try {
    for (let i = 0; i < ITERATIONS; i++) {
      const src = messages[Math.floor(rnd() * messages.length)]!;
      const m = mutate(src, rnd, messages);
      const what = `seed ${SEED} iteration ${i}`;
      const x = await withDeadline(extractParts(MessageInput.fromStream(Readable.from([m])), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir }), what);
      try {
        if (x.limit !== undefined) limits++;
        if (m.includes(E)) {
          withPayload++;
          const miss = await payloadMissing(m, x, E, dir);
          assert.equal(miss, undefined, `${what}: ${miss}`);
          const file = join(dir, 'message');
          await writeFile(file, m);
          const { verdict } = await scanMessage(file, { engines: [yara], mimeLimits: DEFAULT_MIME_LIMITS, tmpdir: dir }, AbortSignal.timeout(EXTRACTION_DEADLINE_MS * 2));
          assert.equal(verdict.kind, 'infected', `${what}: payload present, pipeline said ${verdict.kind}`);
          await rm(file);
        }
        for (const p of x.parts) assert.ok(Number.isInteger(p.size) && p.size >= 0 && typeof p.path === 'string' && typeof p.reading === 'string', `${what}: malformed part`);
      } finally {
        await x.dispose();
      }
      if (i % 100 === 0) assert.ok(process.memoryUsage().rss < MAX_RSS_BYTES, `${what}: rss ${process.memoryUsage().rss}`);
    }
    assert.deepEqual(await readdir(dir), [], 'every extraction removed its temp files');
  } finally {
    await yara.close();
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`fuzz: ${ITERATIONS} mutations, ${withPayload} still held the payload unencoded, ${limits} ended in a limit`);
});
