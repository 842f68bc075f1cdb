/**
 * A small PDF object parser (PDF 1.7, 7.3) for the few dictionaries the PDF reader must read
 * as values: /DecodeParms (pdf.ts) and the /Encrypt dictionary and trailer /ID (pdf-crypt.ts).
 * pdf.ts finds streams by keyword; only these values need real syntax, because their strings
 * (/O, /U, /ID) hold any bytes, `>>` and `)` included.
 *
 * Input: the file as a latin1 string (offset i is byte i) and a bounded range. Output: a value
 * and where it ends, or undefined for anything that is not one. Bounded: nesting depth, items
 * per container and string lengths have limits, so a hostile value costs at most its range.
 * Never throws.
 */

export type PdfValue =
  | { t: 'num'; v: number }
  | { t: 'name'; v: string }
  | { t: 'str'; v: Buffer }
  | { t: 'ref'; num: number; gen: number }
  | { t: 'bool'; v: boolean }
  | { t: 'null' }
  | { t: 'array'; v: PdfValue[] }
  | { t: 'dict'; v: Map<string, PdfValue> };

export interface ParseLimits {
  readonly depth: number;
  readonly items: number;
  readonly string: number;
}

/**
 * For values looked for by key anywhere (/Encrypt, /ID): deeper than any real /Encrypt (the crypt
 * filters are three levels down), items (/ID has two, /Encrypt about twenty) and string bytes
 * (/O and /U of R6 are 48, /ID entries 16 to 32) of a real one.
 */
export const SMALL_VALUE: ParseLimits = { depth: 8, items: 256, string: 4096 };
/**
 * For a stream's own dictionary, parsed from its object header to `stream`: a /Filter array may
 * be as long as the writer made it (a cut would leave a stream half decoded); the range itself
 * bounds the cost.
 */
export const STREAM_DICT: ParseLimits = { depth: 32, items: Number.MAX_SAFE_INTEGER, string: Number.MAX_SAFE_INTEGER };

export const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x0c || c === 0x00;
export const isDelimiter = (c: number): boolean => isSpace(c) || c === 0x2f || c === 0x5b || c === 0x5d || c === 0x3c ||
  c === 0x3e || c === 0x28 || c === 0x29 || c === 0x7b || c === 0x7d || c === 0x25 || Number.isNaN(c);

function skip(s: string, i: number, to: number): number {
  for (;;) {
    while (i < to && isSpace(s.charCodeAt(i))) i++;
    if (i < to && s[i] === '%') { while (i < to && s[i] !== '\n' && s[i] !== '\r') i++; continue; }
    return i;
  }
}

