/**
 * Which items are containers (src/unpack/sniff.ts): real files made by real tools (zlib, Python's
 * bz2/lzma/tarfile, the zip helper) are recognised by their bytes whatever they are called;
 * ordinary files that merely start like one (a text beginning "BZh", "PK" in prose, a random
 * binary) are not, since a container that does not open is a limit verdict. And the mbox
 * splitter (src/unpack/mbox.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { sniff, SNIFF_BYTES, mboxSeparatorEnd } from '../src/unpack/sniff.js';
import { unpackMbox } from '../src/unpack/mbox.js';
import { buildZip } from './helpers/zip.js';

const look = (b: Buffer) => sniff(b.subarray(0, SNIFF_BYTES), b.length);

/** Bytes made by Python's standard library (what the tools of a sender make). */
function py(code: string): Buffer {
  return execFileSync('python3', ['-c', `import sys,io\n${code}`], { maxBuffer: 64 * 1024 * 1024 });
}

test('sniff: real containers by their bytes', () => {
  const payload = Buffer.from('hello world\n'.repeat(100));
  assert.equal(look(buildZip([{ name: 'a.txt', data: payload }])), 'zip');
  assert.equal(look(zlib.gzipSync(payload)), 'gzip');
  assert.equal(look(py('import bz2; sys.stdout.buffer.write(bz2.compress(b"x"*1000))')), 'bzip2');
  assert.equal(look(py('import bz2; sys.stdout.buffer.write(bz2.compress(b""))')), 'bzip2');
  assert.equal(look(py('import lzma; sys.stdout.buffer.write(lzma.compress(b"x"*1000))')), 'xz');
  for (const fmt of ['USTAR_FORMAT', 'GNU_FORMAT', 'PAX_FORMAT']) {
    const tar = py(`import tarfile\nb=io.BytesIO()\nt=tarfile.open(fileobj=b,mode="w",format=tarfile.${fmt})\ni=tarfile.TarInfo("a.txt");i.size=5\nt.addfile(i,io.BytesIO(b"hello"))\nt.close()\nsys.stdout.buffer.write(b.getvalue())`);
    assert.equal(look(tar), 'tar', fmt);
  }
  // a v7 tar has no magic: its header checksum decides
  const v7 = py('import tarfile\nb=io.BytesIO()\nt=tarfile.open(fileobj=b,mode="w",format=tarfile.USTAR_FORMAT)\ni=tarfile.TarInfo("a.txt");i.size=5\nt.addfile(i,io.BytesIO(b"hello"))\nt.close()\nh=bytearray(b.getvalue())\nh[257:265]=bytes(8)\nh[148:156]=b" "*8\ns=sum(h[:512])\nh[148:156]=("%06o" % s).encode()+b"\\0 "\nsys.stdout.buffer.write(bytes(h))');
  assert.equal(look(v7), 'tar');
  const iso = Buffer.alloc(0x9000 + 2048);
  iso.write('\x01CD001', 0x8000, 'latin1');
  assert.equal(look(iso), 'iso');
  assert.equal(look(Buffer.concat([Buffer.from('%PDF-1.4\n'), payload])), 'pdf');
  assert.equal(look(Buffer.from('{\\rtf1\\ansi hello}')), 'rtf');
  assert.equal(look(Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, ...randomBytes(600)])), 'ole2');
  assert.equal(look(Buffer.from([0x78, 0x9f, 0x3e, 0x22, 1, 0, 1, 6, 0x90, 8, 0])), 'tnef');
  assert.equal(look(Buffer.from('070701' + '0'.repeat(200))), 'cpio');
  assert.equal(look(Buffer.from('070707' + '0'.repeat(200))), 'cpio');
  assert.equal(look(Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, 0, 4, ...randomBytes(40)])), '7z');
  assert.equal(look(Buffer.from([0x52, 0x61, 0x72, 0x21, 0x1a, 0x07, 0x01, 0x00, ...randomBytes(40)])), 'rar');
  assert.equal(look(Buffer.from([0x4d, 0x53, 0x43, 0x46, 0, 0, 0, 0, ...randomBytes(40)])), 'cab');
});

test('sniff: ordinary files that start like a container are not one', () => {
  assert.equal(look(Buffer.from('BZh, said the text, and went on for a while.\n')), undefined);
  assert.equal(look(Buffer.from('PK is what the prose says here.\n')), undefined);
  assert.equal(look(Buffer.from('The CD001 line is late in a short file.\n')), undefined);
  assert.equal(look(Buffer.from('hello')), undefined);
  assert.equal(look(Buffer.alloc(0)), undefined);
  // 512 bytes of text are no tar: the checksum does not match
  assert.equal(look(Buffer.from('a'.repeat(600))), undefined);
  let hits = 0;
  for (let i = 0; i < 2000; i++) if (look(randomBytes(1024)) !== undefined) hits++;
  // two-byte signatures (arj, compress) need more structure; random data almost never matches
  assert.ok(hits <= 2, `${hits} random buffers looked like containers`);
});

test('mbox: split at separator lines; each message whole; limits are outcomes', () => {
  const mbox = Buffer.from('From a@x Mon Jan  1 00:00:00 2024\nFrom: a@x\nSubject: one\n\nbody one\nFrom me, in text\n\nFrom b@x Mon Jan  1 00:00:00 2024\nFrom: b@x\nSubject: two\n\nbody two\n');
  assert.equal(mboxSeparatorEnd(mbox), mbox.indexOf('\n') + 1);
  const far = { maxOutputBytes: 1 << 20, maxMembers: 100, deadline: Date.now() + 60_000 };
  const r = unpackMbox(mbox, far);
  assert.equal(r.outcome, 'ok');
  const strict = r.members.filter((m) => !m.name.includes('lenient'));
  assert.deepEqual(strict.map((m) => m.bytes.toString().split('\n')[1]), ['Subject: one', 'Subject: two']);
  // "From me" inside a paragraph is no separator to RFC 4155 (no blank line before it)...
  assert.match(strict[0]!.bytes.toString(), /From me, in text/);
  // ...but is one to readers that split at any "From " line: that reading is a member too
  assert.ok(r.members.some((m) => m.name.includes('lenient') && !m.bytes.toString().includes('From me')));
  assert.equal(unpackMbox(mbox, { ...far, maxMembers: 1 }).outcome, 'members');
  assert.equal(unpackMbox(mbox, { ...far, maxOutputBytes: 20 }).outcome, 'size');
});
