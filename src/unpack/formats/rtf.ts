/**
 * RTF reader (`{\rtf`, or anything Word takes for RTF: `{\rt`): the OLE objects that documents embed as `\objdata`, the usual way an
 * RTF mail attachment carries an executable or an exploit document.
 *
 * Reads: each `\objdata` destination up to the end of its group, as Word reads it: hex digits
 * are kept, whitespace, other control words and nested group braces inside it are skipped, and
 * `\binN` runs are taken as N raw bytes. The bytes are an OLE1 object (OLEVersion, FormatID,
 * ClassName, TopicName, ItemName, NativeDataSize, NativeData): for an embedded object (FormatID
 * 2) the member is NativeData, named "[objdata N] Class" (often an OLE2 file; the stage unpacks
 * it again); for class "Package" also the packaged file (ole10native.ts). Anything else in
 * `\objdata` (a linked object, a header that does not parse) becomes the raw bytes as a member,
 * so nothing in it goes unseen.
 * Not read: `\objdata` text before `{\rtf` or outside a group, `\'hh` escapes inside objdata
 * (skipped), pictures (`\pict`), fonts and the document text.
 * One pass over the input with a depth counter (no recursion, no regex), so 10 MB of `{` costs
 * what 10 MB of text costs. Fails with `corrupt` (an object cut short: what it holds is
 * returned), `size` / `members` / `time` through MemberSink. Never throws for bad input.
 */
import type { UnpackLimits, UnpackResult } from '../types.js';
import { MemberSink } from './sink.js';
import { readPackage } from './ole10native.js';

const BACKSLASH = 0x5c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
/** RTF control words are at most 32 letters and their numeric parameter 10 digits (spec 1.9). */
const MAX_WORD = 32;
const MAX_DIGITS = 10;

export function unpackRtf(input: Buffer, limits: UnpackLimits): UnpackResult {
  const sink = new MemberSink(limits);
  if (sink.timeUpNow()) return sink.result();
  // Word opens anything that starts with `{\rt` (malware uses `{\rt0`, `{\rtx`): so do we.
  if (input.length < 4 || input.subarray(0, 4).toString('latin1') !== '{\\rt') {
    sink.fail('corrupt', 'no {\\rt signature');
    return sink.result();
  }
  let depth = 0;
  let objDepth = -1; // depth of the group that holds \objdata, -1 outside one
  let scratch: Buffer | undefined; // decoded objdata; never longer than the input
  let n = 0;
  let nibble = -1;
  let objects = 0;
  const len = input.length;
  let i = 0;
  while (i < len) {
    if (sink.timeUp()) return sink.result();
    const c = input[i]!;
    if (c === OPEN) { depth++; i++; continue; }
    if (c === CLOSE) {
      if (objDepth >= 0 && depth === objDepth) {
        objDepth = -1;
        readOle1(scratch!.subarray(0, n), ++objects, sink);
        if (sink.stopped) return sink.result();
      }
      if (depth > 0) depth--;
      i++;
      continue;
    }
    if (c === BACKSLASH) {
      let j = i + 1;
      const w0 = j;
      while (j < len && j - w0 < MAX_WORD && isLetter(input[j]!)) j++;
      if (j === w0) { // control symbol: \\ \{ \} \' \* ...; \'hh carries two more characters
        i = input[j] === 0x27 ? j + 3 : j + 1;
        continue;
      }
      const word = input.toString('latin1', w0, j);
      let neg = false;
      if (input[j] === 0x2d) { neg = true; j++; }
      const d0 = j;
      let param = 0;
      while (j < len && j - d0 < MAX_DIGITS && isDigit(input[j]!)) param = param * 10 + input[j++]! - 0x30;
      if (input[j] === 0x20) j++;
      i = j;
      if (word === 'objdata' && objDepth < 0) {
        objDepth = depth;
        scratch ??= Buffer.allocUnsafe(len);
        n = 0;
        nibble = -1;
      } else if (word === 'bin' && !neg) {
        const end = Math.min(len, i + param);
        if (objDepth >= 0) { input.copy(scratch!, n, i, end); n += end - i; }
        i = end;
      }
      continue;
    }
    if (objDepth >= 0) {
      const v = hexValue(c);
      if (v >= 0) {
        if (nibble < 0) nibble = v;
        else { scratch![n++] = (nibble << 4) | v; nibble = -1; }
      }
    }
    i++;
  }
  if (objDepth >= 0) {
    sink.fail('corrupt', 'objdata cut short');
    readOle1(scratch!.subarray(0, n), ++objects, sink);
  }
  return sink.result();
}

/** The OLE1 ObjectHeader and its NativeData ([MS-OLEDS] 2.2.4). */
function readOle1(obj: Buffer, index: number, sink: MemberSink): void {
  const label = `[objdata ${index}]`;
  let p = 8;
  const lpstr = (): string | undefined => {
    if (p + 4 > obj.length) return undefined;
    const l = obj.readUInt32LE(p);
    if (l > obj.length - p - 4) return undefined;
    const z = obj.indexOf(0, p + 4);
    const s = obj.toString('latin1', p + 4, z >= 0 && z < p + 4 + l ? z : p + 4 + l);
    p += 4 + l;
    return s;
  };
  if (obj.length < 8 || obj.readUInt32LE(4) !== 2) { // not an embedded object: keep it raw
    if (obj.length > 0) sink.add(label, Buffer.from(obj));
    return;
  }
  const cls = lpstr();
  const topic = lpstr();
  const item = lpstr();
  if (cls === undefined || topic === undefined || item === undefined || p + 4 > obj.length) {
    sink.fail('corrupt', `${label}: OLE1 header cut short`);
    sink.add(label, Buffer.from(obj));
    return;
  }
  const size = obj.readUInt32LE(p);
  p += 4;
  const native = obj.subarray(p, Math.min(obj.length, p + size));
  if (size > obj.length - p) sink.fail('corrupt', `${label}: native data cut short`);
  if (!sink.add(`${label} ${cls}`, Buffer.from(native))) return;
  if (cls === 'Package') {
    const pkg = readPackage(native);
    if (pkg) {
      if (pkg.truncated) sink.fail('corrupt', `${label}: packaged file cut short`);
      sink.add(pkg.name, Buffer.from(pkg.bytes));
    }
  }
}

function isLetter(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
