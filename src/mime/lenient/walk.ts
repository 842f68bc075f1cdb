/**
 * The lenient reading: a MIME walker of our own that takes every plausible interpretation
 * where mail readers disagree, next to mailsplit's standard reading.
 *
 * Owns: the recursion over entities by byte range (no copy of the message is made: ranges of
 * the message file, or of a stored part, are re-read), the split of multiparts under every
 * boundary candidate, the decoding of leaves under every transfer-encoding candidate, and the
 * walk into attached messages. Inputs: the message bytes, a LenientContext (store, budget,
 * signal, options). Outputs: parts added to the store, tagged with the reading that found
 * them. Fails (rejects) with MimeError for limits, fs errors, or the signal's AbortError.
 *
 * What it does that mailsplit does not: every Content-Type / Content-Transfer-Encoding value
 * (first-wins and last-wins), every boundary= value (and Content-Disposition's, RFC 2231,
 * quoted-pairs, unquoted with spaces, and what readers make of a broken Content-Type:
 * boundary-variants.ts), boundaries guessed from the body of a multipart none of its own
 * splits (guess-boundary.ts), delimiters with trailing whitespace, by prefix and after blanks,
 * CR/LF/CRLF line ends, headers without a blank line, an inner part closed by any ancestor's
 * delimiter (ranges nest), children for any entity with a matching boundary, unknown
 * multipart subtypes as mixed, multipart/digest's message/rfc822 default, message/rfc822 and
 * message/global under any encoding and disposition, x-uuencode, a Content-Transfer-Encoding
 * that is not exactly a known token (quoted, with parameters, misspelt, encoded) read under
 * every decoding readers guess for it, a body its decoder meets something irregular in read
 * again as the readers who read that otherwise do, and preamble/epilogue as parts.
 */
import { Base64Decoder, PadSkippingBase64Decoder } from '../base64.js';
import { IdentityDecoder, type ChunkDecoder } from '../chunk-decoder.js';
import { UuDecoder } from '../embedded/uu.js';
import { decodeFilename } from '../filename.js';
import { addNamesOf, MAX_ALSO_NAMED } from '../../bytes/part.js';
import type { MessageBytes } from '../../bytes/message-bytes.js';
import { MimeError, MimeErrorCode, type Budget } from '../limits.js';
import { createHash } from 'node:crypto';
import { encodedKey, rangeKey, type PartStore } from '../part-store.js';
import { LooseQpDecoder, QpDecoder } from '../qp.js';
import { STANDARD_READING } from '../walk.js';
import { findDelimiters, type Delimiter } from './delimiters.js';
import { guessBoundaries, MAX_GUESSED_BOUNDARIES } from './guess-boundary.js';
import { parseHeaderBlock, type HeaderField } from './header.js';
import { interpret, isMessageType, MAX_BOUNDARY_BYTES, MAX_BOUNDARY_CANDIDATES, MAX_CTE_CANDIDATES, type BoundaryCandidate, type Interpretation } from './interpret.js';
import { holdsNothing } from './notices.js';
import { vouchDelimiters, vouchHeader } from './vouch.js';

export const LENIENT_READING = 'lenient';

/** One component of a part path: a child number, or a post-pass find such as "2/uuencode1". */
export type PathComponent = number | string;

export interface LenientContext {
  readonly store: PartStore;
  readonly budget: Budget;
  readonly signal?: AbortSignal | undefined;
  /** message/partial is allowed (else it is recorded as the EMIME_PARTIAL limit). */
  readonly allowPartial: boolean;
  /** Limits that do not stop the walk (message/partial); the first is reported. */
  readonly soft: MimeError[];
}

interface Entity {
  readonly src: MessageBytes;
  readonly start: number;
  readonly end: number;
  /** The path of this entity's own node ("" children numbering for the top multipart). */
  /** Path components; a find of the post-pass brings its own ("1/uuencode1"). */
  readonly prefix: readonly PathComponent[];
  readonly top: boolean;
  readonly defaultType: string;
  readonly tags: readonly string[];
  /** The boundaries of the multiparts around this entity in the same bytes (vouch.ts). */
  readonly outer: readonly string[];
}

