/**
 * The document and mail-specific container readers (src/unpack/formats/): TNEF, PDF, RTF and
 * OLE2. Real files first (Debian's clamav-testfiles: each must give clam.exe's exact bytes,
 * through the chain a scanner would follow), then files built here for what the real ones do
 * not show (filter chains, MAPI attachments, \bin runs, PowerPoint's compressed objects), then
 * hostile input: cut at every offset, bombs, lying lengths, deep nesting, member limits.
 * Needs the package clamav-testfiles (fails, never skips, without it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { unpackOle2, unpackPdf, unpackRtf, unpackTnef } from '../src/unpack/formats/index.js';
import type { UnpackLimits, UnpackResult } from '../src/unpack/types.js';
import {
  ascii85Encode, asciiHexEncode, deflateSync, lzwEncode, mapiProp, mapiProps, ole1, ole10Native, ole2,
  ole2Chain, ole2Entry, ole2WithEntries, packageBody, pdf, pptRecord, runLengthEncode, tnef, tnefAttr, u32, zeroBomb,
} from './helpers/documents.js';

const TESTFILES = '/usr/share/clamav-testfiles';
const testfile = (name: string): Buffer => readFileSync(`${TESTFILES}/${name}`);
const CLAM_EXE = testfile('clam.exe');

const limits = (o: Partial<UnpackLimits> = {}): UnpackLimits => ({
  maxOutputBytes: 64 << 20, maxMembers: 1000, deadline: Date.now() + 5000, ...o,
});

/** The members whose bytes are exactly `bytes`, by name. */
const holding = (r: UnpackResult, bytes: Buffer): string[] => r.members.filter((m) => m.bytes.equals(bytes)).map((m) => m.name);
const named = (r: UnpackResult, name: string): Buffer => {
  const m = r.members.find((x) => x.name === name);
  assert.ok(m, `no member ${JSON.stringify(name)} in ${JSON.stringify(r.members.map((x) => x.name))}`);
  return m.bytes;
};

// ---- clamav-testfiles ----

