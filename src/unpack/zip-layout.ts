/**
 * Where the zip archives inside an item are, found the ways zip readers find them, so that a
 * zip is read whatever sits around it:
 * - from an end-of-central-directory record anywhere in the item (Info-ZIP's unzip and Python's
 *   zipfile take the last one in the file's last 64 KiB, with any bytes after it): its central
 *   directory is looked for where the record says (the recorded offset) and just before the
 *   record (its size back), and the archive's start is placed so that the directory's first
 *   member has its local header there (relocated by the bytes in front of it, as unzip's
 *   "extra bytes at beginning", or not relocated when only the record's offset lies);
 * - from local file headers (7-Zip and streaming readers, which need no directory): every
 *   plausible local header that no placed directory lists starts a walk from header to header,
 *   and the walk is rebuilt into an archive with a directory of its own.
 * Each placement is handed to 7-Zip as a clean archive: the item's bytes when they are exactly
 * the archive, else a copy from its start to its directory with a new end record (no comment,
 * the directory's real offset). A walk's copy is its entries and a directory made from their
 * local headers (sizes and CRC from the data descriptor when there is one).
 *
 * Owns: the zip structures' parsing (end records, zip64 end records, directory and local
 * headers) and the two rebuilt forms. Input: the item's bytes, a bound on entries. Output:
 * ZipLayout: placed archives and walks (each with a lazy `bytes()`), the first end record that
 * places nothing, `tooMany` past MAX_ZIP_READINGS. Pure; never throws for bad input. Linear in
 * the item: each signature is looked at once, entries are bounded by `maxEntries`, and headers
 * inside an archive's listed members are left to the members (a stored zip inside a zip is
 * read when the member is, not again from the outside).
 */

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const END = 0x06054b50;
const END64 = 0x06064b50;
const LOCATOR64 = 0x07064b50;
const DESCRIPTOR = 0x08074b50;
const SIG_LOCAL = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const SIG_END = Buffer.from([0x50, 0x4b, 0x05, 0x06]);
const PK = Buffer.from([0x50, 0x4b]);

/** Compression methods of APPNOTE 4.4.5 (and AES, 99): a local header naming another is not one. */
const METHODS: ReadonlySet<number> = new Set([0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 14, 16, 18, 19, 20, 93, 94, 95, 96, 97, 98, 99]);
/** Longest name a plausible header has (real names are short; a chance match has any length). */
const MAX_NAME_BYTES = 4096;
/**
 * Distinct archives and walks read from one item. Real items have one (an SFX, a zip after a
 * picture) or two (a zip appended to a zip); more is an item built to cost readings, and is a
 * limit (corrupt), not a silent cut.
 */
export const MAX_ZIP_READINGS = 16;
/** End-record and local-header signatures looked at in one item before it is a limit. */
const MAX_SIGNATURES = 1 << 20;

export interface Extent { readonly from: number; readonly to: number }

export interface ZipReading {
  /** Where the archive starts in the item. */
  readonly offset: number;
  /** How it was found ("end record", "end record, relocated by 8", "local headers"). */
  readonly how: string;
  /** The archive as 7-Zip is given it (computed when asked: copies are made one at a time). */
  bytes(): Buffer;
}

export interface ZipLayout {
  readonly readings: ZipReading[];
  /** An end record that looks real and whose directory is nowhere (set only if nothing was read). */
  readonly unplaced?: string | undefined;
  /** More readings than MAX_ZIP_READINGS, or more signatures than can be looked at. */
  readonly tooMany?: string | undefined;
}

