/**
 * RAR archives built in memory for tests, no `rar` program needed (it is not free software and
 * no package here makes RAR): members stored (method "store"), in the RAR 4 or RAR 5 layout, with
 * every header CRC right, so that 7-Zip and unrar read them. Enough to test that a RAR is found
 * and opened where it sits (a self-extractor's stub before it); what is inside is whatever the
 * caller stores (a gzip, to keep the payload out of sight of a scanner that does not unpack).
 *
 * Input: entries (name, bytes). Output: the archive bytes. Throws on a name longer than 255.
 */
import { crc32 } from 'node:zlib';

export interface RarEntry { name: string; data: Buffer }

const le = (n: number, v: number): Buffer => { const b = Buffer.alloc(n); b.writeUIntLE(v >>> 0, 0, n); return b; };

/** A RAR 4 header: CRC-16 (low half of the CRC-32 of what follows), then type, flags, size, rest. */
function block4(type: number, flags: number, rest: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([type]), le(2, flags), le(2, 7 + rest.length), rest]);
  return Buffer.concat([le(2, crc32(body) & 0xffff), body]);
}

export function buildRar4(entries: readonly RarEntry[]): Buffer {
  const parts: Buffer[] = [Buffer.from('Rar!\x1a\x07\x00', 'latin1'), block4(0x73, 0, Buffer.alloc(6))];
  for (const e of entries) {
    const name = Buffer.from(e.name, 'latin1');
    if (name.length > 255) throw new Error('name too long');
    const rest = Buffer.concat([
      le(4, e.data.length), le(4, e.data.length), Buffer.from([3]), le(4, crc32(e.data)),
      le(4, (40 << 25) | (1 << 21) | (1 << 16)), Buffer.from([29, 0x30]), le(2, name.length), le(4, 0o100644 << 16), name,
    ]);
    parts.push(block4(0x74, 0x8000, rest), e.data);
  }
  parts.push(block4(0x7b, 0x4000, Buffer.alloc(0)));
  return Buffer.concat(parts);
}

/** A RAR 5 variable-length integer. */
function vint(v: number): Buffer {
  const out: number[] = [];
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  return Buffer.from(out);
}

/** A RAR 5 header: CRC-32 of its size and content, the size, the content. */
function block5(content: Buffer): Buffer {
  const sized = Buffer.concat([vint(content.length), content]);
  return Buffer.concat([le(4, crc32(sized)), sized]);
}

export function buildRar5(entries: readonly RarEntry[]): Buffer {
  const parts: Buffer[] = [Buffer.from('Rar!\x1a\x07\x01\x00', 'latin1'), block5(Buffer.concat([vint(1), vint(0), vint(0)]))];
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const content = Buffer.concat([
      vint(2), vint(0x02), vint(e.data.length), // file header, with a data area
      vint(0x04), vint(e.data.length), vint(0o644), le(4, crc32(e.data)), // CRC present, size, attributes, CRC
      vint(0), vint(1), vint(name.length), name, // stored, Unix, name
    ]);
    parts.push(block5(content), e.data);
  }
  parts.push(block5(Buffer.concat([vint(5), vint(0), vint(0)])));
  return Buffer.concat(parts);
}
