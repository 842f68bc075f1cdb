/**
 * Header blocks read the way the most forgiving mail readers read them.
 *
 * Owns: splitting an entity's first bytes into header fields and the start of the body, and
 * parsing structured values (Content-Type, Content-Disposition) into every plausible
 * parameter value. Input: the first bytes of an entity (at most maxHeaderBytes + 1). Output:
 * the fields that give the structure (STRUCTURE_FIELDS, names normalised) and the body
 * offset; never throws. Tolerated:
 * - CRLF, LF and bare CR line ends alike, so a header "hidden" after a bare CR is a header;
 * - `Name :` (space before the colon), comments, NUL bytes and odd case in the field name;
 * - any bytes but ":" in a name (readers take a name with a byte >= 0x80 as a name);
 * - folding with spaces or tabs;
 * - no blank line after the headers: the first line that is neither a field nor a
 *   continuation starts the body;
 * - a parameter line not indented after a structure field that ends with ";"
 *   (`Content-Type: multipart/mixed;` then `boundary="b"`): a continuation, as clamd reads it
 *   (a strict reader starts the body there; the standard reading gives that reading);
 * - a leading mbox "From " line.
 * Values keep every duplicate; the caller decides first-wins and last-wins. The block is read
 * as bytes: a string is made only for a field that gives the structure (a block of a hundred
 * thousand other fields once cost a string, a regex and an object per line).
 */

export interface HeaderField {
  /** Lower case, comments and whitespace removed. */
  readonly name: string;
  /** Unfolded value, line ends removed. */
  readonly value: string;
  /**
   * Set only for a folded value: the folds removed whole, the blanks that start a continuation
   * line too (a reader that joins `"ab` CRLF ` cd"` into `"abcd"`; boundary-variants.ts).
   */
  readonly tight?: string;
}

export interface HeaderBlock {
  /** The fields named in STRUCTURE_FIELDS, in order; other fields are not kept. */
  readonly fields: HeaderField[];
  /** Offset of the first body byte in the input. */
  readonly bodyStart: number;
  /** False when the input ended (or was cut) before the header block did. */
  readonly complete: boolean;
  /** Lines of the block (fields, continuations, an mbox From line). */
  readonly lines: number;
  /**
   * What a strict parser would read otherwise, when something is: a bare CR line end, space
   * or a comment in a field name, a name byte outside RFC 5322's ftext, no blank line after the
   * block, a structure field given twice. Undefined for a plain block.
   */
  readonly irregular?: string | undefined;
}

/** The fields the lenient reading decides by; the others are read past. */
export const STRUCTURE_FIELDS: ReadonlySet<string> = new Set(['content-type', 'content-disposition', 'content-transfer-encoding']);
/** The shortest of them: a raw name shorter than this cannot normalise to one. */
const SHORTEST_STRUCTURE_NAME = 12;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const COLON = 0x3a;
const PAREN = 0x28;

/** Bytes JavaScript's \s matches (normaliseName removes them): a name made of them is empty. */
const isJsSpace = (c: number): boolean => c === SP || c === TAB || c === 0x0b || c === 0x0c || c === CR || c === LF || c === 0xa0;

export function parseHeaderBlock(buf: Buffer, opts: { skipMboxFrom: boolean }): HeaderBlock {
  const fields: Array<{ name: string; value: string; tight?: string }> = [];
  let irregular: string | undefined;
  const block = (bodyStart: number, complete: boolean): HeaderBlock => {
    const out = finish(fields);
    if (irregular === undefined) {
      for (let i = 1; i < out.length; i++) {
        if (out.findIndex((f) => f.name === out[i]!.name) < i) {
          irregular = `${out[i]!.name} given twice`;
          break;
        }
      }
    }
    return { fields: out, bodyStart, complete, lines, irregular };
  };
  /** The last field read is kept (a continuation line belongs to its value). */
  let lastKept = false;
  let anyField = false;
  let pos = 0;
  let first = true;
  let lines = 0;
  while (pos < buf.length) {
    const { lineEnd, next } = lineAt(buf, pos);
    const end = next < 0 ? buf.length : lineEnd;
    if (irregular === undefined && next >= 0 && buf[lineEnd] === CR && buf[lineEnd + 1] !== LF) irregular = 'bare CR line end in a header';
    if (next >= 0 && end === pos) return block(next, true);
    if (first && opts.skipMboxFrom && next >= 0 && isMboxFrom(buf, pos, end)) {
      first = false;
      pos = next;
      continue;
    }
    first = false;
    lines++;
    const c0 = buf[pos]!;
    if ((c0 === SP || c0 === TAB) && anyField) {
      if (lastKept) fold(fields[fields.length - 1]!, buf.toString('latin1', pos, end));
    } else {
      const f = fieldAt(buf, pos, end);
      if (f === undefined && lastKept && isUnindentedParameter(fields[fields.length - 1]!.value, buf, pos, end)) {
        irregular ??= 'a parameter line without indentation';
        fold(fields[fields.length - 1]!, buf.toString('latin1', pos, end));
      } else if (f === undefined) {
        // neither a field nor a continuation: no blank line after the headers
        irregular ??= 'no blank line after the header';
        return block(pos, true);
      } else {
        if (irregular === undefined) irregular = nameIrregularity(buf, pos, end);
        anyField = true;
        lastKept = f !== null;
        if (f !== null) fields.push(f);
      }
    }
    // the last line has no end: a field (or continuation) cut short by the end of the input
    if (next < 0) return block(buf.length, false);
    pos = next;
  }
  return block(buf.length, false);
}

