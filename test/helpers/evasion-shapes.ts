/**
 * Shapes that hide a container from a reader that gives up early: a zip with bytes before and
 * after it, end records and directories that lie, no directory at all; archives of every
 * format behind junk or a self-extractor's stub, a second one after the first; PDF filter
 * chains of any length and stream dictionaries a key search misreads; mbox messages only some
 * readers split. Each holds the EICAR payload (made at test time) compressed, so a scanner that
 * does not open the container cannot see it, or clean text in its place (`infected: false`).
 *
 * Owns: the generators and the list of shapes with what each must give. Inputs: whether to
 * hold the payload. Outputs: Shape[]. Uses the corpus' tools (helpers/container-corpus.ts:
 * Python, 7z, gcab, arj, lha, cpio, zstd), the RAR builder (helpers/rar.ts) and the PDF writer
 * below (with an xref, so qpdf reads it). Fails like container-corpus when a tool is missing.
 */
import { constants, crc32, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { makeArchive, payloadBytes, PYTHON } from './container-corpus.js';
import { asciiHexEncode, ascii85Encode, lzwEncode, runLengthEncode } from './documents.js';
import { buildRar4, buildRar5 } from './rar.js';
import { buildZip } from './zip.js';

export interface Shape {
  /** Names the case in a report and the attachment's file (`<id>.eml`). */
  readonly id: string;
  readonly filename: string;
  readonly bytes: Buffer;
  /** What the embedded engine must answer: the payload found, or a limit (never OK). */
  readonly expect: 'found' | 'limit';
  readonly contentType?: string;
  /**
   * A PDF shape that qpdf reads as it is (the suite checks qpdf gives the payload back); the
   * others are what pdf.js reads and qpdf refuses (junk in hex, /BitsPerComponent 3, an unknown
   * filter passed over, damage after the payload, a header past the first KiB).
   */
  readonly qpdf?: boolean;
}

/** The payload or clean text of the same length. */
export function content(infected: boolean): Buffer {
  const p = payloadBytes();
  return infected ? p : Buffer.from('Nothing to see here.\n'.repeat(Math.ceil(p.length / 21)).slice(0, p.length), 'latin1');
}

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000049454e44ae426082', 'hex');
/** A PE stub like a self-extractor's: "MZ", then code-like bytes. */
const stub = (n: number): Buffer => { const b = Buffer.alloc(n, 0x90); b.write('MZ', 0, 'latin1'); return b; };

/** Kinds of bytes before a container: what self-extractors, pictures and hand-made junk put there. */
export function junk(kind: 'zeros' | 'text' | 'random' | 'png' | 'stub', n: number): Buffer {
  switch (kind) {
    case 'zeros': return Buffer.alloc(n);
    case 'text': return Buffer.from('junk '.repeat(Math.ceil(n / 5)).slice(0, n), 'latin1');
    case 'random': return randomBytes(n);
    case 'png': return Buffer.concat([PNG, Buffer.alloc(Math.max(0, n - PNG.length), 0x41)]).subarray(0, Math.max(n, PNG.length));
    case 'stub': return stub(n);
  }
}

const ZIP_END = Buffer.from([0x50, 0x4b, 0x05, 0x06]);
const ZIP_CENTRAL = Buffer.from([0x50, 0x4b, 0x01, 0x02]);

/** A deflated zip of the payload as invoice.com beside a clean readme (the corpus' own tool: Python). */
export function zipOf(infected: boolean): Buffer {
  return makeArchive('zip-deflate', [{ name: 'invoice.com', data: content(infected) }, { name: 'readme.txt', data: Buffer.from('Nothing to see here.\n'.repeat(40)) }]);
}

function patched(b: Buffer, edit: (c: Buffer, end: number) => void): Buffer {
  const c = Buffer.from(b);
  edit(c, c.lastIndexOf(ZIP_END));
  return c;
}

/** A zip whose payload member is in the local headers but not in the directory. */
function unlistedMember(infected: boolean): Buffer {
  const listed = buildZip([{ name: 'readme.txt', data: Buffer.from('Nothing to see here.\n'.repeat(40)) }]);
  const hidden = buildZip([{ name: 'invoice.com', data: content(infected) }]);
  const hiddenLocal = hidden.subarray(0, hidden.indexOf(ZIP_CENTRAL));
  const cd = listed.indexOf(ZIP_CENTRAL);
  // the hidden entry between the listed one's data and the directory; the directory's offset moves
  const out = Buffer.concat([listed.subarray(0, cd), hiddenLocal, listed.subarray(cd)]);
  const end = out.lastIndexOf(ZIP_END);
  out.writeUInt32LE(cd + hiddenLocal.length, end + 16);
  return out;
}

/** A zip written as a stream writes it: sizes and CRC in data descriptors after each member. */
function streamedZip(infected: boolean, withDirectory: boolean): Buffer {
  const entries = [{ name: 'readme.txt', data: Buffer.from('Nothing to see here.\n'.repeat(40)) }, { name: 'invoice.com', data: content(infected) }];
  const parts: Buffer[] = [];
  const dir: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const packed = deflateSync(e.data).subarray(2, -4); // raw deflate
    const name = Buffer.from(e.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(8, 6); local.writeUInt16LE(8, 8); local.writeUInt16LE(name.length, 26);
    const desc = Buffer.alloc(16);
    desc.writeUInt32LE(0x08074b50, 0); desc.writeUInt32LE(crc32(e.data), 4); desc.writeUInt32LE(packed.length, 8); desc.writeUInt32LE(e.data.length, 12);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0); c.writeUInt16LE(20, 4); c.writeUInt16LE(20, 6); c.writeUInt16LE(8, 8); c.writeUInt16LE(8, 10);
    c.writeUInt32LE(crc32(e.data), 16); c.writeUInt32LE(packed.length, 20); c.writeUInt32LE(e.data.length, 24); c.writeUInt16LE(name.length, 28); c.writeUInt32LE(offset, 42);
    parts.push(local, name, packed, desc);
    dir.push(c, name);
    offset += 30 + name.length + packed.length + 16;
  }
  if (!withDirectory) return Buffer.concat(parts);
  const cd = Buffer.concat(dir);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(2, 8); end.writeUInt16LE(2, 10); end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, end]);
}

