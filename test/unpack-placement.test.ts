/**
 * Where containers are placed inside an item (src/unpack/zip-layout.ts, search.ts, locate.ts)
 * and how often each is opened (the stage through a counting reader): an ordinary zip is one
 * reading of the item's own bytes (no copy, no second 7-Zip run), a zip behind junk is relocated,
 * a zip of stored zips is one reading (its members' zips are read as members), every format is
 * found behind junk with its header checked, chance bytes find nothing; 7-Zip's "data after the
 * end" is reported (`trailing`) whatever its exit code, so the stage looks behind a container.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { zipLayout, MAX_ZIP_READINGS } from '../src/unpack/zip-layout.js';
import { searchContainers, SEARCH_BYTES } from '../src/unpack/search.js';
import { SevenZipPool } from '../src/unpack/sevenzip/index.js';
import { createUnpackers } from '../src/unpack/readers.js';
import { scanMessage, type ScanDeps } from '../src/scan/scan-message.js';
import { createYaraEngine, DEFAULT_RULES_DIR } from '../src/engines/yara/index.js';
import { DEFAULT_MIME_LIMITS } from '../src/mime/index.js';
import type { ArchiveReader, UnpackOptions } from '../src/unpack/stage.js';
import type { ContainerFormat } from '../src/unpack/types.js';
import { attachmentMessage, makeArchive, payloadFiles } from './helpers/container-corpus.js';
import { content, junk, zipOf } from './helpers/evasion-shapes.js';
import { buildRar4 } from './helpers/rar.js';
import { buildZip } from './helpers/zip.js';

const dir = mkdtempSync(join(tmpdir(), 'avf-placement-'));
const yara = createYaraEngine({ rulesDir: DEFAULT_RULES_DIR, maxScanBytes: 64 * 1024 * 1024, scanTimeoutMs: 30_000 });
const unpackers = createUnpackers();
const pool = new SevenZipPool();
after(async () => {
  await yara.close();
  await unpackers.close();
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
});

test('zip layout: an ordinary zip is one reading of the item itself (no copy)', () => {
  const zip = zipOf(true);
  const l = zipLayout(zip, 100);
  assert.equal(l.readings.length, 1);
  assert.equal(l.readings[0]!.offset, 0);
  assert.equal(l.readings[0]!.bytes(), zip, 'the same buffer, not a copy');
});

test('zip layout: behind junk and before a CRLF, relocated by the junk; the archive given to 7-Zip is exactly the zip', () => {
  const zip = zipOf(true);
  const l = zipLayout(Buffer.concat([Buffer.from('junkjunk'), zip, Buffer.from('\r\n')]), 100);
  assert.equal(l.readings.length, 1);
  assert.equal(l.readings[0]!.offset, 8);
  assert.match(l.readings[0]!.how, /relocated by 8/);
  assert.ok(l.readings[0]!.bytes().equals(zip));
});

test('zip layout: a zip of stored zips is one reading (the inner ones are its members\' business); 17 zips side by side are too many', () => {
  const inner = Array.from({ length: 20 }, (_, i) => buildZip([{ name: 'word/document.xml', data: Buffer.from(`<doc>${i}</doc>`.repeat(40)) }]));
  const outer = buildZip(inner.map((b, i) => ({ name: `d${i}.docx`, data: b, method: 'store' as const })));
  assert.equal(zipLayout(outer, 1000).readings.length, 1);
  const side = Buffer.concat(inner.slice(0, MAX_ZIP_READINGS + 1).map((b) => Buffer.concat([Buffer.from('x'), b])));
  assert.match(zipLayout(side, 1000).tooMany ?? '', /more than 16/);
});

test('zip layout: a local entry the directory does not list is a reading of its own (rebuilt), the listed one is not read twice', () => {
  const listed = buildZip([{ name: 'a.txt', data: Buffer.from('a'.repeat(300)) }]);
  const hidden = buildZip([{ name: 'b.com', data: content(true) }]);
  const cd = listed.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  const hiddenLocal = hidden.subarray(0, hidden.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])));
  const z = Buffer.concat([listed.subarray(0, cd), hiddenLocal, listed.subarray(cd)]);
  z.writeUInt32LE(cd + hiddenLocal.length, z.length - 6);
  const l = zipLayout(z, 100);
  assert.deepEqual(l.readings.map((r) => r.how), ['end record', 'local headers']);
  assert.equal(l.readings[1]!.offset, cd);
});

test('search: every format behind junk is found at its offset; random bytes and text quoting signatures find nothing', () => {
  const kinds: Array<[string, ContainerFormat]> = [['7z', '7z'], ['cab', 'cab'], ['arj', 'arj'], ['lzh', 'lzh'], ['tar-ustar', 'tar'],
    ['gz', 'gzip'], ['bz2', 'bzip2'], ['xz', 'xz'], ['zstd', 'zstd'], ['cpio-newc', 'cpio'], ['cpio-odc', 'cpio']];
  for (const [kind, format] of kinds) {
    const a = makeArchive(kind, payloadFiles());
    const r = searchContainers(Buffer.concat([junk('random', 1000), a]), () => true);
    assert.ok(r.finds.some((f) => f.format === format && f.offset === 1000), `${kind}: ${JSON.stringify(r.finds)}`);
  }
  for (const [rar, format] of [[buildRar4([{ name: 'a', data: Buffer.from('x') }]), 'rar']] as const) {
    assert.ok(searchContainers(Buffer.concat([junk('stub', 5000), rar]), () => true).finds.some((f) => f.format === format && f.offset === 5000));
  }
  let chance = 0;
  for (let i = 0; i < 8; i++) chance += searchContainers(randomBytes(4 << 20), (f) => f !== 'pdf').finds.filter((f) => !f.weak).length;
  assert.equal(chance, 0, 'no checked header in 32 MiB of random bytes');
  const text = Buffer.from('ustar and %PDF-1.4 and BZh91AY&SY and 7z and Rar!\x1a\x07\x00 and MSCF\0\0\0\0 words\n'.repeat(1000), 'latin1');
  assert.deepEqual(searchContainers(text, (f) => f !== 'pdf').finds, []);
  assert.equal(SEARCH_BYTES, 8 * 1024 * 1024);
});

test('7-Zip: bytes after a cab (exit 0), a 7z and a gzip are reported as trailing; a clean archive is not', async () => {
  const limits = { maxOutputBytes: 1 << 26, maxMembers: 100, deadline: Date.now() + 60_000 };
  const files = payloadFiles(false);
  for (const [kind, type] of [['cab', 'Cab'], ['7z', '7z'], ['gz', 'gzip']] as const) {
    const a = makeArchive(kind, files);
    assert.equal((await pool.unpack(a, type, limits)).trailing, false, `${kind} alone`);
    const r = await pool.unpack(Buffer.concat([a, Buffer.from('some bytes after the end of it')]), type, limits);
    assert.equal(r.outcome, 'ok', `${kind}: ${r.detail}`);
    assert.equal(r.trailing, true, `${kind} with bytes after it`);
  }
});

// ---- how often the stage opens what ----

function counting(inner: ArchiveReader): ArchiveReader & { calls: Array<{ format: ContainerFormat; size: number }> } {
  const r = {
    calls: [] as Array<{ format: ContainerFormat; size: number }>,
    formats: inner.formats,
    unpack: (...a: Parameters<ArchiveReader['unpack']>) => { r.calls.push({ format: a[1], size: a[0].length }); return inner.unpack(...a); },
  };
  return r;
}

let n = 0;
async function scan(bytes: Buffer, name: string, archives: ArchiveReader) {
  const path = join(dir, `m${++n}.eml`);
  writeFileSync(path, attachmentMessage(name, bytes));
  const unpack: UnpackOptions = { maxDepth: 10, maxMembers: 10_000, maxBytes: 256 << 20, maxRatio: 200, maxTimeMs: 30_000, archives, documents: unpackers.documents };
  const deps: ScanDeps = { engines: [yara], mimeLimits: DEFAULT_MIME_LIMITS, tmpdir: join(dir, 'work'), unpack };
  return (await scanMessage(path, deps, AbortSignal.timeout(60_000))).verdict;
}

test('stage: an ordinary zip, and one behind junk, is opened once; a tar holding a zip opens the tar, then its zip member once as a member', async () => {
  for (const bytes of [zipOf(true), Buffer.concat([Buffer.from('junkjunk'), zipOf(true), Buffer.from('\r\n')])]) {
    const r = counting(unpackers.archives!);
    assert.equal((await scan(bytes, 'a.zip', r)).kind, 'infected');
    assert.deepEqual(r.calls.map((c) => c.format), ['zip']);
  }
  const tar = makeArchive('tar-ustar', [{ name: 'inner.zip', data: zipOf(false) }, { name: 'pad.txt', data: Buffer.from('x'.repeat(100)) }]);
  const r = counting(unpackers.archives!);
  assert.equal((await scan(tar, 'a.tar', r)).kind, 'clean');
  assert.deepEqual(r.calls.map((c) => c.format).sort(), ['tar', 'zip', 'zip'], 'the tar, its member inner.zip, and the zip Python and unzip find in the tar from its end record');
});

test('stage: a RAR self-extractor is opened at the RAR, a gzip behind junk at the gzip', async () => {
  const gz = gzipSync(content(true));
  const rar = buildRar4([{ name: 'invoice.com.gz', data: gz }]);
  const r = counting(unpackers.archives!);
  const v = await scan(Buffer.concat([junk('stub', 30000), rar]), 'setup.exe', r);
  assert.equal(v.kind, 'infected');
  assert.ok(r.calls.some((c) => c.format === 'rar' && c.size === rar.length), JSON.stringify(r.calls));
});

test('7-Zip outcomes: an archive of any format cut short is never ok while a member came out short (what ok means: every member whole)', async () => {
  const limits = { maxOutputBytes: 1 << 26, maxMembers: 100, deadline: Date.now() + 120_000 };
  const files = payloadFiles(false);
  const whole = new Map(files.map((f) => [f.name, f.data]));
  const failures: string[] = [];
  for (const [kind, type] of [['cab', 'Cab'], ['tar-ustar', 'tar'], ['cpio-newc', 'Cpio'], ['cpio-bin', 'Cpio'], ['arj', 'Arj'], ['lzh', 'Lzh'], ['7z', '7z'],
    ['iso', 'Iso'], ['zip-deflate', 'zip'], ['gz', 'gzip'], ['bz2', 'bzip2'], ['xz', 'xz'], ['zstd', 'zstd']] as const) {
    const a = makeArchive(kind, files);
    for (const frac of [0.2, 0.4, 0.6, 0.8, 0.95]) {
      const r = await pool.unpack(a.subarray(0, Math.floor(a.length * frac)), type, limits);
      if (r.outcome !== 'ok') continue;
      for (const m of r.members) {
        // a single-stream compressor's member is the first file; an archive's by name
        const want = m.name === '[data]' ? files[0]!.data : whole.get(m.name);
        if (!want || !m.bytes.equals(want)) failures.push(`${kind} cut at ${frac}: ok, but ${m.name} is ${m.bytes.length} bytes of ${want?.length}`);
      }
      if (r.members.length === 0) failures.push(`${kind} cut at ${frac}: ok with no member`);
    }
  }
  assert.deepEqual(failures, []);
});
