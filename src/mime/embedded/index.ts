/**
 * The post-pass of the union extraction: every decoded part is read once more for files
 * encoded inside it (uuencode, begin-base64, yEnc, BinHex, data: URIs), and each one found
 * becomes a part. What it finds is new content and is read the same way in turn (a uuencoded
 * file holding a yEnc one, an HTML file in uuencode holding a data: URI), down to
 * MAX_EMBEDDED_DEPTH levels; a find that looks like a mail message (message.ts) is also walked
 * as one by the lenient walker, and the parts of that walk are read the same way. Below the
 * last level an item is not read again but probed: if it still holds an encoding or a
 * message, that is the EMIME_EMBED_DEPTH limit (a verdict), never silently "clean".
 *
 * Owns: driving EmbeddedScanner over a part, writing what it finds into the part store, the
 * nesting levels, and the walk of messages found. Inputs: a LenientContext (the store with its
 * parts so far, the budget, the signal, the soft limits). Outputs: parts with reading
 * "uuencode", "base64-block", "qp-block", "yenc", "binhex" or "data-uri" at path "<part>/<kind><n>"; the
 * parts of a message found at "<item>", "<item>.1", ... as the lenient walker numbers them,
 * with the item's reading (plus the walker's own tags); EMIME_EMBED_DEPTH in ctx.soft. Each
 * distinct content is read once (the store de-duplicates by SHA-256, and only new parts are
 * read again) and each message is walked once (store.claimMessageWalk, shared with the
 * lenient reading), so nothing loops. A part that is a message the readings walked
 * (message/rfc822, message/global, message/news) is not read as text: its walk's parts are,
 * and reading the whole again at every level of nesting made nested messages cost depth
 * times their size. Fails (rejects) with the store's MimeError (limits) or fs errors, or the
 * signal's reason; parts finished before stay in the store.
 */
import { createHash } from 'node:crypto';
import type { MessageBytes } from '../../bytes/message-bytes.js';
import type { ExtractedPart, PartMeta } from '../../bytes/part.js';
import { LENIENT_READING, walkLenient, type LenientContext } from '../lenient/walk.js';
import { MimeError, MimeErrorCode } from '../limits.js';
import type { FinishedPart, PartStore, PartWriter } from '../part-store.js';
import { looksLikeMessage, MESSAGE_SNIFF_BYTES } from './message.js';
import { EmbeddedScanner, MAX_OPEN_ITEMS, type ScanEvent } from './scan.js';
import { StartLineSniffer } from './start-lines.js';

/** Media whose bytes a mail reader never treats as text with encodings inside. */
const SKIP_TYPE_RE = /^(image|audio|video|font)\//;

/** Types a reader shows as text whatever bytes they hold: always read. */
const TEXT_TYPE_RE = /^(text|message)\//;

/**
 * A NUL byte this early marks a binary file (an executable, an archive, an office document):
 * no mail reader looks inside one for uuencode or data: URIs, and reading every line of it
 * was most of the post-pass's time on large attachments. The engines still scan its bytes.
 */
const BINARY_SNIFF_BYTES = 4096;

async function startsBinary(store: PartStore, part: ExtractedPart): Promise<boolean> {
  const bytes = store.bytesOf(part);
  if (bytes === undefined) return false;
  return (await bytes.read(0, Math.min(bytes.size, BINARY_SNIFF_BYTES))).includes(0);
}

/**
 * Does a line of the part start an item clamd finds in any part (start-lines.ts)? Known from
 * the writer for a part spilled to disk; a part in memory is searched here.
 */
async function holdsStartLine(store: PartStore, part: ExtractedPart, signal: AbortSignal | undefined): Promise<boolean> {
  const known = store.startLineOf(part);
  if (known !== undefined) return known;
  const sniffer = new StartLineSniffer();
  for await (const chunk of chunksOf(store, part)) {
    checkAbort(signal);
    sniffer.push(chunk);
    if (sniffer.found) return true;
  }
  return false;
}

/**
 * Levels of finds below the parts of the other readings: a file found in such a part is level
 * 1, a file found in that one (or a part of a message found there) level 2, and so on. Real
 * mail needs two (a uuencoded forward with an attachment); 4 leaves room for one more wrapping
 * either way, while a message built of encodings inside encodings cannot make us re-read its
 * bytes more than that many times. Finds at the last level are read; what they hold is kept
 * as a part but not read again, and if it holds anything more, that is EMIME_EMBED_DEPTH.
 */
export const MAX_EMBEDDED_DEPTH = 4;

/** Message types the readings walk (walk.ts, lenient/interpret.ts): their parts are read instead. */
const WALKED_MESSAGE_TYPES: ReadonlySet<string> = new Set(['message/rfc822', 'message/global', 'message/news']);

export async function extractEmbedded(ctx: LenientContext): Promise<void> {
  // the parts of the other readings; what this pass adds is read by visit() as it is found
  const parts = [...ctx.store.parts];
  for (const part of parts) await visit(ctx, part, 0, undefined);
}