/**
 * A field name a strict parser does not take as written: bytes outside ftext (33-126 but
 * ":"), which includes a space or tab before the colon and 8-bit bytes; a "(" starting a
 * comment is inside ftext but no reader but the lenient one strips it.
 */
function nameIrregularity(buf: Buffer, start: number, end: number): string | undefined {
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c === COLON) return undefined;
    if (c < 33 || c > 126) return 'a header field name with a byte a strict parser refuses';
    if (c === PAREN) return 'a comment in a header field name';
  }
  return undefined;
}

/**
 * The field on line buf[start, end): undefined when the line is no field, null when it is a
 * field that STRUCTURE_FIELDS does not name. A field is a name of any bytes but ":" and line
 * ends (not starting with a space or tab), optional spaces or tabs, then ":".
 */
function fieldAt(buf: Buffer, start: number, end: number): { name: string; value: string } | null | undefined {
  const c0 = buf[start]!;
  if (c0 === COLON || c0 === SP || c0 === TAB) return undefined;
  let colon = start + 1;
  while (colon < end && buf[colon] !== COLON) colon++;
  if (colon >= end) return undefined;
  let nameEnd = colon;
  while (nameEnd > start && (buf[nameEnd - 1] === SP || buf[nameEnd - 1] === TAB)) nameEnd--;
  const plain = c0 !== PAREN && !isJsSpace(c0);
  if (plain && nameEnd - start < SHORTEST_STRUCTURE_NAME) return null;
  const name = normaliseName(buf.toString('latin1', start, nameEnd));
  // a name that is only comments or spaces is no name
  if (name === '') return undefined;
  if (!STRUCTURE_FIELDS.has(name)) return null;
  return { name, value: buf.toString('latin1', colon + 1, end) };
}

const FROM = Buffer.from('From ', 'latin1');

/** `From ` or `>From ` (an mbox separator line). */
function isMboxFrom(buf: Buffer, start: number, end: number): boolean {
  const s = buf[start] === 0x3e ? start + 1 : start;
  return end - s >= FROM.length && buf.compare(FROM, 0, FROM.length, s, s + FROM.length) === 0;
}

/** Appends a continuation line to a field's value (and to its value with folds removed). */
function fold(f: { value: string; tight?: string }, line: string): void {
  f.tight = (f.tight ?? f.value) + line.replace(/^[ \t]+/, '');
  f.value += line;
}

/**
 * Bytes of a line looked at for `name=`: a parameter name is short, and a longer line (the
 * first line of a body) is no parameter line.
 */
const MAX_PARAMETER_NAME_BYTES = 64;

/**
 * A line `name=...` right after a kept structure field whose value so far ends with ";": the
 * parameter of that field, written without the blank that makes it a continuation.
 */
function isUnindentedParameter(value: string, buf: Buffer, start: number, end: number): boolean {
  if (!value.trimEnd().endsWith(';')) return false;
  const head = buf.toString('latin1', start, Math.min(end, start + MAX_PARAMETER_NAME_BYTES + 1));
  return /^[A-Za-z][-A-Za-z0-9_.]*\*?[0-9]*\*?[ \t]*=/.test(head);
}

function finish(fields: Array<{ name: string; value: string; tight?: string }>): HeaderField[] {
  return fields.map((f) => (f.tight !== undefined ? { name: f.name, value: f.value.trim(), tight: f.tight.trim() } : { name: f.name, value: f.value.trim() }));
}

/** NUL bytes in a name are dropped too: clamd reads `Content-Transfer\0-Encoding` as the field. */
function normaliseName(raw: string): string {
  return stripComments(raw).replace(/[\s\0]+/g, '').toLowerCase();
}

