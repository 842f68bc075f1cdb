/**
 * Containers that do not start the item: 7-Zip opens an archive of any format it reads behind
 * other bytes (a self-extractor's stub, junk, a picture), searching the file's first 8 MiB for
 * one, and unrar and cabextract do the same for their formats; pdf.js reads a PDF whose header
 * is anywhere. So an item that is no container at its start is searched the same way (all of it, not
 * only the first 8 MiB: cabextract and pdf.js look further), and each container found is opened
 * from there (zip is placed by zip-layout.ts).
 *
 * Owns: the search and the checks that tell a real header from a chance match: a signature
 * alone is not enough (3 bytes of gzip occur by chance in megabytes of any binary), so each
 * format's header is checked as its reader checks it: the 7z start header's and the xz stream
 * header's CRC-32, RAR's header CRC, ARJ's header CRC-32, LHA's header checksum, tar's header
 * checksum, cpio's digit fields, cab's and CHM's version fields, lzip's version and dictionary
 * byte, gzip's header fields and then a
 * first piece of its deflate data that decodes. Only zstd and PDF have nothing of the kind:
 * their finds are `weak` (the stage ignores a weak find that opens to nothing).
 * Input: a window of the item (SEARCH_BYTES of positions, plus the header room after the last
 * one; locate.ts walks the whole item a window at a time) and the formats that have a reader.
 * Output: every find (offset ≥ 1; tar, cpio, LHA and PDF: the first), or `tooMany` when more
 * candidates pass the cheap checks than MAX_CANDIDATES or more than MAX_FINDS headers hold (a
 * limit: an item built so that the real header hides behind decoys is not searched silently to
 * a cut). Pure; never throws.
 */
import { constants, crc32, inflateRawSync } from 'node:zlib';
import type { ContainerFormat } from './types.js';

/** How far 7-Zip looks for an archive behind other bytes (checked against 7-Zip 26: 8 MiB). */
export const SEARCH_BYTES = 8 * 1024 * 1024;
/** Bytes after a position the checks may read (a tar header is 512; an LHA/ARJ header less). */
export const SEARCH_TAIL_BYTES = 4096;
/** Candidates that pass a signature's cheap checks in one item before it is a limit. */
export const MAX_CANDIDATES = 4096;

export interface Find { readonly format: ContainerFormat; readonly offset: number; readonly weak: boolean }

export interface SearchResult { readonly finds: Find[]; readonly tooMany?: string | undefined; readonly candidates?: number }

const bytes = (...xs: number[]): Buffer => Buffer.from(xs);
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

interface Probe {
  readonly format: ContainerFormat;
  /** What to look for, and where the header starts relative to it. */
  readonly sig: Buffer;
  readonly back: number;
  readonly weak?: boolean;
  /** The full check reads up to kilobytes (inflate, a CRC over a header): counted to MAX_CANDIDATES. */
  readonly costly?: boolean;
  /** Cheap checks at the header's start `p` (undefined: none), then the full check. */
  readonly cheap?: (b: Buffer, p: number) => boolean;
  readonly check: (b: Buffer, p: number) => boolean;
}

const u16 = (b: Buffer, at: number): number => (at + 2 <= b.length ? b.readUInt16LE(at) : -1);
const u32 = (b: Buffer, at: number): number => (at + 4 <= b.length ? b.readUInt32LE(at) : -1);
const crc = (b: Buffer, from: number, to: number): number => (to <= b.length ? crc32(b.subarray(from, to)) : -2);

/** 7z: version 0.x, then the start header's CRC-32 over its 20 bytes. */
const check7z = (b: Buffer, p: number): boolean => b[p + 6] === 0 && crc(b, p + 12, p + 32) === u32(b, p + 8);

/** RAR 4: the main header (type 0x73) after the marker, CRC-16 (low half of CRC-32) over it. */
function checkRar(b: Buffer, p: number): boolean {
  if (b[p + 6] === 0x00) {
    const size = u16(b, p + 12);
    return b[p + 9] === 0x73 && size >= 13 && (crc(b, p + 9, p + 7 + size) & 0xffff) === u16(b, p + 7);
  }
  if (b[p + 6] !== 0x01 || b[p + 7] !== 0x00) return false;
  // RAR 5: CRC-32 of the main header: its size (a vint) and the bytes it counts
  let size = 0;
  let i = p + 12;
  for (let shift = 0; i < b.length && shift < 28; shift += 7) {
    const v = b[i++]!;
    size += (v & 0x7f) * 2 ** shift;
    if (!(v & 0x80)) return size > 0 && size <= SEARCH_TAIL_BYTES && crc(b, p + 12, i + size) === u32(b, p + 8);
  }
  return false;
}

