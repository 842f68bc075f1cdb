/**
 * extractParts(): a message in, every decoded MIME part out, or a limit that says why not all
 * of them.
 *
 * Owns: one extraction's life cycle: the budget, the part store (and so the temp files), the
 * readings run over the message, the stage run after them (ExtractOptions.postStage, through
 * post-stage.ts's ExtractionAccess), and turning every failure into a result. Inputs: the
 * message as a MessageInput (input.ts: a buffer, a file, or a stream that is consumed and
 * destroyed on early stop), limits, the tmpdir for spilled parts, an optional AbortSignal.
 * Output: an Extraction. It never rejects for bad input: a parse failure,
 * a crossed limit or an I/O error is Extraction.limit (the caller's verdict is tempfail, never
 * clean), and the parts found up to then are kept, the one being decoded cut short (a virus in
 * them still counts; an attached message cut short is not walked). It rejects
 * only when the signal aborts (code EABORTED), after removing its temp files, and at once for a
 * caller bug (an input not made by MessageInput, limits that are not numbers).
 *
 * Union extraction: the same bytes are read three ways, all feeding one store, so
 * de-duplication (SHA-256) and the budget (decoded bytes, expansion, distinct parts) span them:
 * 1. the standard reading: mailsplit (walk.ts), what a strict reader sees;
 * 2. the lenient reading: our own walker (lenient/walk.ts), every plausible interpretation
 *    where readers disagree;
 * 3. the embedded post-pass (embedded/index.ts): uuencode, begin-base64, yEnc, BinHex and
 *    data: URIs (base64 or percent-encoded) inside every decoded text part, what it finds read
 *    again (4 levels deep; more is the EMIME_EMBED_DEPTH limit), and a find that is a mail
 *    message walked as one.
 * The lenient reading does not decode a body again when the standard reading already decoded
 * the same encoded bytes with the same decoder (PartStore.noteEncoded): the content is known.
 * Every reading runs even when an earlier one hit a limit (what it finds may still be a
 * virus); the first limit is the one reported.
 * A message in memory (MessageInput.fromBuffer) is first read by the lenient reading alone,
 * which stands in for the standard one while everything it meets is plain (lenient/vouch.ts:
 * one interpretation everywhere, nothing irregular, and the grammar and structure mailsplit is
 * known to read the same way); at the first doubt or failure that attempt is thrown away and
 * the message is read with both readings from the start (Extraction.readings says which). A stream is spooled to the private temp
 * directory while the standard reading reads it, since the other readings read it again; a
 * file is read in place; a buffer is read where it is.
 */
import { setMaxListeners } from 'node:events';
import { createReadStream } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { bufferBytes, fileBytes, type MessageBytes } from '../bytes/message-bytes.js';
import type { ExtractedPart } from '../bytes/part.js';
import { extractEmbedded } from './embedded/index.js';
import { checkInput, type MessageInput } from './input.js';
import { walkLenient, type LenientContext } from './lenient/walk.js';
import { Budget, MimeError, MimeErrorCode, type MimeLimits } from './limits.js';
import { PartStore } from './part-store.js';
import { extractionAccess, type PostStage } from './post-stage.js';
import { STANDARD_READING, walkMessage } from './walk.js';

export interface Extraction {
  /** Distinct decoded parts in document order (attached messages before their contents). */
  parts: ExtractedPart[];
  /** Set when a limit was hit or the message could not be parsed: a verdict, never clean. */
  limit?: { code: string; message: string; where?: string };
  /**
   * Set when readers may disagree on this message (PartStore.noteIrregular): why. A note for
   * the log (such structure is what evasions are made of); it changes nothing in what is
   * scanned: every engine gets every part anyway.
   */
  irregular?: string;
  /** The first encrypted content the post stage found (ExtractOptions.postStage). */
  encrypted?: { format: string; path: string };
  /**
   * 1: the message was in memory and plain, and the lenient reading alone stood in for both
   * (extractOnce); 2: both readings ran.
   */
  readings?: 1 | 2;
  /**
   * Read once (readings 1) only: the byte ranges of the message, in document order, that are
   * base64 bodies decoded with nothing irregular, each into one of `parts`. What a reader of
   * the raw message would find in those bytes is in those parts, decoded (the clamd engine's
   * raw_message = "text" leaves them out of the raw message it sends).
   */
  decodedBodies?: ReadonlyArray<readonly [number, number]>;
  /** Removes the temp files; the parts' sources are unusable afterwards. */
  dispose(): Promise<void>;
}

