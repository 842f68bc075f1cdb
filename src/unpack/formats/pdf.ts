/**
 * PDF reader: every stream object (`stream` … `endstream`) decoded through its /Filter chain,
 * so a file attachment (/EmbeddedFile), a script or an exploit font is scanned as bytes.
 *
 * Reads: streams in file order, found by keyword (no xref: damaged and hostile files are
 * routine, and what a viewer would repair a scanner must see). A stream's dictionary is read
 * as viewers read it (pdf-objects.ts: parsed, references such as `/Filter 8 0 R` or
 * `/Length 9 0 R` resolved, in object streams too, each definition of an object defined more
 * than once giving a reading); where a key search reads it otherwise (a key given twice, a
 * dictionary that does not parse), that reading is decoded as well. The data length is the
 * /Length when it ends at `endstream`, else the data runs up to the next `endstream`. After a
 * dictionary's `>>` the keyword may be followed by anything: where no line end follows it,
 * the data is decoded from both starts readers take (pdf-extent.ts: qpdf's, pdf.js's).
 * Filters (pdf-chain.ts): the whole chain, however long, through FlateDecode, ASCIIHexDecode,
 * ASCII85Decode, LZWDecode, RunLengthDecode, BrotliDecode (pdf-filters.ts) and the PNG and TIFF
 * predictors (pdf-predictors.ts); an image codec ends the chain (its coded bytes are the
 * member), an unknown name is passed over as pdf.js does.
 * Names: the /UF or /F file name of the file specification whose /EF points at the stream,
 * else "[object N]", else "[stream K]".
 * Encrypted files (/Encrypt, pdf-crypt.ts): opened with the empty user password as viewers
 * do (routine mail), each stream decrypted with its object's key before its /Filter chain
 * (not /Type /XRef streams, nor /Metadata when /EncryptMetadata is false, nor a stream whose
 * own first filter is /Crypt with no /Name or /Identity), file names too.
 * A document that needs a user password, or another security handler, gives its raw streams
 * and outcome `encrypted` with detail "[document]", like an encrypted zip. An /Encrypt that
 * resolves to no dictionary (planted, dangling) changes nothing but that streams which do not
 * decode are returned raw, outcome `ok` with a detail saying so.
 * Not read: a file specification inside an object stream (its embedded file keeps an
 * "[object N]" name; the decoded /ObjStm is a member), a stream's own /Crypt filter other than /Identity
 * (the document's stream method applies); strings outside streams (JavaScript in a string)
 * are not members.
 * Fails with: `corrupt` for damage a viewer meets too (a stream cut short, data a filter
 * refuses: what decoded before the damage and the raw stream are both members, and reading goes
 * on); `unsupported` where this reader stops and a viewer would go on (an image codec with
 * filters after it, a chain past MAX_CHAIN, a /Filter or /DecodeParms reference that resolves
 * to nothing: the bytes so far are members, reading goes on, the verdict is a limit); `size` /
 * `members` / `time` through MemberSink. Linear: every search
 * resumes where the last one ended. Never throws for bad input.
 */
import type { UnpackLimits, UnpackResult } from '../types.js';
import { MemberSink } from './sink.js';
import { parseValue, STREAM_DICT, type PdfValue } from './pdf-syntax.js';
import { security, type Decryptor } from './pdf-crypt.js';
import { decodeChain } from './pdf-chain.js';
import { objectId, PdfObjects, type StreamReading } from './pdf-objects.js';
import { dataStarts } from './pdf-extent.js';

/** How far around an /EF entry its file specification's name is looked for. */
const FILESPEC_WINDOW = 4096;

