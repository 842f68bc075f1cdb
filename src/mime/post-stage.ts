/**
 * What the extractor lets a stage run after its readings (the container stage) see and do:
 * the parts stored so far, their bytes, a store for new parts, and the extractor's own walks
 * (a mail message found in a part, encodings inside a text).
 *
 * Owns: ExtractionAccess and the PostStage contract; extractionAccess() builds the access over
 * one extraction's context. The stage itself is the caller's (ExtractOptions.postStage): this
 * module knows nothing of what it does with the parts. Every method rejects as the readings
 * do: with MimeError for the extractor's limits, an fs error of a temp file, or the signal's
 * reason.
 */
import { createHash } from 'node:crypto';
import type { MessageBytes } from '../bytes/message-bytes.js';
import type { ExtractedPart, PartMeta } from '../bytes/part.js';
import { extractEmbeddedIn } from './embedded/index.js';
import { looksLikeMessage, MESSAGE_SNIFF_BYTES } from './embedded/message.js';
import { LENIENT_READING, walkLenient, type LenientContext } from './lenient/walk.js';

export interface ExtractionAccess {
  /** Every part stored so far, in order; the same list grows as parts are added. */
  readonly parts: readonly ExtractedPart[];
  /** The message's size in bytes. */
  readonly messageSize: number;
  /** The extraction's signal: it fires when the caller aborts. */
  readonly signal: AbortSignal | undefined;
  /** A stored part's bytes, for range reads. */
  bytesOf(part: ExtractedPart): MessageBytes | undefined;
  /**
   * Stores a part made of `chunks` (a duplicate of stored content is dropped). Its bytes are
   * not charged to the extractor's decoded-bytes budget and a part with `container` set does
   * not count against maxParts: the stage bounds what it adds by limits of its own.
   */
  addPart(meta: PartMeta, chunks: readonly Buffer[]): Promise<void>;
  /**
   * Do `bytes` start with a mail header block? `head` is their start, already read; more is
   * read when the block goes on past it (up to the header limit).
   */
  looksLikeMessage(bytes: MessageBytes, head: Buffer): Promise<boolean>;
  /**
   * Walks `bytes` (the content of `part`) as a mail message with the lenient walker, its parts
   * numbered below the part's path and tagged `reading`. Each content is walked once, whoever
   * asks (the embedded post-pass shares the claim).
   */
  walkMessage(part: ExtractedPart, bytes: MessageBytes, reading: string): Promise<void>;
  /** Reads `parts` for files encoded inside them, as the embedded post-pass reads decoded parts. */
  readEmbedded(parts: readonly ExtractedPart[]): Promise<void>;
}

export interface PostStageResult {
  /** A limit crossed, or (`internal`) a fault of the stage: never clean. */
  limit?: { code: string; message: string; internal?: boolean; where?: string };
  /** The first encrypted content found. */
  encrypted?: { format: string; path: string };
}

/** A stage run after the readings over the same part store; its limit comes after theirs. */
export type PostStage = (access: ExtractionAccess) => Promise<PostStageResult>;

export function extractionAccess(ctx: LenientContext, messageSize: number): ExtractionAccess {
  const { store } = ctx;
  return {
    parts: store.parts,
    messageSize,
    signal: ctx.signal,
    bytesOf: (part) => store.bytesOf(part),
    addPart: async (meta, chunks) => {
      const w = store.begin(meta);
      try {
        for (const c of chunks) await w.write(c, true);
      } catch (err) {
        await w.abort();
        throw err;
      }
      await w.finish();
    },
    looksLikeMessage: async (bytes, head) => {
      const sniffed = head.subarray(0, MESSAGE_SNIFF_BYTES);
      const look = looksLikeMessage(sniffed, sniffed.length < bytes.size);
      if (look !== 'more') return look === 'yes';
      const more = await bytes.read(0, Math.min(bytes.size, ctx.budget.limits.maxHeaderBytes + 1));
      return looksLikeMessage(more, more.length < bytes.size) !== 'no';
    },
    walkMessage: async (part, bytes, reading) => {
      // the namespace the embedded post-pass claims its message walks in: one walk per content
      if (!store.claimMessageWalk(await digestOf(bytes), LENIENT_READING)) return;
      await walkLenient(bytes, ctx, part.path.split('.'), [reading]);
    },
    readEmbedded: (parts) => extractEmbeddedIn(ctx, parts),
  };
}

async function digestOf(bytes: MessageBytes): Promise<string> {
  const h = createHash('sha256');
  for await (const c of bytes.chunks(0, bytes.size)) h.update(c);
  return h.digest('hex');
}