export interface ExtractOptions {
  limits: MimeLimits;
  /** Parent of the private (0700) directory that spilled parts go to. */
  tmpdir: string;
  signal?: AbortSignal;
  /**
   * Run after the readings over the same part store (the container stage): it adds parts
   * and reports a limit (`internal`: a fault, not a limit) or encrypted content; its limit
   * comes after theirs.
   */
  postStage?: PostStage;
  /** Both readings even for a message the lenient reading alone could read (comparisons, tests). */
  bothReadings?: boolean;
}

export async function extractParts(input: MessageInput, opts: ExtractOptions): Promise<Extraction> {
  checkInput(input);
  checkLimits(opts.limits);
  if (input.kind === 'buffer' && opts.bothReadings !== true) {
    const once = await extractOnce(input.buffer, opts);
    if (once !== undefined) return once;
  }
  return extractBoth(input, opts);
}

/**
 * One extraction's state: the budget, the store, the inner signal, the first limit. step()
 * runs a stage and records its failure as the limit; an abort disposes the store and throws.
 */
class Run {
  readonly budget: Budget;
  readonly store: PartStore;
  readonly inner = new AbortController();
  limit: { code: string; message: string } | undefined;
  stageLimit: { code: string; message: string; internal?: boolean; where?: string } | undefined;
  encrypted: { format: string; path: string } | undefined;
  readonly soft: MimeError[] = [];
  private readonly onAbort = (): void => this.inner.abort(this.signal?.reason);