test('tnef: clam.tnef gives clam.exe by its attachment title', () => {
  const r = unpackTnef(testfile('clam.tnef'), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(holding(r, CLAM_EXE), ['clam.exe']);
});

test('pdf: clam.pdf gives clam.exe (an /EmbeddedFile) under its file specification\'s name, and decodes its Flate streams', () => {
  const r = unpackPdf(testfile('clam.pdf'), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(holding(r, CLAM_EXE), ['clam.exe']);
  // Object 11 is a FlateDecode font stream: decoded, so it is longer than its raw bytes.
  const font = named(r, '[object 11]');
  assert.ok(font.length > 2305);
});

test('rtf: clam.exe.rtf gives the OLE1 Package\'s native data and the packaged clam.exe', () => {
  const r = unpackRtf(testfile('clam.exe.rtf'), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.ok(named(r, '[objdata 1] Package').includes(CLAM_EXE));
  assert.equal(holding(r, CLAM_EXE).length, 1);
  assert.match(holding(r, CLAM_EXE)[0]!, /clam\.exe$/);
});

test('ole2: clam.ole.doc gives every stream and clam.exe from the Ole10Native package in its ObjectPool', () => {
  const r = unpackOle2(testfile('clam.ole.doc'), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  for (const s of ['WordDocument', '1Table', 'Data', '\x01CompObj']) named(r, s);
  assert.deepEqual(holding(r, CLAM_EXE), ['ObjectPool/_1279313719/\x01Ole10Native/C:\\clam.exe']);
});

test('ole2: clam.ppt gives its ExOleObjStg (an OLE2 file) and, read again, the packaged clam.exe', () => {
  const r = unpackOle2(testfile('clam.ppt'), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(holding(r, CLAM_EXE), []); // one level down: the stage reads members again
  const embedded = named(r, 'PowerPoint Document/[ExOleObjStg 1]');
  const inner = unpackOle2(embedded, limits());
  assert.equal(inner.outcome, 'ok', inner.detail);
  assert.equal(holding(inner, CLAM_EXE).length, 1);
});

// ---- built here ----

test('pdf: Flate, ASCIIHex+Flate, ASCII85, LZW (both EarlyChange values), RunLength and an unknown filter', () => {
  const payload = Buffer.concat([randomBytes(3000), Buffer.from('the quick brown fox '.repeat(200))]);
  const text = Buffer.from('abcabcabcabcabd the the the end '.repeat(80));
  const file = pdf([
    { num: 1, dict: '<< /Type /Catalog >>' },
    { num: 2, dict: `<< /Length ${deflateSync(payload).length} /Filter /FlateDecode >>`, data: deflateSync(payload) },
    { num: 3, dict: '<< /Filter [ /ASCIIHexDecode /FlateDecode ] /Length 9 0 R >>', data: asciiHexEncode(deflateSync(payload)) },
    { num: 4, dict: '<< /Filter /A85 >>', data: ascii85Encode(Buffer.concat([payload, Buffer.alloc(8), Buffer.from('xy')])) },
    { num: 5, dict: '<< /Filter /LZWDecode >>', data: lzwEncode(text) },
    { num: 6, dict: '<< /Filter /LZWDecode /DecodeParms << /EarlyChange 0 >> >>', data: lzwEncode(text, 0) },
    { num: 7, dict: '<< /Filter /RunLengthDecode >>', data: runLengthEncode(Buffer.concat([Buffer.alloc(300, 7), text])) },
    { num: 8, dict: '<< /Filter /DCTDecode /Length 5 >>', data: Buffer.from('\xff\xd8\xff\xe0J', 'latin1') },
  ]);
  const r = unpackPdf(file, limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(named(r, '[object 2]'), payload);
  assert.deepEqual(named(r, '[object 3]'), payload);
  assert.deepEqual(named(r, '[object 4]'), Buffer.concat([payload, Buffer.alloc(8), Buffer.from('xy')]));
  assert.deepEqual(named(r, '[object 5]'), text);
  assert.deepEqual(named(r, '[object 6]'), text);
  assert.deepEqual(named(r, '[object 7]'), Buffer.concat([Buffer.alloc(300, 7), text]));
  assert.deepEqual(named(r, '[object 8]'), Buffer.from('\xff\xd8\xff\xe0J', 'latin1'));
});

test('pdf: an embedded file is named by /UF (UTF-16 hex string) over /F, wherever the file specification is', () => {
  const payload = randomBytes(700);
  const file = pdf([
    { num: 4, dict: '<< /Type /EmbeddedFile /Filter /FlateDecode >>', data: deflateSync(payload) },
    { num: 5, dict: '<< /Type /Filespec /F (old\\051name.bin) /UF <FEFF00E9002E006500780065> /EF << /F 4 0 R >> >>' },
  ]);
  const r = unpackPdf(file, limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(named(r, '\u00e9.exe'), payload);
});

test('pdf: a /Length that lies (too short, too long, past the end) falls back to endstream', () => {
  const payload = randomBytes(1000);
  for (const len of [10, 1500, 999999]) {
    const r = unpackPdf(pdf([{ num: 3, dict: `<< /Length ${len} >>`, data: payload }]), limits());
    assert.equal(r.outcome, 'ok', `/Length ${len}: ${r.detail}`);
    assert.deepEqual(named(r, '[object 3]'), payload, `/Length ${len}`);
  }
});

test('pdf: spaces after the stream keyword and a lone CR before the data are tolerated', () => {
  const file = Buffer.from('%PDF-1.4\n1 0 obj << >>\nstream  \r\nABC\nendstream endobj 2 0 obj << >> stream\rDEF\rendstream endobj');
  const r = unpackPdf(file, limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(r.members.map((m) => m.bytes.toString()), ['ABC', 'DEF']);
});

test('pdf: a stream with no endstream is read to the end, outcome corrupt', () => {
  const file = Buffer.concat([pdf([{ num: 1, dict: '<< >>' }]), Buffer.from('2 0 obj << /Length 99 >>\nstream\nABCDEF')]);
  const r = unpackPdf(file, limits());
  assert.equal(r.outcome, 'corrupt');
  assert.deepEqual(named(r, '[object 2]'), Buffer.from('ABCDEF'));
});

test('pdf: a Flate stream that refuses to inflate gives its raw bytes, outcome corrupt, and the next stream is still read', () => {
  const bad = Buffer.from('\x78\x9c\xff\xff\xff\xff garbage', 'latin1');
  const r = unpackPdf(pdf([
    { num: 1, dict: '<< /Filter /FlateDecode >>', data: bad },
    { num: 2, dict: '<< /Filter /FlateDecode >>', data: deflateSync(Buffer.from('after')) },
  ]), limits());
  assert.equal(r.outcome, 'corrupt');
  assert.deepEqual(named(r, '[object 1]'), bad);
  assert.deepEqual(named(r, '[object 2]'), Buffer.from('after'));
});

test('pdf: a Flate stream cut short (no adler32, no end) gives what it holds', () => {
  const payload = randomBytes(5000);
  const z = deflateSync(payload);
  const r = unpackPdf(pdf([{ num: 1, dict: '<< /Filter /FlateDecode >>', data: z.subarray(0, z.length - 4) }]), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(named(r, '[object 1]'), payload);
});

test('pdf: with /Encrypt a stream that does not decode is returned raw, outcome ok with a detail', () => {
  const cipher = randomBytes(64);
  cipher[0] = 0x78; cipher[1] = 0x01; // a zlib header that passes, then noise
  const r = unpackPdf(pdf([{ num: 1, dict: '<< /Filter /FlateDecode >>', data: cipher }], '<< /Root 1 0 R /Encrypt 9 0 R >>'), limits());
  assert.equal(r.outcome, 'ok');
  assert.match(r.detail ?? '', /encrypted/);
  // whatever inflated before the noise stopped it is "[object 1]"; the raw bytes are kept too
  assert.ok(r.members.some((m) => m.name.startsWith('[object 1]') && m.bytes.equals(cipher)), r.members.map((m) => m.name).join());
});

test('pdf: a planted /Encrypt does not turn decoding off (streams that decode are decoded)', () => {
  const plain = Buffer.from('plain text that a scanner must see decoded '.repeat(10));
  const r = unpackPdf(pdf([
    { num: 1, dict: '<< /Filter /FlateDecode >>', data: deflateSync(plain) },
    { num: 2, dict: '<< /Note (/Encrypt) >>' },
  ]), limits());
  assert.deepEqual(named(r, '[object 1]'), plain);
});

test('sink: a limit that stops the reading wins over damage seen before it', () => {
  const bad = Buffer.from('\x78\x9c\xff\xff garbage', 'latin1');
  const r = unpackPdf(pdf([
    { num: 1, dict: '<< /Filter /FlateDecode >>', data: bad },
    { num: 2, dict: '<< >>', data: Buffer.alloc(100) },
  ]), limits({ maxMembers: 1 }));
  assert.equal(r.outcome, 'members');
});

test('rtf: a header Word still opens ({\\rt0) is read like {\\rtf', () => {
  const obj = ole1('Package', packageBody('a', 'b', Buffer.from('payload'))).toString('hex');
  const r = unpackRtf(Buffer.from(`{\\rt0{\\*\\objdata ${obj}}}`), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(named(r, 'b'), Buffer.from('payload'));
});

test('pdf: a Flate stream inflating to 1 GiB stops at maxOutputBytes with outcome size, in bounded memory', () => {
  const bomb = zeroBomb(1024);
  assert.ok(bomb.length < 4 << 20);
  const before = process.memoryUsage().rss;
  const r = unpackPdf(pdf([{ num: 1, dict: '<< /Filter /FlateDecode >>', data: bomb }]), limits({ maxOutputBytes: 16 << 20 }));
  const grown = process.memoryUsage().rss - before;
  assert.equal(r.outcome, 'size');
  assert.equal(r.members.length, 0);
  assert.ok(grown < 200 << 20, `rss grew by ${grown >> 20} MiB`);
});

test('pdf: maxOutputBytes counts over all members, decoders stop at the room left (ASCIIHex, LZW, RunLength)', () => {
  const big = Buffer.alloc(3000, 0x41);
  for (const [f, data] of [['ASCIIHexDecode', asciiHexEncode(big)], ['LZWDecode', lzwEncode(big)], ['RunLengthDecode', runLengthEncode(big)]] as const) {
    const r = unpackPdf(pdf([{ num: 1, dict: '<< >>', data: Buffer.alloc(1000) }, { num: 2, dict: `<< /Filter /${f} >>`, data }]), limits({ maxOutputBytes: 2500 }));
    assert.equal(r.outcome, 'size', f);
    assert.deepEqual(r.members.map((m) => m.name), ['[object 1]'], f);
  }
});

test('tnef: built attachments: attAttachData with its title, PR_ATTACH_DATA_BIN and an embedded message (PT_OBJECT) with long file names', () => {
  const a = randomBytes(300);
  const b = randomBytes(500);
  const inner = tnef([]);
  const iid = Buffer.alloc(16, 0x07);
  const file = tnef([
    tnefAttr(1, 0x00089006, u32(0)),
    tnefAttr(2, 0x00069002, Buffer.alloc(14)),
    tnefAttr(2, 0x0006800f, a),
    tnefAttr(2, 0x00018010, Buffer.from('a.txt\0')),
    tnefAttr(2, 0x00069002, Buffer.alloc(14)),
    tnefAttr(2, 0x00069005, mapiProps([
      mapiProp(0x0003, 0x0e20, 500),
      mapiProp(0x001f, 0x3707, Buffer.from('long name b.exe\0', 'utf16le')),
      mapiProp(0x0102, 0x3701, b),
    ])),
    tnefAttr(2, 0x00069002, Buffer.alloc(14)),
    tnefAttr(2, 0x00069005, mapiProps([mapiProp(0x000d, 0x3701, Buffer.concat([iid, inner]))])),
  ]);
  const r = unpackTnef(file, limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(r.members.map((m) => m.name), ['a.txt', 'long name b.exe', '[attachment 3]']);
  assert.deepEqual(r.members.map((m) => m.bytes), [a, b, inner]);
});

test('tnef: lengths that point past the end give corrupt with the attachments read so far', () => {
  const a = randomBytes(100);
  const good = [tnefAttr(2, 0x00069002, Buffer.alloc(14)), tnefAttr(2, 0x0006800f, a)];
  const liar = tnefAttr(2, 0x0006800f, randomBytes(50));
  liar.writeUInt32LE(0xfffffff0, 5);
  const r = unpackTnef(tnef([...good, tnefAttr(2, 0x00069002, Buffer.alloc(14)), liar]), limits());
  assert.equal(r.outcome, 'corrupt');
  assert.deepEqual(r.members.map((m) => m.bytes), [a]);
  // A MAPI value length past its attribute.
  const props = mapiProps([mapiProp(0x0102, 0x3701, randomBytes(40))]);
  props.writeUInt32LE(0x7fffffff, 12);
  const r2 = unpackTnef(tnef([tnefAttr(2, 0x00069005, props)]), limits());
  assert.equal(r2.outcome, 'corrupt');
});

test('rtf: \\objdata hex with whitespace, control words and braces inside, and a \\bin run, as Word reads it', () => {
  const data = randomBytes(400);
  const obj = ole1('Package', packageBody('x.exe', 'C:\\x.exe', data));
  const hex = obj.toString('hex');
  const cut = 37; // split the hex mid-byte with noise that Word skips
  const head = Buffer.from(`{\\rtf1{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata ${hex.slice(0, cut)}\r\n \\par{\\*\\junk} ${hex.slice(cut, 200)}`, 'latin1');
  const rest = obj.subarray(100); // hex 200 = byte 100
  const file = Buffer.concat([head, Buffer.from(`\\bin${rest.length} `), rest, Buffer.from('}}\\par}')]);
  const r = unpackRtf(file, limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(named(r, 'C:\\x.exe'), data);
  assert.equal(named(r, '[objdata 1] Package').length, obj.length - 4 - 4 - 12 - 4 - 4 - 4);
});

test('rtf: an objdata that is not an embedded OLE1 object is kept raw; one cut short is corrupt', () => {
  const r = unpackRtf(Buffer.from('{\\rtf1{\\*\\objdata 0102030405060708090a}}'), limits());
  assert.equal(r.outcome, 'ok');
  assert.deepEqual(named(r, '[objdata 1]'), Buffer.from('0102030405060708090a', 'hex'));
  const obj = ole1('Word.Document.8', randomBytes(300)).toString('hex');
  const cut = unpackRtf(Buffer.from(`{\\rtf1{\\*\\objdata ${obj.slice(0, 400)}`), limits());
  assert.equal(cut.outcome, 'corrupt');
  assert.equal(named(cut, '[objdata 1] Word.Document.8').length, 200 - 4 - 4 - 20 - 8 - 4);
});

test('rtf: 10 MB of nested { is read in linear time (within the deadline)', () => {
  const file = Buffer.concat([Buffer.from('{\\rtf1{\\*\\objdata '), Buffer.alloc(10 << 20, '{')]);
  const t0 = Date.now();
  const r = unpackRtf(file, limits());
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(r.outcome, 'corrupt'); // the objdata group never closes
});

test('ole2: built file: every stream, an Ole10Native package and a compressed PowerPoint ExOleObjStg', () => {
  const pkg = randomBytes(1000);
  const embedded = ole2({ '\x01Ole10Native': ole10Native('p.exe', 'C:\\p.exe', pkg) });
  const plain = randomBytes(200);
  const ppt = Buffer.concat([
    pptRecord(0xf, 0, 0x03e8, Buffer.concat([
      pptRecord(0, 0, 0x0fc9, Buffer.alloc(4)),
      pptRecord(0, 1, 0x1011, Buffer.concat([u32(embedded.length), deflateSync(embedded)])),
      pptRecord(0, 0, 0x1011, plain),
    ])),
  ]);
  const r = unpackOle2(ole2({ 'PowerPoint Document': ppt, 'Other/Stream': Buffer.from('x') }), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.deepEqual(named(r, 'Other/Stream'), Buffer.from('x'));
  assert.deepEqual(named(r, 'PowerPoint Document/[ExOleObjStg 2]'), plain);
  const inner = unpackOle2(named(r, 'PowerPoint Document/[ExOleObjStg 1]'), limits());
  assert.equal(inner.outcome, 'ok', inner.detail);
  assert.deepEqual(named(inner, '\x01Ole10Native/C:\\p.exe'), pkg);
});

test('ole2: an Ole10Native whose data size passes the stream gives what is there, outcome corrupt', () => {
  const native = ole10Native('p.exe', 'C:\\p.exe', randomBytes(100));
  const short = native.subarray(0, native.length - 40);
  const r = unpackOle2(ole2({ '\x01Ole10Native': short }), limits());
  assert.equal(r.outcome, 'corrupt');
  assert.equal(named(r, '\x01Ole10Native/C:\\p.exe').length, 60);
});

// cfb 1.2.2 trusts the file's structure: each of these hangs it or copies quadratically
// (checked by hand: CFB.read of the first one runs until killed), so ole2-check.ts refuses them.

const loopFile = (backTo: 0 | 1): Buffer => {
  const f = ole2({ LoopStream: randomBytes(8192), Other: Buffer.from('x') });
  const e = ole2Entry(f, 'LoopStream');
  const { chain, fatOffset } = ole2Chain(f, f.readInt32LE(e + 116));
  f.writeInt32LE(chain[backTo]!, fatOffset + 4 * chain.at(-1)!);
  f.writeInt32LE(chain[1]!, e + 116); // start inside the loop, where cfb has no guard
  return f;
};

test('ole2: a FAT chain that loops (back to its start, or merging into itself) is refused as corrupt, at once', () => {
  for (const backTo of [0, 1] as const) {
    const t0 = Date.now();
    const r = unpackOle2(loopFile(backTo), limits());
    assert.equal(r.outcome, 'corrupt', `back to ${backTo}`);
    assert.match(r.detail ?? '', /loops|merge/);
    assert.ok(Date.now() - t0 < 5000);
  }
});

test('ole2: many directory entries sharing one long chain (a copy each in cfb) are refused as overlapping', () => {
  const streams: Record<string, Buffer> = { Big: randomBytes(16384) };
  for (let i = 0; i < 40; i++) streams[`s${i}`] = Buffer.from([i]);
  const f = ole2(streams);
  const big = ole2Entry(f, 'Big');
  for (let i = 0; i < 40; i++) {
    const e = ole2Entry(f, `s${i}`);
    f.copy(f, e + 116, big + 116, big + 124); // same start, same size
  }
  const r = unpackOle2(f, limits());
  assert.equal(r.outcome, 'corrupt');
  assert.match(r.detail ?? '', /overlap/);
});

test('ole2: a directory entry linked to itself is refused as corrupt', () => {
  const f = ole2({ A: Buffer.from('a'), B: Buffer.from('b') });
  const e = ole2Entry(f, 'B');
  f.writeInt32LE((e % 512) / 128 + (Math.floor(e / 512) - 1 - f.readInt32LE(0x30)) * 4, e + 68);
  const r = unpackOle2(f, limits());
  assert.equal(r.outcome, 'corrupt');
  assert.match(r.detail ?? '', /linked twice|loops/);
});

test('ole2: more directory entries than cfb can walk in time is unsupported, not read', () => {
  const fits = unpackOle2(ole2WithEntries(4096), limits());
  assert.equal(fits.outcome, 'ok', fits.detail); // the hand-made file is one cfb reads
  const r = unpackOle2(ole2WithEntries(4100), limits());
  assert.equal(r.outcome, 'unsupported');
  assert.equal(r.members.length, 0);
});

// ---- limits and hostile input, every format ----

const small = (): Record<string, [Buffer, (b: Buffer, l: UnpackLimits) => UnpackResult]> => ({
  tnef: [tnef([tnefAttr(2, 0x00069002, Buffer.alloc(14)), tnefAttr(2, 0x0006800f, randomBytes(40)), tnefAttr(2, 0x00018010, Buffer.from('n\0')),
    tnefAttr(2, 0x00069005, mapiProps([mapiProp(0x001e, 0x3707, Buffer.from('x.bin\0')), mapiProp(0x0102, 0x3701, randomBytes(30))]))]), unpackTnef],
  pdf: [pdf([{ num: 1, dict: '<< /Length 30 /Filter [/AHx /Fl] >>', data: asciiHexEncode(deflateSync(randomBytes(20))) },
    { num: 2, dict: '<< /EF << /F 1 0 R >> /F (a) >>' }, { num: 3, dict: '<< /Filter /LZW >>', data: lzwEncode(Buffer.from('abababababab')) }]), unpackPdf],
  rtf: [Buffer.from(`{\\rtf1{\\*\\objdata ${ole1('Package', packageBody('a', 'b', randomBytes(30))).toString('hex')}}}`), unpackRtf],
  ole2: [ole2({ '\x01Ole10Native': ole10Native('a', 'b', randomBytes(30)), 'PowerPoint Document': pptRecord(0, 1, 0x1011, Buffer.concat([u32(9), deflateSync(Buffer.from('123456789'))])) }), unpackOle2],
});

test('every format: cut at every offset never throws and ends within the deadline', () => {
  for (const [format, [file, unpack]] of Object.entries(small())) {
    const step = file.length > 2000 ? 7 : 1; // OLE2 files are sector-sized: every 7th offset
    const t0 = Date.now();
    for (let i = 0; i <= file.length; i += step) {
      const r = unpack(file.subarray(0, i), limits());
      assert.ok(['ok', 'corrupt'].includes(r.outcome), `${format} cut at ${i}: ${r.outcome}`);
    }
    assert.ok(Date.now() - t0 < 5000, format);
    assert.equal(unpack(file, limits()).outcome, 'ok', format);
  }
});

test('every format: more members than maxMembers gives outcome members with the first ones kept', () => {
  for (const [format, [file, unpack]] of Object.entries(small())) {
    const all = unpack(file, limits());
    assert.ok(all.members.length >= 2, format);
    const r = unpack(file, limits({ maxMembers: 1 }));
    assert.equal(r.outcome, 'members', format);
    assert.deepEqual(r.members, all.members.slice(0, 1), format);
  }
});

test('every format: a passed deadline gives outcome time', () => {
  for (const [format, [file, unpack]] of Object.entries(small())) {
    assert.equal(unpack(file, limits({ deadline: Date.now() - 1 })).outcome, 'time', format);
  }
});

test('every format: input of another format is corrupt, not a throw', () => {
  for (const [format, [, unpack]] of Object.entries(small())) {
    for (const junk of [Buffer.alloc(0), Buffer.from('MZ'), randomBytes(4096)]) {
      assert.equal(unpack(junk, limits()).outcome, 'corrupt', format);
    }
  }
});

test('ole2: a PowerPoint ExOleObjStg after a record whose length passes the end is still read (the walk stopped there: the object was never seen)', () => {
  const pkg = randomBytes(1000);
  const embedded = ole2({ '\x01Ole10Native': ole10Native('p.exe', 'C:\\p.exe', pkg) });
  const bogus = pptRecord(0, 0, 0x0fc9, Buffer.alloc(4));
  bogus.writeUInt32LE(0x7fffffff, 4); // a length past the stream's end: the record walk stops here
  const ppt = Buffer.concat([bogus, pptRecord(0, 1, 0x1011, Buffer.concat([u32(embedded.length), deflateSync(embedded)]))]);
  const r = unpackOle2(ole2({ 'PowerPoint Document': ppt }), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  const inner = unpackOle2(named(r, 'PowerPoint Document/[ExOleObjStg 1]'), limits());
  assert.deepEqual(named(inner, '\x01Ole10Native/C:\\p.exe'), pkg);
});