/** zlib's adler32 (the trailer of a zlib stream). */
function adler32(b: Buffer): number {
  let a = 1;
  let c = 0;
  for (const x of b) { a = (a + x) % 65521; c = (c + a) % 65521; }
  return ((c << 16) | a) >>> 0;
}

/** The zip shapes: where a zip sits, and end records, directories and comments that lie. */
export function zipShapes(infected: boolean): Shape[] {
  const zip = zipOf(infected);
  const cd = zip.indexOf(ZIP_CENTRAL);
  const s = (id: string, bytes: Buffer, expect: Shape['expect'] = 'found'): Shape => ({ id: `zip-${id}`, filename: 'invoice.zip', bytes, expect });
  const out: Shape[] = [];
  // bytes before (kinds and sizes) × bytes after
  const before: Array<[string, Buffer]> = [['none', Buffer.alloc(0)], ['text-8', junk('text', 8)], ['random-1', junk('random', 1)],
    ['zeros-512', junk('zeros', 512)], ['png', junk('png', 64)], ['stub-70000', junk('stub', 70000)]];
  const after: Array<[string, Buffer]> = [['none', Buffer.alloc(0)], ['crlf', Buffer.from('\r\n')], ['lf', Buffer.from('\n')],
    ['random-100', junk('random', 100)], ['text-70000', junk('text', 70000)]];
  for (const [b, pre] of before) for (const [a, post] of after) if (b !== 'none' || a !== 'none') out.push(s(`before-${b}-after-${a}`, Buffer.concat([pre, zip, post])));
  out.push(
    s('before-9MiB-after-crlf', Buffer.concat([junk('zeros', 9 << 20), zip, Buffer.from('\r\n')])),
    s('comment-length-too-long', patched(zip, (c, e) => c.writeUInt16LE(500, e + 20))),
    s('comment-length-too-short', Buffer.concat([patched(zip, (c, e) => c.writeUInt16LE(0, e + 20)), Buffer.from('a comment the length does not count')])),
    s('directory-offset-lies', patched(zip, (c, e) => c.writeUInt32LE(5, e + 16))),
    s('entry-count-zero', patched(zip, (c, e) => { c.writeUInt16LE(0, e + 8); c.writeUInt16LE(0, e + 10); })),
    s('second-end-record-after', Buffer.concat([junk('text', 8), zip, zip.subarray(zip.lastIndexOf(ZIP_END)), Buffer.from('\r\n')])),
    s('clean-zip-then-zip', Buffer.concat([zipOf(false), junk('text', 3), zip])),
    s('no-directory', zip.subarray(0, cd)),
    s('junk-then-no-directory', Buffer.concat([junk('text', 8), zip.subarray(0, cd)])),
    s('directory-cut', zip.subarray(0, cd + 30)),
    s('member-not-in-directory', unlistedMember(infected)),
    s('streamed-descriptors', streamedZip(infected, true)),
    s('streamed-no-directory', Buffer.concat([junk('text', 5), streamedZip(infected, false)])),
    s('inside-junk-inside-zip', makeArchive('zip-deflate', [{ name: 'inner.bin', data: Buffer.concat([junk('text', 8), zip, Buffer.from('\r\n')]) }])),
    s('zip64-behind-junk', Buffer.concat([junk('text', 8), makeArchive('zip-zip64', [{ name: 'invoice.com', data: content(infected) }]), Buffer.from('\r\n')])),
  );
  return out;
}