export function unpackPdf(input: Buffer, limits: UnpackLimits): UnpackResult {
  const sink = new MemberSink(limits);
  if (sink.timeUpNow()) return sink.result();
  const head = input.subarray(0, 1024).indexOf('%PDF');
  if (head < 0) {
    sink.fail('corrupt', 'no %PDF header');
    return sink.result();
  }
  // latin1 maps byte i to char i: offsets in the string are offsets in the buffer.
  const s = input.toString('latin1');
  const sec = security(s);
  // A document the empty password does not open is reported like an encrypted zip; its raw
  // streams are still the members (a signature may match ciphertext-independent parts).
  const closed = sec.state === 'locked' || sec.state === 'unsupported';
  const decryptor = sec.state === 'open' ? sec.decryptor : undefined;
  // Decoding is still tried when an /Encrypt resolves to nothing: a "/Encrypt" planted anywhere
  // must not turn decoding off; it only makes a stream that fails to decode expected rather
  // than damage. The same holds for a stream of an open document that could not be decrypted
  // (no object header to take its key from).
  const encrypted = findKey(s, '/Encrypt', 0, s.length) >= 0;
  if (encrypted && sec.state === 'plain') sink.note('encrypted: streams that do not decode are returned raw');
  // Names are strings, encrypted like streams: decrypted when the document opens, else not read.
  const names = closed ? new Map<number, string>() : fileNames(s, sink, decryptor);
  const objs = new Cursor(s, 'obj', true);
  const ends = new Cursor(s, 'endstream', false);
  const index = new PdfObjects(s, { decryptor, room: () => sink.room, timeUp: () => sink.timeUpNow() });
  let pos = 0; // where the next search for `stream` starts
  let floor = 0; // end of the last stream's data: object headers before it are not this one's
  let objScan = 0; // object headers are visited once, in order
  let lastObj = -1;
  let count = 0;
  while (!sink.stopped) {
    if (sink.timeUp()) break;
    const k = s.indexOf('stream', pos);
    if (k < 0) break;
    pos = k + 6;
    if (k >= 3 && s.startsWith('end', k - 3)) continue;
    const nextEnd = ends.at(k + 6);
    const starts = dataStarts(s, k, nextEnd < 0 ? s.length : nextEnd);
    if (starts.length === 0) continue; // "stream" inside a word, not the keyword
    // The object header: the last `N G obj` between the previous stream's data and this one.
    objScan = Math.max(objScan, floor);
    for (let o = objs.at(objScan); o >= 0 && o < k; o = objs.at(objScan)) { lastObj = o; objScan = o + 3; }
    const inObj = lastObj >= floor;
    const dictFrom = inObj ? lastObj + 3 : floor;
    const id = inObj ? objectId(s, lastObj) : undefined;
    const objNum = id?.num;
    // The dictionary as viewers read it (parsed, references resolved, each definition of a
    // doubly defined object) and, where that differs or does not parse, as a key search finds
    // it: each reading is decoded.
    const textual = textualReadings(s, dictFrom, k, index);
    const readings = inObj ? index.readings(dictFrom, k, textual) : textual;
    const len = readings[0]!.length ?? textual[0]!.length;
    // Data from each start readers take (pdf-extent.ts): /Length if it lands on endstream, else
    // up to the next endstream. The start whose /Length lands is the stream's own.
    const spans = starts.map((start) => span(s, start, len, ends)).sort((a, b) => Number(b.fits) - Number(a.fits));
    pos = Math.max(...spans.map((x) => x.next));
    floor = pos;
    count++;
    const name = (objNum !== undefined && names.get(objNum)) || (objNum !== undefined ? `[object ${objNum}]` : `[stream ${count}]`);
    // a /Filter or /DecodeParms reference that resolves to nothing: the chain below may not be
    // a viewer's, so the verdict is a limit (the bytes are still members)
    const doubt = readings.find((r) => r.doubt !== undefined)?.doubt;
    if (doubt !== undefined && !closed) sink.fail('unsupported', `${name}: ${doubt}`, true);
    spans.forEach((sp, n) => {
      const at = n === 0 ? name : `${name} (data from ${sp.start === starts[0] ? 'the keyword' : 'the line end'})`;
      if (sp.cut) sink.fail('corrupt', `${at}: no endstream`);
      const raw = input.subarray(sp.start, sp.end);
      if (closed) { sink.add(at, Buffer.from(raw)); return; }
      readings.forEach((r, i) => readStream(raw, r, i === 0 ? at : `${at} (${r.filters.join(' ') || 'no filter'})`, id, { sink, decryptor, encrypted }));
    });
  }
  if (closed) sink.fail('encrypted', '[document]');
  return sink.result();
}

/** Where one start's data ends: at /Length when that lands on `endstream`, else at the next `endstream`. */
function span(s: string, start: number, len: number | undefined, ends: Cursor): { start: number; end: number; next: number; cut: boolean; fits: boolean } {
  if (len !== undefined && len <= s.length - start) {
    let e = start + len;
    while (e < s.length && e - start - len < 32 && isSpace(s.charCodeAt(e))) e++;
    if (s.startsWith('endstream', e)) return { start, end: start + len, next: e + 9, cut: false, fits: true };
  }
  const e = ends.at(start);
  if (e < 0) return { start, end: s.length, next: s.length, cut: true, fits: false };
  let end = e;
  if (s[end - 1] === '\n') end--;
  if (s[end - 1] === '\r') end--;
  if (end < start) end = start;
  return { start, end, next: e + 9, cut: false, fits: false };
}

interface StreamContext {
  readonly sink: MemberSink;
  readonly decryptor: Decryptor | undefined;
  /** The file has an /Encrypt key: streams that do not decode are expected. */
  readonly encrypted: boolean;
}

