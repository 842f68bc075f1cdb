/**
 * What a stream's dictionary says, read as viewers read it (pdf.js, qpdf): the dictionary parsed
 * from its object header to `stream` (a key inside a nested dictionary or a string is not the
 * stream's own), values that are indirect references (`/Filter 8 0 R`, `/Length 9 0 R`,
 * `/DecodeParms [null 12 0 R]`) resolved through an index of the file's objects, and a /Filter
 * array of any length. Where the dictionary does not parse, or readers would disagree on it (a
 * key given twice: pdf.js takes the last, a key search the first), each reading is returned.
 *
 * Owns: the object index (built once, on the first reference: one pass over the file), the
 * resolution of references (a few hops: a reference to a reference is followed, a loop is not)
 * and the stream dictionary's readings. Input: the file as a latin1 string, a dictionary's range.
 * Output: StreamReading[] (at least one). Linear in the file; never throws.
 */
import { parseValue, STREAM_DICT, type PdfValue } from './pdf-syntax.js';

/** References followed from one value (a reference to a reference...): real files use one. */
const MAX_HOPS = 4;
/** How far an object's value is parsed from its header. */
const OBJECT_WINDOW = 64 * 1024;

export interface StreamReading {
  /** Filter names in order; '' for an element that is not a name (a reader stops there). */
  readonly filters: string[];
  /** Each filter's /DecodeParms dictionary (references resolved), parallel to `filters`. */
  readonly parms: (Map<string, PdfValue> | undefined)[];
  /** A direct or resolved /Length. */
  readonly length: number | undefined;
  readonly type: string | undefined;
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x0c || c === 0x00;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** N and G of the `N G obj` whose keyword starts at `o`. */
export function objectId(s: string, o: number): { num: number; gen: number } | undefined {
  let i = o - 1;
  const back = (): void => { while (i >= 0 && o - i < 64 && isSpace(s.charCodeAt(i))) i--; };
  const digits = (): number => { const e = i; while (i >= 0 && e - i < 10 && isDigit(s.charCodeAt(i))) i--; return e - i; };
  back();
  const ge = i;
  if (digits() === 0) return undefined;
  const gen = Number(s.slice(i + 1, ge + 1));
  back();
  const ne = i;
  if (digits() === 0) return undefined;
  return { num: Number(s.slice(i + 1, ne + 1)), gen };
}

export class PdfObjects {
  private where: Map<string, number> | undefined;

  constructor(private readonly s: string) {}

  /** Position just after `obj` of the last definition of `num gen` (an update replaces it). */
  private at(num: number, gen: number): number | undefined {
    if (!this.where) {
      this.where = new Map();
      const s = this.s;
      for (let i = s.indexOf('obj'); i >= 0; i = s.indexOf('obj', i + 3)) {
        if (i >= 3 && s.startsWith('end', i - 3)) continue;
        const id = objectId(s, i);
        if (id) this.where.set(`${id.num} ${id.gen}`, i + 3);
      }
    }
    return this.where.get(`${num} ${gen}`);
  }

  /** The value itself, or what the reference points at (undefined: a dangling reference). */
  resolve(v: PdfValue | undefined): PdfValue | undefined {
    for (let hop = 0; v?.t === 'ref' && hop < MAX_HOPS; hop++) {
      const at = this.at(v.num, v.gen);
      if (at === undefined) return undefined;
      v = parseValue(this.s, at, Math.min(this.s.length, at + OBJECT_WINDOW), 0, STREAM_DICT)?.value;
    }
    return v?.t === 'ref' ? undefined : v;
  }

  /** A stream dictionary's readings: parsed from `from` (just after `obj`) to `to` (`stream`). */
  readings(from: number, to: number, textual: StreamReading): StreamReading[] {
    const v = parseValue(this.s, from, to, 0, STREAM_DICT);
    if (!v || v.value.t !== 'dict' || this.s.slice(v.end, to).trim() !== '') return [textual];
    const parsed = this.reading(v.value.v);
    return sameChain(parsed, textual) ? [parsed] : [parsed, textual];
  }

  /** One reading from a parsed dictionary. */
  reading(d: Map<string, PdfValue>): StreamReading {
    const f = this.resolve(d.get('Filter') ?? d.get('F'));
    const list = f?.t === 'array' ? f.v : f === undefined || f.t === 'null' ? [] : [f];
    const filters = list.map((x) => { const n = this.resolve(x); return n?.t === 'name' ? n.v : ''; });
    const p = this.resolve(d.get('DecodeParms') ?? d.get('DP'));
    const plist = p?.t === 'array' ? p.v : p === undefined ? [] : [p];
    const parms = filters.map((_, i) => { const x = this.resolve(plist[i]); return x?.t === 'dict' ? this.numbers(x.v) : undefined; });
    const len = this.resolve(d.get('Length'));
    const type = this.resolve(d.get('Type'));
    return { filters, parms, length: len?.t === 'num' && Number.isInteger(len.v) && len.v >= 0 ? len.v : undefined, type: type?.t === 'name' ? type.v : undefined };
  }

  /** A parameter dictionary with its references resolved (/Columns 5 0 R). */
  private numbers(d: Map<string, PdfValue>): Map<string, PdfValue> {
    const out = new Map<string, PdfValue>();
    for (const [k, v] of d) out.set(k, this.resolve(v) ?? { t: 'null' });
    return out;
  }
}

function sameChain(a: StreamReading, b: StreamReading): boolean {
  return a.filters.length === b.filters.length && a.filters.every((f, i) => f === b.filters[i]) &&
    a.parms.every((p, i) => JSON.stringify(p ? [...p] : null) === JSON.stringify(b.parms[i] ? [...b.parms[i]!] : null));
}