/** cab: reserved fields zero, version 1.3, a cabinet size that holds its header. */
const checkCab = (b: Buffer, p: number): boolean => u32(b, p + 8) >= 36 && u32(b, p + 12) === 0 && b[p + 24] === 3 && b[p + 25] === 1;

/** xz: stream flags (a null byte and a check type) and their CRC-32. */
const checkXz = (b: Buffer, p: number): boolean => b[p + 6] === 0 && b[p + 7]! <= 0x0f && crc(b, p + 6, p + 8) === u32(b, p + 8);

const BZIP2_BLOCK = bytes(0x31, 0x41, 0x59, 0x26, 0x53, 0x59);
const BZIP2_EOS = bytes(0x17, 0x72, 0x45, 0x38, 0x50, 0x90);
/**
 * bzip2: a block size digit, the block (or end-of-stream) magic, and for a block the first
 * fields after its CRC as bzip2 writes them: the "randomised" bit clear, the BWT origin pointer
 * inside the block (all ten magic bytes are printable: text can quote them).
 */
function checkBzip2(b: Buffer, p: number): boolean {
  const level = b[p + 3]! - 0x30;
  if (level < 1 || level > 9) return false;
  if (b.subarray(p + 4, p + 10).equals(BZIP2_EOS)) return true;
  if (!b.subarray(p + 4, p + 10).equals(BZIP2_BLOCK) || p + 17 > b.length) return false;
  const bits = (b[p + 14]! << 16) | (b[p + 15]! << 8) | b[p + 16]!; // randomised (1 bit), origPtr (24 bits) from here
  const origPtr = ((bits & 0x7fffff) << 1) | (b[p + 17]! >> 7);
  return (bits & 0x800000) === 0 && origPtr < level * 100_000;
}

/** gzip: flags without reserved bits, a known XFL and OS. */
const cheapGzip = (b: Buffer, p: number): boolean => (b[p + 3]! & 0xe0) === 0 && [0, 2, 4].includes(b[p + 8]!) && (b[p + 9]! <= 13 || b[p + 9] === 255);

/** ...and the deflate data after its optional fields decodes for a first piece, as gzip reads it. */
function checkGzip(b: Buffer, p: number): boolean {
  const flags = b[p + 3]!;
  let q = p + 10;
  if (flags & 4) q += 2 + Math.max(0, u16(b, q));
  if (flags & 8) { const z = b.indexOf(0, q); if (z < 0) return false; q = z + 1; }
  if (flags & 16) { const z = b.indexOf(0, q); if (z < 0) return false; q = z + 1; }
  if (flags & 2) q += 2;
  if (q >= b.length) return false;
  try {
    const out = inflateRawSync(b.subarray(q, q + SEARCH_TAIL_BYTES), { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: 1 << 20 });
    return out.length > 0;
  } catch (err) {
    return err instanceof RangeError; // decodes past the bound: real deflate data
  }
}

/** ARJ: a main header (file type 2) whose basic header CRC-32 matches. */
const cheapArj = (b: Buffer, p: number): boolean => { const h = u16(b, p + 2); return h > 0 && h <= 2600 && b[p + 10] === 2; };
const checkArj = (b: Buffer, p: number): boolean => { const h = u16(b, p + 2); return crc(b, p + 4, p + 4 + h) === u32(b, p + 4 + h); };

const checkChm = (b: Buffer, p: number): boolean => u32(b, p + 4) === 3 && u32(b, p + 8) === 0x60;

/** tar: the header's checksum, as tar checks it (the checksum field counted as spaces). */
function checkTar(b: Buffer, p: number): boolean {
  if (p + 512 > b.length) return false;
  const field = b.toString('latin1', p + 148, p + 156).replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]{1,7}$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : b[p + i]!;
  return sum === parseInt(field, 8);
}

