/**
 * The container stage (src/unpack/stage.ts) through scanMessage with the embedded engine and the
 * real unpackers (7-Zip pool, document readers): members are scanned with their path; every
 * limit (depth, members, size, ratio, time) is a limit verdict, never clean; identical members
 * are unpacked once; an encrypted archive is its own verdict, below a virus found elsewhere; an
 * unpacker's fault is an internal error (451), never clean; an engine that unpacks containers
 * itself (clamd) is given the members too.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { scanMessage, type ScanDeps } from '../src/scan/scan-message.js';
import { createYaraEngine, DEFAULT_RULES_DIR } from '../src/engines/yara/index.js';
import type { Engine } from '../src/engines/engine.js';
import { DEFAULT_MIME_LIMITS } from '../src/mime/index.js';
import { createUnpackers } from '../src/unpack/readers.js';
import type { ArchiveReader, UnpackOptions } from '../src/unpack/stage.js';
import { eicar } from './helpers/eicar.js';
import { buildZip } from './helpers/zip.js';

const dir = mkdtempSync(join(tmpdir(), 'avf-stage-'));
const work = join(dir, 'work');
const yara = createYaraEngine({ rulesDir: DEFAULT_RULES_DIR, maxScanBytes: 64 * 1024 * 1024, scanTimeoutMs: 30_000 });
const unpackers = createUnpackers();
after(async () => {
  await yara.close();
  await unpackers.close();
  rmSync(dir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;
const defaults: UnpackOptions = {
  maxDepth: 10, maxMembers: 10_000, maxBytes: 256 * MiB, maxRatio: 200, maxTimeMs: 30_000,
  archives: unpackers.archives, documents: unpackers.documents,
};

/** A reader that counts the containers it is asked to open and passes them to the real one. */
function counting(inner: ArchiveReader): ArchiveReader & { calls: number } {
  const r = { calls: 0, formats: inner.formats, unpack: (...a: Parameters<ArchiveReader['unpack']>) => (r.calls++, inner.unpack(...a)) };
  return r;
}

function message(attachment: Buffer, name: string): Buffer {
  return Buffer.from([
    'From: a@example.test', 'To: b@example.test', 'Subject: test', 'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'hello', '--b',
    `Content-Type: application/octet-stream; name="${name}"`, 'Content-Transfer-Encoding: base64', '',
    attachment.toString('base64').replace(/.{76}/g, '$&\n'), '--b--', '',
  ].join('\n'));
}

let n = 0;
async function scan(msg: Buffer, unpack: Partial<UnpackOptions> | null = {}, engines: Engine[] = [yara]) {
  const path = join(dir, `m${++n}.eml`);
  writeFileSync(path, msg);
  const deps: ScanDeps = { engines, mimeLimits: DEFAULT_MIME_LIMITS, tmpdir: work, unpack: unpack === null ? undefined : { ...defaults, ...unpack } };
  const r = await scanMessage(path, deps, AbortSignal.timeout(60_000));
  return r.verdict;
}

const nest = (inner: Buffer, levels: number): Buffer => {
  let b = inner;
  for (let i = levels; i >= 1; i--) b = buildZip([{ name: `level${i}.zip`, data: b }]);
  return b;
};

test('a virus in a zip in a zip is found, with the path down to it', async () => {
  const v = await scan(message(nest(buildZip([{ name: 'docs/a.com', data: eicar() }]), 2), 'outer.zip'));
  assert.equal(v.kind, 'infected');
  if (v.kind !== 'infected') return;
  assert.equal(v.findings[0]!.itemId, '2/outer.zip/level1.zip/level2.zip/docs/a.com');
  assert.equal(v.findings[0]!.container, 'zip');
  // without the stage the embedded engine sees only compressed bytes
  assert.equal((await scan(message(nest(buildZip([{ name: 'a.com', data: eicar() }]), 2), 'outer.zip'), null)).kind, 'clean');
});

test('depth: containers nested deeper than max_depth are a limit, never clean; within it the virus is found', async () => {
  const deep = message(nest(buildZip([{ name: 'a.com', data: eicar() }]), 11), 'deep.zip');
  const v = await scan(deep);
  assert.equal(v.kind, 'limit');
  if (v.kind === 'limit') assert.equal(v.code, 'EUNPACK_DEPTH');
  assert.equal((await scan(deep, { maxDepth: 20 })).kind, 'infected');
});

test('identical members are unpacked once: a 42.zip-style tree of copies costs one unpacking per level', async () => {
  let level = buildZip([{ name: 'zeros.bin', data: Buffer.alloc(1 * MiB) }]);
  for (let i = 0; i < 4; i++) level = buildZip(Array.from({ length: 16 }, (_, k) => ({ name: `copy${k}.zip`, data: level })));
  const reader = counting(unpackers.archives!);
  const v = await scan(message(level, '42.zip'), { archives: reader });
  // 16^4 = 65,536 zips of 1 MiB each if copies were unpacked again
  assert.equal(v.kind, 'clean');
  assert.equal(reader.calls, 5);
});

