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
 * "uuencode", "base64-block", "yenc", "binhex" or "data-uri" at path "<part>/<kind><n>"; the
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
import type { MessageBytes } from '../input.js';
import { LENIENT_READING, walkLenient, type LenientContext } from '../lenient/walk.js';
import { MimeError, MimeErrorCode } from '../limits.js';
import type { ExtractedPart, FinishedPart, PartMeta, PartStore, PartWriter } from '../part-store.js';
import { looksLikeMessage, MESSAGE_SNIFF_BYTES } from './message.js';
import { EmbeddedScanner, type ScanEvent } from './scan.js';

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

/** Reads one part at `level` (0: found by another reading) and, depth first, what it holds. */
async function visit(ctx: LenientContext, part: ExtractedPart, level: number, digest: string | undefined): Promise<void> {
  checkAbort(ctx.signal);
  if (SKIP_TYPE_RE.test(part.contentType) || part.size === 0 || WALKED_MESSAGE_TYPES.has(part.contentType)) return;
  if (!TEXT_TYPE_RE.test(part.contentType) && (await startsBinary(ctx.store, part))) return;
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
  for (const found of await scanPart(ctx.store, part, ctx.signal)) await visit(ctx, found.part, level + 1, found.digest);
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
  const has = (events: ScanEvent[]): boolean => events.some((e) => e.type === 'data' && e.bytes.length > 0);
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

/** Scans one part; returns the finds that are new content (a duplicate was read already). */
async function scanPart(store: PartStore, part: ExtractedPart, signal: AbortSignal | undefined): Promise<FinishedPart[]> {
  const scanner = new EmbeddedScanner();
  // a writer is begun at a find's first byte: an empty find ("begin 644 x" then "end") is no part
  const open = new Map<number, { meta: PartMeta; writer?: PartWriter }>();
  const counts = new Map<string, number>();
  const found: FinishedPart[] = [];
  const finish = async (w: PartWriter): Promise<void> => {
    const done = await w.finish();
    if (!done.duplicate) found.push(done);
  };
  const apply = async (events: ScanEvent[]): Promise<void> => {
    for (const e of events) {
      if (e.type === 'open') {
        const n = (counts.get(e.kind) ?? 0) + 1;
        counts.set(e.kind, n);
        open.set(e.id, {
          meta: {
            path: `${part.path}/${e.kind}${n}`,
            contentType: 'application/octet-stream',
            encoding: e.kind,
            reading: e.kind,
            ...(e.name !== undefined ? { filename: e.name.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 255) } : {}),
          },
        });
      } else if (e.type === 'data') {
        const item = open.get(e.id);
        if (item === undefined) continue;
        item.writer ??= store.begin(item.meta);
        await item.writer.write(e.bytes);
      } else {
        const w = open.get(e.id)?.writer;
        open.delete(e.id);
        if (w !== undefined) await finish(w);
      }
    }
  };
  try {
    for await (const chunk of chunksOf(store, part)) {
      checkAbort(signal);
      await apply(scanner.push(chunk));
    }
    await apply(scanner.end());
  } catch (err) {
    // keep what was decoded of an open item (a virus in it still counts), then report
    for (const { writer: w } of open.values()) if (w !== undefined) await w.finish().catch(() => w.abort());
    throw err;
  }
  return found;
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error('aborted');
}