/** cpio: every field of the header is digits (hex for newc/crc, octal for odc). */
function checkCpio(b: Buffer, p: number): boolean {
  const odc = b[p + 5] === 0x37;
  const len = odc ? 76 : 110;
  if (p + len > b.length) return false;
  return (odc ? /^[0-7]{70}$/ : /^[0-9A-Fa-f]{104}$/).test(b.toString('latin1', p + 6, p + len));
}

/** LHA: levels 0 and 1 carry a checksum of their header; level 2 its own size. */
function checkLzh(b: Buffer, p: number): boolean {
  if (b[p + 6] !== 0x2d) return false;
  const level = b[p + 20];
  if (level === 2) { const h = u16(b, p); return h >= 26 && h <= 4096; }
  if (level !== 0 && level !== 1) return false;
  const h = b[p]!;
  if (h < 20 || p + 2 + h > b.length) return false;
  let sum = 0;
  for (let i = p + 2; i < p + 2 + h; i++) sum += b[i]!;
  return (sum & 0xff) === b[p + 1];
}

const PROBES: readonly Probe[] = [
  { format: '7z', sig: bytes(0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c), back: 0, check: check7z },
  { format: 'rar', sig: latin1('Rar!\x1a\x07'), back: 0, costly: true, check: checkRar },
  { format: 'cab', sig: latin1('MSCF\0\0\0\0'), back: 0, check: checkCab },
  { format: 'xz', sig: bytes(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00), back: 0, check: checkXz },
  { format: 'bzip2', sig: latin1('BZh'), back: 0, check: checkBzip2 },
  { format: 'gzip', sig: bytes(0x1f, 0x8b, 0x08), back: 0, costly: true, cheap: cheapGzip, check: checkGzip },
  { format: 'zstd', sig: bytes(0x28, 0xb5, 0x2f, 0xfd), back: 0, weak: true, check: (b, p) => (b[p + 4]! & 0x08) === 0 },
  { format: 'arj', sig: bytes(0x60, 0xea), back: 0, costly: true, cheap: cheapArj, check: checkArj },
  { format: 'chm', sig: latin1('ITSF'), back: 0, check: checkChm },
  { format: 'szdd', sig: bytes(0x53, 0x5a, 0x44, 0x44, 0x88, 0xf0, 0x27, 0x33), back: 0, check: () => true },
  { format: 'tar', sig: latin1('ustar'), back: 257, costly: true, cheap: (b, p) => b[p + 262] === 0 || (b[p + 262] === 0x20 && b[p + 263] === 0x20), check: checkTar },
  { format: 'cpio', sig: latin1('07070'), back: 0, costly: true, cheap: (b, p) => [0x31, 0x32, 0x37].includes(b[p + 5]!), check: checkCpio },
  { format: 'lzh', sig: latin1('-l'), back: 2, costly: true, cheap: (b, p) => (b[p + 4] === 0x68 || b[p + 4] === 0x7a) && b[p + 6] === 0x2d, check: checkLzh },
  // lzip reads every member of a file: the members after the first are found here. Looked for
  // from its `Z` (far rarer than `L` in text, where each first-byte hit costs a compare)
  { format: 'lzip', sig: latin1('ZIP\x01'), back: 1, check: (b, p) => b[p] === 0x4c && (b[p + 5]! & 0x1f) >= 12 && (b[p + 5]! & 0x1f) <= 29 },
  // pdf.js reads a PDF whose header is anywhere (Acrobat only within the first KiB: sniff.ts)
  { format: 'pdf', sig: latin1('%PDF-'), back: 0, weak: true, check: (b, p) => b[p + 5]! >= 0x30 && b[p + 5]! <= 0x39 },
];

/** The formats searched for behind other bytes (zip is placed by zip-layout.ts, anywhere). */
export const SEARCHED_FORMATS: readonly ContainerFormat[] = PROBES.map((p) => p.format);

/** Each format's signature, for tests that plant them. */
export const SEARCHED_SIGNATURES: readonly { readonly format: ContainerFormat; readonly sig: Buffer }[] = PROBES.map((p) => ({ format: p.format, sig: p.sig }));