test('members, size and ratio limits are limit verdicts', async () => {
  const many = message(buildZip(Array.from({ length: 50 }, (_, k) => ({ name: `f${k}.txt`, data: Buffer.from(`file ${k}\n`) }))), 'many.zip');
  const m = await scan(many, { maxMembers: 10 });
  assert.equal(m.kind === 'limit' && m.code, 'EUNPACK_MEMBERS');
  assert.equal((await scan(many)).kind, 'clean');
  // 64 MiB of zeros deflate to ~64 KB: 1000 times the message size
  const bomb = message(buildZip([{ name: 'zeros.bin', data: Buffer.alloc(64 * MiB) }]), 'bomb.zip');
  const ratio = await scan(bomb);
  assert.equal(ratio.kind === 'limit' && ratio.code, 'EUNPACK_RATIO', JSON.stringify(ratio));
  const size = await scan(bomb, { maxRatio: 100_000, maxBytes: 8 * MiB });
  assert.equal(size.kind === 'limit' && size.code, 'EUNPACK_SIZE', JSON.stringify(size));
});

test('time: unpacking past max_time is a limit verdict', async () => {
  // a bzip2 of 512 MiB of zeros: decoding it takes seconds
  const bz = execFileSync('python3', ['-c', 'import bz2,sys\nc=bz2.BZ2Compressor()\nz=bytes(1<<20)\nsys.stdout.buffer.write(b"".join(c.compress(z) for _ in range(512))+c.flush())'], { maxBuffer: 64 * MiB });
  const v = await scan(message(bz, 'zeros.bz2'), { maxTimeMs: 200, maxRatio: 100_000, maxBytes: 1024 * MiB });
  assert.ok(v.kind === 'limit' && (v.code === 'EUNPACK_TIME' || v.code === 'EUNPACK_SIZE'), JSON.stringify(v));
  if (v.kind === 'limit') assert.equal(v.code, 'EUNPACK_TIME');
});

test('encrypted: its own verdict with the member path; a virus found elsewhere comes first', async () => {
  const w = mkdtempSync(join(dir, 'enc-'));
  writeFileSync(join(w, 'a.txt'), 'nothing to see\n');
  execFileSync('zip', ['-q', '-j', '-P', 'secret', join(w, 'enc.zip'), join(w, 'a.txt')]);
  const enc = readFileSync(join(w, 'enc.zip'));
  const v = await scan(message(enc, 'enc.zip'));
  assert.deepEqual(v, { kind: 'encrypted', name: 'Encrypted.Zip', format: 'zip', path: '2/enc.zip/a.txt' });
  const both = buildZip([{ name: 'enc.zip', data: enc }, { name: 'a.com', data: eicar() }]);
  assert.equal((await scan(message(both, 'both.zip'))).kind, 'infected');
});

test('mail inside containers is walked as mail: an .eml in a zip, a gzipped mbox', async () => {
  const eml = message(eicar(), 'inner.com');
  assert.equal((await scan(message(buildZip([{ name: 'fwd.eml', data: eml }]), 'mail.zip'))).kind, 'infected');
  const mbox = Buffer.concat([Buffer.from('From a@example.test Mon Jan  1 00:00:00 2024\n'), eml]);
  assert.equal((await scan(message(zlib.gzipSync(mbox), 'box.gz'))).kind, 'infected');
});

test("an unpacker's fault is an internal error (451), never clean; the pool works afterwards", async () => {
  const broken: ArchiveReader = { formats: unpackers.archives!.formats, unpack: async () => { throw new Error('thread died'); } };
  const v = await scan(message(buildZip([{ name: 'a.txt', data: Buffer.from('x') }]), 'a.zip'), { archives: broken });
  assert.equal(v.kind, 'error');
  if (v.kind === 'error') {
    assert.equal(v.code, 'EUNPACK_INTERNAL');
    assert.equal(v.origin, 'internal');
  }
  assert.equal((await scan(message(buildZip([{ name: 'a.com', data: eicar() }]), 'a.zip'))).kind, 'infected');
});

test('an engine that unpacks containers itself (clamd) gets the members too: the stage runs for it', async () => {
  const reader = counting(unpackers.archives!);
  const seen: string[] = [];
  const unpacking: Engine = { label: 'unpacking', scan: async (item) => { seen.push(item.id); return { status: 'clean' }; }, version: async () => 'x', close: async () => undefined };
  assert.equal((await scan(message(buildZip([{ name: 'a.txt', data: Buffer.from('x') }]), 'a.zip'), { archives: reader }, [unpacking])).kind, 'clean');
  assert.equal(reader.calls, 1);
  assert.ok(seen.some((id) => id.endsWith('/a.txt')), `the member was scanned: ${seen.join(' ')}`);
  assert.deepEqual(readdirSync(work).filter((f) => f.startsWith('avfilter-mime-')), [], 'no temp directory left');
});
