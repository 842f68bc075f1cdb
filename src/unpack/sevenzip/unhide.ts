/**
 * Members that hold data but whose entry says "directory" or "link": 7-Zip makes a directory (or
 * a symbolic link) for them and writes no file, while unzip, Python's zipfile, bsdtar and
 * cabextract extract the bytes as a file. A sender marks the payload so (external attribute 0x10
 * on a DOS/NTFS/VFAT host, unix mode 040755 or 0120777, a name ending in "/"; cab attribute
 * 0x10) and 7-Zip's run looks clean. So, before 7-Zip reads a zip or a cab, the entries that hold
 * data (an uncompressed size above zero) lose those marks, in place, in the thread's own copy
 * of the archive: 7-Zip then writes their bytes like any file's, and they are scanned.
 *
 * Owns: the walk of a zip's central directory (from its end record, zip64 included) and of a
 * cab's file table, and the edits. Input: the 7-Zip type, the archive bytes (edited in place).
 * Output: how many entries were edited. Never throws: an archive it cannot walk is left as it
 * is (7-Zip's own reading of it stands, damage included). An entry it edits is read as a file by
 * every reader above; one it misses is one whose data 7-Zip would not read either way, and which
 * the other readers above do not place either (the directory is where they all look).
 */

const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const SIG_END = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_END = 0x06064b50;
/** The end record and the longest comment after it. */
const ZIP_TAIL_BYTES = 22 + 0xffff;
/** FILE_ATTRIBUTE_DIRECTORY, in a zip's DOS attributes and a cab's attribs. */
const ATTR_DIRECTORY = 0x10;
/** Unix file types (mode >> 12): 7-Zip makes S_IFDIR a directory and S_IFLNK a link. */
const S_IFMT = 0xf000;
const S_IFREG = 0x8000;
/** Hosts whose low attribute bits are DOS attributes (7-Zip's kFAT, kHPFS, kNTFS, kVFAT). */
const DOS_HOSTS: ReadonlySet<number> = new Set([0, 6, 11, 14]);
const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const UNDERSCORE = 0x5f;

type View = { b: Uint8Array; dv: DataView };

const u16 = (v: View, at: number): number => (at >= 0 && at + 2 <= v.b.length ? v.dv.getUint16(at, true) : -1);
const u32 = (v: View, at: number): number => (at >= 0 && at + 4 <= v.b.length ? v.dv.getUint32(at, true) : -1);
const u64 = (v: View, at: number): number => (at >= 0 && at + 8 <= v.b.length ? Number(v.dv.getBigUint64(at, true)) : -1);

/** Edits `input` in place for `sevenZipType` (zip, Cab); the number of entries edited. */
export function unhideMembers(sevenZipType: string, input: Uint8Array): number {
  const v: View = { b: input, dv: new DataView(input.buffer, input.byteOffset, input.byteLength) };
  try {
    if (sevenZipType === 'zip') return unhideZip(v);
    if (sevenZipType === 'Cab') return unhideCab(v);
  } catch {
    // a walk that ran off the data: the archive stays as it is
  }
  return 0;
}

/** The central directory: where it starts and how many bytes it spans, from the (zip64) end record. */
function centralDirectory(v: View): { start: number; size: number; base: number } | undefined {
  const b = v.b;
  let end = -1;
  for (let i = b.length - 22; i >= Math.max(0, b.length - ZIP_TAIL_BYTES); i--) {
    if (b[i] === 0x50 && u32(v, i) === SIG_END) { end = i; break; }
  }
  if (end < 0) return undefined;
  let size = u32(v, end + 12);
  let offset = u32(v, end + 16);
  let recordAt = end;
  if ((size === 0xffffffff || offset === 0xffffffff) && u32(v, end - 20) === SIG_ZIP64_LOCATOR) {
    // the zip64 end record lies just before its locator: 56 bytes and its extensible data
    for (let at = end - 20 - 56; at >= Math.max(0, end - 20 - 56 - 4096); at--) {
      if (u32(v, at) === SIG_ZIP64_END && at + 12 + u64(v, at + 4) === end - 20) {
        size = u64(v, at + 40);
        offset = u64(v, at + 48);
        recordAt = at;
        break;
      }
    }
  }
  // placed as 7-Zip places it: the directory ends where the end record starts (bytes before the
  // archive move every offset by the same amount)
  const start = recordAt - size;
  if (size < 0 || start < 0) return undefined;
  return { start, size, base: start - offset };
}

function unhideZip(v: View): number {
  const cd = centralDirectory(v);
  if (cd === undefined) return 0;
  let edited = 0;
  for (let at = cd.start; at + 46 <= cd.start + cd.size && u32(v, at) === SIG_CENTRAL;) {
    const host = v.b[at + 5]!;
    const size = u32(v, at + 24);
    const nameLen = u16(v, at + 28);
    const next = at + 46 + nameLen + u16(v, at + 30) + u16(v, at + 32);
    if (next > v.b.length) break;
    // its size, not its packed size: a directory entry a zip tool deflates has 2 bytes of
    // empty deflate stream and is a directory to every reader
    if (size !== 0) {
      const attr = u32(v, at + 38);
      const mode = attr >>> 16;
      const dirBit = DOS_HOSTS.has(host) && (attr & ATTR_DIRECTORY) !== 0;
      // any host: 7-Zip reads unix modes from the high half of a DOS host's attributes too (0x8000)
      const oddType = (mode & S_IFMT) !== 0 && (mode & S_IFMT) !== S_IFREG;
      if (dirBit || oddType) {
        // a plain file on a DOS host: read-only, hidden, system and archive bits kept
        v.b[at + 5] = 0;
        v.dv.setUint32(at + 38, attr & 0x27, true);
      }
      const last = at + 46 + nameLen - 1;
      const tail = nameLen > 0 ? v.b[last] : undefined;
      if (tail === SLASH || tail === BACKSLASH) {
        v.b[last] = UNDERSCORE;
        // the local header's copy of the name, when it is where the directory says
        const local = cd.base + u32(v, at + 42);
        if (u32(v, local) === SIG_LOCAL && u16(v, local + 26) === nameLen && v.b[local + 30 + nameLen - 1] === tail) v.b[local + 30 + nameLen - 1] = UNDERSCORE;
      }
      if (dirBit || oddType || tail === SLASH || tail === BACKSLASH) edited++;
    }
    at = next;
  }
  return edited;
}

function unhideCab(v: View): number {
  if (u32(v, 0) !== 0x4643534d) return 0; // "MSCF"
  const cabinet = Math.min(v.b.length, u32(v, 8));
  const files = u16(v, 28);
  let at = u32(v, 16);
  let edited = 0;
  for (let i = 0; i < files && at + 16 < cabinet; i++) {
    const size = u32(v, at);
    const attribs = u16(v, at + 14);
    const nameEnd = v.b.indexOf(0, at + 16);
    if (nameEnd < 0 || nameEnd >= cabinet) break;
    if (size > 0) {
      let hit = false;
      if (attribs & ATTR_DIRECTORY) { v.dv.setUint16(at + 14, attribs & ~ATTR_DIRECTORY, true); hit = true; }
      const tail = nameEnd > at + 16 ? v.b[nameEnd - 1] : undefined;
      if (tail === SLASH || tail === BACKSLASH) { v.b[nameEnd - 1] = UNDERSCORE; hit = true; }
      if (hit) edited++;
    }
    at = nameEnd + 1;
  }
  return edited;
}