/**
 * Reads parts added after the post-pass ran (members the container stage took out of an
 * archive, parts of a mail found in one) the same way, as parts of level 0.
 */
export async function extractEmbeddedIn(ctx: LenientContext, parts: readonly ExtractedPart[]): Promise<void> {
  for (const part of parts) await visit(ctx, part, 0, undefined);
}

/** Reads one part at `level` (0: found by another reading) and, depth first, what it holds. */
async function visit(ctx: LenientContext, part: ExtractedPart, level: number, digest: string | undefined): Promise<void> {
  checkAbort(ctx.signal);
  if (part.size === 0 || WALKED_MESSAGE_TYPES.has(part.contentType)) return;
  // media and binaries are read only when a line starts an item clamd finds in any part,
  // whatever its type or first bytes (uuencode, a base64 block after a header line)
  const binary = SKIP_TYPE_RE.test(part.contentType) || (!TEXT_TYPE_RE.test(part.contentType) && (await startsBinary(ctx.store, part)));
  if (binary && !(await holdsStartLine(ctx.store, part, ctx.signal))) return;
  if (level > MAX_EMBEDDED_DEPTH) {
    if ((await isUnwalkedMessage(ctx, part, digest)) || (await holdsEncoding(ctx.store, part, ctx.signal))) {
      ctx.soft.push(new MimeError(MimeErrorCode.EMBED_DEPTH, `encodings nested deeper than ${MAX_EMBEDDED_DEPTH} levels inside part ${part.path.split('/')[0]}`));
    }
    return;
  }
  // the other readings walked their messages already; finds of this pass are walked here
  if (level > 0) {
    for (const p of await walkIfMessage(ctx, part, digest)) await visit(ctx, p, level + 1, undefined);
  }
  for (const found of await scanPart(ctx.store, part, ctx.signal, ctx.soft)) await visit(ctx, found.part, level + 1, found.digest);
}

/** Would walkIfMessage() walk this part (it looks like a message not walked yet)? */
async function isUnwalkedMessage(ctx: LenientContext, part: ExtractedPart, digest: string | undefined): Promise<boolean> {
  const bytes = ctx.store.bytesOf(part);
  if (bytes === undefined || !(await looksLikeMessageAt(ctx, bytes))) return false;
  const key = digest ?? (await sha256(bytes.chunks(0, bytes.size)));
  return !ctx.store.hasWalked(key, LENIENT_READING);
}

/** Does the part hold an item the scanner would find (with at least one byte)? Nothing is stored. */
async function holdsEncoding(store: PartStore, part: ExtractedPart, signal: AbortSignal | undefined): Promise<boolean> {
  const scanner = new EmbeddedScanner();
  const has = (events: ScanEvent[]): boolean => scanner.overflowed || events.some((e) => e.type === 'data' && e.bytes.length > 0);
  for await (const chunk of chunksOf(store, part)) {
    checkAbort(signal);
    if (has(scanner.push(chunk))) return true;
  }
  return has(scanner.end());
}

function chunksOf(store: PartStore, part: ExtractedPart): AsyncIterable<Buffer> {
  const bytes = store.bytesOf(part);
  return bytes !== undefined ? bytes.chunks(0, bytes.size) : (part.source.stream() as AsyncIterable<Buffer>);
}

/**
 * Does the part start with a mail header block? The first MESSAGE_SNIFF_BYTES decide; a block
 * still going there without a field only mail has is read on, up to the header limit, so
 * that padding cannot push the deciding field out of sight.
 */
async function looksLikeMessageAt(ctx: LenientContext, bytes: MessageBytes): Promise<boolean> {
  const sniff = await bytes.read(0, Math.min(bytes.size, MESSAGE_SNIFF_BYTES));
  const first = looksLikeMessage(sniff, sniff.length < bytes.size);
  if (first !== 'more') return first === 'yes';
  // a block of fields longer than the header limit is walked too: the walk reports it as the
  // header limit, where calling it "no message" would leave its attachments unread
  const head = await bytes.read(0, Math.min(bytes.size, ctx.budget.limits.maxHeaderBytes + 1));
  return looksLikeMessage(head, head.length < bytes.size) !== 'no';
}

/** Walks a part that looks like a message (once per content); returns the new parts. */
async function walkIfMessage(ctx: LenientContext, part: ExtractedPart, digest: string | undefined): Promise<ExtractedPart[]> {
  const bytes = ctx.store.bytesOf(part);
  if (bytes === undefined) return [];
  if (!(await looksLikeMessageAt(ctx, bytes))) return [];
  const key = digest ?? (await sha256(bytes.chunks(0, bytes.size)));
  if (!ctx.store.claimMessageWalk(key, LENIENT_READING)) return [];
  const before = ctx.store.parts.length;
  // the find's path, "/<kind><n>" included, is carried as its components so the message's
  // parts are numbered below it
  const prefix = part.path.split('.');
  await walkLenient(bytes, ctx, prefix, [part.reading]);
  return ctx.store.parts.slice(before);
}

