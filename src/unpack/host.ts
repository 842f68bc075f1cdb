/**
 * What the container stage needs from whoever holds the message's parts: the parts so far and
 * their bytes, a place to store members, and the readings of mail and of text that it hands
 * found content back to (a mail message in a zip is walked as mail, a uuencoded file in a .txt
 * member is decoded).
 *
 * Owns: the interface only. The stage (stage.ts) calls it; the scan (src/scan) implements it
 * over the MIME extractor, so this module and the extractor know nothing of each other.
 */
import type { MessageBytes } from '../bytes/message-bytes.js';
import type { ExtractedPart, PartMeta } from '../bytes/part.js';

export interface ContainerHost {
  /** Every part stored so far, in order; the same list grows as members and walks add parts. */
  readonly parts: readonly ExtractedPart[];
  /** Fires when the message's scan is aborted: the stage stops at its next step. */
  readonly signal: AbortSignal | undefined;
  /** A stored part's bytes, for range reads (undefined: not readable, skipped). */
  bytesOf(part: ExtractedPart): MessageBytes | undefined;
  /**
   * Stores a member as a part of its own, its bytes in `chunks` (stored once per content).
   * The stage counts members and bytes against its own limits.
   */
  addMember(meta: PartMeta, chunks: readonly Buffer[]): Promise<void>;
  /** Do `bytes` start with a mail header block? `head` is their start, already read. */
  isMessage(bytes: MessageBytes, head: Buffer): Promise<boolean>;
  /** Walks `bytes` (the content of `part`) as a mail message; its parts are stored. Once per content. */
  walkMessage(part: ExtractedPart, bytes: MessageBytes): Promise<void>;
  /** Reads new members for files encoded inside their text (uuencode, BinHex...). */
  readEmbedded(parts: readonly ExtractedPart[]): Promise<void>;
}