/** Other formats behind other bytes, and after another container. */
export function placedShapes(infected: boolean): Shape[] {
  const files = [{ name: 'invoice.com', data: content(infected) }, { name: 'readme.txt', data: Buffer.from('Nothing to see here.\n'.repeat(40)) }];
  const out: Shape[] = [];
  const s = (id: string, filename: string, bytes: Buffer, expect: Shape['expect'] = 'found'): Shape => ({ id, filename, bytes, expect });
  for (const [kind, name] of [['7z', 'x.7z'], ['cab', 'x.cab'], ['arj', 'x.arj'], ['lzh', 'x.lzh'], ['tar-gz', 'x.tgz'], ['tar-xz', 'x.txz'],
    ['gz', 'x.gz'], ['bz2', 'x.bz2'], ['xz', 'x.xz'], ['zstd', 'x.zst'], ['cpio-newc', 'x.cpio']] as const) {
    const a = makeArchive(kind, files);
    out.push(s(`${kind}-behind-7-bytes`, name, Buffer.concat([junk('text', 7), a])));
    out.push(s(`${kind}-behind-stub-and-crlf-after`, 'setup.exe', Buffer.concat([junk('stub', 4096), a, Buffer.from('\r\n')])));
  }
  const gz = gzipSync(content(infected));
  for (const [id, rar] of [['rar4', buildRar4([{ name: 'invoice.com.gz', data: gz }])], ['rar5', buildRar5([{ name: 'invoice.com.gz', data: gz }])]] as const) {
    out.push(s(`${id}-self-extractor`, 'setup.exe', Buffer.concat([junk('stub', 30000), rar])));
  }
  const first = makeArchive('gz', [{ name: 'a.txt', data: Buffer.from('Nothing in this first member.\n'.repeat(20)) }]);
  out.push(
    s('gzip-trailing-garbage', 'x.gz', Buffer.concat([makeArchive('gz', files), Buffer.from('trailing garbage, not a member')])),
    s('gzip-two-members', 'x.gz', Buffer.concat([first, makeArchive('gz', files)])),
    s('cab-junk-cab', 'x.cab', Buffer.concat([makeArchive('cab', [files[1]!]), junk('text', 4), makeArchive('cab', [files[0]!])])),
    s('tar-junk-512-before', 'x.tar.gz', gzipSync(Buffer.concat([junk('zeros', 512), makeArchive('tar-ustar', [{ name: 'invoice.com.gz', data: gz }])]))),
  );
  // a tar whose second header is damaged: GNU tar skips to the next; the payload is third
  const tar = makeArchive('tar-ustar', [{ name: 'a.txt', data: Buffer.from('a\n'.repeat(100)) }, { name: 'b.txt', data: Buffer.from('b\n'.repeat(100)) }, { name: 'invoice.com.gz', data: gz }]);
  const damaged = Buffer.from(tar);
  damaged[512 + 512 + 148] ^= 1;
  out.push(s('tar-damaged-header-then-member', 'x.tar', damaged));
  return out;
}

