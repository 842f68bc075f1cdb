/**
 * The 7-Zip unpacker (src/unpack/sevenzip) against the real 7z-wasm module: every format in
 * SEVENZIP_TYPE yields clam.exe's bytes (Debian's clamav-testfiles and a corpus built at test
 * time by test/helpers/sevenzip-corpus.py with python, 7z, cpio, gcab, zstd, compress,
 * genisoimage, lha, arj, mksquashfs, wimcapture, bsdtar, lzip), names, encryption, damage,
 * member and byte caps, bombs with bounded memory (each in a fresh process so its peak RSS is
 * its own), deadline, abort, concurrency, close.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Worker, type Transferable } from 'node:worker_threads';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SevenZipPool, SEVENZIP_TYPE, sevenZipInputFor, sevenZipTypeFor } from '../src/unpack/sevenzip/index.js';
import type { ContainerFormat, UnpackLimits, UnpackResult } from '../src/unpack/types.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url)); // dist/test/ → repo root
const CORPUS_SCRIPT = join(REPO, 'test/helpers/sevenzip-corpus.py');
const POOL_INDEX = fileURLToPath(new URL('../src/unpack/sevenzip/index.js', import.meta.url));
const CLAM = '/usr/share/clamav-testfiles';
const PAYLOAD = readFileSync(join(CLAM, 'clam.exe'));
const SECOND = Buffer.from('second member\n'.repeat(10));
const MB = 1024 * 1024;

let dir = '';
let pool: SevenZipPool;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'avfilter-7z-'));
  const r = spawnSync('python3', [CORPUS_SCRIPT, dir, join(CLAM, 'clam.exe'), 'bombs'], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `corpus: ${r.stderr}`);
  pool = new SevenZipPool();
});
after(async () => {
  await pool?.close();
  rmSync(dir, { recursive: true, force: true });
});

function limits(over: Partial<UnpackLimits> = {}): UnpackLimits {
  return { maxOutputBytes: 16 * MB, maxMembers: 100, deadline: Date.now() + 30_000, ...over };
}

/** An absolute path as given (clamav-testfiles), else a file of the corpus built for this run. */
function input(file: string): Buffer {
  return readFileSync(file.startsWith('/') ? file : join(dir, file));
}

async function unpack(file: string, format: ContainerFormat, over: Partial<UnpackLimits> = {}, p = pool): Promise<UnpackResult> {
  const bytes = input(file);
  const type = sevenZipTypeFor(format, bytes);
  assert.ok(type, `${format} has a 7-Zip type`);
  return p.unpack(sevenZipInputFor(format, bytes), type, limits(over));
}

function hasPayload(r: UnpackResult): boolean {
  return r.members.some((m) => m.bytes.includes(PAYLOAD));
}

// file (clamav-testfiles by absolute path, else the corpus), format, holds dir/second.txt too
const FORMATS: Array<[string, ContainerFormat, boolean]> = [
  [`${CLAM}/clam.zip`, 'zip', false],
  [`${CLAM}/clam.bz2.zip`, 'zip', false],
  [`${CLAM}/clam.d64.zip`, 'zip', false],
  [`${CLAM}/clam.impl.zip`, 'zip', false],
  ['zip-stored.zip', 'zip', true],
  ['zip-deflate.zip', 'zip', true],
  ['zip-bzip2.zip', 'zip', true],
  ['zip-lzma.zip', 'zip', true],
  ['zip-zip64.zip', 'zip', false],
  ['zip-deflate64.zip', 'zip', true],
  [`${CLAM}/clam.7z`, '7z', false],
  ['lzma.7z', '7z', true],
  ['ppmd.7z', '7z', true],
  [`${CLAM}/clam.tar.gz`, 'gzip', false],
  ['tar.gz', 'gzip', false],
  ['named.gz', 'gzip', false],
  [`${CLAM}/clam.exe.bz2`, 'bzip2', false],
  ['clam.xz', 'xz', false],
  ['clam.lzma', 'lzma', false],
  ['clam.zst', 'zstd', false],
  ['clam.Z', 'compress', false],
  ['tar-ustar.tar', 'tar', true],
  ['tar-gnu.tar', 'tar', true],
  ['tar-pax.tar', 'tar', true],
  [`${CLAM}/clam.bin-be.cpio`, 'cpio', false],
  [`${CLAM}/clam.bin-le.cpio`, 'cpio', false],
  [`${CLAM}/clam.odc.cpio`, 'cpio', false],
  [`${CLAM}/clam.newc.cpio`, 'cpio', false],
  ['cpio-bin.cpio', 'cpio', true],
  ['cpio-odc.cpio', 'cpio', true],
  ['cpio-newc.cpio', 'cpio', true],
  [`${CLAM}/clam.cab`, 'cab', false],
  ['gcab.cab', 'cab', false],
  ['gcab-mszip.cab', 'cab', false],
  ['stored.rar', 'rar', false],
  ['clam.iso', 'iso', true],
  [`${CLAM}/clam.arj`, 'arj', false],
  ['clam.arj', 'arj', false],
  [`${CLAM}/clam.chm`, 'chm', false],
  ['clam.lzh', 'lzh', true],
  [`${CLAM}/clam.exe.szdd`, 'szdd', false],
  [`${CLAM}/clam-nsis.exe`, 'nsis', false],
  ['squashfs-gzip.sqfs', 'squashfs', true],
  ['squashfs-lzo.sqfs', 'squashfs', true],
  ['squashfs-xz.sqfs', 'squashfs', true],
  ['wim-LZX.wim', 'wim', true],
  ['wim-LZMS.wim', 'wim', true],
  ['xar-gzip.xar', 'xar', true],
  ['xar-bzip2.xar', 'xar', true],
  ['clam.lz', 'lzip', false],
];

