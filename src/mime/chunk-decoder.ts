/**
 * What every transfer decoder is (base64, quoted-printable, uuencode, percent...): chunks
 * split anywhere in, decoded bytes out, and the decoder that undoes nothing.
 *
 * Owns: the ChunkDecoder contract and IdentityDecoder. The decoders implement it in files of
 * their own; decoders.ts chooses among them for the standard reading.
 */

/** A pure incremental decoder: chunks split anywhere in, decoded bytes out, never throws. */
export interface ChunkDecoder {
  /** The result is valid until the next call (decoders may reuse one output buffer). */
  update(chunk: Buffer): Buffer;
  /** The bytes held back for the end of the body; the decoder is not used after this. */
  final(): Buffer;
}

/** The bytes as they are: 7bit, 8bit, binary, an unknown token, a body that is its content. */
export class IdentityDecoder implements ChunkDecoder {
  update(chunk: Buffer): Buffer {
    return chunk;
  }
  final(): Buffer {
    return Buffer.alloc(0);
  }
}
