/**
 * One reading of one message: mailsplit's tree, each leaf body decoded into the part store,
 * attached messages walked again from their decoded bytes.
 *
 * Owns: the mailsplit Splitter for one message, the MIME path numbering, and the order in
 * which parts are finished. Inputs: the message bytes (a Readable, or a Buffer already in
 * memory, written to the splitter at once), a WalkContext (store,
 * budget, reading, signal) and the path prefix of the message ([] for the top level, the path
 * of the message/rfc822 part for an attached message). Outputs: parts added to the store.
 * Fails (rejects) with MimeError for limits, mailsplit's EMAXLEN or parse errors, fs errors from
 * the store, or the AbortError of the signal; extract.ts classifies them.
 *
 * Numbering is IMAP BODYSTRUCTURE's: the children of a multipart are 1, 2, ... under the
 * multipart's own path (the top-level multipart has none); a non-multipart message body is
 * "1"; inside an attached message at path P the body is P.1 (single part) or its children are
 * P.1, P.2, ... (multipart). So an attachment inside a message inside a message can be 2.2.2.
 *
 * Backpressure: the splitter is read with for-await inside pipeline(), and every decoded chunk
 * is stored (awaited) before the next one is pulled, so input is only read as fast as parts are
 * written. mailsplit's done() handshake belongs to its Streamer/Rewriter, which this does not
 * use: the raw Splitter is consumed directly.
 */
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IdentityDecoder, type ChunkDecoder } from './chunk-decoder.js';
import { standardDecoder, type DecoderChoice } from './decoders.js';
import { decodeFilename, otherDeclaredName } from './filename.js';
import { MimeError, MimeErrorCode, type Budget } from './limits.js';
import type { PartMeta } from '../bytes/part.js';
import { encodedKey, rangeKey, type FinishedPart, type PartStore, type PartWriter } from './part-store.js';
import { StandardSplitter } from './splitter.js';

/** One interpretation of a message; the union extraction (extract.ts) runs several. */
export interface Reading {
  /** Reported in ExtractedPart.reading. */
  readonly name: string;
  /** How this reading undoes a Content-Transfer-Encoding token. */
  decoderFor(cte: string | false): DecoderChoice;
}

export const STANDARD_READING: Reading = Object.freeze({ name: 'standard', decoderFor: standardDecoder });

export interface WalkContext {
  readonly store: PartStore;
  readonly budget: Budget;
  readonly reading: Reading;
  readonly signal?: AbortSignal | undefined;
}

/** Types whose decoded body is itself a message, scanned as a part and walked again. */
const EMBEDDED_MESSAGE_TYPES: ReadonlySet<string> = new Set(['message/rfc822', 'message/global']);

/**
 * mailsplit counts nodes with an error code shared with its header limit; Budget counts them
 * with a code of their own, so mailsplit's count is switched off.
 */
const SPLITTER_MAX_CHILD_NODES = Number.MAX_SAFE_INTEGER;

export async function walkMessage(input: Readable | Buffer, ctx: WalkContext, prefix: readonly number[]): Promise<void> {
  const splitter = new StandardSplitter({
    // mailsplit descends only into unencoded message/rfc822 marked inline (or, with
    // defaultInlineEmbedded, not marked attachment) and never into message/global; we descend
    // into all of them ourselves, from the decoded part
    ignoreEmbedded: true,
    maxHeadSize: ctx.budget.limits.maxHeaderBytes,
    maxChildNodes: SPLITTER_MAX_CHILD_NODES,
  });
  const walker = new TreeWalker(ctx, prefix);
  // pipeline() may settle (on abort, or an input error) while the consumer is still inside an
  // await; nothing may touch the store after this function returns, so it waits for it too
  let consumer: Promise<void> | undefined;
  const consume = async (source: AsyncIterable<SplitterChunk>): Promise<void> => {
    for await (const chunk of source) await walker.onChunk(chunk);
    await walker.end();
  };
  try {
    if (Buffer.isBuffer(input)) await splitBuffer(input, splitter, (source) => (consumer = consume(source)), ctx.signal);
    else await pipeline(input, splitter, (source: AsyncIterable<SplitterChunk>) => (consumer = consume(source)), ctx.signal ? { signal: ctx.signal } : {});
  } catch (err) {
    // When the consumer throws (a limit hit while storing a part, a temp file that cannot be
    // created), its for-await closes the splitter first, and pipeline() rejects with that
    // premature close (an AbortError), not with the cause: the consumer's own error is the
    // one to report, unless it only echoes the pipeline's.
    const own = await consumer?.then(
      () => undefined,
      (e: unknown) => e,
    );
    // the extraction ends with a limit; what was decoded so far is still worth scanning
    if (!ctx.signal?.aborted) await walker.salvage();
    throw ownCause(own) ?? err;
  } finally {
    await consumer?.catch(() => undefined);
    await walker.abort();
  }
}

/**
 * A message in memory, split without a stream pipeline: the consumer is attached first, then
 * the whole buffer is written (pipeline() would hand the splitter the same one chunk). An
 * abort destroys the splitter, which ends the consumer's loop with the abort's error.
 */
