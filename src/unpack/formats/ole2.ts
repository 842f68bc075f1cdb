/**
 * OLE2 compound-file reader (D0 CF 11 E0 A1 B1 1A E1: .doc, .xls, .ppt, .msg, embedded objects)
 * through the npm package `cfb` (SheetJS; pinned): every stream becomes a member named by its
 * storage path ("ObjectPool/_1279313719/\x01Ole10Native").
 *
 * Also reads what a scanner must see that no stream shows as such:
 * - "\x01Ole10Native" streams: the file packaged by the Package object (ole10native.ts);
 * - the "PowerPoint Document" stream's ExOleObjStg records (recType 0x1011): the embedded
 *   object's storage, zlib-compressed when recInstance is 1 (u32 size first), inflated within
 *   the output room (inflate.ts). Named "PowerPoint Document/[ExOleObjStg N]".
 * Not read: VBA source (the compressed "dir"/module streams are members as they are), Word's
 * and Excel's own records, property sets' values.
 * Fails with: `corrupt` when the structure pre-check (ole2-check.ts: loops, merges, overlaps
 * that would make cfb hang or blow up) or cfb refuses the file (nothing read), or a record or
 * package is cut short; `unsupported` for more than MAX_DIR_ENTRIES directory entries; `size` / `members` / `time` through MemberSink. cfb parses the whole file in one
 * call, so the deadline is checked before and after it, not during (cfb is linear in the file).
 * Never throws for bad input.
 */
import CFB from 'cfb';
import type { CFB$Container } from 'cfb';
import type { UnpackLimits, UnpackResult } from '../types.js';
import { MemberSink } from './sink.js';
import { readPackage } from './ole10native.js';
import { inflateBounded } from './inflate.js';
import { checkCfb } from './ole2-check.js';

export const OLE2_MAGIC = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);

const STREAM = 2; // cfb's entry type for a stream
const OLE10NATIVE = '\x01Ole10Native';
const PPT_STREAM = 'PowerPoint Document';
const RT_EX_OLE_OBJ_STG = 0x1011;
const EX_OLE_OBJ_STG_TYPE = Buffer.from([0x11, 0x10]);

export function unpackOle2(input: Buffer, limits: UnpackLimits): UnpackResult {
  const sink = new MemberSink(limits);
  // cfb also reads zip and MIME containers: only hand it what the magic says is OLE2.
  if (input.length < 512 || !input.subarray(0, 8).equals(OLE2_MAGIC)) {
    sink.fail('corrupt', 'no OLE2 header');
    return sink.result();
  }
  // cfb trusts the file's chains and tree: refuse those that would make it hang or blow up.
  const refusal = checkCfb(input);
  if (refusal) {
    sink.fail(refusal.outcome, refusal.detail);
    return sink.result();
  }
  if (sink.timeUpNow()) return sink.result(); // cfb.read cannot be interrupted: check before
  let cfb: CFB$Container;
  try {
    cfb = CFB.read(input, { type: 'buffer' });
  } catch (err) {
    sink.fail('corrupt', `cfb: ${(err as Error).message}`.slice(0, 200));
    return sink.result();
  }
  if (sink.timeUpNow()) return sink.result();
  const root = cfb.FullPaths[0] ?? '';
  for (let i = 0; i < cfb.FileIndex.length; i++) {
    if (sink.timeUp()) break;
    const entry = cfb.FileIndex[i]!;
    if (entry.type !== STREAM || !entry.content) continue;
    const full = cfb.FullPaths[i] ?? entry.name;
    const path = full.startsWith(root) ? full.slice(root.length) : full;
    // A plain view: cfb decorates its buffers with reader methods that members must not carry.
    const c = entry.content as Uint8Array;
    const bytes = Buffer.from(c.buffer, c.byteOffset, c.length);
    if (!sink.add(path, bytes)) break;
    if (entry.name === OLE10NATIVE) readOle10Native(path, bytes, sink);
    else if (entry.name === PPT_STREAM) readPowerPoint(path, bytes, sink);
    if (sink.stopped) break;
  }
  return sink.result();
}