export async function walkLenient(src: MessageBytes, ctx: LenientContext, prefix: readonly PathComponent[] = [], tags: readonly string[] = []): Promise<void> {
  await walkEntity(ctx, { src, start: 0, end: src.size, prefix, top: true, defaultType: 'text/plain', tags, outer: [] });
}

function readingOf(tags: readonly string[]): string {
  const t = tags.filter((x) => x !== '');
  return t.length === 0 ? LENIENT_READING : [...new Set(t)].join('+');
}

async function walkEntity(ctx: LenientContext, e: Entity): Promise<void> {
  checkAbort(ctx.signal);
  const maxHead = ctx.budget.limits.maxHeaderBytes;
  const head = await e.src.read(e.start, Math.min(e.end - e.start, maxHead + 1));
  const block = parseHeaderBlock(head, { skipMboxFrom: e.top });
  if (!block.complete && head.length > maxHead) {
    throw new MimeError(MimeErrorCode.HEADER_LIMIT, `header block exceeds ${maxHead} bytes`);
  }
  const bodyStart = e.start + block.bodyStart;
  ctx.budget.addNode(Math.max(1, e.prefix.length), block.bodyStart, LENIENT_READING, block.lines);
  if (block.irregular !== undefined) ctx.store.noteIrregular(block.irregular);
  const info = interpret(block.fields, e.defaultType);
  if (info.types.length > 1 || info.boundaries.length > 1 || info.ctes.length > 1) {
    ctx.store.noteIrregular('several candidates for a type, boundary or transfer encoding');
  }
  if (info.types.includes('message/partial') && !ctx.allowPartial) {
    ctx.soft.push(new MimeError(MimeErrorCode.PARTIAL, 'message/partial cannot be scanned whole'));
  }
  if (info.truncated) {
    // the interpretations past the bound were not read: say so (the walk goes on with the rest)
    ctx.soft.push(new MimeError(MimeErrorCode.CANDIDATE_LIMIT, `more boundary= or Content-Transfer-Encoding values than the lenient reading tries (${MAX_BOUNDARY_CANDIDATES} boundaries of at most ${MAX_BOUNDARY_BYTES} bytes, ${MAX_CTE_CANDIDATES} encodings)`));
  }
  if (ctx.store.vouching) {
    if (ctx.soft.length > 0) ctx.store.doubt(ctx.soft[0]!.message);
    const doubt = vouchHeader(head, block, info, e.top, e.outer, maxHead);
    if (doubt !== undefined) ctx.store.doubt(doubt);
    // the standard reading numbers the body of an attached message one level deeper (P.1)
    if (e.top && e.prefix.length + 1 > ctx.budget.limits.maxDepth) ctx.store.doubt('an attached message at the depth limit');
    // mailsplit makes no part of a multipart without bytes; the walk below would make one
    if (info.boundaries.length > 0 && bodyStart >= e.end) ctx.store.doubt('a multipart without a body');
  }

  // split under every boundary candidate that has delimiter lines in the body
  let split = false;
  const multipart = info.types.some((t) => t.startsWith('multipart/'));
  const seen = new Set<string>();
  const splitUnder = async (cands: readonly BoundaryCandidate[], guessTag: string): Promise<void> => {
    const delims = await findDelimiters(e.src, bodyStart, e.end, cands.map((b) => b.boundary), ctx.budget.limits.maxParts + 1, ctx.signal);
    if (ctx.store.vouching) {
      const doubt = await vouchDelimiters(e.src, bodyStart, e.end, cands[0]!.boundary, delims[0]!);
      if (doubt !== undefined) ctx.store.doubt(doubt);
    }
    for (let k = 0; k < delims.length; k++) {
      const all = delims[k]!;
      const flush = all.filter((d) => !d.indented);
      const strict = flush.filter((d) => d.strict);
      // delimiter lines after blanks (` --b`) only in a reading of their own: readers that trim lines
      for (const [list, modeTag] of [[strict, ''], [flush, 'prefix-boundary'], [all, 'indented-delimiter']] as const) {
        if (!list.some((d) => !d.close)) continue;
        const key = list.map((d) => d.lineStart).join(',');
        if (seen.has(key)) continue;
        seen.add(key);
        split = true;
        const containerPath = e.top && !multipart && e.prefix.length === 0 ? [] : e.prefix;
        const digest = info.types.includes('multipart/digest');
        await splitBody(ctx, e, bodyStart, list, containerPath, digest, [...e.tags, cands[k]!.tag, guessTag, modeTag, multipart ? '' : 'boundary-on-leaf'], cands[k]!.boundary);
      }
    }
  };
  if (info.boundaries.length > 0 && bodyStart < e.end) await splitUnder(info.boundaries, '');
  // a multipart no boundary of its header splits: clamd splits it at the delimiter-like lines
  // of its body (no plain message gets here: vouch.ts doubts such a multipart first)
  if (!split && multipart && bodyStart < e.end) {
    const guessed = await guessBoundaries(e.src, bodyStart, e.end, ctx.signal);
    if (guessed.truncated) ctx.soft.push(new MimeError(MimeErrorCode.CANDIDATE_LIMIT, `more delimiter-like lines in a multipart without a usable boundary than the lenient reading tries (${MAX_GUESSED_BOUNDARIES})`));
    if (guessed.boundaries.length > 0) {
      ctx.store.noteIrregular('a multipart split at boundaries guessed from its body');
      await splitUnder(guessed.boundaries.map((boundary) => ({ boundary, tag: '' })), 'guessed-boundary');
    }
  }
  if (split && info.types.every((t) => t.startsWith('multipart/')) && !hasEncoding(info)) return;
  await leaf(ctx, e, info, block.fields, bodyStart, split ? ['container-body'] : []);
}