async function splitBuffer(buf: Buffer, splitter: StandardSplitter, consume: (source: AsyncIterable<SplitterChunk>) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) throw signal.reason;
  const onAbort = (): void => void splitter.destroy(signal!.reason as Error);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const consumed = consume(splitter as AsyncIterable<SplitterChunk>);
    splitter.end(buf);
    await consumed;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** The consumer's error when it is a cause of its own (a limit, an fs error), not the stream's echo. */
function ownCause(err: unknown): unknown {
  if (err === undefined || err === null) return undefined;
  if (err instanceof MimeError) return err;
  const e = err as { name?: unknown; code?: unknown; syscall?: unknown };
  if (typeof e.syscall === 'string') return err;
  return undefined;
}

interface NodeInfo {
  readonly path: readonly number[];
  children: number;
}

/** The node whose bytes are flowing now: a leaf, or a multipart that may turn out childless. */
interface OpenNode {
  readonly node: MimeNode;
  readonly path: readonly number[];
  /** A multipart with a boundary: its bytes matter only if no child ever appears. */
  readonly container: boolean;
  writer: PartWriter | undefined;
  decoder: ChunkDecoder | undefined;
  meta: PartMeta | undefined;
  /**
   * SHA-256 of the encoded body as it went into the decoder (see PartStore.noteEncoded);
   * undefined under the identity decoder, whose encoded bytes are the content (its digest),
   * and while the body is a range of the message in memory (`range`).
   */
  encoded: Hash | undefined;
  /**
   * The body so far as a range of the message in memory, while every chunk of it has been the
   * next bytes of the message's own buffer: its key is then the range (rangeKey), no hash.
   */
  range: { start: number; end: number } | undefined;
  /** Whether the body is keyed by its encoded bytes (not under the identity decoder: by its content). */
  keyed: boolean;
  /** A chunk of the body was not the message's next bytes: no range key for it. */
  broken: boolean;
}

/**
 * "type/subtype" without RFC 822 comments or whitespace: mailsplit strips comments from the CTE
 * but not from Content-Type, so "message/rfc822 (fwd)" would not be recognised as a message.
 */
export function bareType(contentType: string | false): string {
  const t = (contentType || '').replace(/\([^()]*\)/g, ' ').trim().split(/[\s;]/, 1)[0]!.toLowerCase();
  return t || 'text/plain';
}

class TreeWalker {
  private readonly info = new WeakMap<MimeNode, NodeInfo>();
  private current: OpenNode | undefined;

  constructor(
    private readonly ctx: WalkContext,
    private readonly prefix: readonly number[],
  ) {}

  async onChunk(chunk: SplitterChunk): Promise<void> {
    if (chunk.type === 'node') return this.onNode(chunk);
    const cur = this.current;
    // Only the open node's own content: a leaf's 'body', a childless container's 'data'.
    // Delimiter lines, and preamble/epilogue of multiparts with children, are skipped here
    // (the lenient reading, lenient/walk.ts, takes content outside the leaves as parts).
    if (cur === undefined || chunk.node !== cur.node) return;
    // mailsplit sends a multipart's bytes as 'data' (boundary or not), a leaf's as 'body';
    // 'data' for a leaf is a delimiter line (a leaf may carry a boundary parameter)
    if (chunk.type !== (cur.node.multipart ? 'data' : 'body')) return;
    this.open(cur);
    this.noteEncodedChunk(cur, chunk.value);
    const out = cur.decoder!.update(chunk.value);
    if (out.length > 0) await cur.writer!.write(out);
  }

  /**
   * Follows the encoded body: as a range of the message while each chunk is the message's next
   * bytes, else (from the first chunk that is not) as a SHA-256 over every byte of it (not
   * under the identity decoder, whose key is the content's own digest).
   */
  private noteEncodedChunk(cur: OpenNode, value: Buffer): void {
    if (cur.encoded === undefined) {
      const at = cur.broken ? -1 : this.ctx.store.offsetInMessage(value);
      if (at >= 0 && (cur.range === undefined ? true : cur.range.end === at)) {
        cur.range = { start: cur.range?.start ?? at, end: at + value.length };
        return;
      }
      cur.broken = true;
      if (!cur.keyed) {
        cur.range = undefined;
        return;
      }
      cur.encoded = createHash('sha256');
      // what came so far was the message's own bytes: hashed from there
      if (cur.range !== undefined) cur.encoded.update(this.ctx.store.messageRange(cur.range.start, cur.range.end));
      cur.range = undefined;
    }
    cur.encoded.update(value);
  }

  async end(): Promise<void> {
    await this.close(undefined);
  }

  /**
   * After an error: keeps the open part with what it holds so far (it may be cut short),
   * without walking into it. A failure here is swallowed; the first error is the one reported.
   */
  async salvage(): Promise<void> {
    const cur = this.current;
    if (cur?.writer === undefined) return;
    try {
      // the tail may not fit the budget that just ran out; the part is kept without it
      await cur.writer.write(cur.decoder!.final()).catch(() => undefined);
      await cur.writer.finish();
      this.current = undefined;
    } catch {
      // abort() drops it
    }
  }

