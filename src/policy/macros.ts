/**
 * Templates with macros (%v %s %r %q %i %h %f %e %a %%): the reply texts, header values and notices an admin may write, and the
 * one place where values taken from a message (virus names, file names, sender, recipients,
 * headers) are made safe for where they go.
 *
 * Owns: the macro vocabulary, checkTemplate() (run when a template is loaded: an unknown macro
 * is a config error, never a surprise at mail time) and expandTemplate(), which escapes each
 * value for its destination:
 *   reply   one line of printable ASCII for an SMTP reply (courierfilter/reply.ts cuts lines at
 *           400 bytes, so that is the default bound here too)
 *   header  the same for a header field value (foldHeader() then folds it at spaces)
 *   text    a notice body in UTF-8: line breaks normalised to LF; in values, every control,
 *           bidi / invisible format character, line separator and lone surrogate is shown as
 *           `\xHH` / `\uHHHH` (what an attacker wrote is shown, not obeyed); only %h keeps its
 *           line breaks and TABs
 * Inputs: a template (admin text, trusted but still kept to the destination's alphabet) and
 * MacroValues (hostile). Outputs: strings. Fails with nothing: an unknown macro in a template
 * that skipped checkTemplate() is left as it is, escaped like the rest of the template.
 */

/** The macros, and what each one stands for. */
export const MACROS = Object.freeze({
  v: 'virus names, comma-separated',
  s: 'envelope sender',
  r: 'recipients, comma-separated',
  q: 'queue id',
  i: 'client IP address',
  h: 'original headers (notices only)',
  f: 'file names of the infected parts, comma-separated',
  e: 'the reason (a scan error, a limit, a damaged file)',
  a: 'what avfilter did with the message (drop, reject, tempfail, pass, ...)',
} as const);
export type MacroName = keyof typeof MACROS;

/** Macros a reply text or a header value may use: everything but the headers. */
export const LINE_MACROS = 'vsrqifea';
/** Macros a notice may use. */
export const NOTICE_MACROS = 'vsrqihfea';

export type EscapeMode = 'reply' | 'header' | 'text';

export interface MacroValues {
  readonly names?: readonly string[] | undefined;
  readonly sender?: string | undefined;
  readonly recipients?: readonly string[] | undefined;
  readonly queueId?: string | undefined;
  readonly clientIp?: string | undefined;
  /** The original header section as text (decoded as latin1 or UTF-8 by the caller). */
  readonly headers?: string | undefined;
  readonly files?: readonly string[] | undefined;
  readonly reason?: string | undefined;
  readonly action?: string | undefined;
}

/** Default bound of a reply line: courierfilter/reply.ts MAX_REPLY_LINE_BYTES. */
export const MAX_REPLY_BYTES = 400;
/** A header value, unfolded; RFC 5322 lines stop at 998, folding keeps each well under. */
export const MAX_HEADER_BYTES = 900;
/** A whole notice: a report, not a copy of the message. */
export const MAX_TEXT_CHARS = 64 * 1024;
/** %h in a notice: enough to trace the message (Received, From, Subject, Message-ID). */
export const MAX_HEADERS_CHARS = 16 * 1024;
/** One value in a notice (a name, an address); a 10 KB file name is an attack, not a name. */
export const MAX_VALUE_CHARS = 512;
/** Items shown of a list (%v, %r, %f); the rest is counted ("+N more"). */
export const MAX_LIST_ITEMS = 50;

const CUT = '...';

/**
 * Returns an error message for the first macro not in `allowed` (or a lone `%` at the end),
 * else undefined. `allowed` is a string of macro letters, e.g. LINE_MACROS.
 */
export function checkTemplate(text: string, allowed: string | Iterable<string>): string | undefined {
  const ok = new Set(typeof allowed === 'string' ? [...allowed] : allowed);
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '%') continue;
    const c = text[i + 1];
    if (c === undefined) return `a lone "%" at the end (write "%%" for a percent sign)`;
    i++;
    if (c === '%' || ok.has(c)) continue;
    const shown = /^[\x21-\x7e]$/.test(c) ? `%${c}` : `"%" followed by ${escapeChar(c)}`;
    const list = [...ok].sort().map((m) => `%${m}`).join(' ');
    const where = Object.hasOwn(MACROS, c) ? ' (not allowed here)' : '';
    return `unknown macro ${shown}${where} at character ${i}; allowed: ${list} and %%`;
  }
  return undefined;
}

/** Expands `template` with `values`, each escaped for `mode`; see the module comment. */
export function expandTemplate(template: string, values: MacroValues, mode: EscapeMode, opts: { maxLength?: number } = {}): string {
  let out = '';
  let run = '';
  for (let i = 0; i < template.length; i++) {
    const ch = template[i]!;
    const m = template[i + 1];
    if (ch !== '%' || m === undefined || (m !== '%' && !Object.hasOwn(MACROS, m))) {
      run += ch;
      continue;
    }
    i++;
    if (m === '%') {
      run += '%';
      continue;
    }
    out += literal(run, mode) + value(m as MacroName, values, mode);
    run = '';
  }
  out += literal(run, mode);
  if (mode === 'text') return bound(out, opts.maxLength ?? MAX_TEXT_CHARS);
  const max = opts.maxLength ?? (mode === 'reply' ? MAX_REPLY_BYTES : MAX_HEADER_BYTES);
  return bound(out.replace(/ {2,}/g, ' ').trim(), max);
}

