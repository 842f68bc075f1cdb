/**
 * RPM packages: a 96-byte lead, a signature header (padded to 8 bytes), the main header, then
 * the payload, a cpio archive compressed with whatever the package chose (gzip, bzip2, xz,
 * zstd, and also LZMA-alone or lzip, which have no magic a search behind other bytes could
 * trust, or none that 7-Zip reads). rpm2cpio writes the payload out; so does this reader, as
 * one member "[payload]", which the stage then recognises by its own bytes like any member.
 *
 * Why by hand: 7-Zip's Rpm handler refuses packages whose lead or headers it does not expect,
 * and the walk is two header lengths (each header: magic, 4 reserved bytes, an index count and
 * a data size, big-endian).
 *
 * Owns: the header walk. Input: the item's bytes from the lead. Output: UnpackResult (one
 * member; `corrupt` when a header is not where the lead puts it or runs past the end; `size`
 * when the payload passes the output limit). Pure; never throws.
 */
import type { UnpackLimits, UnpackResult } from '../types.js';

const LEAD_BYTES = 96;
const HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01]);
/** A header's fixed part: magic and version (4), reserved (4), index count (4), data size (4). */
const HEADER_FIXED_BYTES = 16;
const INDEX_ENTRY_BYTES = 16;

/** The end of the header at `at`, or undefined when there is none or it runs past the input. */
function headerEnd(b: Buffer, at: number): number | undefined {
  if (at + HEADER_FIXED_BYTES > b.length || !b.subarray(at, at + 4).equals(HEADER_MAGIC)) return undefined;
  const end = at + HEADER_FIXED_BYTES + b.readUInt32BE(at + 8) * INDEX_ENTRY_BYTES + b.readUInt32BE(at + 12);
  return end <= b.length ? end : undefined;
}

export function unpackRpm(input: Buffer, limits: UnpackLimits): UnpackResult {
  const sigEnd = headerEnd(input, LEAD_BYTES);
  if (sigEnd === undefined) return { members: [], outcome: 'corrupt', detail: 'no signature header after the lead' };
  const mainEnd = headerEnd(input, sigEnd + ((8 - (sigEnd % 8)) % 8));
  if (mainEnd === undefined) return { members: [], outcome: 'corrupt', detail: 'no header after the signature' };
  const payload = input.subarray(mainEnd);
  if (payload.length > limits.maxOutputBytes) return { members: [], outcome: 'size', detail: `payload passes ${limits.maxOutputBytes} bytes` };
  return { members: payload.length > 0 ? [{ name: '[payload]', bytes: payload }] : [], outcome: 'ok' };
}
