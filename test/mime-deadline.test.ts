/**
 * A request's deadline stops the extraction's work, not only its answer, on every shape built
 * to make it work hard: 8 MB of `begin 644 x` and `M` lines once went on for ~20 CPU-seconds
 * after the deadline (the part store wrote a spilled part one line at a time and never looked
 * at the signal). Deadlines are spread over each run so that each phase (the standard reading,
 * the lenient one, the post-pass, the part store) is hit; each must reject with EABORTED
 * within a generous bound and leave no temp file. Also the header-line bounds that keep a
 * header-dense message from costing far more than its bytes: limits, never clean. Speed
 * figures are in `npm run bench` (bench/shapes.ts), not here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput } from '../src/mime/index.js';
import { MAX_HEADER_LINES_PER_BLOCK, MAX_HEADER_LINES_PER_READING } from '../src/mime/limits.js';
import { SHAPES } from './helpers/shapes.js';

/** A hang, not a speed figure: the extraction must stop long before this after its deadline. */
const ABORT_BOUND_MS = 2_000;
const SIZE = 8_000_000;

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-deadline-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs the extraction of `path` with a deadline `afterMs` in; ms from the deadline to the rejection, or undefined when it finished first. */
async function lateness(path: string, work: string, afterMs: number): Promise<number | undefined> {
  const ac = new AbortController();
  const t0 = performance.now();
  const timer = setTimeout(() => ac.abort(new Error('deadline')), afterMs);
  try {
    const x = await extractParts(MessageInput.fromFile(path), { limits: DEFAULT_MIME_LIMITS, tmpdir: work, signal: ac.signal });
    await x.dispose();
    return undefined;
  } catch (err) {
    assert.equal((err as { code?: unknown }).code, 'EABORTED');
    return performance.now() - (t0 + afterMs);
  } finally {
    clearTimeout(timer);
  }
}

const WORST = ['uuencode-like: begin 644 x + bare M lines, repeated', 'uuencode-like: begin 644 x + 1 M line, repeated', 'CR-only uuencode-like lines', 'BinHex markers, repeated', 'data: base64 URIs, many', 'many header lines, 9000 per part', 'deep message/rfc822 nesting (to the depth limit) around prose'];

for (const name of WORST) {
  test(`deadline stops the work: ${name}, 8 MB`, { timeout: 300_000 }, async () => {
    const shape = SHAPES.find((s) => s.name === name);
    assert.ok(shape, name);
    await withDir(async (dir) => {
      const work = join(dir, 'work');
      await mkdir(work);
      const path = join(dir, 'm.eml');
      await writeFile(path, shape.make(SIZE));
      // deadlines spread over the run's own length, so that each phase is hit
      const t0 = performance.now();
      assert.equal(await lateness(path, work, 10 * 60_000), undefined);
      const runMs = performance.now() - t0;
      let aborted = 0;
      for (const afterMs of [0.05, 0.2, 0.4, 0.6, 0.8, 0.95].map((f) => Math.max(1, Math.round(runMs * f)))) {
        const late = await lateness(path, work, afterMs);
        if (late === undefined) continue;
        aborted++;
        assert.ok(late < ABORT_BOUND_MS, `${name}: stopped ${Math.round(late)} ms after a deadline at ${afterMs} ms`);
        assert.deepEqual(await readdir(work), [], 'no temp files left');
      }
      assert.ok(aborted > 0, 'at least one deadline fell inside the run');
    });
  });
}

function headerBlockMessage(linesPerBlock: number, blocks: number): Buffer {
  const block = 'X-H: v\n'.repeat(linesPerBlock - 1);
  const part = `--b\nContent-Type: text/plain\n${block}\npart\n`;
  return Buffer.from(`From: a@example.test\nContent-Type: multipart/mixed; boundary="b"\n\n${part.repeat(blocks)}--b--\n`, 'latin1');
}

async function limitOf(msg: Buffer): Promise<string | undefined> {
  return withDir(async (dir) => {
    const path = join(dir, 'm.eml');
    await writeFile(path, msg);
    const x = await extractParts(MessageInput.fromFile(path), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
    await x.dispose();
    return x.limit?.code;
  });
}

test(`a header block of more than ${MAX_HEADER_LINES_PER_BLOCK} lines is EMIME_HEADER_LIMIT; at the bound it is read`, async () => {
  assert.equal(await limitOf(headerBlockMessage(MAX_HEADER_LINES_PER_BLOCK, 2)), undefined);
  assert.equal(await limitOf(headerBlockMessage(MAX_HEADER_LINES_PER_BLOCK + 1, 2)), 'EMIME_HEADER_LIMIT');
  // folded lines count too
  const folded = Buffer.from(`From: a@example.test\nX-F: a\n${' b\n'.repeat(MAX_HEADER_LINES_PER_BLOCK + 1)}\nbody\n`, 'latin1');
  assert.equal(await limitOf(folded), 'EMIME_HEADER_LIMIT');
});

test(`more than ${MAX_HEADER_LINES_PER_READING} header lines over all blocks is EMIME_HEADER_LIMIT`, async () => {
  const per = MAX_HEADER_LINES_PER_BLOCK - 10;
  assert.equal(await limitOf(headerBlockMessage(per, Math.floor(MAX_HEADER_LINES_PER_READING / per) - 1)), undefined);
  assert.equal(await limitOf(headerBlockMessage(per, Math.ceil(MAX_HEADER_LINES_PER_READING / per) + 1)), 'EMIME_HEADER_LIMIT');
});
