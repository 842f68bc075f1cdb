/**
 * Content-Transfer-Encoding decoders: which decoder undoes which CTE token.
 *
 * Owns: the CTE → decoder table for the standard reading. Input: the CTE token as mailsplit
 * normalised it (lower case, comments stripped; "" when absent). Output: a ChunkDecoder and the
 * token to report. Unknown tokens pass bytes through unchanged (as readers do) and are reported
 * as themselves, so a report shows what was not undone. The other readings (lenient/walk.ts:
 * every decoding for a token that is not exactly a known one, other readers' decodings of an
 * irregular body) choose their decoders themselves; this table is the standard reading's alone.
 */
import { Base64Decoder } from './base64.js';
import { IdentityDecoder, type ChunkDecoder } from './chunk-decoder.js';
import { QpDecoder } from './qp.js';

export interface DecoderChoice {
  /** The CTE that is undone, as reported in ExtractedPart.encoding. */
  encoding: string;
  decoder: ChunkDecoder;
}

/** The standard reading's decoder for a CTE token. */
export function standardDecoder(cte: string | false | undefined): DecoderChoice {
  const token = (cte || '').trim().toLowerCase();
  switch (token) {
    case 'base64':
      return { encoding: token, decoder: new Base64Decoder() };
    case 'quoted-printable':
      return { encoding: token, decoder: new QpDecoder() };
    case '':
      // RFC 2045 §6.1: no Content-Transfer-Encoding means 7bit
      return { encoding: '7bit', decoder: new IdentityDecoder() };
    default:
      // 7bit, 8bit, binary, and anything unknown: the bytes as they are
      return { encoding: token, decoder: new IdentityDecoder() };
  }
}
