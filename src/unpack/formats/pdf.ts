/**
 * PDF reader: every stream object (`stream` … `endstream`) decoded through its /Filter chain,
 * so a file attachment (/EmbeddedFile), a script or an exploit font is scanned as bytes.
 *
 * Reads: streams in file order, found by keyword (no xref: damaged and hostile files are
 * routine, and what a viewer would repair a scanner must see). The data length is the /Length
 * when it is a direct integer that ends at `endstream`, else the data runs up to the next
 * `endstream` (a /Length that lies or is a reference). Filters: FlateDecode, ASCIIHexDecode,
 * ASCII85Decode, LZWDecode, RunLengthDecode (pdf-filters.ts); the chain stops at any other
 * filter (DCTDecode, JBIG2Decode, Crypt, ...) and the bytes so far are the member. PNG and TIFF
 * predictors (/DecodeParms /Predictor after Flate or LZW) are undone (pdf-predictors.ts).
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
 * Not read: object streams' objects as objects (the decoded /ObjStm is a member, and a file
 * specification inside one names nothing), a stream's own /Crypt filter other than /Identity
 * (the document's stream method applies), incremental
 * updates' replaced objects are read like any other, strings outside streams (JavaScript in a
 * string) are not members.
 * Fails with: `corrupt` for a stream cut short or a filter that refuses its data (the raw
 * stream is then the member, and reading goes on), `size` / `members` / `time` through
 * MemberSink. Linear: every search resumes where the last one ended. Never throws for bad input.
 */
import type { UnpackLimits, UnpackResult } from '../types.js';
import { MemberSink } from './sink.js';
import { FILTERS, FilterFailure, type FilterContext } from './pdf-filters.js';
import { PREDICTOR_DEFAULTS, unpredict, type PredictorParams } from './pdf-predictors.js';
import { parseValue, type PdfValue } from './pdf-syntax.js';
import { security, type Decryptor } from './pdf-crypt.js';

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
    let start = k + 6;
    while (start < s.length && start - k < 22 && (s[start] === ' ' || s[start] === '\t')) start++; // "stream  \n" happens
    if (s[start] === '\r') start++;
    if (s[start] === '\n') start++;
    else if (s[start - 1] !== '\r') continue; // "stream" inside a word, not the keyword
    // The object header: the last `N G obj` between the previous stream's data and this one.
    objScan = Math.max(objScan, floor);
    for (let o = objs.at(objScan); o >= 0 && o < k; o = objs.at(objScan)) { lastObj = o; objScan = o + 3; }
    const inObj = lastObj >= floor;
    const dictFrom = inObj ? lastObj + 3 : floor;
    const id = inObj ? objectId(s, lastObj) : undefined;
    const objNum = id?.num;
    // Data: /Length if it is direct and lands on endstream, else up to the next endstream.
    let end = -1;
    let next = -1;
    const len = directInt(s, findKey(s, '/Length', dictFrom, k), k);
    if (len !== undefined && len <= s.length - start) {
      let e = start + len;
      while (e < s.length && e - start - len < 32 && isSpace(s.charCodeAt(e))) e++;
      if (s.startsWith('endstream', e)) { end = start + len; next = e + 9; }
    }
    let cut = false;
    if (end < 0) {
      const e = ends.at(start);
      if (e < 0) { end = s.length; next = s.length; cut = true; }
      else {
        end = e;
        if (s[end - 1] === '\n') end--;
        if (s[end - 1] === '\r') end--;
        if (end < start) end = start;
        next = e + 9;
      }
    }
    pos = next;
    floor = next;
    count++;
    const name = (objNum !== undefined && names.get(objNum)) || (objNum !== undefined ? `[object ${objNum}]` : `[stream ${count}]`);
    if (cut) sink.fail('corrupt', `${name}: no endstream`);
    let raw = input.subarray(start, end);
    if (closed) { sink.add(name, Buffer.from(raw)); continue; }
    const type = nameValue(s, dictFrom, k, '/Type');
    // Cross-reference streams are never encrypted; metadata is not when /EncryptMetadata false.
    const clear = type === 'XRef' || (type === 'Metadata' && decryptor?.encryptMetadata === false);
    const filters = filterNames(s, dictFrom, k);
    // A stream's own /Crypt filter (7.4.10) comes first; /Identity (its default) means stored in the clear.
    const own = filters[0] === 'Crypt' ? (filters.shift(), cryptFilterName(s, dictFrom, k)) : undefined;
    const decrypted = decryptor !== undefined && id !== undefined && !clear && own !== 'Identity';
    const stored = raw;
    if (decrypted) raw = decryptor.stream(raw, id.num, id.gen, type === 'EmbeddedFile');
    const early = directInt(s, findKey(s, '/EarlyChange', dictFrom, k), k);
    const parms = filters.length > 0 ? decodeParms(s, dictFrom, k).slice(own !== undefined ? 1 : 0) : [];
    const ctx: FilterContext = { room: sink.room, earlyChange: early ?? 1, timeUp: () => sink.timeUpNow() };
    let r = decodeChain(raw, filters, parms, ctx);
    // An /Encrypt planted outside the trailer (the reader takes the last one it finds) must not
    // turn a stream stored in the clear into garbage: a decrypted stream that does not decode
    // is decoded as stored as well, and kept that way when that works, as a viewer shows it;
    // a decrypted stream without filters is kept both ways (nothing tells them apart).
    if (decrypted && filters.length > 0 && r.failure?.outcome === 'corrupt') {
      const asStored = decodeChain(stored, filters, parms, ctx);
      if (asStored.failure === undefined && asStored.damage === undefined) r = asStored;
    } else if (decrypted && filters.length === 0) {
      sink.add(`${name} (as stored)`, Buffer.from(stored));
    }
    if (r.damage !== undefined) sink.fail('corrupt', `${name}: ${r.damage}`);
    let data = r.data;
    if (r.failure !== undefined) {
      const err = r.failure;
      // Encrypted streams do not decode: their raw bytes are expected, not damage.
      if (!(encrypted && !decrypted && err.outcome === 'corrupt')) sink.fail(err.outcome, `${name}: ${err.message}`);
      if (err.outcome !== 'corrupt') break;
      data = raw;
    }
    sink.add(name, data === raw ? Buffer.from(raw) : data);
  }
  if (closed) sink.fail('encrypted', '[document]');
  return sink.result();
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