const u16 = (b: Buffer, at: number): number => (at >= 0 && at + 2 <= b.length ? b.readUInt16LE(at) : -1);
const u32 = (b: Buffer, at: number): number => (at >= 0 && at + 4 <= b.length ? b.readUInt32LE(at) : -1);
const u64 = (b: Buffer, at: number): number => {
  if (at < 0 || at + 8 > b.length) return -1;
  const v = b.readBigUInt64LE(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
};

/** A local file header at `at` that a reader would take for one (fields a chance match lacks). */
export function plausibleLocal(b: Buffer, at: number): boolean {
  if (u32(b, at) !== LOCAL || at + 30 > b.length) return false;
  if ((b[at + 4]! & 0xff) > 0x7f) return false; // version needed: at most 6.3 in practice
  if (!METHODS.has(u16(b, at + 8))) return false;
  const n = u16(b, at + 26);
  return n <= MAX_NAME_BYTES && at + 30 + n + u16(b, at + 28) <= b.length;
}

/** An end record at `at` whose counts could describe a directory. */
function plausibleEnd(b: Buffer, at: number): boolean {
  if (u32(b, at) !== END || at + 22 > b.length) return false;
  const onDisk = u16(b, at + 8);
  const total = u16(b, at + 10);
  const cdSize = u32(b, at + 12);
  if (total === 0xffff || onDisk === 0xffff || cdSize === 0xffffffff || u32(b, at + 16) === 0xffffffff) return true; // zip64
  return total > 0 && onDisk <= total && cdSize >= 46 * total && cdSize <= at;
}

/** The zip64 extra field's values (those the fixed fields mark 0xFFFFFFFF), in APPNOTE order. */
function zip64Extra(b: Buffer, from: number, len: number, want: { usize: boolean; csize: boolean; offset: boolean }): { usize?: number; csize?: number; offset?: number } {
  const end = Math.min(b.length, from + len);
  for (let p = from; p + 4 <= end;) {
    const id = u16(b, p);
    const size = u16(b, p + 2);
    if (id === 1) {
      const out: { usize?: number; csize?: number; offset?: number } = {};
      let q = p + 4;
      if (want.usize) { out.usize = u64(b, q); q += 8; }
      if (want.csize) { out.csize = u64(b, q); q += 8; }
      if (want.offset) out.offset = u64(b, q);
      return out;
    }
    p += 4 + size;
  }
  return {};
}

interface CentralEntry { localOffset: number; csize: number; flags: number; zip64: boolean; next: number }

function centralEntry(b: Buffer, at: number): CentralEntry | undefined {
  if (u32(b, at) !== CENTRAL || at + 46 > b.length) return undefined;
  const n = u16(b, at + 28);
  const x = u16(b, at + 30);
  const c = u16(b, at + 32);
  let csize = u32(b, at + 20);
  let localOffset = u32(b, at + 42);
  const big = { usize: u32(b, at + 24) === 0xffffffff, csize: csize === 0xffffffff, offset: localOffset === 0xffffffff };
  const zip64 = big.usize || big.csize || big.offset;
  if (zip64) {
    const e = zip64Extra(b, at + 46 + n, x, big);
    if (e.csize !== undefined) csize = e.csize;
    if (e.offset !== undefined) localOffset = e.offset;
  }
  return { localOffset, csize, flags: u16(b, at + 8), zip64, next: at + 46 + n + x + c };
}

/** Where a member's local header, data and data descriptor lie, as its directory entry says. */
function memberExtent(b: Buffer, base: number, e: CentralEntry): Extent | undefined {
  const at = base + e.localOffset;
  if (u32(b, at) !== LOCAL) return undefined;
  const dataEnd = at + 30 + u16(b, at + 26) + u16(b, at + 28) + e.csize;
  let to = dataEnd;
  if (e.flags & 8) to += (u32(b, dataEnd) === DESCRIPTOR ? 4 : 0) + (e.zip64 ? 20 : 12);
  return { from: at, to: Math.min(b.length, to) };
}

interface Placed { base: number; cdAt: number; cdSize: number; eocdAt: number; zip64: boolean; extents: Extent[]; how: string }

/** The archive whose end record is at `at`, or why none can be placed. */
function place(b: Buffer, at: number, maxEntries: number): Placed | string {
  let total = u16(b, at + 10);
  let cdSize = u32(b, at + 12);
  let cdOffset = u32(b, at + 16);
  let cdEnd = at; // the directory ends where the end records start
  let zip64 = false;
  const loc = at - 20;
  if (u32(b, loc) === LOCATOR64) {
    const recorded = u64(b, loc + 8);
    for (const rec of [loc - 56, recorded]) {
      if (u32(b, rec) !== END64) continue;
      zip64 = true;
      total = u64(b, rec + 32);
      cdSize = u64(b, rec + 40);
      cdOffset = u64(b, rec + 48);
      cdEnd = rec;
      break;
    }
  }
  const tried = new Set<number>();
  for (const cdAt of [cdEnd - cdSize, cdOffset]) {
    if (tried.has(cdAt) || cdAt < 0) continue;
    tried.add(cdAt);
    const first = centralEntry(b, cdAt);
    if (!first) continue;
    for (const base of [cdAt - cdOffset, 0]) {
      if (base < 0 || u32(b, base + first.localOffset) !== LOCAL) continue;
      const extents: Extent[] = [];
      let e: CentralEntry | undefined = first;
      for (let i = 0; e && i < Math.min(total, maxEntries + 1); i++) {
        const x = memberExtent(b, base, e);
        if (x) extents.push(x);
        e = e.next < cdAt + cdSize ? centralEntry(b, e.next) : undefined;
      }
      const how = base === cdAt - cdOffset ? (base > 0 ? `end record, relocated by ${base}` : 'end record') : 'end record, offset rewritten';
      return { base, cdAt, cdSize: Math.min(cdSize, b.length - cdAt), eocdAt: at, zip64, extents, how };
    }
  }
  return `zip end record at ${at}: its central directory is not where it says`;
}

/** The placed archive as a clean zip: the item itself when it is exactly that. */
function placedBytes(b: Buffer, p: Placed): Buffer {
  const comment = u16(b, p.eocdAt + 20);
  if (p.zip64) {
    const end = Buffer.from(b.subarray(p.eocdAt, p.eocdAt + 22));
    end.writeUInt16LE(0, 20);
    return p.base === 0 && p.eocdAt + 22 + comment === b.length ? b : Buffer.concat([b.subarray(p.base, p.eocdAt), end]);
  }
  const exact = p.base === 0 && p.cdAt + p.cdSize === p.eocdAt && u32(b, p.eocdAt + 16) === p.cdAt && p.eocdAt + 22 + comment === b.length;
  if (exact) return b;
  const end = Buffer.from(b.subarray(p.eocdAt, p.eocdAt + 22));
  end.writeUInt32LE(p.cdAt - p.base, 16);
  end.writeUInt16LE(0, 20);
  return Buffer.concat([b.subarray(p.base, p.cdAt + p.cdSize), end]);
}

interface LocalEntry {
  at: number;
  /** End of the data and of the descriptor after it: the next header's place. */
  next: number;
  crc: number;
  csize: number;
  usize: number;
}

/**
 * The local entry at `at`: its data's extent from the header's sizes, or, when the writer put
 * them after the data (flag 3, sizes 0), from the data descriptor found after it: signed
 * ("PK\7\8") or not, whose compressed size is the distance back to the data; failing that the
 * data runs up to the next header.
 */
function localEntry(b: Buffer, at: number): LocalEntry {
  const flags = u16(b, at + 6);
  const n = u16(b, at + 26);
  const x = u16(b, at + 28);
  const dataAt = at + 30 + n + x;
  let crc = u32(b, at + 14);
  let csize = u32(b, at + 18);
  let usize = u32(b, at + 22);
  if (csize === 0xffffffff || usize === 0xffffffff) {
    const e = zip64Extra(b, at + 30 + n, x, { usize: usize === 0xffffffff, csize: csize === 0xffffffff, offset: false });
    if (e.csize !== undefined) csize = e.csize;
    if (e.usize !== undefined) usize = e.usize;
  }
  if (!(flags & 8) || csize !== 0) {
    const end = Math.min(b.length, dataAt + csize);
    const desc = flags & 8 ? (u32(b, end) === DESCRIPTOR ? 16 : 12) : 0;
    return { at, next: Math.min(b.length, end + desc), crc, csize, usize };
  }
  for (let r = b.indexOf(PK, dataAt); r >= 0; r = b.indexOf(PK, r + 1)) {
    const sig = u32(b, r);
    if (sig === DESCRIPTOR) {
      if (u32(b, r + 8) === r - dataAt) return { at, next: r + 16, crc: u32(b, r + 4), csize: r - dataAt, usize: u32(b, r + 12) };
      if (u64(b, r + 8) === r - dataAt) return { at, next: r + 24, crc: u32(b, r + 4), csize: r - dataAt, usize: u64(b, r + 16) };
    } else if (sig === CENTRAL || sig === END || plausibleLocal(b, r)) {
      if (u32(b, r - 8) === r - 12 - dataAt) return { at, next: r, crc: u32(b, r - 12), csize: r - 12 - dataAt, usize: u32(b, r - 4) };
      return { at, next: r, crc: 0, csize: r - dataAt, usize: 0 }; // no descriptor: 7-Zip checks the CRC
    }
  }
  return { at, next: b.length, crc: 0, csize: b.length - dataAt, usize: 0 };
}

/** The walk's entries as an archive: their bytes, then a directory built from their local headers. */
function rebuilt(b: Buffer, entries: readonly LocalEntry[]): Buffer {
  const from = entries[0]!.at;
  const to = entries[entries.length - 1]!.next;
  const dir: Buffer[] = [];
  for (const e of entries) {
    const n = u16(b, e.at + 26);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(CENTRAL, 0);
    c.writeUInt16LE(20, 4);
    b.copy(c, 6, e.at + 4, e.at + 14); // version needed, flags, method, time, date
    const big = e.csize >= 0xffffffff || e.usize >= 0xffffffff || e.at - from >= 0xffffffff;
    c.writeUInt32LE(e.crc >>> 0, 16);
    c.writeUInt32LE(big ? 0xffffffff : e.csize, 20);
    c.writeUInt32LE(big ? 0xffffffff : e.usize, 24);
    c.writeUInt16LE(n, 28);
    c.writeUInt16LE(big ? 28 : 0, 30);
    c.writeUInt32LE(big ? 0xffffffff : e.at - from, 42);
    dir.push(c, b.subarray(e.at + 30, e.at + 30 + n));
    if (big) {
      const x = Buffer.alloc(28);
      x.writeUInt16LE(1, 0);
      x.writeUInt16LE(24, 2);
      x.writeBigUInt64LE(BigInt(e.usize), 4);
      x.writeBigUInt64LE(BigInt(e.csize), 12);
      x.writeBigUInt64LE(BigInt(e.at - from), 20);
      dir.push(x);
    }
  }
  const cdSize = dir.reduce((s, x) => s + x.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdSize, 12);
  end.writeUInt32LE(to - from, 16);
  return Buffer.concat([b.subarray(from, to), ...dir, end]);
}

/** Sorted, merged spans with a membership test. */
class Spans {
  private list: Extent[] = [];
  add(xs: readonly Extent[]): void {
    const all = [...this.list, ...xs].sort((a, c) => a.from - c.from);
    const out: Extent[] = [];
    for (const x of all) {
      const last = out[out.length - 1];
      if (last && x.from <= last.to) out[out.length - 1] = { from: last.from, to: Math.max(last.to, x.to) };
      else out.push(x);
    }
    this.list = out;
  }
  has(at: number): boolean {
    let lo = 0;
    let hi = this.list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const x = this.list[mid]!;
      if (at < x.from) hi = mid - 1;
      else if (at >= x.to) lo = mid + 1;
      else return true;
    }
    return false;
  }
}