test('every format 7-Zip is given yields clam.exe whole (and the second member where there is one)', async () => {
  const seen = new Set<ContainerFormat>();
  for (const [file, format, withSecond] of FORMATS) {
    const r = await unpack(file, format);
    assert.equal(r.outcome, 'ok', `${file}: ${r.outcome} ${r.detail ?? ''}`);
    assert.ok(hasPayload(r), `${file}: clam.exe's bytes in ${r.members.map((m) => m.name).join(', ')}`);
    if (withSecond) {
      const second = r.members.find((m) => m.name.endsWith('second.txt'));
      assert.ok(second?.bytes.equals(SECOND), `${file}: dir/second.txt`);
    }
    seen.add(format);
  }
  // the table promises nothing that was not checked here
  assert.deepEqual([...seen].sort(), Object.keys(SEVENZIP_TYPE).sort());
});

test('names: the stored name, "[data]" when a stream has none; directories and symlinks are not members', async () => {
  assert.deepEqual((await unpack('named.gz', 'gzip')).members.map((m) => m.name), ['clam.exe']);
  assert.deepEqual((await unpack('noname.gz', 'gzip')).members.map((m) => m.name), ['[data]']);
  assert.deepEqual((await unpack('clam.xz', 'xz')).members.map((m) => m.name), ['[data]']);
  assert.deepEqual((await unpack('clam.lzma', 'lzma')).members.map((m) => m.name), ['[data]']);
  assert.deepEqual((await unpack(`${CLAM}/clam.exe.szdd`, 'szdd')).members.map((m) => m.name), ['[data]']);
  // tar-gnu.tar holds clam.exe, dir/, dir/second.txt and a symlink link-to-clam
  assert.deepEqual((await unpack('tar-gnu.tar', 'tar')).members.map((m) => m.name), ['clam.exe', 'dir/second.txt']);
  assert.deepEqual((await unpack('zip-deflate.zip', 'zip')).members.map((m) => m.name), ['clam.exe', 'dir/second.txt']);
});

test('two members with one name both come out, in order (the second does not hide the first)', async () => {
  const r = await unpack('zip-dupname.zip', 'zip');
  assert.equal(r.outcome, 'ok');
  assert.deepEqual(r.members.map((m) => m.name), ['same.bin', 'same.bin']);
  assert.ok(r.members[0]!.bytes.equals(PAYLOAD));
  assert.ok(r.members[1]!.bytes.equals(SECOND));
});

test('the type is forced: a PE file given as zip is not opened (7-Zip would read it as PE)', async () => {
  const r = await pool.unpack(PAYLOAD, 'zip', limits());
  assert.equal(r.outcome, 'corrupt');
  assert.equal(r.members.length, 0);
});