/** One value escaped for `mode`: for callers that build a line themselves (a log-free header). */
export function escapeValue(s: string, mode: EscapeMode): string {
  return mode === 'text' ? textValue(s, MAX_VALUE_CHARS) : lineValue(s);
}

/**
 * "Name: value" folded at spaces so no line passes 78 characters where a space allows (RFC 5322
 * §2.2.3); the value is escaped for a header first. `eol` is "\n" in Courier's data files.
 */
export function foldHeader(name: string, value: string, eol = '\n'): string {
  const words = expandTemplate('%s', { sender: value }, 'header').split(' ');
  const lines: string[] = [];
  let line = `${name}:`;
  for (const w of words) {
    if (w === '') continue;
    if (line.length + 1 + w.length > 78 && line.length > name.length + 1) {
      lines.push(line);
      line = ` ${w}`;
    } else line += ` ${w}`;
  }
  lines.push(line);
  return lines.join(eol) + eol;
}

function value(m: MacroName, v: MacroValues, mode: EscapeMode): string {
  switch (m) {
    case 'v':
      return list(v.names, mode);
    case 'r':
      return list(v.recipients, mode);
    case 'f':
      return list(v.files, mode);
    case 's':
      // The null sender (a bounce) has no address; say so rather than print nothing.
      return one(v.sender === '' ? '<>' : v.sender, mode);
    case 'q':
      return one(v.queueId, mode);
    case 'i':
      return one(v.clientIp, mode);
    case 'e':
      return one(v.reason, mode);
    case 'a':
      return one(v.action, mode);
    case 'h':
      return headersValue(v.headers, mode);
  }
}

function one(s: string | undefined, mode: EscapeMode): string {
  if (s === undefined || s === '') return '-';
  return escapeValue(s, mode);
}

function list(items: readonly string[] | undefined, mode: EscapeMode): string {
  if (items === undefined || items.length === 0) return '-';
  const shown = items.slice(0, MAX_LIST_ITEMS).map((s) => escapeValue(s, mode));
  const more = items.length > MAX_LIST_ITEMS ? [`+${items.length - MAX_LIST_ITEMS} more`] : [];
  return [...shown, ...more].join(', ');
}

function headersValue(h: string | undefined, mode: EscapeMode): string {
  if (h === undefined || h === '') return '-';
  // A header section in a reply or header line would be noise at best: allowed in notices only
  // (checkTemplate with LINE_MACROS refuses it); an unchecked template gets one safe line.
  if (mode !== 'text') return lineValue(h);
  const norm = h.replace(/\r\n?/g, '\n');
  const cut = norm.length > MAX_HEADERS_CHARS ? `${norm.slice(0, MAX_HEADERS_CHARS)}\n[... headers cut at ${MAX_HEADERS_CHARS} characters]` : norm;
  return cut.replace(UNSAFE_KEEP_LINES, escapeChar).replace(/\n+$/, '');
}

/**
 * Characters shown escaped in a notice: Cc (C0, DEL, C1), Cf (bidi overrides, zero-width,
 * BOM), Zl/Zp (U+2028/9) and lone surrogates — the same class the log escapes (ops/log.ts).
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
/** The same, but TAB and LF stay (headers keep their lines and folding). */
const UNSAFE_KEEP_LINES = /(?![\t\n])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

function escapeChar(c: string): string {
  const n = c.codePointAt(0)!;
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

function textValue(s: string, max: number): string {
  const cut = s.length > max ? `${s.slice(0, max)}${CUT}` : s;
  return cut.replace(UNSAFE, escapeChar);
}

/**
 * One line of printable ASCII: controls (CR, LF, TAB, NUL, ESC, DEL, C1) become spaces, other
 * non-ASCII (bidi overrides included) becomes "?" — replies and headers are 7-bit.
 */
function lineValue(s: string): string {
  // Bounded before the regexes so a 10 MB name costs no more than a short one.
  const cut = s.length > MAX_HEADER_BYTES ? s.slice(0, MAX_HEADER_BYTES) : s;
  return cut
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
    .replace(/[^\u0020-\u007e]/gu, '?')
    .replace(/ {2,}/g, ' ')
    .trim();
}

/** The template's own text: an admin's, but kept to the destination's alphabet all the same. */
function literal(s: string, mode: EscapeMode): string {
  // Not lineValue: its trim would eat the spaces between the text and a macro.
  if (mode !== 'text') return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').replace(/[^\u0020-\u007e]/gu, '?');
  return s.replace(/\r\n?/g, '\n').replace(/(?![\t\n])[\p{Cc}\p{Cs}]/gu, '');
}

function bound(s: string, max: number): string {
  if (s.length <= max) return s;
  return `${s.slice(0, Math.max(0, max - CUT.length)).trimEnd()}${CUT}`;
}
