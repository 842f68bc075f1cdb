/**
 * TNEF reader (winmail.dat, application/ms-tnef; signature 0x223E9F78): the attachments that
 * Outlook wraps into one part, so the stage can scan each of them.
 *
 * Reads: attAttachData (0x6800F) named by attAttachTitle (0x18010), and in each attachment's
 * MAPI properties (attAttachment, 0x9005) PR_ATTACH_DATA_BIN / PR_ATTACH_DATA_OBJ (0x3701) as
 * PT_BINARY (the file) or PT_OBJECT (an embedded message, itself TNEF, or an OLE storage; the
 * 16-byte IID before the data is dropped), named by PR_ATTACH_LONG_FILENAME / PR_ATTACH_FILENAME.
 * The same bytes found both ways are kept once.
 * Not read: message-level properties (attMsgProps: the body, PR_RTF_COMPRESSED), checksums
 * (ignored: a wrong checksum hides nothing from a scanner).
 * Fails with: `corrupt` when a length points past the end (with the attachments read so far),
 * `size` / `members` / `time` through MemberSink. Never throws for bad input.
 *
 * Written by hand: the npm parser `node-tnef` is kept (1.4.0, Oct 2025) but pulls in a logger
 * (bunyan) and a CLI parser (yargs) and works on files asynchronously; what the stage needs is
 * a synchronous, bounded walk over a buffer of about 150 lines.
 */
import type { UnpackLimits, UnpackResult } from '../types.js';
import { MemberSink } from './sink.js';

export const TNEF_SIGNATURE = 0x223e9f78;

const LVL_ATTACHMENT = 2;
const ATT_ATTACH_RENDDATA = 0x9002; // starts a new attachment
const ATT_ATTACH_DATA = 0x800f;
const ATT_ATTACH_TITLE = 0x8010;
const ATT_ATTACHMENT = 0x9005; // the attachment's MAPI properties

const PR_ATTACH_DATA = 0x3701;
const PR_ATTACH_FILENAME = 0x3704;
const PR_ATTACH_LONG_FILENAME = 0x3707;
const PT_STRING8 = 0x001e;
const PT_UNICODE = 0x001f;
const PT_BINARY = 0x0102;
const PT_OBJECT = 0x000d;
const MV_FLAG = 0x1000;

/** Size of one value of each fixed-size MAPI type (MS-OXTNEF 2.1.3.4). */
const FIXED: Record<number, number> = {
  0x0001: 0, 0x0002: 4, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000a: 4,
  0x000b: 4, 0x0014: 8, 0x0040: 8, 0x0048: 16,
};

class Truncated extends Error {}

interface Attachment { title?: string; data?: Buffer; mapiName?: string; mapiData: Buffer[] }

export function unpackTnef(input: Buffer, limits: UnpackLimits): UnpackResult {
  const sink = new MemberSink(limits);
  if (sink.timeUpNow()) return sink.result();
  if (input.length < 6 || input.readUInt32LE(0) !== TNEF_SIGNATURE) {
    sink.fail('corrupt', 'no TNEF signature');
    return sink.result();
  }
  let current: Attachment | undefined;
  let count = 0;
  const flush = (): void => {
    if (!current) return;
    count++;
    const a = current;
    current = undefined;
    const name = a.mapiName || a.title || `[attachment ${count}]`;
    if (a.data && !sink.add(name, a.data)) return;
    for (const d of a.mapiData) {
      if (a.data && d.equals(a.data)) continue;
      if (!sink.add(name, d)) return;
    }
  };
  let p = 6;
  while (p < input.length && !sink.stopped) {
    if (sink.timeUp()) break;
    // A tail shorter than an attribute header holds no content (clam.tnef ends in one stray
    // byte): nothing is unseen, so it is not damage.
    if (p + 9 > input.length) break;
    const level = input[p]!;
    const attr = input.readUInt32LE(p + 1);
    const len = input.readUInt32LE(p + 5);
    const start = p + 9;
    if (len > input.length - start) { sink.fail('corrupt', `attribute 0x${attr.toString(16)} passes the end`); break; }
    const data = input.subarray(start, start + len);
    const id = attr & 0xffff;
    p = start + len + 2; // + checksum
    if (level !== LVL_ATTACHMENT) continue;
    if (id === ATT_ATTACH_RENDDATA) {
      flush();
      current = { mapiData: [] };
      continue;
    }
    current ??= { mapiData: [] };
    if (id === ATT_ATTACH_DATA) {
      if (len > sink.room) { sink.fail('size', 'attachment passes the output limit'); break; }
      current.data = Buffer.from(data);
    } else if (id === ATT_ATTACH_TITLE) current.title = cString(data);
    else if (id === ATT_ATTACHMENT) {
      try {
        readMapi(data, current, sink);
      } catch (err) {
        if (!(err instanceof Truncated)) throw err;
        sink.fail('corrupt', 'attachment properties pass their attribute');
      }
    }
  }
  flush();
  return sink.result();
}

