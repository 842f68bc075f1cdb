/**
 * The container search (src/unpack/search.ts) looks for long signatures by their first bytes
 * (indexOfSignature) instead of Buffer.indexOf on the whole signature: held here to give the
 * same answers as Buffer.indexOf, and the search as a whole the same finds, offsets, order and
 * limit as with Buffer.indexOf, on random bytes with every signature planted at random offsets,
 * overlapping, adjacent, cut short at the end, and with real headers and decoys among them.
 * Seeded; see test/helpers/fuzz.ts for AVFILTER_FUZZ_ITERATIONS / AVFILTER_FUZZ_SEED.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { indexOfSignature, MAX_CANDIDATES, searchContainers, SEARCHED_SIGNATURES, type SignatureSearch } from '../src/unpack/search.js';
import { fuzz, fuzzIterations, fuzzSeed, type Rng } from './helpers/fuzz.js';

const SEED = fuzzSeed(0x5eed05ea);

/** The search as it was: Buffer.indexOf on the whole signature. */
const wholeSignature: SignatureSearch = (b, sig, from) => b.indexOf(sig, from);

/** Something to plant: a signature whole, cut short, or changed in its last byte (passes a needle, fails the rest). */
function piece(rnd: Rng): Buffer {
  const { sig } = rnd.pick(SEARCHED_SIGNATURES);
  switch (rnd.int(6)) {
    case 0: return sig.subarray(0, 1 + rnd.int(sig.length));
    case 1: { const b = Buffer.from(sig); b[b.length - 1]! ^= 1 << rnd.int(8); return b; }
    case 2: return Buffer.concat([sig, sig]); // adjacent
    case 3: return Buffer.concat([sig.subarray(0, rnd.int(sig.length)), sig]); // a false start just before
    default: return sig;
  }
}

/** Random bytes (or text-like bytes) with `n` pieces planted at random offsets, some overlapping, and one maybe at the very end. */
function planted(rnd: Rng, n: number): Buffer {
  const size = rnd.chance(0.5) ? rnd.range(0, 4096) : rnd.size(200_000);
  const b = rnd.chance(0.2) ? Buffer.alloc(size, rnd.pick([0, 0x20, 0x2d, 0x30, 0x37])) : rnd.bytes(size);
  for (let k = 0; k < n && size > 0; k++) {
    const p = piece(rnd);
    const at = rnd.chance(0.1) ? Math.max(0, size - p.length + rnd.int(p.length)) : rnd.int(size);
    p.copy(b, at, 0, Math.min(p.length, size - at));
  }
  if (rnd.chance(0.3) && size > 0) gzipSync(rnd.bytes(rnd.int(300))).copy(b, rnd.int(size)); // a real header: a find
  return b;
}

test('indexOfSignature answers as Buffer.indexOf does, for every signature and start', () => {
  fuzz('signature search', { seed: SEED, iterations: fuzzIterations(400) }, ({ rnd, note }) => {
    const b = planted(rnd, 1 + rnd.int(40));
    note('bytes', b);
    for (const { format, sig } of SEARCHED_SIGNATURES) {
      for (let from = 0, k = 0; k < 50; k++) {
        const want = b.indexOf(sig, from);
        assert.equal(indexOfSignature(b, sig, from), want, `${format} from ${from}`);
        if (want < 0) break;
        from = want + 1;
      }
      const from = rnd.int(b.length + 2);
      assert.equal(indexOfSignature(b, sig, from), b.indexOf(sig, from), `${format} from ${from}`);
    }
  });
});

test('the search finds the same formats at the same offsets, in the same order, with the same limit, as with Buffer.indexOf', () => {
  const formats = SEARCHED_SIGNATURES.map((s) => s.format);
  fuzz('container search', { seed: SEED, iterations: fuzzIterations(300) }, ({ rnd, note }) => {
    const b = planted(rnd, rnd.int(200));
    const readable = new Set(formats.filter(() => rnd.chance(0.8)));
    note('bytes', b);
    note('readable', [...readable]);
    assert.deepEqual(searchContainers(b, (f) => readable.has(f)), searchContainers(b, (f) => readable.has(f), wholeSignature));
  });
});

test('past MAX_CANDIDATES decoys the limit, and the finds before it, are the same as with Buffer.indexOf', () => {
  // gzip decoys that pass the cheap checks and fail to inflate, then a real header behind them
  const decoy = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03, 0xff, 0xff]);
  const real = gzipSync(Buffer.from('inside'));
  const cab = Buffer.from('MSCF\0\0\0\0', 'latin1');
  for (const decoys of [MAX_CANDIDATES - 1, MAX_CANDIDATES, MAX_CANDIDATES + 1]) {
    const b = Buffer.concat([Buffer.from('stub'), cab, Buffer.alloc(decoys * decoy.length, decoy), real, Buffer.alloc(600)]);
    const got = searchContainers(b, () => true);
    assert.deepEqual(got, searchContainers(b, () => true, wholeSignature));
    assert.equal(got.tooMany !== undefined, decoys + 1 > MAX_CANDIDATES, `${decoys} decoys`);
  }
});

test('the search of an item larger than one window reads every window after the first into one reused buffer (a new one each left a 100 MB part\'s windows as garbage above the worker\'s peak), and still finds a container in the last one', async () => {
  const { locate } = await import('../src/unpack/locate.js');
  const { SEARCH_BYTES } = await import('../src/unpack/search.js');
  const size = 3 * SEARCH_BYTES + 4096;
  const item = Buffer.alloc(size, 0x90);
  const gz = gzipSync(Buffer.from('hidden behind padding\n'.repeat(40)));
  const at = size - gz.length - 100;
  gz.copy(item, at);
  const intos: Array<Buffer | undefined> = [];
  const read = async (start: number, len: number, into?: Buffer): Promise<Buffer> => {
    intos.push(into);
    const n = Math.min(len, size - start);
    const out = into !== undefined && into.length >= n ? into : Buffer.allocUnsafe(n);
    item.copy(out, 0, start, start + n);
    return out.subarray(0, n);
  };
  const found = await locate(read, size, { atStart: undefined, search: true, readable: (f) => f === 'gzip', maxEntries: 100 });
  assert.ok(found.openings.some((o) => o.format === 'gzip' && o.offset === at), `the gzip at ${at} is found: ${JSON.stringify(found.openings)}`);
  const windows = intos.slice(0, 4);
  assert.equal(windows[0], undefined, 'the first window is a buffer of its own (the caller may keep it)');
  assert.ok(windows[1] !== undefined && windows[1] === windows[2] && windows[2] === windows[3], 'every later window is read into the same buffer');
});
