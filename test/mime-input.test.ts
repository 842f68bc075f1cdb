/**
 * MessageBytes over a file (src/bytes/message-bytes.ts): range reads and chunk iteration give
 * exactly the file's bytes for every kind of range (inside one read-ahead block, across blocks,
 * longer than a block, at and past the end, empty), in any order, and what was handed out
 * earlier stays valid after later reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileBytes, fileBytesOfSize, type MessageBytes } from '../src/bytes/message-bytes.js';
import * as mail from './helpers/mail.js';

async function collect(b: MessageBytes, start: number, end: number): Promise<Buffer> {
  const out: Buffer[] = [];
  // a copy of each chunk: chunks are only valid until the next one is asked for
  for await (const c of b.chunks(start, end)) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

test('file ranges: read() and chunks() return the file bytes for every kind of range, kept views stay valid', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'avf-input-'));
  try {
    const data = mail.pseudoRandom(3 * 1024 * 1024 + 4321, 11);
    const path = join(dir, 'm.eml');
    await writeFile(path, data);
    const MiB = 1024 * 1024;
    const ranges: Array<[number, number]> = [
      [0, 0], [0, 10], [5, 4096], [MiB - 10, MiB + 1], [0, 10], [MiB - 10, MiB + 10], [MiB - 1, MiB], [100, 100 + MiB], [0, 2 * MiB + 7],
      [data.length - 5, data.length], [data.length - 5, data.length + 100], [data.length, data.length + 10], [data.length + 3, data.length + 9],
    ];
    // a seeded walk of small ranges forwards and backwards, as the lenient walker reads
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let i = 0; i < 300; i++) {
      const s = rnd(data.length);
      ranges.push([s, s + rnd(i % 10 === 0 ? 2 * MiB : 20_000)]);
    }
    for (const bytes of [await fileBytes(path), fileBytesOfSize(path, data.length)]) {
      assert.equal(bytes.size, data.length);
      const kept: Array<[Buffer, Buffer]> = [];
      for (const [s, e] of ranges) {
        const want = data.subarray(Math.min(s, data.length), Math.min(e, data.length));
        const got = await bytes.read(s, e - s);
        assert.ok(got.equals(want), `read(${s}, ${e - s})`);
        kept.push([got, want]);
        assert.ok((await collect(bytes, s, Math.min(e, data.length))).equals(want), `chunks(${s}, ${e})`);
      }
      for (const [got, want] of kept) assert.ok(got.equals(want), 'a range read earlier still holds its bytes');
      await bytes.close();
      // usable again after close(): the handle is reopened
      assert.ok((await bytes.read(10, 20)).equals(data.subarray(10, 30)));
      await bytes.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
