/**
 * Builders for the document containers the format readers take apart (src/unpack/formats/),
 * so tests make their inputs at run time instead of storing binaries: a PDF with chosen stream
 * dictionaries, TNEF attributes and MAPI properties, RTF around an OLE1 object, the OLE
 * Package (Ole10Native) layout, OLE2 files (through cfb's writer), and the PDF encoders the
 * readers decode (ASCIIHex, ASCII85, LZW, RunLength).
 */
import { deflateRawSync, deflateSync, constants } from 'node:zlib';
import CFB from 'cfb';

const u16 = (v: number): Buffer => { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; };
const u32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };

// ---- PDF ----

export interface PdfObject { num: number; dict: string; data?: Buffer }

/** A PDF of the given objects (streams after `stream\r\n`), no xref (the reader needs none). */
export function pdf(objects: PdfObject[], trailer = '<< /Root 1 0 R >>'): Buffer {
  const parts: Buffer[] = [Buffer.from('%PDF-1.5\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  for (const o of objects) {
    parts.push(Buffer.from(`${o.num} 0 obj\n${o.dict}\n`, 'latin1'));
    if (o.data) parts.push(Buffer.from('stream\r\n'), o.data, Buffer.from('\r\nendstream\n'));
    parts.push(Buffer.from('endobj\n'));
  }
  parts.push(Buffer.from(`trailer\n${trailer}\n%%EOF\n`, 'latin1'));
  return Buffer.concat(parts);
}

export function asciiHexEncode(b: Buffer): Buffer {
  // Line breaks inside, as real writers do, and a final '>'.
  return Buffer.from(b.toString('hex').replace(/(.{64})/g, '$1\n') + '>', 'latin1');
}

export function ascii85Encode(b: Buffer): Buffer {
  let out = '';
  for (let i = 0; i < b.length; i += 4) {
    const chunk = Buffer.alloc(4);
    b.copy(chunk, 0, i, Math.min(b.length, i + 4));
    const n = Math.min(4, b.length - i);
    let v = chunk.readUInt32BE(0);
    if (v === 0 && n === 4) { out += 'z'; continue; }
    const digits: string[] = [];
    for (let k = 0; k < 5; k++) { digits.unshift(String.fromCharCode(0x21 + (v % 85))); v = Math.floor(v / 85); }
    out += digits.slice(0, n + 1).join('');
  }
  return Buffer.from(out + '~>', 'latin1');
}

export function runLengthEncode(b: Buffer): Buffer {
  const out: number[] = [];
  let i = 0;
  while (i < b.length) {
    let r = 1;
    while (i + r < b.length && r < 128 && b[i + r] === b[i]) r++;
    if (r >= 2) { out.push(257 - r, b[i]!); i += r; continue; }
    let l = 1;
    while (i + l < b.length && l < 128 && b[i + l] !== b[i + l - 1]) l++;
    out.push(l - 1, ...b.subarray(i, i + l));
    i += l;
  }
  out.push(128);
  return Buffer.from(out);
}

/** LZW as PDF writes it: 9–12-bit codes MSB first, a clear code first and when the table fills. */
export function lzwEncode(b: Buffer, earlyChange = 1): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  let width = 9;
  const emit = (code: number): void => {
    acc = (acc << width) | code;
    bits += width;
    while (bits >= 8) { out.push((acc >>> (bits - 8)) & 0xff); bits -= 8; }
    acc &= (1 << bits) - 1;
  };
  let dict = new Map<string, number>();
  let next = 258;
  emit(256);
  let w = '';
  for (const byte of b) {
    const c = String.fromCharCode(byte);
    const wc = w + c;
    if (wc.length === 1 || dict.has(wc)) { w = wc; continue; }
    emit(w.length === 1 ? w.charCodeAt(0) : dict.get(w)!);
    dict.set(wc, next++);
    if (next + earlyChange - 1 >= 1 << width && width < 12) width++;
    if (next >= 4000) { emit(256); dict = new Map(); next = 258; width = 9; }
    w = c;
  }
  if (w) emit(w.length === 1 ? w.charCodeAt(0) : dict.get(w)!);
  // The end code's width follows the entry the decoder adds for the last code.
  next++;
  if (next + earlyChange - 1 >= 1 << width && width < 12) width++;
  emit(257);
  if (bits > 0) out.push((acc << (8 - bits)) & 0xff);
  return Buffer.from(out);
}

/**
 * A zlib stream that inflates to `mib` MiB of zeros without ever holding them: 1 MiB compressed
 * once with a full flush (a self-contained, non-final run of blocks), repeated, then a final
 * empty block. No adler32: readers must tolerate its absence.
 */
export function zeroBomb(mib: number): Buffer {
  const block = deflateRawSync(Buffer.alloc(1 << 20), { finishFlush: constants.Z_FULL_FLUSH, level: 9 });
  const parts: Buffer[] = [Buffer.from([0x78, 0x9c])];
  for (let i = 0; i < mib; i++) parts.push(block);
  parts.push(Buffer.from([0x03, 0x00])); // final fixed-Huffman block with only end-of-block
  return Buffer.concat(parts);
}

export { deflateSync };

// ---- TNEF ----

export const TNEF_SIGNATURE = 0x223e9f78;

export function tnefAttr(level: number, attr: number, data: Buffer): Buffer {
  let sum = 0;
  for (const x of data) sum = (sum + x) & 0xffff;
  return Buffer.concat([Buffer.from([level]), u32(attr), u32(data.length), data, u16(sum)]);
}

