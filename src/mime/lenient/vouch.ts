/**
 * When the lenient reading can stand in for the standard one: the rule extract.ts uses to read
 * a message in memory once instead of twice.
 *
 * Owns: the per-entity checks that a message is plain enough for mailsplit (walk.ts) to read it
 * exactly as the lenient reading's first interpretation does: the same entities, the same body
 * ranges, the same decoders, types and names. The rule is a whitelist, written against what
 * mailsplit does (@zone-eu/mailsplit 5.4.x: delimiters matched on lines split at LF with at
 * most "--" and the line end after the boundary, only the node's and its parent's boundary
 * tried, header folds unfolded to one space by libmime.decodeHeader, the type guessed from a
 * filename when Content-Type is absent): anything it does not name is a doubt, and a doubt
 * means both readings run. Inputs: one entity's header block and interpretation, or one
 * multipart's delimiter lines. Output: the reason it cannot vouch, or undefined. Never throws.
 * The lenient walker (walk.ts) asks while it walks, only when the store is vouching.
 */
import type { MessageBytes } from '../../bytes/message-bytes.js';
import { AvError } from '../../errors.js';
import { MAX_HEADER_LINES_PER_BLOCK } from '../limits.js';
import type { Delimiter } from './delimiters.js';
import type { HeaderBlock } from './header.js';
import type { Interpretation } from './interpret.js';

/** Thrown by PartStore while vouching, and caught by extract.ts: the message gets both readings. */
export class CannotVouch extends AvError {
  constructor(readonly why: string) {
    super('EMIME_UNVOUCHED', 'internal', `the lenient reading cannot stand in for the standard one: ${why}`);
    this.name = 'CannotVouch';
  }
}

// RFC 7230 tchar; a parameter name without "*" (RFC 2231 values are parsed otherwise by each reader)
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const PARAM_NAME = '[-A-Za-z0-9_.]+';
/** A quoted string of printable ASCII, no quoted-pair: every reader unquotes it alike. */
const QUOTED = '"[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*"';
const PARAMS = `(?:[ \\t]*;[ \\t]*${PARAM_NAME}=(?:${TOKEN}|${QUOTED}))*[ \\t]*;?[ \\t]*`;
const CONTENT_TYPE = new RegExp(`^${TOKEN}/${TOKEN}${PARAMS}$`);
const DISPOSITION = new RegExp(`^${TOKEN}${PARAMS}$`);
/** A fold inside a quoted string unfolds to one space for mailsplit, to the blanks as written for the lenient reading. */
const FOLD_IN_QUOTES = /"[^"]*(?: {2}|\t)[^"]*"/;
const ENCODINGS: ReadonlySet<string> = new Set(['7bit', '8bit', 'binary', 'base64', 'quoted-printable']);
/** RFC 2046 bcharsnospace without "(", ")" and ",": a boundary every reader reads as written. */
const BOUNDARY = /^[0-9A-Za-z'+_\-./:=?]{1,70}$/;
/** Types one reader walks or defaults otherwise (digest children, message/news, fragments). */
const DOUBTFUL_TYPES: ReadonlySet<string> = new Set(['multipart/digest', 'message/news', 'message/partial', 'message/external-body']);
/** Headroom under the header limits: mailsplit counts a block's bytes and lines its own way. */
const HEADER_SLACK_BYTES = 16;
const HEADER_SLACK_LINES = 2;

/**
 * One entity's header block: complete, within the limits with headroom, no mbox or HTTP line
 * first (mailsplit skips either), every structure field in a grammar both readers parse alike.
 * `outer`: the boundaries of the multiparts around it in this message.
 */
export function vouchHeader(head: Buffer, block: HeaderBlock, info: Interpretation, top: boolean, outer: readonly string[], maxHeaderBytes: number): string | undefined {
  if (!block.complete) return 'a header block without its blank line';
  if (block.bodyStart > maxHeaderBytes - HEADER_SLACK_BYTES || block.lines > MAX_HEADER_LINES_PER_BLOCK - HEADER_SLACK_LINES) return 'a header block near the limits';
  if (top && /^(?:>?From |POST )/i.test(head.toString('latin1', 0, 6))) return 'an mbox or HTTP line first';
  let ct: string | undefined;
  let cd: string | undefined;
  for (const f of block.fields) {
    if (f.name === 'content-type') ct = f.value;
    else if (f.name === 'content-disposition') cd = f.value;
    else if (!ENCODINGS.has(f.value.toLowerCase())) return 'a Content-Transfer-Encoding not plainly known';
  }
  if (ct === undefined && cd !== undefined) return 'a Content-Disposition without a Content-Type (mailsplit guesses the type)';
  if (ct !== undefined && (!CONTENT_TYPE.test(ct) || FOLD_IN_QUOTES.test(ct) || repeatsParameter(ct))) return 'a Content-Type outside the plain grammar';
  if (cd !== undefined && (!DISPOSITION.test(cd) || FOLD_IN_QUOTES.test(cd) || repeatsParameter(cd))) return 'a Content-Disposition outside the plain grammar';
  const type = info.types[0]!;
  if (DOUBTFUL_TYPES.has(type)) return `type ${type}`;
  const multipart = type.startsWith('multipart/');
  // the one boundary there is, from Content-Type's own parameter (mailsplit reads no other)
  const given = ct !== undefined ? parameter(ct, 'boundary') : undefined;
  const boundary = info.boundaries[0]?.boundary;
  if (info.boundaries.length > 1 || given !== boundary) return 'a boundary from elsewhere than the Content-Type';
  if (multipart !== (boundary !== undefined)) return multipart ? 'a multipart without a boundary' : 'a boundary on a part that is no multipart';
  if (boundary !== undefined) {
    if (!BOUNDARY.test(boundary)) return 'a boundary outside the plain characters';
    // nested boundaries that start alike: which one a line closes depends on the reader
    if (outer.some((o) => o.startsWith(boundary) || boundary.startsWith(o))) return 'nested boundaries that prefix one another';
  }
  return undefined;
}

/** A parameter's value, in a value that passed the plain grammar (a token or a quoted string). */
function parameter(value: string, name: string): string | undefined {
  for (const m of value.matchAll(/;[ \t]*([-A-Za-z0-9_.]+)=(?:"([^"]*)"|([^\s;"]+))/g)) {
    if (m[1]!.toLowerCase() === name) return m[2] ?? m[3];
  }
  return undefined;
}