// ---- PDF ----

/** Encoders of each filter name, for chains of mixed filters. */
const ENCODE: Record<string, (b: Buffer) => Buffer> = {
  FlateDecode: (b) => deflateSync(b), ASCIIHexDecode: asciiHexEncode, ASCII85Decode: ascii85Encode,
  LZWDecode: (b) => lzwEncode(b), RunLengthDecode: runLengthEncode,
};

export interface PdfStreamOptions {
  /** The /Filter entry as written (names, references, arrays). */
  readonly filterEntry: string;
  /** The stream's data. */
  readonly data: Buffer;
  /** More dictionary entries, and objects of their own (for references). */
  readonly extraDict?: string;
  readonly extraObjects?: string[];
  /** /Length as written (default: the data's length). */
  readonly length?: string;
  /** Text between `stream` and its line end (pdf.js skips to the line's end after `>>`). */
  readonly afterKeyword?: string;
}

/**
 * A PDF with one embedded file (a /Filespec in the /EmbeddedFiles name tree, as
 * container-corpus.pdfWithAttachment) whose stream dictionary and data the caller chooses, with
 * a correct xref so that qpdf reads it without repair.
 */
export function pdfEmbedding(name: string, o: PdfStreamOptions): Buffer {
  const objects = [
    `<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(${name}) 4 0 R] >> >> >>`,
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>',
    `<< /Type /Filespec /F (${name}) /UF (${name}) /EF << /F 5 0 R >> >>`,
  ];
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n', 'latin1')];
  let pos = parts[0]!.length;
  const offsets: number[] = [];
  const add = (b: Buffer): void => { parts.push(b); pos += b.length; };
  objects.forEach((obj, i) => { offsets.push(pos); add(Buffer.from(`${i + 1} 0 obj\n${obj}\nendobj\n`, 'latin1')); });
  offsets.push(pos);
  add(Buffer.from(`5 0 obj\n<< /Type /EmbeddedFile /Length ${o.length ?? o.data.length} /Filter ${o.filterEntry}${o.extraDict ? ' ' + o.extraDict : ''} >>\nstream${o.afterKeyword ?? ''}\n`, 'latin1'));
  add(o.data);
  add(Buffer.from('\nendstream\nendobj\n', 'latin1'));
  (o.extraObjects ?? []).forEach((obj, i) => { offsets.push(pos); add(Buffer.from(`${6 + i} 0 obj\n${obj}\nendobj\n`, 'latin1')); });
  const xref = pos;
  const table = offsets.map((x) => `${String(x).padStart(10, '0')} 00000 n \n`).join('');
  add(Buffer.from(`xref\n0 ${offsets.length + 1}\n0000000000 65535 f \n${table}trailer\n<< /Size ${offsets.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`, 'latin1'));
  return Buffer.concat(parts);
}

/** `data` encoded for the chain `filters` (the first filter is the last encoding). */
export function encodeChain(data: Buffer, filters: readonly string[]): Buffer {
  let b = data;
  for (let i = filters.length - 1; i >= 0; i--) b = ENCODE[filters[i]!]!(b);
  return b;
}

export function chainPdf(filters: readonly string[], infected: boolean): Buffer {
  return pdfEmbedding('invoice.com', { filterEntry: `[${filters.map((f) => '/' + f).join(' ')}]`, data: encodeChain(content(infected), filters) });
}