test('encrypted: ZipCrypto, AES zip, 7z content, 7z header, RAR → encrypted, naming the member', async () => {
  for (const [file, format, detail] of [
    ['enc-zipcrypto.zip', 'zip', 'clam.exe'],
    ['enc-aes.zip', 'zip', 'clam.exe'],
    ['enc-content.7z', '7z', 'clam.exe'],
    ['enc-header.7z', '7z', '[archive header]'],
    ['enc-stored.rar', 'rar', 'clam.exe'],
  ] as const) {
    const r = await unpack(file, format);
    assert.equal(r.outcome, 'encrypted', `${file}: ${r.outcome} ${r.detail ?? ''}`);
    assert.equal(r.detail, detail, file);
    assert.ok(!hasPayload(r) && !r.members.some((m) => m.name === 'clam.exe'), `${file}: no garbage member`);
  }
});

test('encrypted and plain members in one zip: the plain one still comes out', async () => {
  const r = await unpack('enc-mixed.zip', 'zip');
  assert.equal(r.outcome, 'encrypted');
  assert.equal(r.detail, 'clam.exe');
  assert.deepEqual(r.members.map((m) => m.name), ['dir/second.txt']);
  assert.ok(r.members[0]!.bytes.equals(SECOND));
});

test('truncated 7z and zip → corrupt; a method 7-Zip lacks → unsupported', async () => {
  for (const [file, format] of [['trunc-lzma.7z', '7z'], ['trunc-zip-deflate.zip', 'zip']] as const) {
    const r = await unpack(file, format);
    assert.equal(r.outcome, 'corrupt', `${file}: ${r.outcome} ${r.detail ?? ''}`);
  }
  const r = await unpack('zip-method97.zip', 'zip');
  assert.equal(r.outcome, 'unsupported');
  assert.equal(r.detail, 'clam.exe');
  assert.deepEqual(r.members.map((m) => m.name), ['dir/second.txt']);
  // the pool still works after the threads that saw those were replaced
  assert.equal((await unpack(`${CLAM}/clam.zip`, 'zip')).outcome, 'ok');
});

test('maxMembers: 50 members with a cap of 10 → members, exactly the first 10', async () => {
  const r = await unpack('many.zip', 'zip', { maxMembers: 10 });
  assert.equal(r.outcome, 'members');
  assert.deepEqual(r.members.map((m) => m.name), Array.from({ length: 10 }, (_, i) => `m${String(i).padStart(2, '0')}.txt`));
  assert.equal((await unpack('many.zip', 'zip', { maxMembers: 50 })).outcome, 'ok');
});

test('maxOutputBytes: members stop at the cap → size, never more bytes than the cap', async () => {
  const cap = PAYLOAD.length + 20;
  const r = await unpack('zip-stored.zip', 'zip', { maxOutputBytes: cap });
  assert.equal(r.outcome, 'size');
  const total = r.members.reduce((n, m) => n + m.bytes.length, 0);
  assert.ok(total <= cap, `${total} bytes`);
  assert.ok(hasPayload(r), 'what fits is kept');
  assert.equal((await unpack('zip-stored.zip', 'zip', { maxOutputBytes: PAYLOAD.length + SECOND.length })).outcome, 'ok');
});