function hasEncoding(info: Interpretation): boolean {
  return info.ctes.some((c) => c.token !== '' && c.token !== '7bit' && c.token !== '8bit' && c.token !== 'binary');
}

async function splitBody(ctx: LenientContext, e: Entity, bodyStart: number, list: readonly Delimiter[], containerPath: readonly PathComponent[], digest: boolean, tags: readonly string[], boundary: string): Promise<void> {
  let child = 0;
  let segStart = bodyStart;
  let inPart = false; // the segment after an open delimiter is a part; before one, or after a close one, it is not
  let preamble = true;
  const segments: Array<{ start: number; end: number; part: boolean; preamble: boolean }> = [];
  for (const d of list) {
    segments.push({ start: segStart, end: Math.max(segStart, d.lineStart - d.eolBefore), part: inPart, preamble });
    segStart = d.lineEnd;
    inPart = !d.close;
    preamble = false;
  }
  segments.push({ start: segStart, end: e.end, part: inPart, preamble: false });
  for (const s of segments) {
    if (s.part) {
      const path = [...containerPath, ++child];
      await walkEntity(ctx, { src: e.src, start: s.start, end: s.end, prefix: path, top: false, defaultType: digest ? 'message/rfc822' : 'text/plain', tags, outer: [...e.outer, boundary] });
    } else if (s.end > s.start) {
      await outside(ctx, e.src, s.start, s.end, containerPath, s.preamble ? 'preamble' : 'epilogue');
    }
  }
}

/** Preamble or epilogue: kept as a part when it holds more than whitespace and a MIME notice (notices.ts). */
async function outside(ctx: LenientContext, src: MessageBytes, start: number, end: number, path: readonly PathComponent[], kind: string): Promise<void> {
  const sniff = await src.read(start, Math.min(end - start, 4096));
  if (end - start <= 4096 && holdsNothing(sniff)) return;
  await storeRange(ctx, src, start, end, new IdentityDecoder(), {
    path: `${path.length > 0 ? path.join('.') : '0'}/${kind}`,
    contentType: 'text/plain',
    encoding: '7bit',
    reading: kind,
  });
}