function repeatsParameter(value: string): boolean {
  const names = [...value.matchAll(/;[ \t]*([-A-Za-z0-9_.]+)=/g)].map((m) => m[1]!.toLowerCase());
  return new Set(names).size !== names.length;
}

/**
 * One multipart's delimiter lines, as the lenient reading found them for its boundary: every
 * line that starts with "--boundary" must be exactly "--boundary" or "--boundary--" after an
 * LF and before an LF or CRLF (the close one may end the input), at least one opens a part,
 * and the only close one is the last (mailsplit treats delimiters after it as epilogue, and
 * does not see a grandparent's delimiter inside a part left open).
 */
export async function vouchDelimiters(src: MessageBytes, bodyStart: number, end: number, boundary: string, all: readonly Delimiter[]): Promise<string | undefined> {
  if (all.length < 2 || !all[all.length - 1]!.close || all.slice(0, -1).some((d) => d.close)) return 'a multipart whose delimiters do not open parts and close once, last';
  for (const d of all) {
    if (d.indented) return 'a delimiter line after blanks';
    const want = 2 + boundary.length + (d.close ? 2 : 0);
    const from = d.lineStart > bodyStart ? d.lineStart - 1 : d.lineStart;
    const line = await src.read(from, Math.min(end, d.lineEnd) - from);
    if (d.lineStart > bodyStart && line[0] !== 0x0a) return 'a delimiter after a bare CR';
    if (d.lineStart === bodyStart && bodyStart > 0 && (await src.read(bodyStart - 1, 1))[0] !== 0x0a) return 'a delimiter after a bare CR';
    const rest = line.subarray(want + (d.lineStart > bodyStart ? 1 : 0));
    const plainEnd = rest.length === 1 ? rest[0] === 0x0a : rest.length === 2 ? rest[0] === 0x0d && rest[1] === 0x0a : rest.length === 0 && d.close && d.lineEnd >= end;
    if (!plainEnd) return 'a delimiter line with more than its boundary and line end';
  }
  return undefined;
}