  constructor(
    readonly opts: ExtractOptions,
    private readonly signal = opts.signal,
  ) {
    this.budget = new Budget(opts.limits);
    // Each walk (one per attached message, nested up to maxDepth) listens on the signal while
    // it runs. They listen on a signal of our own, so the caller's gets one listener and the
    // nesting does not trip Node's MaxListenersExceededWarning.
    setMaxListeners(Math.max(10, opts.limits.maxDepth + 2), this.inner.signal);
    this.store = new PartStore(opts.tmpdir, this.budget, this.inner.signal);
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  get ctx(): LenientContext {
    return { store: this.store, budget: this.budget, signal: this.inner.signal, allowPartial: this.opts.limits.allowPartial === true, soft: this.soft };
  }

  /** Runs `fn` unless a spent budget makes it pointless; its failure becomes the limit. */
  async step(fn: () => Promise<unknown>): Promise<boolean> {
    if (this.limit !== undefined && BUDGET_CODES.has(this.limit.code)) return false;
    try {
      await fn();
      return true;
    } catch (err) {
      await this.throwIfAborted();
      this.limit ??= classify(err);
      return false;
    }
  }

  async throwIfAborted(): Promise<void> {
    if (this.signal?.aborted) {
      await this.store.dispose().catch(() => undefined);
      throw abortedError(this.signal.reason);
    }
  }

  /** The embedded post-pass and the post stage, over the parts the readings stored. */
  async afterReadings(inputSize: number | undefined): Promise<void> {
    const ctx = this.ctx;
    await this.step(() => extractEmbedded(ctx));
    if (this.opts.postStage !== undefined && inputSize !== undefined) {
      const post = this.opts.postStage;
      await this.step(async () => {
        const r = await post(extractionAccess(ctx, inputSize));
        if (r.encrypted !== undefined) this.encrypted = r.encrypted;
        if (r.limit !== undefined) this.stageLimit = r.limit;
      });
    }
  }

  /** Stops listening on the caller's signal. */
  release(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
  }

  result(): Extraction {
    const { soft, stageLimit, store } = this;
    let limit: Extraction['limit'] = this.limit;
    if (limit === undefined && soft.length > 0) limit = { code: soft[0]!.code, message: soft[0]!.message };
    if (limit === undefined && stageLimit !== undefined) limit = { code: stageLimit.code, message: stageLimit.message, ...(stageLimit.where !== undefined ? { where: stageLimit.where } : {}) };
    return {
      parts: store.parts,
      ...(limit !== undefined ? { limit } : {}),
      ...(this.encrypted !== undefined ? { encrypted: this.encrypted } : {}),
      ...(store.irregular !== undefined ? { irregular: store.irregular } : {}),
      dispose: () => store.dispose(),
    };
  }
}

/**
 * A message in memory read once: the lenient reading alone, standing in for the standard one
 * (PartStore.vouching: its parts are labelled and numbered as the standard reading's). It
 * gives up, and the caller reads the message with both readings from the start, at the first
 * doubt (lenient/vouch.ts: anything irregular, anything outside the plain grammar and
 * structure mailsplit is known to read alike) and at any failure (a limit included: the
 * limits are then exactly those of both readings). Undefined when it gave up.
 */
async function extractOnce(message: Buffer, opts: ExtractOptions): Promise<Extraction | undefined> {
  if (opts.signal?.aborted) throw abortedError(opts.signal.reason);
  const run = new Run(opts);
  try {
    const bytes = bufferBytes(message);
    run.store.setMessage(message);
    run.budget.setInputSize(message.length);
    run.store.vouching = true;
    try {
      await walkLenient(bytes, run.ctx);
    } catch {
      await run.throwIfAborted();
      await run.store.dispose().catch(() => undefined);
      return undefined;
    }
    run.store.vouching = false;
    await run.afterReadings(message.length);
  } finally {
    run.release();
    await run.store.closeHandles().catch(() => undefined);
  }
  const bodies = run.store.decodedBodies;
  return { ...run.result(), readings: 1, ...(bodies.length > 0 ? { decodedBodies: bodies } : {}) };
}

/** The standard reading, then the lenient one, over any input. */
async function extractBoth(input: MessageInput, opts: ExtractOptions): Promise<Extraction> {
  const { signal } = opts;
  const stream = input.kind === 'stream' ? input.stream : undefined;
  // an error before the first read (or of a stream not read at all) must not go unhandled;
  // the readings see it when they read
  stream?.on('error', () => undefined);
  // a message already in memory (a small data file, read in one go): every reading reads the
  // buffer, no file is opened or streamed
  const inMemory = input.kind === 'buffer' ? input.buffer : undefined;
  if (signal?.aborted) {
    stream?.destroy();
    throw abortedError(signal.reason);
  }
  const run = new Run(opts);
  const { store, budget, inner } = run;
  const step = (fn: () => Promise<unknown>): Promise<boolean> => run.step(fn);
  const standard = (input: Readable | Buffer): Promise<void> => walkMessage(input, { store, budget, reading: STANDARD_READING, signal: inner.signal }, []);
  let spooled: string | undefined;
  let bytes: MessageBytes | undefined;
  try {
    if (inMemory !== undefined) {
      bytes = bufferBytes(inMemory);
      store.setMessage(inMemory);
      budget.setInputSize(inMemory.length);
      await step(() => standard(inMemory));
    } else if (input.kind === 'file') {
      const { path } = input;
      await step(async () => {
        bytes = await fileBytes(path);
      });
      if (bytes !== undefined) {
        budget.setInputSize(bytes.size);
        await step(() => standard(createReadStream(path)));
      }
    } else if (stream !== undefined) {
      // a stream is read more than once: the standard reading reads it as it comes while a
      // copy goes to the private directory for the other readings
      let spoolError: unknown;
      const target = await store.reservePath().catch((err: unknown) => {
        spoolError = err;
        return undefined;
      });
      spooled = target;
      const feed = new PassThrough();
      const walking = step(() => standard(feed));
      // on abort both steps reject; the copy's rejection is the one thrown, this one is seen
      walking.catch(() => undefined);
      const copied = await step(async () => {
        const fh = target !== undefined ? await open(target, 'wx', 0o600).catch((err: unknown) => void (spoolError = err)) : undefined;
        // an input that stalls (a stuck pipe, a hung NFS read) must not outlive an abort: the
        // loop below would wait on it for ever, so the abort ends the read itself
        const stop = (): void => void stream.destroy(abortedError(inner.signal.reason));
        inner.signal.addEventListener('abort', stop, { once: true });
        try {
          if (inner.signal.aborted) throw inner.signal.reason;
          let seen = 0;
          for await (const chunk of stream) {
            if (inner.signal.aborted) throw inner.signal.reason;
            // the expansion ratio holds against what has arrived so far: the standard reading
            // of a stream is bounded while it runs, as it is for a file of known size
            seen += (chunk as Buffer).length;
            budget.setInputSize(seen);
            if (fh && spoolError === undefined) await writeAll(fh, chunk as Buffer).catch((err: unknown) => void (spoolError = err));
            await feedChunk(feed, chunk as Buffer);
          }
          feed.end();
        } catch (err) {
          feed.destroy(err as Error);
          stream.destroy();
          throw err;
        } finally {
          inner.signal.removeEventListener('abort', stop);
          await fh?.close();
        }
        if (spoolError !== undefined) throw spoolError;
        return true;
      });
      await walking;
      if (copied && target !== undefined) {
        await step(async () => {
          bytes = await fileBytes(target);
          budget.setInputSize(bytes.size);
        });
      }
    }
    if (bytes !== undefined) {
      const src = bytes;
      await step(() => walkLenient(src, run.ctx));
    }
    await run.afterReadings((bytes as MessageBytes | undefined)?.size ?? inMemory?.length);
  } finally {
    run.release();
    await (bytes as MessageBytes | undefined)?.close();
    await store.closeHandles().catch(() => undefined);
    if (spooled !== undefined) await unlink(spooled).catch(() => undefined);
  }
  return { ...run.result(), readings: 2 };
}

/** Hands a chunk to the standard reading, with backpressure; a reading that stopped gets nothing. */
async function feedChunk(feed: PassThrough, chunk: Buffer): Promise<void> {
  if (feed.destroyed || feed.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      feed.off('drain', done);
      feed.off('close', done);
      resolve();
    };
    feed.on('drain', done);
    feed.on('close', done);
  });
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
}