/** One reading of one stream: decrypted, decoded through its chain, kept as a member. */
function readStream(raw: Buffer, r: StreamReading, name: string, id: { num: number; gen: number } | undefined, c: StreamContext): void {
  const { sink, decryptor, encrypted } = c;
  if (sink.stopped) return;
  // Cross-reference streams are never encrypted; metadata is not when /EncryptMetadata false.
  const clear = r.type === 'XRef' || (r.type === 'Metadata' && decryptor?.encryptMetadata === false);
  const filters = [...r.filters];
  const parms = [...r.parms];
  // A stream's own /Crypt filter (7.4.10) comes first; /Identity (its default) means stored in the clear.
  let own: string | undefined;
  if (filters[0] === 'Crypt') {
    filters.shift();
    const p = parms.shift();
    const n = p?.get('Name');
    own = n?.t === 'name' ? n.v : 'Identity';
  }
  const decrypted = decryptor !== undefined && id !== undefined && !clear && own !== 'Identity';
  const data = decrypted ? decryptor.stream(raw, id.num, id.gen, r.type === 'EmbeddedFile') : raw;
  const ctx = { room: sink.room, timeUp: () => sink.timeUpNow() };
  let out = decodeChain(data, filters, parms, ctx);
  // An /Encrypt planted outside the trailer (the reader takes the last one it finds) must not
  // turn a stream stored in the clear into garbage: a decrypted stream that does not decode
  // is decoded as stored as well, and kept that way when that works, as a viewer shows it;
  // a decrypted stream without filters is kept both ways (nothing tells them apart).
  if (decrypted && filters.length > 0 && out.damage !== undefined) {
    const asStored = decodeChain(raw, filters, parms, ctx);
    if (asStored.damage === undefined && asStored.stop === undefined) out = asStored;
  } else if (decrypted && filters.length === 0) {
    sink.add(`${name} (as stored)`, Buffer.from(raw));
  }
  if (out.stop !== undefined) {
    // a limit (size, time), or a chain this reader cannot finish where a viewer would: the
    // bytes so far are kept, and the outcome says that content was not seen
    sink.fail(out.stop.outcome, `${name}: ${out.stop.message}`, out.stop.outcome === 'unsupported');
    if (out.stop.outcome !== 'unsupported') return;
  }
  // Damage a viewer also meets (data a filter refuses): the decoded part is kept, and the raw
  // bytes too; encrypted streams that do not decode are expected, not damage.
  if (out.damage !== undefined && !(encrypted && !decrypted)) sink.fail('corrupt', `${name}: ${out.damage}`);
  if (out.data === data) { sink.add(name, Buffer.from(data)); return; }
  sink.add(name, out.data);
  if (out.damage !== undefined) sink.add(`${name} (raw)`, Buffer.from(data));
}