async function sha256(chunks: AsyncIterable<Buffer>): Promise<string> {
  const h = createHash('sha256');
  for await (const c of chunks) h.update(c);
  return h.digest('hex');
}

/**
 * A find up to this size is gathered in memory and hashed whole before anything is stored: a
 * duplicate (thousands of identical blocks in one part) then costs a hash and a lookup, not a
 * writer, a path and a stored copy each.
 */
const SMALL_FIND_BYTES = 64 * 1024;

interface OpenFind {
  readonly kind: string;
  readonly name: string | undefined;
  /** Its number among the finds of its kind in this part (the path's "<kind><n>"). */
  readonly n: number;
  /** The bytes so far while the find is small; undefined once it has a writer. */
  held: Buffer | undefined;
  heldBytes: number;
  writer: PartWriter | undefined;
}

/**
 * Scans one part; returns the finds that are new content (a duplicate was read already). More
 * items open at once than the scanner reads is EMIME_EMBED_LIMIT in `soft`.
 */
async function scanPart(store: PartStore, part: ExtractedPart, signal: AbortSignal | undefined, soft: MimeError[]): Promise<FinishedPart[]> {
  const scanner = new EmbeddedScanner();
  const open = new Map<number, OpenFind>();
  const counts = new Map<string, number>();
  const found: FinishedPart[] = [];
  const meta = (f: OpenFind): PartMeta => ({
    path: `${part.path}/${f.kind}${f.n}`,
    contentType: 'application/octet-stream',
    encoding: f.kind,
    reading: f.kind,
    ...(f.name !== undefined ? { filename: f.name.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 255) } : {}),
  });
  /** The find goes to a writer of its own, with what it held so far (already charged). */
  const toWriter = async (f: OpenFind): Promise<PartWriter> => {
    const w = (f.writer = store.begin(meta(f)));
    const held = f.held?.subarray(0, f.heldBytes);
    f.held = undefined;
    if (held !== undefined && held.length > 0) await w.write(held, true);
    return w;
  };
  const close = async (f: OpenFind): Promise<void> => {
    if (f.writer === undefined) {
      // an empty find ("begin 644 x" then "end") is no part; a small one is looked up by its hash first
      if (f.heldBytes === 0 || store.hasContent(f.held!.subarray(0, f.heldBytes))) return;
      await toWriter(f);
    }
    const done = await f.writer!.finish();
    if (!done.duplicate) found.push(done);
  };
  const apply = async (events: ScanEvent[]): Promise<void> => {
    for (const e of events) {
      if (e.type === 'open') {
        const n = (counts.get(e.kind) ?? 0) + 1;
        counts.set(e.kind, n);
        open.set(e.id, { kind: e.kind, name: e.name, n, held: undefined, heldBytes: 0, writer: undefined });
      } else if (e.type === 'data') {
        const f = open.get(e.id);
        if (f === undefined || e.bytes.length === 0) continue;
        if (f.writer !== undefined) {
          await f.writer.write(e.bytes);
          continue;
        }
        // charged now, kept or not: every decoded byte counts against the expansion bound
        store.chargeLate(e.bytes.length, f.heldBytes);
        if (f.heldBytes + e.bytes.length <= SMALL_FIND_BYTES) {
          f.held = grow(f.held, f.heldBytes + e.bytes.length, f.heldBytes);
          e.bytes.copy(f.held, f.heldBytes);
          f.heldBytes += e.bytes.length;
        } else {
          await (await toWriter(f)).write(e.bytes, true);
        }
      } else {
        const f = open.get(e.id);
        open.delete(e.id);
        if (f !== undefined) await close(f);
      }
    }
  };
  try {
    for await (const chunk of chunksOf(store, part)) {
      checkAbort(signal);
      await apply(scanner.push(chunk));
    }
    await apply(scanner.end());
    if (scanner.overflowed) soft.push(new MimeError(MimeErrorCode.EMBED_LIMIT, `more than ${MAX_OPEN_ITEMS} encoded items open at once inside part ${part.path}`));
  } catch (err) {
    // keep what was decoded of an open item (a virus in it still counts), then report
    if (!signal?.aborted) {
      for (const f of open.values()) {
        const w = f.writer ?? (f.heldBytes > 0 ? await toWriter(f).catch(() => undefined) : undefined);
        if (w !== undefined) await w.finish().catch(() => w.abort());
      }
    } else {
      for (const f of open.values()) await f.writer?.abort();
    }
    throw err;
  }
  return found;
}

/** `buf` with room for `n` bytes, its first `used` kept (doubling, so a small find copies little). */
function grow(buf: Buffer | undefined, n: number, used: number): Buffer {
  if (buf !== undefined && buf.length >= n) return buf;
  const next = Buffer.allocUnsafe(Math.min(SMALL_FIND_BYTES, Math.max(n, (buf?.length ?? 0) * 2, 64)));
  buf?.copy(next, 0, 0, used);
  return next;
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error('aborted');
}