// A bomb in a fresh process: peak RSS growth over the pool's warm baseline is its own.
function bombRun(file: string, type: string, capBytes: number): { outcome: string; total: number; ms: number; growthMb: number } {
  const script = `
    import { readFileSync } from 'node:fs';
    const { SevenZipPool } = await import(${JSON.stringify(POOL_INDEX)});
    const pool = new SevenZipPool();
    await pool.version(); // thread up, module instantiated
    const input = readFileSync(${JSON.stringify(join(dir, file))});
    const base = process.memoryUsage().rss;
    const t0 = Date.now();
    const r = await pool.unpack(input, ${JSON.stringify(type)}, { maxOutputBytes: ${capBytes}, maxMembers: 100, deadline: Date.now() + 120000 });
    const ms = Date.now() - t0;
    const total = r.members.reduce((n, m) => n + m.bytes.length, 0);
    await pool.close();
    console.log(JSON.stringify({ outcome: r.outcome, total, ms, growthMb: (process.resourceUsage().maxRSS * 1024 - base) / 1048576 }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { outcome: string; total: number; ms: number; growthMb: number };
}

test('bombs (2 GiB of zeros in a zip, 1 GiB in gzip, bzip2, xz; a zip whose header lies) stop at the cap with bounded memory', { timeout: 600_000 }, () => {
  const cap = 64 * MB;
  for (const [file, type] of [['bomb.zip', 'zip'], ['bomb.gz', 'gzip'], ['bomb.bz2', 'bzip2'], ['bomb.xz', 'xz']] as const) {
    const r = bombRun(file, type, cap);
    console.log(`${file}: ${r.outcome}, ${r.total} bytes out, ${r.ms} ms, peak RSS growth ${r.growthMb.toFixed(0)} MB`);
    assert.equal(r.outcome, 'size', file);
    assert.ok(r.total <= cap, `${file}: ${r.total} bytes`);
    assert.ok(r.growthMb < 600, `${file}: peak RSS grew ${r.growthMb.toFixed(0)} MB`);
    assert.ok(r.ms < 60_000, `${file}: ${r.ms} ms`);
  }
  // sizes in the zip64 headers say 1 KiB: 7-Zip stops at the declared size and calls it damage
  const lying = bombRun('bomb-lying.zip', 'zip', cap);
  assert.ok(lying.outcome === 'corrupt' || lying.outcome === 'size', lying.outcome);
  assert.ok(lying.total <= cap && lying.growthMb < 600);
});

test('deadline: the thread is stopped → time, within a few seconds; the pool works after', async () => {
  const bomb = readFileSync(join(dir, 'bomb.bz2'));
  const t0 = Date.now();
  const r = await pool.unpack(bomb, 'bzip2', limits({ maxOutputBytes: 2048 * MB, deadline: Date.now() + 300 }));
  assert.equal(r.outcome, 'time');
  assert.ok(Date.now() - t0 < 5_000, `${Date.now() - t0} ms`);
  assert.equal((await unpack(`${CLAM}/clam.zip`, 'zip')).outcome, 'ok');
});

test('abort: rejects with EABORTED at once; the pool works after', async () => {
  const bomb = readFileSync(join(dir, 'bomb.bz2'));
  const ac = new AbortController();
  const t0 = Date.now();
  setTimeout(() => ac.abort(), 300);
  await assert.rejects(pool.unpack(bomb, 'bzip2', limits({ maxOutputBytes: 2048 * MB }), ac.signal), (err: { code?: string }) => err.code === 'EABORTED');
  assert.ok(Date.now() - t0 < 5_000, `${Date.now() - t0} ms`);
  await assert.rejects(pool.unpack(PAYLOAD, 'zip', limits(), ac.signal), (err: { code?: string }) => err.code === 'EABORTED');
  assert.equal((await unpack(`${CLAM}/clam.zip`, 'zip')).outcome, 'ok');
});

test('concurrent jobs on two threads all come back right; never more than two threads', async () => {
  const two = new SevenZipPool({ threads: 2 });
  try {
    const files: Array<[string, ContainerFormat]> = [[`${CLAM}/clam.zip`, 'zip'], ['lzma.7z', '7z'], ['tar-pax.tar', 'tar'], ['enc-aes.zip', 'zip'], [`${CLAM}/clam.exe.bz2`, 'bzip2'], ['trunc-lzma.7z', '7z'], [`${CLAM}/clam.cab`, 'cab'], ['many.zip', 'zip']];
    const jobs = files.map(([f, fmt]) => unpack(f, fmt, {}, two));
    assert.ok(two.threadCount <= 2);
    const results = await Promise.all(jobs);
    assert.deepEqual(results.map((r) => r.outcome), ['ok', 'ok', 'ok', 'encrypted', 'ok', 'corrupt', 'ok', 'ok']);
    for (const i of [0, 1, 2, 4, 6]) assert.ok(hasPayload(results[i]!), files[i]![0]);
    assert.equal(results[7]!.members.length, 50);
  } finally {
    await two.close();
  }
});

test('close() stops every thread and rejects later jobs; a job running at close rejects', async () => {
  const p = new SevenZipPool({ threads: 2 });
  assert.match(await p.version(), /^7-Zip .*24\.09/);
  const running = p.unpack(readFileSync(join(dir, 'bomb.bz2')), 'bzip2', limits({ maxOutputBytes: 2048 * MB }));
  const outcome = running.then(() => 'resolved', (err: { code?: string }) => err.code);
  assert.ok(p.threadCount >= 1);
  await p.close();
  assert.equal(p.threadCount, 0);
  assert.equal(await outcome, 'EUNPACK_CLOSED');
  await assert.rejects(p.unpack(PAYLOAD, 'zip', limits()), (err: { code?: string }) => err.code === 'EUNPACK_CLOSED');
});

test('heap: a thread whose WASM heap grew past maxHeapBytes is replaced; a dictionary past twice that → size', async () => {
  const small = new SevenZipPool({ maxHeapBytes: 64 * MB });
  try {
    const big = await unpack('dict64m.xz', 'xz', {}, small); // 64 MiB dictionary: heap > 64 MiB
    assert.equal(big.outcome, 'ok');
    assert.ok(hasPayload(big));
    assert.equal(small.threadCount, 0, 'retired after the job');
    const huge = await unpack('dict1g.xz', 'xz', {}, small); // 1 GiB: refused, never allocated
    assert.equal(huge.outcome, 'size');
    assert.match(huge.detail ?? '', /memory/);
    assert.equal(small.threadCount, 1, 'the refused growth left the heap small: thread kept');
    assert.equal((await unpack(`${CLAM}/clam.zip`, 'zip', {}, small)).outcome, 'ok');
  } finally {
    await small.close();
  }
});

test('a thread that dies mid-job → EUNPACK_INTERNAL; the pool replaces it', async () => {
  const p = new SevenZipPool();
  // Simulates a crash: the thread is gone while the job runs (not through the pool's own stop).
  const post = Worker.prototype.postMessage;
  let killed = false;
  Worker.prototype.postMessage = function (this: Worker, msg: unknown, transfer?: readonly Transferable[]) {
    post.call(this, msg, transfer as Transferable[]);
    if (!killed && (msg as { type?: string }).type === 'job') {
      killed = true;
      void this.terminate();
    }
  };
  try {
    const job = p.unpack(readFileSync(join(dir, 'bomb.bz2')), 'bzip2', limits({ maxOutputBytes: 2048 * MB }));
    await assert.rejects(job, (err: { code?: string }) => err.code === 'EUNPACK_INTERNAL');
    assert.ok(killed);
  } finally {
    Worker.prototype.postMessage = post;
  }
  try {
    assert.equal((await unpack(`${CLAM}/clam.zip`, 'zip', {}, p)).outcome, 'ok');
  } finally {
    await p.close();
  }
});

test('options are checked up front', () => {
  assert.throws(() => new SevenZipPool({ threads: 3 }), RangeError);
  assert.throws(() => new SevenZipPool({ threads: 0 }), RangeError);
  assert.throws(() => new SevenZipPool({ maxHeapBytes: 1024 }), RangeError);
});

test('a member of several MiB comes back byte for byte (written in blocks that grow), and bytes that end mid-block too', async () => {
  const sizes = [3 * MB + 12_345, 64 * 1024, 64 * 1024 + 1, 1];
  for (const [i, size] of sizes.entries()) {
    const bytes = Buffer.alloc(size);
    for (let j = 0; j < size; j++) bytes[j] = (Math.imul(j, 2654435761) >>> 24) ^ (j >> 11) ^ i;
    const gz = gzipSync(bytes);
    const r = await pool.unpack(gz, sevenZipTypeFor('gzip', gz)!, limits());
    assert.equal(r.outcome, 'ok', `${size} bytes`);
    assert.equal(r.members.length, 1);
    assert.ok(r.members[0]!.bytes.equals(bytes), `${size} bytes: the member's bytes`);
  }
});

test('a thread idle for idleThreadMs ends (its WASM heap with it); the next job starts a fresh one', async () => {
  const p = new SevenZipPool({ idleThreadMs: 200 });
  try {
    assert.equal((await unpack(`${CLAM}/clam.zip`, 'zip', {}, p)).outcome, 'ok');
    assert.equal(p.threadCount, 1, 'kept while work may come');
    const until = Date.now() + 5000;
    while (p.threadCount > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(p.threadCount, 0, 'ended once idle');
    const again = await unpack(`${CLAM}/clam.zip`, 'zip', {}, p);
    assert.equal(again.outcome, 'ok');
    assert.ok(hasPayload(again));
  } finally {
    await p.close();
  }
});