async function leaf(ctx: LenientContext, e: Entity, info: Interpretation, fields: readonly HeaderField[], bodyStart: number, extraTags: readonly string[]): Promise<void> {
  // standing in for the standard reading (PartStore.vouching), its numbering: the body of an
  // attached message at P is P.1
  const path = e.prefix.length === 0 ? [1] : ctx.store.vouching && e.top ? [...e.prefix, 1] : e.prefix;
  const ct = fields.find((f) => f.name === 'content-type')?.value ?? '';
  const cd = fields.find((f) => f.name === 'content-disposition')?.value ?? '';
  const filename = safeFilename(cd, ct);
  // every name any of its Content-Type and Content-Disposition fields gives ([banned] names)
  const alsoNamed = [...new Set(fields.flatMap((f) => {
    const n = f.name === 'content-type' ? safeFilename('', f.value) : f.name === 'content-disposition' ? safeFilename(f.value, '') : undefined;
    return n !== undefined && n !== filename ? [n] : [];
  }))].slice(0, MAX_ALSO_NAMED);
  // one decoding of these bytes per decoder: two unknown tokens would repeat the same ones
  const decoded = new Set<string>();
  for (const cte of info.ctes) {
    const choices = decodersFor(cte.token);
    for (let k = 0; k < choices.length; k++) {
      const choice = choices[k]!;
      const decoder = choice.decoder();
      if (decoded.has(decoder.constructor.name)) continue;
      decoded.add(decoder.constructor.name);
      const typeTag = '';
      const tagged = readingOf([...e.tags, ...extraTags, cte.tag, choice.tag, typeTag]);
      // a part only another interpretation yields: readers disagree on this message
      if (tagged !== LENIENT_READING) ctx.store.noteIrregular(`read as ${tagged}`);
      // vouching, the one interpretation there is is the standard reading's part
      const reading = ctx.store.vouching ? STANDARD_READING.name : tagged;
      const { digest, bytes } = await storeRange(ctx, e.src, bodyStart, e.end, decoder, {
        path: path.join('.'),
        contentType: info.types[0]!,
        encoding: choice.encoding,
        reading,
        ...(filename !== undefined ? { filename } : {}),
        ...(alsoNamed.length > 0 ? { alsoNamed } : {}),
      });
      // a body of the message itself, decoded with nothing irregular (else doubt() threw)
      if (ctx.store.vouching && choice.encoding === 'base64' && ctx.store.isMessage(e.src)) ctx.store.noteDecodedBody(bodyStart, e.end);
      // an attached message under any of its types, encodings and dispositions
      const msgType = info.types.find(isMessageType);
      if (msgType !== undefined && ctx.store.claimMessageWalk(digest, LENIENT_READING)) {
        const tag = msgType === info.types[0] ? '' : 'last-CT';
        await walkEntity(ctx, { src: bytes, start: 0, end: bytes.size, prefix: path, top: true, defaultType: 'text/plain', tags: [...e.tags, cte.tag, choice.tag, tag], outer: [] });
      }
      // the decoder met what other readers decode otherwise: their decoding is one more reading
      const again = rereadFor(decoder);
      if (again !== undefined && !choices.some((c) => c.tag === again.tag)) choices.splice(k + 1, 0, again);
    }
  }
}

function safeFilename(cd: string, ct: string): string | undefined {
  try {
    return decodeFilename(cd, ct);
  } catch {
    return undefined;
  }
}

interface LenientDecoder {
  encoding: string;
  tag: string;
  decoder(): ChunkDecoder;
}

const UU_TOKENS: ReadonlySet<string> = new Set(['x-uuencode', 'uuencode', 'x-uue', 'uue']);

/**
 * The decodings of a body under one Content-Transfer-Encoding token, the first one what a
 * strict reader does. A token that is not exactly one RFC 2045 names ("quoted-printable;",
 * "x-base64", "b64", an encoded word, a uuencode token...) is something each reader guesses
 * at (clamd by similarity, others by prefix or not at all), so it is read under every
 * decoding there is: as it is, quoted-printable, base64 (which skips junk wherever it is, so
 * no sniff of the body decides) and uuencode. Irregular mail only: the cost is a few more
 * decodings of such a body, against the expansion budget.
 */
