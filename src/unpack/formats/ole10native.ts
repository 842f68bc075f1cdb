/**
 * The OLE "Package" object's native data (Ole10Native): one file packaged by Windows'
 * Object Packager, found as the "\x01Ole10Native" stream of an OLE2 storage (ole2.ts) and as
 * the NativeData of an OLE1 "Package" object in RTF (rtf.ts). Both carry the same layout; the
 * stream has a u32 total size in front of it, which the caller removes.
 *
 * Layout read (checked against Debian's clam.ole.doc and clam.exe.rtf): u16 flags, label\0,
 * source path\0, u32 reserved (0x00030000), u32 temp-path length, temp path, u32 data size,
 * data. Every length is bounded by the buffer. Output: the packaged file with its source path
 * (or label) as name, `truncated` when the data size passes the end (the bytes present are
 * returned), or undefined when the layout does not fit (the caller still has the raw native
 * data as a member, so nothing goes unseen).
 */

export interface PackagedFile { name: string; bytes: Buffer; truncated: boolean }

export function readPackage(body: Buffer): PackagedFile | undefined {
  let p = 2; // u16 flags
  const cstr = (): string | undefined => {
    const z = body.indexOf(0, p);
    if (z < 0) return undefined;
    const s = body.subarray(p, z).toString('latin1');
    p = z + 1;
    return s;
  };
  if (body.length < p) return undefined;
  const label = cstr();
  const source = cstr();
  if (label === undefined || source === undefined) return undefined;
  if (p + 8 > body.length) return undefined;
  const tempLen = body.readUInt32LE(p + 4);
  p += 8;
  if (tempLen > body.length - p) return undefined;
  p += tempLen;
  if (p + 4 > body.length) return undefined;
  const size = body.readUInt32LE(p);
  p += 4;
  const end = Math.min(body.length, p + size);
  const name = source || label || '[package]';
  return { name, bytes: body.subarray(p, end), truncated: p + size > body.length };
}