/** Limits that leave no budget for another reading: running one would only hit them again. */
const BUDGET_CODES: ReadonlySet<string> = new Set([MimeErrorCode.DECODED_LIMIT, MimeErrorCode.EXPANSION_LIMIT, MimeErrorCode.PART_LIMIT]);

/**
 * Failure → limit record. By code only: MimeError's, mailsplit's EMAXLEN, and system errors
 * (a syscall or an errno: the input or a temp file), whose errno the message keeps.
 */
function classify(err: unknown): { code: string; message: string } {
  if (err instanceof MimeError) return { code: err.code, message: err.message };
  const e = err as { code?: unknown; syscall?: unknown; errno?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // mailsplit's only EMAXLEN left is the header size: its child-node count is switched off
  if (e?.code === 'EMAXLEN') return { code: MimeErrorCode.HEADER_LIMIT, message: `header block exceeds the limit: ${message}` };
  if (typeof e?.syscall === 'string' || typeof e?.errno === 'number') {
    const errno = String(e.code);
    return { code: MimeErrorCode.IO, message: `I/O error: ${message.startsWith(errno) ? message : `${errno}: ${message}`}` };
  }
  return { code: MimeErrorCode.PARSE, message: `cannot parse MIME structure: ${message}` };
}

function abortedError(reason: unknown): MimeError {
  return new MimeError(MimeErrorCode.ABORTED, 'MIME extraction aborted', { cause: reason });
}

/** A caller bug, not bad input: thrown at once, with what to use instead. */
function checkLimits(l: MimeLimits): void {
  for (const key of ['maxDepth', 'maxParts', 'maxHeaderBytes', 'maxDecodedBytes', 'memoryPartBytes'] as const) {
    const v = l?.[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw Object.assign(new TypeError(`MimeLimits.${key} must be a finite number >= 0 (got ${String(v)}); start from DEFAULT_MIME_LIMITS`), {
        code: 'ERR_INVALID_ARG_VALUE',
      });
    }
  }
}