export function tnef(attrs: Buffer[]): Buffer {
  return Buffer.concat([u32(TNEF_SIGNATURE), u16(0x0001), ...attrs]);
}

const pad4 = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);

/** One MAPI property (type, id, value) as attAttachment holds it. */
export function mapiProp(type: number, id: number, value: Buffer | number): Buffer {
  const head = Buffer.concat([u16(type), u16(id)]);
  if (typeof value === 'number') return Buffer.concat([head, u32(value)]);
  return Buffer.concat([head, u32(1), u32(value.length), pad4(value)]);
}

export function mapiProps(props: Buffer[]): Buffer {
  return Buffer.concat([u32(props.length), ...props]);
}

// ---- OLE1, Package, RTF ----

/** The Package layout (Ole10Native without its leading size). */
export function packageBody(label: string, path: string, data: Buffer): Buffer {
  const z = (s: string): Buffer => Buffer.from(s + '\0', 'latin1');
  return Buffer.concat([u16(2), z(label), z(path), u32(0x00030000), u32(path.length + 1), z(path), u32(data.length), data]);
}

export function ole10Native(label: string, path: string, data: Buffer): Buffer {
  const body = packageBody(label, path, data);
  return Buffer.concat([u32(body.length), body]);
}

export function ole1(className: string, native: Buffer): Buffer {
  const lp = (s: string): Buffer => (s ? Buffer.concat([u32(s.length + 1), Buffer.from(s + '\0', 'latin1')]) : u32(0));
  return Buffer.concat([u32(0x0501), u32(2), lp(className), lp(''), lp(''), u32(native.length), native]);
}

// ---- OLE2 ----

/** An OLE2 compound file holding the given streams (paths under the root). */
export function ole2(streams: Record<string, Buffer>): Buffer {
  const cfb = CFB.utils.cfb_new();
  for (const [path, data] of Object.entries(streams)) CFB.utils.cfb_add(cfb, path, data);
  return Buffer.from(CFB.write(cfb, { type: 'buffer' }) as Uint8Array);
}

/** A PowerPoint record: header (recVer/recInstance, recType, length) and body. */
export function pptRecord(ver: number, instance: number, type: number, body: Buffer): Buffer {
  return Buffer.concat([u16((instance << 4) | ver), u16(type), u32(body.length), body]);
}

export { u16, u32 };

/** The byte offset of the OLE2 directory entry named `name` (cfb writes 512-byte sectors). */
export function ole2Entry(file: Buffer, name: string): number {
  const needle = Buffer.from(name + '\0', 'utf16le');
  for (let at = file.indexOf(needle); at >= 0; at = file.indexOf(needle, at + 1)) if (at % 128 === 0) return at;
  throw new Error(`no directory entry ${name}`);
}

/** The FAT chain of sectors from `start` (the file's first FAT sector only: small files). */
export function ole2Chain(file: Buffer, start: number): { chain: number[]; fatOffset: number } {
  const fatOffset = (file.readInt32LE(0x4c) + 1) * 512;
  const chain: number[] = [];
  for (let j = start; j >= 0 && chain.length < 10000; j = file.readInt32LE(fatOffset + 4 * j)) chain.push(j);
  return { chain, fatOffset };
}

/**
 * An OLE2 file with `n` directory entries (the root, then unused ones), written by hand:
 * cfb's writer takes tens of seconds for thousands of entries.
 */
export function ole2WithEntries(n: number): Buffer {
  const dirSectors = Math.ceil(n / 4);
  const fatSectors = Math.ceil((dirSectors + Math.ceil((dirSectors + 1) / 127)) / 127) + 1;
  const total = fatSectors + dirSectors;
  const file = Buffer.alloc(512 * (total + 1));
  Buffer.from('d0cf11e0a1b11ae1', 'hex').copy(file, 0);
  file.writeUInt16LE(0x3e, 0x18);
  file.writeUInt16LE(3, 0x1a);
  file.writeUInt16LE(0xfffe, 0x1c);
  file.writeUInt16LE(9, 0x1e);
  file.writeUInt16LE(6, 0x20);
  file.writeInt32LE(fatSectors, 0x2c);
  file.writeInt32LE(fatSectors, 0x30); // directory after the FAT
  file.writeInt32LE(4096, 0x38);
  file.writeInt32LE(-2, 0x3c);
  file.writeInt32LE(-2, 0x44);
  for (let j = 0; j < 109; j++) file.writeInt32LE(j < fatSectors ? j : -1, 0x4c + 4 * j);
  const fat = (j: number, v: number): void => { file.writeInt32LE(v, 512 * (1 + Math.floor(j / 128)) + 4 * (j % 128)); };
  for (let j = 0; j < fatSectors * 128; j++) fat(j, -1);
  for (let j = 0; j < fatSectors; j++) fat(j, -3);
  for (let j = fatSectors; j < total; j++) fat(j, j + 1 < total ? j + 1 : -2);
  for (let e = 0; e < dirSectors * 4; e++) {
    const at = 512 * (1 + fatSectors) + 128 * e;
    if (e === 0) { Buffer.from('Root Entry\0', 'utf16le').copy(file, at); file.writeUInt16LE(22, at + 64); file[at + 66] = 5; }
    for (const f of [68, 72, 76]) file.writeInt32LE(-1, at + f);
    file.writeInt32LE(-2, at + 116);
  }
  return file;
}