/** The names of /Filter: one name or an array of names. */
function filterNames(s: string, from: number, to: number): string[] {
  const at = findKey(s, '/Filter', from, to);
  if (at < 0) return [];
  let i = skipSpace(s, at, to);
  const one = (): string | undefined => {
    if (s[i] !== '/') return undefined;
    const n0 = ++i;
    while (i < to && !isDelimiter(s.charCodeAt(i))) i++;
    return s.slice(n0, i);
  };
  if (s[i] === '/') { const n = one(); return n ? [n] : []; }
  if (s[i] !== '[') return [];
  i++;
  const out: string[] = [];
  for (;;) {
    i = skipSpace(s, i, to);
    if (i >= to || s[i] !== '/' || out.length >= 32) break;
    const n = one();
    if (n) out.push(n);
  }
  return out;
}

/** Filters whose /DecodeParms may name a predictor (7.4.4.4). */
const PREDICTED = new Set(['FlateDecode', 'Fl', 'LZWDecode', 'LZW']);

/**
 * The predictor parameters of each filter: /DecodeParms (or /DP) is one dictionary for one
 * filter, or an array parallel to /Filter (null where a filter has none). A reference or
 * anything unparsable counts as no parameters.
 */
function decodeParms(s: string, from: number, to: number): (PredictorParams | undefined)[] {
  const at = Math.max(findKey(s, '/DecodeParms', from, to), findKey(s, '/DP', from, to));
  if (at < 0) return [];
  const v = parseValue(s, at, to);
  if (!v) return [];
  const one = (p: PdfValue): PredictorParams | undefined => {
    if (p.t !== 'dict') return undefined;
    const get = (k: string, dflt: number): number => { const x = p.v.get(k); return x?.t === 'num' ? x.v : dflt; };
    return {
      predictor: get('Predictor', PREDICTOR_DEFAULTS.predictor),
      colors: get('Colors', PREDICTOR_DEFAULTS.colors),
      bitsPerComponent: get('BitsPerComponent', PREDICTOR_DEFAULTS.bitsPerComponent),
      columns: get('Columns', PREDICTOR_DEFAULTS.columns),
    };
  };
  return v.value.t === 'array' ? v.value.v.map(one) : [one(v.value)];
}

/** The name value of `key` in [from, to) (/Type /XRef), or undefined. */
function nameValue(s: string, from: number, to: number, key: string): string | undefined {
  const at = findKey(s, key, from, to);
  if (at < 0) return undefined;
  const v = parseValue(s, at, to);
  return v?.value.t === 'name' ? v.value.v : undefined;
}

/** The /Name of a stream's own /Crypt filter (its /DecodeParms, or their first entry): /Identity if none. */
/**
 * A stream's bytes through its filter chain. `failure`: a filter failed (the chain stops);
 * `damage`: predictor parameters no writer produces (the filter's output is kept).
 */
function decodeChain(raw: Buffer, filters: readonly string[], parms: ReturnType<typeof decodeParms>, ctx: FilterContext): { data: Buffer; failure?: FilterFailure; damage?: string } {
  let data: Buffer = raw;
  try {
    for (let f = 0; f < filters.length; f++) {
      const decode = FILTERS[filters[f]!];
      if (!decode) break; // DCT, JBIG2, Crypt, ...: the bytes so far are the member
      data = decode(data, ctx);
      const p = parms[f];
      if (p && p.predictor !== 1 && PREDICTED.has(filters[f]!)) {
        try {
          data = unpredict(data, p, ctx);
        } catch (err) {
          // Parameters no writer produces: the filter's output is the member, marked damaged.
          if (!(err instanceof FilterFailure) || err.outcome !== 'corrupt') throw err;
          return { data, damage: err.message };
        }
      }
    }
  } catch (err) {
    if (!(err instanceof FilterFailure)) throw err;
    return { data, failure: err };
  }
  return { data };
}

function cryptFilterName(s: string, from: number, to: number): string {
  const at = Math.max(findKey(s, '/DecodeParms', from, to), findKey(s, '/DP', from, to));
  const v = at < 0 ? undefined : parseValue(s, at, to)?.value;
  const d = v?.t === 'array' ? v.v[0] : v;
  const n = d?.t === 'dict' ? d.v.get('Name') : undefined;
  return n?.t === 'name' ? n.v : 'Identity';
}

/** N and G of the `N G obj` whose keyword starts at `o`. */
function objectId(s: string, o: number): { num: number; gen: number } | undefined {
  let i = o - 1;
  const back = (): void => { while (i >= 0 && o - i < 64 && isSpace(s.charCodeAt(i))) i--; };
  const digits = (): number => { const e = i; while (i >= 0 && e - i < 10 && isDigit(s.charCodeAt(i))) i--; return e - i; };
  back();
  const ge = i;
  if (digits() === 0) return undefined;
  const gen = Number(s.slice(i + 1, ge + 1));
  back();
  const ne = i;
  if (digits() === 0) return undefined;
  return { num: Number(s.slice(i + 1, ne + 1)), gen };
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
