/**
 * A linear pre-check of an OLE2 file's structure before cfb reads it (ole2.ts), because cfb
 * 1.2.2 trusts the structure in ways hostile input turns into hangs or memory blow-ups:
 * - a directory entry that starts inside a FAT chain with a loop is followed forever
 *   (get_sector_list has no loop guard);
 * - chains that merge, or that cfb meets from their tail first, are copied once per start,
 *   quadratic in time and memory (make_sector_list);
 * - a loop in the directory tree's left/right/child links never ends, and its path building
 *   scans a queue per entry, quadratic in the number of entries (build_full_paths).
 * So this mirrors how cfb 1.2.2 (pinned: this file must be re-read against a new version) finds
 * the FAT and walks its chains, and refuses a file whose FAT has a loop, a merge or a pointer
 * past the end, whose chain walks would cost more than twice the file, or whose directory is
 * not a forest or has more than MAX_DIR_ENTRIES entries. A legitimate file has none of these.
 *
 * Input: the file (magic already checked). Output: undefined when cfb may read it, else the
 * outcome (`corrupt`, or `unsupported` for too many entries) and why. Never throws.
 */

const ENDOFCHAIN = -2;
const FREESECT = -1;
const NOSTREAM = -1;
const ENTRY = 128;
/** cfb reads streams of at least this size through FAT chains (the rest through the mini FAT). */
const MINI_CUTOFF = 4096;
/**
 * Most directory entries: cfb's tree walk is quadratic in them (4096² steps ≈ tens of ms).
 * Real documents have tens to a few hundred; .msg files with many attachments, some thousand.
 */
export const MAX_DIR_ENTRIES = 4096;

export interface CfbRefusal { outcome: 'corrupt' | 'unsupported'; detail: string }