  /** Drops a part left open by an error or an abort. */
  async abort(): Promise<void> {
    const cur = this.current;
    this.current = undefined;
    await cur?.writer?.abort();
  }

  private async onNode(node: MimeNode): Promise<void> {
    await this.close(node);
    const path = this.pathOf(node);
    const container = Boolean(node.multipart) && Boolean(node._boundary);
    // a childless node is a leaf: the top level's is "1", not the empty path
    const ownPath = container || node.parentNode ? path : [...this.prefix, 1];
    // mailsplit's header lines include the blank line that ends the block
    const headerLines = Math.max(0, ((node as unknown as { _headersLines?: unknown[] })._headersLines?.length ?? 0) - 1);
    this.ctx.budget.addNode(ownPath.length, node._headerlen, STANDARD_READING.name, headerLines);
    this.info.set(node, { path: ownPath, children: 0 });
    const open: OpenNode = { node, path: ownPath, container, writer: undefined, decoder: undefined, meta: undefined, encoded: undefined, range: undefined, keyed: false, broken: false };
    this.current = open;
    // a leaf is a part even when its body is empty; a container only once it has bytes
    if (!container) this.open(open);
  }

  private pathOf(node: MimeNode): readonly number[] {
    const parent = node.parentNode;
    if (!parent) return this.prefix;
    const p = this.info.get(parent);
    if (p === undefined) throw new MimeError(MimeErrorCode.PARSE, 'MIME node without a known parent');
    return [...p.path, ++p.children];
  }

  private open(cur: OpenNode): void {
    if (cur.writer !== undefined) return;
    const node = cur.node;
    const choice = this.ctx.reading.decoderFor(node.encoding);
    const headers = node.headers;
    const filename = headers ? decodeFilename(headers.getFirst('content-disposition'), headers.getFirst('content-type')) : undefined;
    const other = headers ? otherDeclaredName(headers.getFirst('content-disposition'), headers.getFirst('content-type')) : undefined;
    // a childless container is stored at the leaf path ("1" at the top level)
    const path = cur.container && !node.parentNode ? [...this.prefix, 1] : cur.path;
    cur.meta = {
      path: path.join('.'),
      contentType: bareType(node.contentType),
      encoding: choice.encoding,
      reading: this.ctx.reading.name,
      ...(filename !== undefined ? { filename } : {}),
      ...(other !== undefined ? { alsoNamed: [other] } : {}),
    };
    cur.decoder = choice.decoder;
    cur.keyed = !(choice.decoder instanceof IdentityDecoder);
    cur.writer = this.ctx.store.begin(cur.meta);
  }

  /** Ends the open node because `next` arrived (undefined: end of input). */
  private async close(next: MimeNode | undefined): Promise<void> {
    const cur = this.current;
    if (cur === undefined) return;
    if (cur.container && next !== undefined && next.parentNode === cur.node) {
      // it has children after all: what came before the first one is preamble
      this.current = undefined;
      await cur.writer?.abort();
      return;
    }
    if (cur.writer === undefined) {
      this.current = undefined;
      return;
    }
    const { digest, bytes } = await this.finish(cur);
    // an attached message is a part and a message: walk its decoded bytes under its path. By
    // this node's type, not the stored part's: the same bytes may have come first as
    // application/octet-stream, and they must still be walked once as a message.
    if (EMBEDDED_MESSAGE_TYPES.has(cur.meta!.contentType) && this.ctx.store.claimMessageWalk(digest)) {
      // the store's range reads: large chunks, where the part's own stream reads 64 KiB at a time
      await walkMessage(bytes.stream(0, bytes.size), this.ctx, cur.path);
    }
  }

  private async finish(cur: OpenNode): Promise<FinishedPart> {
    const tail = cur.decoder!.final();
    const irregular = (cur.decoder as { irregular?: boolean }).irregular === true;
    if (irregular) this.ctx.store.noteIrregular(`irregular ${cur.meta!.encoding} at ${cur.meta!.path}`);
    if (tail.length > 0) await cur.writer!.write(tail);
    const done = await cur.writer!.finish();
    this.current = undefined;
    // a body other readers decode otherwise: the lenient reading decodes it itself, and then
    // tries their decodings too (lenient/walk.ts)
    if (irregular) return done;
    const decoder = cur.decoder!;
    // a range of the message in memory is its own key; the identity decoder's bodies are
    // known by their content's digest as well
    if (cur.range !== undefined) this.ctx.store.noteEncoded(rangeKey(decoder, cur.range.start, cur.range.end), done.digest);
    if (!cur.keyed) this.ctx.store.noteEncoded(encodedKey(decoder, done.digest), done.digest);
    else if (cur.encoded !== undefined) this.ctx.store.noteEncoded(encodedKey(decoder, cur.encoded.digest('hex')), done.digest);
    // an empty body: the hash of no bytes
    else if (cur.range === undefined) this.ctx.store.noteEncoded(encodedKey(decoder, createHash('sha256').digest('hex')), done.digest);
    return done;
  }
}