function decodersFor(token: string): LenientDecoder[] {
  switch (token) {
    case 'base64':
      return [{ encoding: 'base64', tag: '', decoder: () => new Base64Decoder() }];
    case 'quoted-printable':
      return [{ encoding: 'quoted-printable', tag: '', decoder: () => new QpDecoder() }];
    case '':
    case '7bit':
    case '8bit':
    case 'binary':
      return [{ encoding: token || '7bit', tag: '', decoder: () => new IdentityDecoder() }];
    default: {
      const uu = UU_TOKENS.has(token);
      const out: LenientDecoder[] = [
        { encoding: token, tag: '', decoder: () => new IdentityDecoder() },
        { encoding: 'quoted-printable', tag: 'unknown-CTE-qp', decoder: () => new QpDecoder() },
        { encoding: 'base64', tag: 'unknown-CTE-base64', decoder: () => new Base64Decoder() },
        { encoding: uu ? token : 'uuencode', tag: uu ? 'uuencode' : 'unknown-CTE-uuencode', decoder: () => new UuDecoder() },
      ];
      // a uuencode token: its own decoding first, as before
      return uu ? [out[3]!, ...out.slice(0, 3)] : out;
    }
  }
}

/**
 * The decoding readers who read a body otherwise use, when `decoder` met something in it
 * they read otherwise (qp.ts, base64.ts): Python's for a stray "=" in base64; Python's and
 * clamd's soft breaks in quoted-printable. Undefined for a body read plainly.
 */
function rereadFor(decoder: ChunkDecoder): LenientDecoder | undefined {
  if (decoder instanceof Base64Decoder && decoder.dataAfterPad) return { encoding: 'base64', tag: 'stray-pad-base64', decoder: () => new PadSkippingBase64Decoder() };
  if (decoder instanceof QpDecoder && decoder.irregular) return { encoding: 'quoted-printable', tag: 'loose-qp', decoder: () => new LooseQpDecoder() };
  return undefined;
}

async function storeRange(ctx: LenientContext, src: MessageBytes, start: number, end: number, decoder: ChunkDecoder, meta: Parameters<PartStore['begin']>[0]): Promise<{ digest: string; bytes: MessageBytes }> {
  // The standard reading may have decoded these very bytes with the same decoder: then the
  // content is known and stored, and hashing the range costs far less than decoding it again.
  if (end > start && ctx.store.isMessage(src)) {
    // a range of the message in memory that the standard reading decoded whole: no hash needed
    const known = ctx.store.lookupEncoded(rangeKey(decoder, start, end));
    if (known !== undefined) {
      // the content is known, the names this reading gives it may not be ([banned])
      addNamesOf(known.part, meta);
      return { digest: known.digest, bytes: known.bytes };
    }
  }
  // no full decode noted yet (the lenient reading alone): no hash of the range can find one
  if (end > start && ctx.store.knowsEncoded()) {
    const encoded = createHash('sha256');
    for await (const chunk of src.chunks(start, end)) {
      checkAbort(ctx.signal);
      encoded.update(chunk as Buffer);
    }
    const known = ctx.store.lookupEncoded(encodedKey(decoder, encoded.digest('hex')));
    if (known !== undefined) {
      // the content is known, the names this reading gives it may not be ([banned])
      addNamesOf(known.part, meta);
      return { digest: known.digest, bytes: known.bytes };
    }
  }
  const w = ctx.store.begin(meta);
  try {
    if (end > start) {
      for await (const chunk of src.chunks(start, end)) {
        checkAbort(ctx.signal);
        const out = decoder.update(chunk as Buffer);
        if (out.length > 0) await w.write(out);
      }
    }
    const tail = decoder.final();
    if (tail.length > 0) await w.write(tail);
    // the standard reading notes this when it decodes (walk.ts); standing in for it, so do we
    if ((decoder as { irregular?: boolean }).irregular) ctx.store.doubt(`irregular ${meta.encoding} at ${meta.path}`);
  } catch (err) {
    // keep what was decoded so far (a virus in it still counts), then report the limit
    if (!ctx.signal?.aborted) await w.finish().catch(() => w.abort());
    else await w.abort();
    throw err;
  }
  const done = await w.finish();
  return { digest: done.digest, bytes: done.bytes };
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error('aborted');
}
