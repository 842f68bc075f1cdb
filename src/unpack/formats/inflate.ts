/**
 * zlib inflation bounded before it happens (src/unpack/formats/): PDF FlateDecode and
 * PowerPoint's compressed ExOleObjStg both come here.
 *
 * Input: the zlib bytes and the output room (MemberSink.room). Output: the bytes, or `size`
 * when they would pass the room (zlib stops at maxOutputLength, so a bomb never grows past it:
 * the RangeError is the signal), or `corrupt` for data zlib refuses. Z_SYNC_FLUSH as finishFlush
 * makes a stream that ends early, or lacks its adler32 (common in PDFs), yield what it holds
 * instead of failing. Never throws.
 */
import { constants, inflateSync, inflateRawSync } from 'node:zlib';

export type Inflated = { ok: true; bytes: Buffer } | { ok: false; outcome: 'size' | 'corrupt'; detail: string };

export function inflateBounded(data: Buffer, room: number, raw = false): Inflated {
  // maxOutputLength must be ≥ 1; room + 1 lets "exactly room" through and "one more" fail.
  const maxOutputLength = Math.min(Math.max(1, room + 1), 2 ** 31 - 1);
  try {
    const opts = { maxOutputLength, finishFlush: constants.Z_SYNC_FLUSH };
    const bytes = raw ? inflateRawSync(data, opts) : inflateSync(data, opts);
    if (bytes.length > room) return { ok: false, outcome: 'size', detail: `inflates past ${room} bytes` };
    return { ok: true, bytes };
  } catch (err) {
    if (err instanceof RangeError) return { ok: false, outcome: 'size', detail: `inflates past ${room} bytes` };
    return { ok: false, outcome: 'corrupt', detail: `inflate: ${(err as { code?: string }).code ?? 'error'}` };
  }
}