const MIXED = ['ASCIIHexDecode', 'FlateDecode', 'ASCII85Decode', 'RunLengthDecode', 'LZWDecode', 'FlateDecode'];

export function pdfShapes(infected: boolean): Shape[] {
  const QPDF = new Set(['flate-chain-1', 'flate-chain-31', 'flate-chain-32', 'flate-chain-33', 'flate-chain-64', 'flate-chain-500', 'mixed-chain-30',
    'filter-by-reference', 'filter-names-by-reference', 'length-by-reference-with-endstream-inside', 'decodeparms-by-reference',
    'flate-bad-adler32', 'predictor-colors-40', 'filter-name-escaped', 'deep-dictionary-filter-by-reference']);
  const s = (id: string, bytes: Buffer, expect: Shape['expect'] = 'found'): Shape => ({ id: `pdf-${id}`, filename: 'statement.pdf', bytes, expect, contentType: 'application/pdf', qpdf: QPDF.has(id) });
  const flate = (n: number): string[] => Array.from({ length: n }, () => 'FlateDecode');
  const payload = content(infected);
  const packed = deflateSync(payload);
  // a deflate stream whose stored first block holds the word "endstream": a reader that takes
  // the first endstream it meets cuts the data there
  const word = Buffer.from('\nendstream\n');
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32BE(adler32(Buffer.concat([word, payload])));
  const trap = Buffer.concat([Buffer.from([0x78, 0x01, 0x00, word.length, 0x00, ~word.length & 0xff, 0xff]), word, deflateRawSync(payload), trailer]);
  const rows = (cols: number): Buffer => { // PNG "Up" rows (/Predictor 12)
    const out: Buffer[] = [];
    for (let i = 0; i < payload.length; i += cols) {
      const row = Buffer.alloc(cols); payload.copy(row, 0, i, Math.min(i + cols, payload.length));
      const up = Buffer.alloc(cols); if (i >= cols) payload.copy(up, 0, i - cols, i);
      out.push(Buffer.from([2]), Buffer.from(row.map((b, j) => (b - up[j]!) & 0xff)));
    }
    return Buffer.concat(out);
  };
  const badAdler = Buffer.from(packed);
  badAdler.writeUInt32BE((badAdler.readUInt32BE(badAdler.length - 4) ^ 1) >>> 0, badAdler.length - 4);
  return [
    ...[1, 31, 32, 33, 64, 500].map((n) => s(`flate-chain-${n}`, chainPdf(flate(n), infected))),
    s('mixed-chain-30', chainPdf(Array.from({ length: 30 }, (_, i) => MIXED[i % MIXED.length]!), infected)),
    s('filter-by-reference', pdfEmbedding('invoice.com', { filterEntry: '6 0 R', data: packed, extraObjects: ['[/FlateDecode]'] })),
    s('filter-names-by-reference', pdfEmbedding('invoice.com', { filterEntry: '[6 0 R]', data: packed, extraObjects: ['/FlateDecode'] })),
    s('length-by-reference-with-endstream-inside', pdfEmbedding('invoice.com', { filterEntry: '/FlateDecode', data: trap, length: '6 0 R', extraObjects: [String(trap.length)] })),
    s('decodeparms-by-reference', pdfEmbedding('invoice.com', { filterEntry: '/FlateDecode', data: deflateSync(rows(17)), extraDict: '/DecodeParms 6 0 R', extraObjects: ['<< /Predictor 12 /Columns 17 >>'] })),
    s('deep-dictionary-filter-by-reference', pdfEmbedding('invoice.com', { filterEntry: '6 0 R', data: packed, extraDict: `/Junk ${'['.repeat(40)}${']'.repeat(40)}`, extraObjects: ['[/FlateDecode]'] })),
    s('filter-name-escaped', pdfEmbedding('invoice.com', { filterEntry: '/Flat#65Decode', data: packed })),
    s('unknown-filter-then-flate', pdfEmbedding('invoice.com', { filterEntry: '[/NoSuchDecode /FlateDecode]', data: packed })),
    s('filter-key-twice', pdfEmbedding('invoice.com', { filterEntry: '/ASCIIHexDecode /Filter /FlateDecode', data: packed })),
    s('hex-with-junk-characters', pdfEmbedding('invoice.com', { filterEntry: '/ASCIIHexDecode', data: Buffer.from(asciiHexEncode(payload).toString('latin1').replace(/(..)/g, '$1#'), 'latin1') })),
    s('hex-junk-then-flate', pdfEmbedding('invoice.com', { filterEntry: '[/ASCIIHexDecode /FlateDecode]', data: Buffer.from(asciiHexEncode(packed).toString('latin1').replace(/(....)/g, '$1g'), 'latin1') })),
    s('flate-bad-adler32', pdfEmbedding('invoice.com', { filterEntry: '/FlateDecode', data: badAdler })),
    s('flate-damaged-after-payload', pdfEmbedding('invoice.com', { filterEntry: '/FlateDecode', data: Buffer.concat([deflateSync(payload, { finishFlush: constants.Z_SYNC_FLUSH }), Buffer.from([0xff, 0xff, 0xff, 0xff])]) })),
    s('predictor-bits-3', pdfEmbedding('invoice.com', { filterEntry: '/FlateDecode', data: deflateSync(rows(51)), extraDict: '/DecodeParms << /Predictor 12 /Columns 17 /Colors 8 /BitsPerComponent 3 >>' })),
    s('predictor-colors-40', pdfEmbedding('invoice.com', { filterEntry: '/FlateDecode', data: deflateSync(rows(40)), extraDict: '/DecodeParms << /Predictor 12 /Columns 1 /Colors 40 >>' })),
    s('predictor-colors-0', pdfEmbedding('invoice.com', { filterEntry: '/FlateDecode', data: deflateSync(rows(17)), extraDict: '/DecodeParms << /Predictor 12 /Columns 17 /Colors 0 >>' })),
    s('junk-after-stream-keyword', pdfEmbedding('invoice.com', { filterEntry: '/FlateDecode', data: packed, afterKeyword: ' % a comment' })),
    s('header-behind-2000-bytes', Buffer.concat([junk('text', 2000), chainPdf(['FlateDecode'], infected)])),
    // where the reader cannot go on and a viewer would: a limit, never the bytes so far as "clean"
    s('image-codec-then-flate', pdfEmbedding('invoice.com', { filterEntry: '[/DCTDecode /FlateDecode]', data: packed }), 'limit'),
    s('flate-chain-5000', chainPdf(flate(5000), infected), 'limit'),
  ];
}