/** Finds each occurrence of a keyword once, however often it is asked (linear scans). */
class Cursor {
  private from = -1;
  private found = -1;
  constructor(private readonly s: string, private readonly word: string, private readonly notAfterEnd: boolean) {}
  /** The first occurrence at or after `from`, or -1. */
  at(from: number): number {
    if (this.from >= 0 && from >= this.from && (this.found < 0 || from <= this.found)) return this.found;
    let i = this.s.indexOf(this.word, from);
    while (i >= 3 && this.notAfterEnd && this.s.startsWith('end', i - 3)) i = this.s.indexOf(this.word, i + 1);
    this.from = from;
    this.found = i;
    return i;
  }
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x0c || c === 0x00;
const isDelimiter = (c: number): boolean => isSpace(c) || c === 0x2f || c === 0x5b || c === 0x5d || c === 0x3c ||
  c === 0x3e || c === 0x28 || c === 0x29 || c === 0x7b || c === 0x7d || c === 0x25 || Number.isNaN(c);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** Index just after `key` (followed by a delimiter, so /Length is not /Length1) in [from, to), or -1. */
function findKey(s: string, key: string, from: number, to: number): number {
  if (from < 0 || to <= from) return -1;
  const part = s.slice(from, to); // a view, not a copy: bounds the search to [from, to)
  for (let i = part.indexOf(key); i >= 0; i = part.indexOf(key, i + 1)) {
    const after = i + key.length;
    if (after >= part.length || isDelimiter(part.charCodeAt(after))) return from + after;
  }
  return -1;
}

function skipSpace(s: string, i: number, to: number): number {
  while (i < to && isSpace(s.charCodeAt(i))) i++;
  return i;
}

/** A direct non-negative integer at `at` (not the `N G R` of a reference), else undefined. */
function directInt(s: string, at: number, to: number): number | undefined {
  if (at < 0) return undefined;
  let i = skipSpace(s, at, to);
  const d0 = i;
  while (i < to && i - d0 < 15 && isDigit(s.charCodeAt(i))) i++;
  if (i === d0) return undefined;
  const value = Number(s.slice(d0, i));
  let j = skipSpace(s, i, to);
  const g0 = j;
  while (j < to && j - g0 < 6 && isDigit(s.charCodeAt(j))) j++;
  if (j > g0) {
    j = skipSpace(s, j, to);
    if (s[j] === 'R') return undefined;
  }
  return value;
}

/**
 * The stream dictionary as a key search reads it (the first /Filter, /DecodeParms, /Length and
 * /Type between the object header and `stream`, references resolved): the readings when the
 * dictionary does not parse, and the other readings when a key is given twice.
 */
function textualReadings(s: string, from: number, to: number, index: PdfObjects): StreamReading[] {
  const d = new Map<string, PdfValue>();
  for (const key of ['Filter', 'DecodeParms', 'DP', 'Length', 'Type']) {
    const at = findKey(s, `/${key}`, from, to);
    const v = at < 0 ? undefined : parseValue(s, at, to, 0, STREAM_DICT)?.value;
    if (v !== undefined) d.set(key, v);
  }
  // a /Length the key search cannot parse as a value may still be digits before `stream`
  return index.reading(d).map((r) => (r.length !== undefined ? r : { ...r, length: directInt(s, findKey(s, '/Length', from, to), to) }));
}

/** Most /EF entries whose names are looked up: a real PDF has a few, names are for reports. */
const MAX_FILESPECS = 1000;

/** Object number of each embedded file → its file name (/UF, else /F of its file specification). */
function fileNames(s: string, sink: MemberSink, decryptor: Decryptor | undefined): Map<number, string> {
  const names = new Map<number, string>();
  let seen = 0;
  for (let at = findKey(s, '/EF', 0, s.length); at >= 0 && seen < MAX_FILESPECS; at = findKey(s, '/EF', at, s.length)) {
    seen++;
    if (sink.timeUp()) break;
    const lo = Math.max(0, at - FILESPEC_WINDOW);
    const hi = Math.min(s.length, at + FILESPEC_WINDOW);
    // The /EF dictionary: << /F N G R /UF N G R ... >>
    const open = skipSpace(s, at, hi);
    if (!s.startsWith('<<', open)) continue;
    const close = s.slice(open, hi).indexOf('>>');
    if (close < 0) continue;
    const efEnd = open + close;
    const ref = refAt(s, findKey(s, '/F', open, efEnd), efEnd) ?? refAt(s, findKey(s, '/UF', open, efEnd), efEnd);
    if (ref === undefined || names.has(ref)) continue;
    // The file specification around it, bounded by its own object.
    const before = s.slice(lo, at).lastIndexOf('obj');
    const after = s.slice(at, hi).indexOf('endobj');
    const from = before >= 0 ? lo + before : lo;
    const to = after >= 0 ? at + after : hi;
    const id = before >= 0 ? objectId(s, from) : undefined;
    const plain = (b: Buffer): Buffer => (decryptor && id ? decryptor.string(b, id.num, id.gen) : b);
    const name = stringValue(s, '/UF', from, to, open, efEnd, plain) ?? stringValue(s, '/F', from, to, open, efEnd, plain);
    if (name) names.set(ref, name);
  }
  return names;
}

/** N of an `N G R` reference at `at`. */
function refAt(s: string, at: number, to: number): number | undefined {
  if (at < 0) return undefined;
  let i = skipSpace(s, at, to);
  const n0 = i;
  while (i < to && i - n0 < 10 && isDigit(s.charCodeAt(i))) i++;
  if (i === n0) return undefined;
  const n = Number(s.slice(n0, i));
  i = skipSpace(s, i, to);
  const g0 = i;
  while (i < to && i - g0 < 6 && isDigit(s.charCodeAt(i))) i++;
  if (i === g0) return undefined;
  i = skipSpace(s, i, to);
  return s[i] === 'R' ? n : undefined;
}

/** The first string value of `key` in [from, to) outside [skipFrom, skipTo) (the /EF dictionary). */
function stringValue(s: string, key: string, from: number, to: number, skipFrom: number, skipTo: number,
  plain: (b: Buffer) => Buffer): string | undefined {
  for (let at = findKey(s, key, from, to); at >= 0; at = findKey(s, key, at, to)) {
    if (at > skipFrom && at < skipTo) continue;
    const v = parseValue(s, skipSpace(s, at, to), to);
    if (v?.value.t === 'str') return textString(plain(v.value.v));
  }
  return undefined;
}

/** PDF text strings: UTF-16BE with a BOM, else (close enough) latin1. */
function textString(b: Buffer): string {
  if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff) {
    const le = Buffer.from(b.subarray(2, 2 + ((b.length - 2) & ~1)));
    le.swap16();
    return le.toString('utf16le');
  }
  return b.toString('latin1');
}