/** The value starting at (after spaces) `i`, and the index just after it. */
export function parseValue(s: string, i: number, to: number, depth = 0, lim: ParseLimits = SMALL_VALUE): { value: PdfValue; end: number } | undefined {
  if (depth > lim.depth) return undefined;
  i = skip(s, i, to);
  if (i >= to) return undefined;
  const c = s[i]!;
  if (c === '/') {
    let j = i + 1;
    while (j < to && j - i < 128 && !isDelimiter(s.charCodeAt(j))) j++;
    // #hh stands for the byte hh (7.3.5): /Flat#65Decode is /FlateDecode to every reader
    const raw = s.slice(i + 1, j);
    const v = raw.includes('#') ? raw.replace(/#([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))) : raw;
    return { value: { t: 'name', v }, end: j };
  }
  if (c === '(') return literalString(s, i + 1, to, lim.string);
  if (c === '<' && s[i + 1] === '<') {
    const map = new Map<string, PdfValue>();
    let j = i + 2;
    for (;;) {
      j = skip(s, j, to);
      if (j >= to || map.size >= lim.items) return undefined;
      if (s.startsWith('>>', j)) return { value: { t: 'dict', v: map }, end: j + 2 };
      const key = parseValue(s, j, to, depth + 1, lim);
      if (!key || key.value.t !== 'name') return undefined;
      const val = parseValue(s, key.end, to, depth + 1, lim);
      if (!val) return undefined;
      map.set(key.value.v, val.value);
      j = val.end;
    }
  }
  if (c === '<') {
    // Searched in a bounded slice: an unclosed '<' must not cost a scan to the end of the file.
    const near = s.slice(i + 1, Math.min(to, i + 2 * Math.min(lim.string, to) + 64)).indexOf('>');
    if (near < 0) return undefined;
    const close = i + 1 + near;
    const hex = s.slice(i + 1, close).replace(/[\0\t\n\f\r ]/g, '');
    if (/[^0-9a-fA-F]/.test(hex)) return undefined;
    return { value: { t: 'str', v: Buffer.from(hex.length % 2 ? hex + '0' : hex, 'hex') }, end: close + 1 };
  }
  if (c === '[') {
    const items: PdfValue[] = [];
    let j = i + 1;
    for (;;) {
      j = skip(s, j, to);
      if (j >= to || items.length >= lim.items) return undefined;
      if (s[j] === ']') return { value: { t: 'array', v: items }, end: j + 1 };
      const val = parseValue(s, j, to, depth + 1, lim);
      if (!val) return undefined;
      items.push(val.value);
      j = val.end;
    }
  }
  const num = /^[+-]?(\d{1,15}(\.\d*)?|\.\d{1,15})/.exec(s.slice(i, Math.min(to, i + 40)));
  if (num) {
    const end = i + num[0].length;
    // `N G R`: an indirect reference (two unsigned integers then R).
    const ref = /^(\s+)(\d{1,6})(\s+)R(?![^\0\t\n\f\r ()<>[\]{}/%])/.exec(s.slice(end, Math.min(to, end + 32)));
    if (ref && /^\d+$/.test(num[0])) return { value: { t: 'ref', num: Number(num[0]), gen: Number(ref[2]) }, end: end + ref[0].length };
    return { value: { t: 'num', v: Number(num[0]) }, end };
  }
  for (const [word, value] of [['true', { t: 'bool', v: true }], ['false', { t: 'bool', v: false }], ['null', { t: 'null' }]] as const) {
    if (s.startsWith(word, i) && isDelimiter(s.charCodeAt(i + word.length))) return { value, end: i + word.length };
  }
  return undefined;
}

const ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, b: 8, f: 12 };

function literalString(s: string, i: number, to: number, max: number): { value: PdfValue; end: number } | undefined {
  const out: number[] = [];
  let depth = 0;
  for (; i < to; i++) {
    if (out.length > max) return undefined;
    const c = s.charCodeAt(i);
    if (c === 0x5c && i + 1 < to) {
      const e = s[++i]!;
      if (e in ESCAPES) out.push(ESCAPES[e]!);
      else if (e >= '0' && e <= '7') {
        let v = 0;
        let k = 0;
        while (k < 3 && i < to && s[i]! >= '0' && s[i]! <= '7') { v = v * 8 + s.charCodeAt(i) - 0x30; i++; k++; }
        i--;
        out.push(v & 0xff);
      } else if (e === '\r') { if (s[i + 1] === '\n') i++; } // a line continuation
      else if (e !== '\n') out.push(s.charCodeAt(i));
      continue;
    }
    if (c === 0x28) depth++;
    if (c === 0x29 && depth-- === 0) return { value: { t: 'str', v: Buffer.from(out) }, end: i + 1 };
    out.push(c);
  }
  return undefined;
}

/** A dictionary's entry as a number, name, string, if it is one. */
export const num = (d: Map<string, PdfValue> | undefined, k: string): number | undefined => {
  const v = d?.get(k);
  return v?.t === 'num' ? v.v : undefined;
};
export const name = (d: Map<string, PdfValue> | undefined, k: string): string | undefined => {
  const v = d?.get(k);
  return v?.t === 'name' ? v.v : undefined;
};
export const str = (d: Map<string, PdfValue> | undefined, k: string): Buffer | undefined => {
  const v = d?.get(k);
  return v?.t === 'str' ? v.v : undefined;
};
export const dict = (d: Map<string, PdfValue> | undefined, k: string): Map<string, PdfValue> | undefined => {
  const v = d?.get(k);
  return v?.t === 'dict' ? v.v : undefined;
};