/** An mbox whose second message only readers that split at any "From " line see. */
export function mboxShapes(infected: boolean): Shape[] {
  const att = content(infected);
  const hidden = [
    'From b@example.test Mon Jan  1 00:00:00 2024', 'From: b@example.test', 'Subject: hidden', 'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="h"', '', '--h', 'Content-Type: application/octet-stream; name="invoice.com.gz"',
    'Content-Transfer-Encoding: base64', '', gzipSync(att).toString('base64'), '--h--', '',
  ].join('\n');
  const mbox = `From a@example.test Mon Jan  1 00:00:00 2024\nFrom: a@example.test\nSubject: first\n\nfirst body\n${hidden}`;
  return [{ id: 'mbox-message-without-empty-line-before', filename: 'mail.mbox', bytes: Buffer.from(mbox, 'latin1'), expect: 'found' }];
}

export function allShapes(infected: boolean): Shape[] {
  return [...zipShapes(infected), ...placedShapes(infected), ...pdfShapes(infected), ...mboxShapes(infected)];
}

// ---- members whose entry hides them, streams 7-Zip has no type for, containers after others ----
// (a block of its own: unpack-members.test.ts runs these)

const CENTRAL_SIG = 0x02014b50;

/** `zip` with the central entry named `name` given this host and these external attributes. */
function zipEntryAttributes(zip: Buffer, name: string, host: number, attributes: number): Buffer {
  const c = Buffer.from(zip);
  for (let at = c.indexOf(ZIP_CENTRAL); at >= 0 && c.readUInt32LE(at) === CENTRAL_SIG;) {
    const nameLen = c.readUInt16LE(at + 28);
    if (c.toString('latin1', at + 46, at + 46 + nameLen) === name) {
      c[at + 5] = host;
      c.writeUInt32LE(attributes >>> 0, at + 38);
    }
    at += 46 + nameLen + c.readUInt16LE(at + 30) + c.readUInt16LE(at + 32);
  }
  return c;
}