/** u32 total size, then the Package layout. */
function readOle10Native(path: string, stream: Buffer, sink: MemberSink): void {
  if (stream.length < 4) { sink.fail('corrupt', `${path}: cut short`); return; }
  const size = stream.readUInt32LE(0);
  const body = stream.subarray(4, Math.min(stream.length, 4 + size));
  const pkg = readPackage(body);
  if (!pkg) return; // not the Package layout: the stream itself is already a member
  if (pkg.truncated || size > stream.length - 4) sink.fail('corrupt', `${path}: packaged file cut short`);
  sink.add(`${path}/${pkg.name}`, Buffer.from(pkg.bytes));
}

/**
 * Walks the record tree flat ([MS-PPT] 2.3.1): a container (recVer 0xF) is entered by stepping
 * over its 8-byte header, an atom is skipped by its length, so each byte is visited once.
 * PowerPoint itself finds records by their offsets (the persist directory), so a record the
 * walk cannot reach (after one whose length passes the end, or between records) is still an
 * object to it: the stream is then searched for ExOleObjStg headers the walk did not visit,
 * and each that holds an OLE2 storage (inflated or stored) is a member too.
 */
function readPowerPoint(path: string, s: Buffer, sink: MemberSink): void {
  let p = 0;
  let count = 0;
  const visited = new Set<number>();
  const object = (at: number, verInst: number, len: number, guessed: boolean): boolean => {
    visited.add(at);
    const name = `${path}/[ExOleObjStg ${++count}]`;
    const data = s.subarray(at + 8, at + 8 + len);
    if (verInst >> 4 === 1) { // compressed: u32 decompressed size, then zlib
      const out = inflateBounded(data.subarray(4), sink.room);
      if (out.ok) return guessed && !out.bytes.subarray(0, 8).equals(OLE2_MAGIC) ? true : sink.add(name, out.bytes);
      if (guessed && out.outcome === 'corrupt') return true; // a chance match, not an object
      sink.fail(out.outcome, `${name}: ${out.detail}`);
      return out.outcome === 'corrupt' && sink.add(name, Buffer.from(data));
    }
    if (guessed && !data.subarray(0, 8).equals(OLE2_MAGIC)) return true;
    return sink.add(name, Buffer.from(data));
  };
  while (p + 8 <= s.length) {
    if (sink.timeUp()) return;
    const verInst = s.readUInt16LE(p);
    const type = s.readUInt16LE(p + 2);
    const len = s.readUInt32LE(p + 4);
    const body = p + 8;
    if ((verInst & 0xf) === 0xf) { p = body; continue; }
    if (len > s.length - body) {
      // Records past the document's end are routine (the stream is padded); only an object
      // cut short hides content.
      if (type === RT_EX_OLE_OBJ_STG) sink.fail('corrupt', `${path}: ExOleObjStg cut short`);
      break;
    }
    if (type === RT_EX_OLE_OBJ_STG && !object(p, verInst, len, false)) return;
    p = body + len;
  }
  // records the walk did not reach: ExOleObjStg headers anywhere (recVer 0, instance 0 or 1)
  for (let at = s.indexOf(EX_OLE_OBJ_STG_TYPE, 2); at >= 0; at = s.indexOf(EX_OLE_OBJ_STG_TYPE, at + 1)) {
    if (sink.stopped || sink.timeUp()) return;
    const h = at - 2;
    if (visited.has(h) || h + 8 > s.length) continue;
    const verInst = s.readUInt16LE(h);
    const len = s.readUInt32LE(h + 4);
    if ((verInst & 0xf) !== 0 || verInst >> 4 > 1 || len < 8 || len > s.length - h - 8) continue;
    if (!object(h, verInst, len, true)) return;
  }
}