/** Walks an attachment's MAPI property list, keeping the data and file-name properties. */
function readMapi(b: Buffer, into: Attachment, sink: MemberSink): void {
  let p = 0;
  const need = (n: number): void => { if (n > b.length - p) throw new Truncated(); };
  const u32 = (): number => { need(4); const v = b.readUInt32LE(p); p += 4; return v; };
  need(4);
  const count = u32();
  let longName: string | undefined;
  let shortName: string | undefined;
  for (let i = 0; i < count; i++) {
    if (sink.timeUp()) return;
    need(4);
    const type = b.readUInt16LE(p);
    const id = b.readUInt16LE(p + 2);
    p += 4;
    if (id >= 0x8000) { // named property: GUID, kind, then a number or a name
      need(16);
      p += 16;
      const kind = u32();
      if (kind === 0) u32();
      else { const n = u32(); need(n); p += n + pad4(n); }
    }
    const base = type & ~MV_FLAG;
    const fixed = FIXED[base];
    if (fixed !== undefined) {
      const n = type & MV_FLAG ? u32() : 1;
      // Each fixed value takes at least 4 bytes (PT_SHORT and PT_BOOLEAN are padded).
      const each = Math.max(4, fixed);
      if (n > (b.length - p) / each) throw new Truncated();
      p += n * each;
      continue;
    }
    if (base !== PT_STRING8 && base !== PT_UNICODE && base !== PT_BINARY && base !== PT_OBJECT) {
      throw new Truncated(); // an unknown type: its size is unknown, the rest cannot be walked
    }
    // Variable-size types carry a value count even when single-valued.
    const n = u32();
    for (let j = 0; j < n; j++) {
      const len = u32();
      need(len);
      const value = b.subarray(p, p + len);
      p += len + pad4(len);
      if (p > b.length) p = b.length; // the last value's padding may be missing
      if (id === PR_ATTACH_DATA && (base === PT_BINARY || base === PT_OBJECT)) {
        // PT_OBJECT starts with the interface's IID (IMessage, IStorage): 16 bytes to drop.
        const bytes = base === PT_OBJECT ? value.subarray(Math.min(16, value.length)) : value;
        if (bytes.length > sink.room) { sink.fail('size', 'attachment passes the output limit'); return; }
        into.mapiData.push(Buffer.from(bytes));
      } else if (id === PR_ATTACH_LONG_FILENAME) longName = mapiString(value, base);
      else if (id === PR_ATTACH_FILENAME) shortName = mapiString(value, base);
    }
  }
  const name = longName || shortName;
  if (name) into.mapiName = name;
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function cString(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('latin1');
}

function mapiString(b: Buffer, type: number): string {
  if (type !== PT_UNICODE) return cString(b);
  const s = b.toString('utf16le');
  const z = s.indexOf('\0');
  return z < 0 ? s : s.slice(0, z);
}