/** A cab (gcab) whose file `name` carries these attributes. */
function cabEntryAttributes(cab: Buffer, name: string, attribs: number): Buffer {
  const c = Buffer.from(cab);
  let at = c.readUInt32LE(16);
  for (let i = 0; i < c.readUInt16LE(28); i++) {
    const end = c.indexOf(0, at + 16);
    if (c.toString('latin1', at + 16, end) === name) c.writeUInt16LE(attribs, at + 14);
    at = end + 1;
  }
  return c;
}

/** LZMA-alone (Python's FORMAT_ALONE, which `xz --format=lzma` and 7-Zip read) at a preset. */
export function lzmaAlone(data: Buffer, preset: number): Buffer {
  const r = spawnSync(PYTHON, ['-c', `import lzma,sys; sys.stdout.buffer.write(lzma.compress(sys.stdin.buffer.read(), format=lzma.FORMAT_ALONE, preset=${preset}))`], { input: data, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`python lzma: ${r.stderr.toString()}`);
  return r.stdout;
}

/** An LZ4 stream made by Debian's `lz4` with these options. */
export function lz4(data: Buffer, opts: readonly string[]): Buffer {
  const r = spawnSync('lz4', ['-c', ...opts], { input: data, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`lz4: ${r.error?.message ?? r.stderr.toString()}`);
  return r.stdout;
}

/**
 * The payload's two halves apart in filler, then the whole: an LZ4 (or LZMA) stream then holds
 * the whole as two matches, no literal copy of it a scan of the raw bytes would find.
 */
function wrapped(infected: boolean): Buffer {
  const pad = Buffer.from('Nothing to see here, a line of filler.\n'.repeat(30));
  const c = content(infected);
  const line = c.subarray(0, c.indexOf(0x0a)); // the test file's own line
  const half = line.length >> 1;
  return Buffer.concat([pad, line.subarray(0, half), pad.subarray(0, 77), line.subarray(half), pad, c, pad]);
}

export function memberShapes(infected: boolean): Shape[] {
  const out: Shape[] = [];
  const s = (id: string, filename: string, bytes: Buffer, expect: Shape['expect'] = 'found'): Shape => ({ id, filename, bytes, expect });
  const readme = { name: 'readme.txt', data: Buffer.from('Nothing to see here.\n'.repeat(40)) };
  const payload = { name: 'invoice.com', data: content(infected) };
  const zip = buildZip([readme, payload]);
  // a zip member marked as a directory or a link on every host 7-Zip reads those marks on
  for (const [id, host, attr] of [['dos-dir', 0, 0x10], ['ntfs-dir', 11, 0x10], ['vfat-dir', 14, 0x10], ['hpfs-dir-archive', 6, 0x30],
    ['unix-dir', 3, 0o040755 << 16], ['unix-symlink', 3, 0o120777 << 16], ['unix-dir-and-dos-dir', 3, (0o040755 << 16) | 0x10],
    ['dos-host-unix-symlink', 0, (0o120777 << 16) | 0x8000 | 0x20], ['unix-symlink-stored', 3, 0o120755 << 16]] as const) {
    const base = id === 'unix-symlink-stored' ? buildZip([readme, { ...payload, method: 'store' }]) : zip;
    out.push(s(`zip-member-${id}`, 'invoice.zip', zipEntryAttributes(base, 'invoice.com', host, attr)));
  }
  out.push(
    s('zip-member-name-trailing-slash', 'invoice.zip', buildZip([readme, { ...payload, name: 'invoice.com/' }])),
    s('zip-member-name-slash-only', 'invoice.zip', buildZip([readme, { ...payload, name: '/' }])),
    s('zip-member-dir-behind-junk', 'invoice.zip', Buffer.concat([junk('text', 9), zipEntryAttributes(zip, 'invoice.com', 0, 0x10), Buffer.from('\r\n')])),
  );
  const cab = makeArchive('cab', [payload, readme]);
  for (const [id, attribs] of [['dir', 0x10], ['dir-archive', 0x30], ['dir-readonly-hidden', 0x13]] as const) {
    out.push(s(`cab-member-${id}`, 'x.cab', cabEntryAttributes(cab, 'invoice.com', attribs)));
  }
  // LZMA-alone, alone and around a tar, at several presets
  for (const preset of [0, 6, 9]) out.push(s(`lzma-alone-preset-${preset}`, 'x.lzma', lzmaAlone(wrapped(infected), preset)));
  const tar = makeArchive('tar-ustar', [readme, { name: 'invoice.com', data: wrapped(infected) }]);
  out.push(s('lzma-alone-tar', 'x.tar.lzma', lzmaAlone(tar, 6)));
  // LZ4: frames of each kind, linked blocks, a legacy frame, two frames, a tar inside
  for (const [id, opts] of [['default', []], ['linked-blocks', ['-BD']], ['legacy', ['-l']], ['content-size-no-crc', ['--content-size', '--no-frame-crc']], ['high', ['-12', '-B4']]] as const) {
    out.push(s(`lz4-${id}`, 'x.lz4', lz4(wrapped(infected), opts)));
  }
  out.push(
    s('lz4-clean-frame-then-payload-frame', 'x.lz4', Buffer.concat([lz4(wrapped(false), []), lz4(wrapped(infected), ['-9'])])),
    s('lz4-tar', 'x.tar.lz4', lz4(tar, [])),
  );
  // every container behind another: cabinets with and without junk between, behind a stub
  const clean = makeArchive('cab', [readme]);
  const other = makeArchive('cab', [{ name: 'notes.txt', data: Buffer.from('More of nothing.\n'.repeat(30)) }]);
  const last = makeArchive('cab', [payload]);
  out.push(
    s('cab-junk-cab-junk-cab', 'x.cab', Buffer.concat([clean, junk('text', 5), other, junk('random', 33), last])),
    s('cab-cab-cab', 'x.cab', Buffer.concat([clean, other, last])),
    s('stub-cab-junk-cab', 'setup.exe', Buffer.concat([junk('stub', 4096), clean, junk('zeros', 100), last])),
    s('junk-cab-cab-cab', 'x.bin', Buffer.concat([junk('text', 11), clean, other, last])),
    s('stub-7z-junk-7z', 'setup.exe', Buffer.concat([junk('stub', 2048), makeArchive('7z', [readme]), junk('text', 17), makeArchive('7z', [payload])])),
    s('stub-gz-junk-gz', 'setup.exe', Buffer.concat([junk('stub', 2048), gzipSync(readme.data), junk('text', 17), gzipSync(Buffer.concat([payload.data, readme.data]))])),
  );
  // past the first 8 MiB
  out.push(
    s('cab-behind-9MiB-stub', 'setup.exe', Buffer.concat([junk('stub', 9 << 20), last])),
    s('7z-behind-12MiB-random', 'setup.exe', Buffer.concat([junk('random', 12 << 20), makeArchive('7z', [payload])])),
    s('cab-behind-clean-cab-and-10MiB', 'setup.exe', Buffer.concat([junk('stub', 1000), clean, junk('stub', 10 << 20), last])),
    { id: 'pdf-behind-9MiB-zeros', filename: 'statement.pdf', bytes: Buffer.concat([junk('zeros', 9 << 20), pdfEmbedding('invoice.com', { filterEntry: '/FlateDecode', data: deflateSync(content(infected)) })]), expect: 'found', contentType: 'application/pdf' },
  );
  return out;
}
