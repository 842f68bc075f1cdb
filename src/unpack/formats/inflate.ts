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

/** Bisection steps for the longest prefix that inflates (2^40 bytes: any input). */
const MAX_BISECT = 40;

/**
 * zlib data as a PDF viewer inflates it: as inflateBounded, but data that zlib refuses is not
 * lost. A wrong or missing adler32, or a bad header, is read again as raw deflate (pdf.js never
 * checks the adler32); data damaged midway gives what inflates before the damage (the longest
 * prefix that decodes, found by bisection: a viewer shows what it decoded up to the error).
 * Output: the bytes and `damage` when they are not the whole stream's, or `size`.
 */
export function inflateLenient(data: Buffer, room: number): { ok: true; bytes: Buffer; damage?: string } | { ok: false; outcome: 'size'; detail: string } {
  const whole = inflateBounded(data, room);
  if (whole.ok) return whole;
  if (whole.outcome === 'size') return { ok: false, outcome: 'size', detail: whole.detail };
  const raw = data.length > 2 && (data[0]! & 0x0f) === 8 ? data.subarray(2) : data;
  const again = inflateBounded(raw, room, true);
  if (again.ok) return { ok: true, bytes: again.bytes, damage: `${whole.detail}; read as raw deflate` };
  if (again.outcome === 'size') return { ok: false, outcome: 'size', detail: again.detail };
  let lo = 0;
  let hi = raw.length;
  let best: Buffer = Buffer.alloc(0);
  for (let step = 0; lo < hi && step < MAX_BISECT; step++) {
    const mid = Math.ceil((lo + hi) / 2);
    const r = inflateBounded(raw.subarray(0, mid), room, true);
    if (r.ok) { lo = mid; best = r.bytes; } else if (r.outcome === 'size') return { ok: false, outcome: 'size', detail: r.detail };
    else hi = mid - 1;
  }
  return { ok: true, bytes: best, damage: `${whole.detail}; ${best.length} bytes decoded before the damage` };
}
