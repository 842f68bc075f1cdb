/**
 * 7-Zip unpacker throughput (src/unpack/sevenzip): a ~20 MB mixed payload (random, text-like
 * and patterned files) packed as zip-deflate, 7z-LZMA, tar.gz and bzip2 by Debian's 7z
 * (p7zip-full), then unpacked by a warm one-thread pool. Median of ROUNDS runs, in MB/s of
 * output (1 MB = 10^6 bytes); also what a thread costs to start (cold: the pool compiles the
 * WASM once; warm: a replacement thread of a pool that has it).
 *
 * Inputs: none (builds its files in a temp dir). Outputs: rows for the bench report. Fails when
 * 7z is missing or a run is not `ok`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SevenZipPool, type SevenZipType } from '../src/unpack/sevenzip/index.js';

export interface UnpackThroughputRow {
  format: string;
  mbPerS: number;
  inputBytes: number;
  outputBytes: number;
}

const ROUNDS = Number(process.env.AVFILTER_BENCH_ROUNDS ?? 5);
const FILES = 20;
const FILE_BYTES = 1024 * 1024;

/** A deterministic generator: the payload is the same on every run and machine. */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const WORDS = 'the of and to in is that for it as with was on be by at this from or an are which mail filter virus archive member header'.split(' ');

function payloadFile(i: number): Buffer {
  const rnd = xorshift(0x9e3779b9 ^ (i * 7919));
  const buf = Buffer.alloc(FILE_BYTES);
  if (i % 3 === 0) {
    for (let j = 0; j < FILE_BYTES; j += 4) buf.writeUInt32LE(rnd(), j); // incompressible
  } else if (i % 3 === 1) {
    let at = 0; // text-like
    while (at < FILE_BYTES) at += buf.write(WORDS[rnd() % WORDS.length]! + (rnd() % 13 === 0 ? '\n' : ' '), at);
  } else {
    for (let j = 0; j < FILE_BYTES; j++) buf[j] = (j % 251) ^ (rnd() % 16 === 0 ? rnd() & 0xff : 0); // patterned
  }
  return buf;
}

function sevenZip(args: string[], cwd: string): void {
  const r = spawnSync('7z', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`7z ${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function unpackThroughput(): Promise<UnpackThroughputRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'avfilter-bench-7z-'));
  const pool = new SevenZipPool();
  try {
    const src = join(dir, 'src');
    await mkdir(src);
    const names: string[] = [];
    for (let i = 0; i < FILES; i++) {
      names.push(`f${i}.bin`);
      await writeFile(join(src, `f${i}.bin`), payloadFile(i));
    }
    sevenZip(['a', '-bd', '-tzip', '-mm=Deflate', join(dir, 'p.zip'), ...names], src);
    sevenZip(['a', '-bd', '-t7z', '-m0=LZMA', join(dir, 'p.7z'), ...names], src);
    sevenZip(['a', '-bd', '-ttar', join(dir, 'p.tar'), ...names], src);
    sevenZip(['a', '-bd', '-tgzip', join(dir, 'p.tar.gz'), 'p.tar'], dir);
    sevenZip(['a', '-bd', '-tbzip2', join(dir, 'p.tar.bz2'), 'p.tar'], dir);
    const cases: Array<[string, string, SevenZipType]> = [
      ['zip-deflate', 'p.zip', 'zip'],
      ['7z-lzma', 'p.7z', '7z'],
      ['tar.gz (gzip stream)', 'p.tar.gz', 'gzip'],
      ['bzip2', 'p.tar.bz2', 'bzip2'],
    ];
    await pool.version(); // thread up
    const rows: UnpackThroughputRow[] = [];
    for (const [format, file, type] of cases) {
      const input = await readFile(join(dir, file));
      const rates: number[] = [];
      let outputBytes = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const t0 = process.hrtime.bigint();
        const r = await pool.unpack(input, type, { maxOutputBytes: 256 * 1024 * 1024, maxMembers: 1000, deadline: Date.now() + 120_000 });
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        if (r.outcome !== 'ok') throw new Error(`${format}: ${r.outcome} ${r.detail ?? ''}`);
        outputBytes = r.members.reduce((n, m) => n + m.bytes.length, 0);
        rates.push(outputBytes / 1e6 / s);
      }
      rows.push({ format, mbPerS: Math.round(median(rates) * 10) / 10, inputBytes: input.length, outputBytes });
    }
    return rows;
  } finally {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Milliseconds until a new pool answers (compiles the WASM, starts a thread), then a new thread of that pool. */
export async function threadStartCost(): Promise<{ coldMs: number; warmMs: number }> {
  const pool = new SevenZipPool();
  try {
    let t0 = performance.now();
    await pool.version();
    const coldMs = performance.now() - t0;
    // An aborted job costs its thread: the next job needs a new one.
    const ac = new AbortController();
    const job = pool.unpack(Buffer.alloc(64), 'zip', { maxOutputBytes: 1024, maxMembers: 1, deadline: Date.now() + 10_000 }, ac.signal);
    ac.abort();
    await job.catch(() => undefined);
    const retired = pool.threadCount === 0;
    t0 = performance.now();
    await pool.version();
    const warmMs = performance.now() - t0;
    if (!retired) throw new Error('the thread was not retired: warm start not measured');
    return { coldMs: Math.round(coldMs), warmMs: Math.round(warmMs) };
  } finally {
    await pool.close();
  }
}