/** End of the line at `pos` and start of the next; next is -1 when no line end follows. */
export function lineAt(buf: Buffer, pos: number): { lineEnd: number; next: number } {
  for (let i = pos; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === LF) return { lineEnd: i, next: i + 1 };
    if (c === CR) {
      if (i + 1 < buf.length) return { lineEnd: i, next: buf[i + 1] === LF ? i + 2 : i + 1 };
      return { lineEnd: i, next: -1 };
    }
  }
  return { lineEnd: buf.length, next: -1 };
}

/** Removes RFC 822 comments (nested, with quoted-pairs) outside quoted strings. */
export function stripComments(v: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c === '\\' && (quoted || depth > 0) && i + 1 < v.length) {
      if (depth === 0) out += c + v[i + 1];
      i++;
      continue;
    }
    if (depth === 0 && c === '"') quoted = !quoted;
    else if (!quoted && c === '(') {
      depth++;
      continue;
    } else if (!quoted && c === ')' && depth > 0) {
      depth--;
      continue;
    }
    if (depth === 0) out += c;
  }
  return out;
}

export interface StructuredValue {
  /** The value before the first ";", comments removed, lower case ("multipart/mixed"). */
  readonly value: string;
  /** Every parameter as written, in order, duplicates kept; names lower case. */
  readonly params: ReadonlyArray<{ readonly name: string; readonly values: readonly string[] }>;
}

/**
 * Parses `type/subtype; a=b; ...`. Each parameter has every plausible value: a quoted string
 * unquoted (quoted-pairs undone), an unquoted value whole (with its spaces) and cut at the
 * first space or comment, as different readers cut it.
 */
export function parseStructured(raw: string): StructuredValue {
  const segments = splitParams(raw);
  const value = stripComments(segments[0] ?? '').trim().split(/\s+/, 1)[0]!.toLowerCase();
  const params: Array<{ name: string; values: string[] }> = [];
  for (const seg of segments.slice(1)) {
    const eq = seg.indexOf('=');
    if (eq < 0) continue;
    const name = stripComments(seg.slice(0, eq)).trim().toLowerCase();
    if (name === '') continue;
    const rest = seg.slice(eq + 1).trim();
    const values = new Set<string>();
    if (rest.startsWith('"')) {
      let v = '';
      let i = 1;
      for (; i < rest.length && rest[i] !== '"'; i++) {
        if (rest[i] === '\\' && i + 1 < rest.length) i++;
        v += rest[i];
      }
      values.add(v);
      // a reader that ignores quoted-pairs keeps the backslashes
      const literal = rest.slice(1, i < rest.length ? i : undefined);
      values.add(literal);
    } else {
      const noComment = stripComments(rest).trim();
      values.add(noComment);
      values.add(rest);
      values.add(noComment.split(/\s/, 1)[0]!);
    }
    values.delete('');
    if (values.size > 0) params.push({ name, values: [...values] });
  }
  return { value, params };
}

/** Splits at ";" outside quoted strings and comments. */
function splitParams(raw: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let depth = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\' && (quoted || depth > 0) && i + 1 < raw.length) {
      cur += c + raw[i + 1];
      i++;
      continue;
    }
    if (depth === 0 && c === '"') quoted = !quoted;
    else if (!quoted && c === '(') depth++;
    else if (!quoted && c === ')' && depth > 0) depth--;
    else if (!quoted && depth === 0 && c === ';') {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

/**
 * The RFC 2231 value of parameter `key` (`key*`, or `key*0`, `key*1*`, ... continuations), or
 * undefined. Percent escapes become bytes (latin1); the charset is not needed for boundaries.
 */
export function rfc2231Value(params: StructuredValue['params'], key: string): string | undefined {
  const pieces = new Map<number, { text: string; encoded: boolean }>();
  let single: string | undefined;
  for (const p of params) {
    if (!p.name.startsWith(key + '*')) continue;
    const m = /^\*(?:(\d{1,3})(\*)?|())$/.exec(p.name.slice(key.length));
    if (!m) continue;
    const text = p.values[0]!;
    if (m[3] !== undefined) single = decodeExtended(text, true);
    else if (!pieces.has(Number(m[1]))) pieces.set(Number(m[1]), { text, encoded: m[2] === '*' });
  }
  if (single !== undefined) return single;
  if (pieces.size === 0) return undefined;
  let out = '';
  for (let i = 0; pieces.has(i); i++) {
    const piece = pieces.get(i)!;
    out += piece.encoded ? decodeExtended(piece.text, i === 0) : piece.text;
  }
  return out || undefined;
}

function decodeExtended(text: string, first: boolean): string {
  let t = text;
  if (first) {
    const m = /^[^']*'[^']*'/.exec(t);
    if (m) t = t.slice(m[0].length);
  }
  return t.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}
