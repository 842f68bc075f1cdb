/**
 * Decompression bombs for the container limit tests, built at test time without ever holding
 * their inflated size: a zip of 2 GiB of zeros (~2 MB), 42.zip-style nesting (5 levels of 16
 * copies over a 1 GiB leaf), gzip / bzip2 / xz of 1 GiB of zeros, and a zip of 20,000 tiny
 * members.
 *
 * Owns: the generators. Inputs: sizes (defaults as above). Outputs: the bomb's bytes. Fails
 * with: an Error from python3 (bzip2 and xz are compressed by Python's own modules: Node has no
 * encoder for them) when it is missing.
 */
import zlib from 'node:zlib';
import { spawn } from 'node:child_process';
import { PYTHON } from './container-corpus.js';
import { buildZip } from './zip.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** One compressed chunk stands for this many zero bytes. */
const CHUNK = MiB;

/**
 * Raw deflate of `total` zero bytes (a multiple of CHUNK), with its CRC-32. A chunk deflated
 * with a full flush leaves the compressor as it started (no history, byte-aligned), so every
 * chunk is the same bytes: one chunk repeated, then the final empty block. The CRC is computed
 * chunk by chunk, never on the whole.
 */
export function deflatedZeros(total: number): { packed: Buffer; crc: number; size: number } {
  if (total % CHUNK !== 0) throw new RangeError(`deflatedZeros: ${total} is not a multiple of ${CHUNK}`);
  const zero = Buffer.alloc(CHUNK);
  const chunk = zlib.deflateRawSync(zero, { level: 9, finishFlush: zlib.constants.Z_FULL_FLUSH });
  const last = zlib.deflateRawSync(Buffer.alloc(0));
  const n = total / CHUNK;
  let crc = 0;
  for (let i = 0; i < n; i++) crc = zlib.crc32(zero, crc);
  return { packed: Buffer.concat([...Array.from({ length: n }, () => chunk), last]), crc, size: total };
}

/** A zip with one member of `total` zero bytes (2 GiB fits a plain zip: sizes up to 4 GiB - 1). */
export function zipOfZeros(total = 2 * GiB, name = 'zeros.bin'): Buffer {
  return buildZip([{ name, data: Buffer.alloc(0), deflated: deflatedZeros(total) }]);
}

/**
 * 42.zip's shape: `levels` levels of zips, each holding `copies` copies of the one below, over
 * a leaf zip holding one file of `leafBytes` zeros. 16^5 leaves of 1 GiB: a pebibyte.
 */
export function nestedZipBomb(levels = 5, copies = 16, leafBytes = GiB): Buffer {
  let inner = zipOfZeros(leafBytes, 'page.bin');
  for (let l = levels; l >= 1; l--) {
    inner = buildZip(Array.from({ length: copies }, (_, i) => ({ name: `level${l}-${i.toString(16)}.zip`, data: inner })));
  }
  return inner;
}

/** gzip (RFC 1952) of `total` zero bytes: header, the repeated deflate, CRC-32 and size mod 2^32. */
export function gzipOfZeros(total = GiB): Buffer {
  const d = deflatedZeros(total);
  const head = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
  const tail = Buffer.alloc(8);
  tail.writeUInt32LE(d.crc >>> 0, 0);
  tail.writeUInt32LE(total % 2 ** 32, 4);
  return Buffer.concat([head, d.packed, tail]);
}

const PY_ZEROS = String.raw`
import sys, bz2, lzma
kind, total = sys.argv[1], int(sys.argv[2])
c = bz2.BZ2Compressor(1) if kind == 'bzip2' else lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=0)
zero = bytes(1 << 20)
out = sys.stdout.buffer
for _ in range(total >> 20):
    out.write(c.compress(zero))
out.write(c.flush())
`;

/**
 * One bzip2 stream (one .xz stream) of `total` zero bytes: Python's bz2 / lzma, fed 1 MiB at a
 * time. Seconds of CPU (bzip2's sort on runs of zeros): asynchronous, so both can run at once.
 */
export function compressedZeros(kind: 'bzip2' | 'xz', total = GiB): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', PY_ZEROS, kind, String(total)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', (e) => reject(new Error(`${PYTHON}: ${e.message} (is it installed? .ci/run installs it)`)));
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${PYTHON} (${kind} of zeros) exited ${code}: ${err.slice(0, 2000)}`))));
  });
}

/** A zip of `count` stored members of a few bytes each. */
export function manyMembersZip(count = 20_000): Buffer {
  return buildZip(Array.from({ length: count }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.from(`${i}\n`), method: 'store' as const })));
}