/** Every signature position of `sig` in `b`, last first when `reverse`, at most MAX_SIGNATURES + 1. */
function positions(b: Buffer, sig: Buffer, reverse: boolean): number[] {
  const out: number[] = [];
  if (reverse) for (let i = b.lastIndexOf(sig); i >= 0 && out.length <= MAX_SIGNATURES; i = i > 0 ? b.lastIndexOf(sig, i - 1) : -1) out.push(i);
  else for (let i = b.indexOf(sig); i >= 0 && out.length <= MAX_SIGNATURES; i = b.indexOf(sig, i + 1)) out.push(i);
  return out;
}

/** The readings of the zip archives in `b`. `maxEntries`: members beyond it are 7-Zip's limit to find. */
export function zipLayout(b: Buffer, maxEntries: number): ZipLayout {
  const readings: ZipReading[] = [];
  const covered = new Spans();
  const seen = new Set<string>();
  let unplaced: string | undefined;
  const tooMany = (what: string): ZipLayout => ({ readings, tooMany: what });
  // end records last first: an archive's own record comes after everything it holds, so the
  // outermost archive is placed before the records of zips stored inside its members
  const ends = positions(b, SIG_END, true);
  if (ends.length > MAX_SIGNATURES) return tooMany(`more than ${MAX_SIGNATURES} zip end records`);
  for (const at of ends) {
    if (covered.has(at) || !plausibleEnd(b, at)) continue;
    const p = place(b, at, maxEntries);
    if (typeof p === 'string') { unplaced ??= p; continue; }
    const key = `${p.base}:${p.cdAt}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (readings.length >= MAX_ZIP_READINGS) return tooMany(`more than ${MAX_ZIP_READINGS} zip archives in one item`);
    covered.add([...p.extents, { from: p.cdAt, to: p.cdAt + p.cdSize }, { from: at, to: at + 22 }]);
    readings.push({ offset: p.base, how: p.how, bytes: () => placedBytes(b, p) });
  }
  // local headers no directory lists: walks from header to header
  const locals = positions(b, SIG_LOCAL, false);
  if (locals.length > MAX_SIGNATURES) return tooMany(`more than ${MAX_SIGNATURES} zip local headers`);
  let walkedTo = 0;
  for (const at of locals) {
    if (at < walkedTo || covered.has(at) || !plausibleLocal(b, at)) continue;
    const entries: LocalEntry[] = [];
    let q = at;
    while (q < b.length && entries.length <= Math.min(maxEntries, 0xfffe) && plausibleLocal(b, q) && !covered.has(q)) {
      const e = localEntry(b, q);
      entries.push(e);
      if (e.next <= q) break;
      q = e.next;
    }
    walkedTo = Math.max(q, at + 1);
    if (readings.length >= MAX_ZIP_READINGS) return tooMany(`more than ${MAX_ZIP_READINGS} zip archives in one item`);
    readings.push({ offset: at, how: 'local headers', bytes: () => rebuilt(b, entries) });
  }
  return { readings, ...(readings.length === 0 && unplaced !== undefined ? { unplaced } : {}) };
}