export function checkCfb(file: Buffer): CfbRefusal | undefined {
  const bad = (detail: string): CfbRefusal => ({ outcome: 'corrupt', detail });
  if (file.length < 512) return bad('shorter than its header');
  const major = file.readUInt16LE(0x1a);
  const ssz = major === 3 ? 512 : major === 4 ? 4096 : 0;
  if (ssz === 0 || file.length < ssz) return bad(`version ${major}`);
  const nsec = Math.ceil(file.length / ssz) - 1; // sector i is at (i + 1) * ssz, as cfb cuts them
  if (nsec <= 0) return bad('no sectors');
  // Bytes past the end read as 0, as cfb's reader does on its last, short sector.
  const i32 = (off: number): number => (off + 4 <= file.length ? file.readInt32LE(off) : off >= file.length ? 0 : readShort(file, off));

  // The FAT's sector numbers: 109 in the header, then the DIFAT chain.
  const fat: number[] = [];
  for (let j = 0; j < 109; j++) {
    const q = file.readInt32LE(0x4c + 4 * j);
    if (q < 0) break;
    fat.push(q);
  }
  let idx = file.readInt32LE(0x44);
  let cnt = file.readInt32LE(0x48);
  const difatSeen = new Set<number>();
  for (;;) {
    if (idx === ENDOFCHAIN) { if (cnt !== 0) return bad('DIFAT shorter than its count'); break; }
    if (idx === FREESECT || idx < 0 || idx >= nsec) break;
    if (difatSeen.has(idx)) return bad('DIFAT loops');
    difatSeen.add(idx);
    const base = (idx + 1) * ssz;
    for (let j = 0; j < ssz / 4 - 1; j++) {
      const q = i32(base + 4 * j);
      if (q === ENDOFCHAIN) break;
      fat.push(q);
    }
    if (cnt < 1) break;
    idx = i32(base + ssz - 4);
    cnt--;
  }

  // next[j] for every sector: -1 ends the chain (no FAT sector for it, or a negative entry).
  const next = new Int32Array(nsec);
  const indegree = new Uint8Array(nsec);
  for (let j = 0; j < nsec; j++) {
    const a = fat[Math.floor((j * 4) / ssz)];
    let n = -1;
    if (a !== undefined && a >= 0 && a < nsec) n = i32((a + 1) * ssz + ((j * 4) & (ssz - 1)));
    if (n >= nsec) return bad(`sector ${j} points past the end`);
    if (n >= 0) {
      if (indegree[n]) return bad(`chains merge at sector ${n}`);
      indegree[n] = 1;
    }
    next[j] = n < 0 ? -1 : n;
  }
  // Chains are now disjoint paths and loops. dist[j]: sectors from j to its chain's end.
  const dirStart = file.readInt32LE(0x30);
  if (dirStart < 0 || dirStart >= nsec) return bad('directory start out of range');
  const pos = (k: number): number => (k - dirStart + nsec) % nsec; // cfb's visiting order
  const dist = new Int32Array(nsec);
  const path: number[] = [];
  let walked = 0; // sectors cfb's make_sector_list will copy
  let reached = 0;
  for (let head = 0; head < nsec; head++) {
    if (indegree[head]) continue;
    path.length = 0;
    for (let j = head; j >= 0; j = next[j]!) path.push(j);
    reached += path.length;
    let min = Infinity;
    for (let t = 0; t < path.length; t++) {
      const j = path[t]!;
      dist[j] = path.length - t;
      // cfb starts a walk at j when it meets j before any sector upstream of it.
      if (pos(j) < min) { walked += path.length - t; min = pos(j); }
    }
  }
  if (reached < nsec) return bad('a FAT chain loops');
  if (walked > 2 * nsec) return bad('FAT chains cost more than twice the file to read');

  // The directory: its chain's sectors, 128 bytes an entry.
  const dirSectors: number[] = [];
  for (let j = dirStart; j >= 0; j = next[j]!) dirSectors.push(j);
  const count = Math.floor((dirSectors.length * ssz) / ENTRY);
  if (count > MAX_DIR_ENTRIES) return { outcome: 'unsupported', detail: `more than ${MAX_DIR_ENTRIES} directory entries` };
  const entry = (e: number, field: number): number => {
    const s = dirSectors[Math.floor((e * ENTRY) / ssz)]!;
    return i32((s + 1) * ssz + ((e * ENTRY) % ssz) + field);
  };
  const parent = new Int8Array(count);
  let copied = 0;
  for (let e = 0; e < count; e++) {
    for (const field of [68, 72, 76]) { // left sibling, right sibling, child
      const c = entry(e, field);
      if (c === NOSTREAM) continue;
      if (c < 0 || c >= count) return bad(`directory entry ${e} links out of range`);
      if (parent[c]) return bad(`directory entry ${c} is linked twice`);
      parent[c] = 1;
    }
    const type = entry(e, 64) >>> 16 & 0xff;
    const start = entry(e, 116);
    const size = entry(e, 120);
    if (type !== 5 && size >= MINI_CUTOFF && start !== ENDOFCHAIN) {
      if (start < 0 || start >= nsec) return bad(`directory entry ${e} starts out of range`);
      copied += dist[start]!;
    }
  }
  if (copied > 2 * nsec) return bad('streams overlap');
  // A forest: every entry reached from an entry nothing links to.
  let seen = 0;
  const stack: number[] = [];
  for (let e = 0; e < count; e++) {
    if (parent[e]) continue;
    stack.push(e);
    while (stack.length) {
      const x = stack.pop()!;
      seen++;
      for (const field of [68, 72, 76]) { const c = entry(x, field); if (c !== NOSTREAM) stack.push(c); }
    }
  }
  if (seen < count) return bad('the directory tree loops');
  return undefined;
}

function readShort(file: Buffer, off: number): number {
  let v = 0;
  for (let k = 3; k >= 0; k--) v = (v << 8) | (off + k < file.length ? file[off + k]! : 0);
  return v;
}