/**
 * Longest needle given to Buffer.indexOf. Node looks for a needle shorter than 8 bytes with
 * memchr on its first byte, and for a longer one with Boyer-Moore, which is about twelve times
 * slower on binary data (Node 20: about 40 against 480 µs a MiB): the two 8-byte signatures
 * (cab, SZDD) once took two thirds of the search. A longer signature is looked for by its first
 * bytes and the rest compared.
 */
const NEEDLE_MAX_BYTES = 7;

/** Where a search finds `sig` in `b` from `from` on: Buffer.indexOf's answer (tested equal), sooner. */
export type SignatureSearch = (b: Buffer, sig: Buffer, from: number) => number;

export const indexOfSignature: SignatureSearch = (b, sig, from) => {
  const needle = sig.length > NEEDLE_MAX_BYTES ? sig.subarray(0, NEEDLE_MAX_BYTES) : sig;
  for (let i = b.indexOf(needle, from); i >= 0; i = b.indexOf(needle, i + 1)) {
    let k = needle.length;
    while (k < sig.length && b[i + k] === sig[k]) k++;
    if (k === sig.length) return i;
  }
  return -1;
};

/** Most finds in one item: each is a 7-Zip run or a reading; past it, a limit (never a silent cut). */
export const MAX_FINDS = 64;

/**
 * Formats whose every member starts with a header that passes the format's check (a tar header
 * per file, cpio and LHA likewise), and PDF (pdf.js reads the document from the first header
 * it finds, and a text may quote "%PDF-" many times): only their first find after `from` is kept, the reader then
 * reads the rest of the archive, and what follows its end is searched again when the reader
 * says it left bytes (stage.ts). Every other format's finds are all kept: cabextract reads every
 * cabinet of a file, 7-Zip and unrar the archive wherever it starts.
 */
const ONE_PER_SEARCH: ReadonlySet<ContainerFormat> = new Set(['tar', 'cpio', 'lzh', 'pdf']);

/**
 * Every find of each readable format in `window`, at positions `from` (at least 1) up to
 * `to` (default: the window less SEARCH_TAIL_BYTES, or all of it when it is the item's end),
 * as offsets in the window; `base` is added to what is reported (a window of a larger item).
 * `readable`: formats the stage has a reader for. `find`: how to look for a signature (a test
 * gives Buffer.indexOf itself, to hold this one to it).
 */
export function searchContainers(window: Buffer, readable: (f: ContainerFormat) => boolean, find: SignatureSearch = indexOfSignature, range: SearchRange = {}): SearchResult {
  const finds: Find[] = [];
  let candidates = range.candidates ?? 0;
  const base = range.base ?? 0;
  // position 0 of the item is the sniff's; of a later window, an ordinary position
  const from = Math.max(base === 0 ? 1 : 0, range.from ?? 1);
  const limit = Math.min(window.length, range.to ?? SEARCH_BYTES);
  for (const probe of PROBES) {
    if (!readable(probe.format)) continue;
    for (let i = find(window, probe.sig, from + probe.back); i >= 0; i = find(window, probe.sig, i + 1)) {
      const p = i - probe.back;
      if (p >= limit) break;
      if (p < from) continue;
      if (probe.cheap && !probe.cheap(window, p)) continue;
      if (probe.costly && ++candidates > MAX_CANDIDATES) return { finds, candidates, tooMany: `more than ${MAX_CANDIDATES} container headers to check in one item` };
      if (probe.check(window, p)) {
        finds.push({ format: probe.format, offset: base + p, weak: probe.weak === true });
        if (finds.length > MAX_FINDS) return { finds, candidates, tooMany: `more than ${MAX_FINDS} containers behind other bytes in one item` };
        if (ONE_PER_SEARCH.has(probe.format)) break;
      }
    }
  }
  finds.sort((a, b) => a.offset - b.offset);
  return { finds, candidates };
}

export interface SearchRange {
  /** First position looked at (default 1: position 0 is the sniff's). */
  readonly from?: number | undefined;
  /** Positions from here on are the next window's (default SEARCH_BYTES). */
  readonly to?: number | undefined;
  /** Where the window starts in the item. */
  readonly base?: number | undefined;
  /** Candidates counted in the item's earlier windows. */
  readonly candidates?: number | undefined;
}
