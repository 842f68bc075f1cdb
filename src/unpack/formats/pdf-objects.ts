/**
 * What a stream's dictionary says, read as viewers read it (pdf.js, qpdf): the dictionary parsed
 * from its object header to `stream` (a key inside a nested dictionary or a string is not the
 * stream's own), values that are indirect references (`/Filter 8 0 R`, `/Length 9 0 R`,
 * `/DecodeParms [null 12 0 R]`) resolved through an index of the file's objects, and a /Filter
 * array of any length. Where the dictionary does not parse, or readers would disagree on it (a
 * key given twice: pdf.js takes the last, a key search the first), each reading is returned.
 *
 * Objects are found where readers find them, and no xref is trusted to name the one: every
 * `N G obj` in the file (a definition in a comment, a string, another stream's data or after
 * %%EOF is one a reader repairing the file may take, and the xref may point at any of them),
 * and every object of every object stream (pdf-objstm.ts, loaded the first time a /Filter or
 * /DecodeParms reference needs it). An object defined more than once gives a reading for each
 * definition (each combination, up to MAX_READINGS), so a decoy cannot hide the real chain.
 * A value is parsed from its first token, however many spaces come before it.
 *
 * Owns: the object index (built once, on the first reference: one pass over the file), the
 * resolution of references (a reference to a reference is followed, up to MAX_HOPS; a loop is
 * not) and the stream dictionary's readings. Input: the file as a latin1 string, a dictionary's
 * range, the room, deadline and decryptor for object streams. Output: StreamReading[] (at least
 * one). A /Filter or /DecodeParms reference that resolves to nothing (an object found nowhere,
 * one that does not parse, a loop, too many definitions or readings) is a `doubt` on the first
 * reading, which pdf.ts makes a limit: never a chain read as "no filter". Never throws.
 */
import { packedObjects, type PackedContext } from './pdf-objstm.js';
import { isDelimiter, parseValue, STREAM_DICT, type PdfValue } from './pdf-syntax.js';

/** References followed from one value (a reference to a reference...): real files use one. */
const MAX_HOPS = 32;
/** How far an object's value may run from its first token (a /Filter array of 4,096 names fits). */
const OBJECT_WINDOW = 64 * 1024;
/** Comment bytes skipped before an object's value (spaces are free: their runs never overlap). */
const COMMENT_WINDOW = 64 * 1024;
/** Definitions of one object read (an update redefines a few; more is a decoy flood: a limit). */
const MAX_DEFINITIONS = 16;
/** Readings of one dictionary's references (each combination of definitions): past it, a limit. */
const MAX_READINGS = 64;

export interface StreamReading {
  /** Filter names in order; '' for an element that is not a name (a reader stops there). */
  readonly filters: string[];
  /** Each filter's /DecodeParms dictionary (references resolved), parallel to `filters`. */
  readonly parms: (Map<string, PdfValue> | undefined)[];
  /** A direct or resolved /Length. */
  readonly length: number | undefined;
  readonly type: string | undefined;
  /** Why the chain may not be the one a viewer decodes (a reference resolved to nothing): a limit. */
  readonly doubt?: string | undefined;
}

/** The /DecodeParms entries the decoders read: a reference there that resolves to nothing is a doubt. */
const DECODER_PARMS = new Set(['Predictor', 'Colors', 'BitsPerComponent', 'Columns', 'EarlyChange']);

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

/** An object's distinct values, oldest first (object streams, then `N G obj` in file order). */
interface Definitions {
  readonly values: PdfValue[];
  /** Why some definition was not read (too many, one that does not parse). */
  readonly note?: string | undefined;
}

/** Which definition each object takes in one reading (by "num gen"); the default is the newest. */
type Pick = ReadonlyMap<string, number>;

export class PdfObjects {
  private where: Map<string, number[]> | undefined;
  private packed: Map<number, PdfValue[]> | undefined;
  /** Set while object streams are read: their own dictionaries never point into one. */
  private loading = false;
  /** Definitions by "num gen", with and without object streams. */
  private readonly defs = new Map<string, Definitions>();
  private readonly textualDefs = new Map<string, Definitions>();

  constructor(private readonly s: string, private readonly ctx?: PackedContext) {}

  /** Positions just after `obj` of every `num gen obj`, in file order. */
  private at(num: number, gen: number): number[] {
    if (!this.where) {
      this.where = new Map();
      const s = this.s;
      for (let i = s.indexOf('obj'); i >= 0; i = s.indexOf('obj', i + 3)) {
        if (i >= 3 && s.startsWith('end', i - 3)) continue;
        if (!isDelimiter(s.charCodeAt(i + 3))) continue; // `objx` is not the keyword
        const id = objectId(s, i);
        if (!id) continue;
        const key = `${id.num} ${id.gen}`;
        const list = this.where.get(key);
        if (list) list.push(i + 3);
        else this.where.set(key, [i + 3]);
      }
    }
    return this.where.get(`${num} ${gen}`) ?? [];
  }

  /** The value after `obj` at `at`: spaces and comments before it skipped, then parsed within a window. */
  private valueAt(at: number): PdfValue | undefined {
    const s = this.s;
    let i = at;
    let comments = 0;
    for (;;) {
      while (i < s.length && isSpace(s.charCodeAt(i))) i++;
      if (s[i] !== '%') break;
      const from = i;
      while (i < s.length && s[i] !== '\n' && s[i] !== '\r' && i - from < COMMENT_WINDOW) i++;
      comments += i - from;
      if (comments >= COMMENT_WINDOW) return undefined;
    }
    return parseValue(s, i, Math.min(s.length, i + OBJECT_WINDOW), 0, STREAM_DICT)?.value;
  }

  /** Every definition of `num gen`; object streams are read when `packed` or no `N G obj` is found. */
  private definitions(num: number, gen: number, packed: boolean): Definitions {
    const key = `${num} ${gen}`;
    const cache = packed ? this.defs : this.textualDefs;
    const known = cache.get(key);
    if (known) return known;
    const values: PdfValue[] = [];
    const seen = new Set<string>();
    // (one definition, the usual case, is not compared with anything)
    const add = (v: PdfValue): void => {
      if (values.length === 0) { values.push(v); return; }
      if (seen.size === 0) seen.add(canonical(values[0]!));
      const k = canonical(v);
      if (!seen.has(k)) { seen.add(k); values.push(v); }
    };
    const textual = this.at(num, gen);
    let note: string | undefined;
    if ((packed || textual.length === 0) && gen === 0 && this.ctx && !this.loading) {
      if (!this.packed) {
        this.loading = true;
        try {
          this.packed = packedObjects(this.s, (v) => this.textual(v), (o) => objectId(this.s, o), this.ctx, OBJECT_WINDOW);
        } finally {
          this.loading = false;
        }
      }
      for (const v of this.packed.get(num) ?? []) add(v);
    }
    if (textual.length > MAX_DEFINITIONS) note = `object ${num} ${gen} is defined ${textual.length} times (more than ${MAX_DEFINITIONS})`;
    let unparsed = 0;
    for (const at of textual.slice(-MAX_DEFINITIONS)) {
      const v = this.valueAt(at);
      if (v === undefined) unparsed++;
      else add(v);
    }
    if (values.length === 0 && unparsed > 0) note ??= `object ${num} ${gen} does not parse`;
    const d = { values, note };
    if (!this.loading) cache.set(key, d); // while loading, object streams are not looked in
    return d;
  }

  /** A reference followed through the newest `N G obj` only (an object stream's own dictionary). */
  private textual(v: PdfValue | undefined): PdfValue | undefined {
    for (let hop = 0; v?.t === 'ref' && hop < MAX_HOPS; hop++) {
      const d = this.definitions(v.num, v.gen, false);
      v = d.values[d.values.length - 1];
    }
    return v?.t === 'ref' ? undefined : v;
  }

  /**
   * The value itself, or what the reference points at in this reading (`pick`, else the
   * newest definition). Objects with more than one definition are counted in `met`; a
   * reference that resolves to nothing adds to `doubts` when one is given.
   */
  private follow(v: PdfValue | undefined, pick: Pick, met: Map<string, number>, doubts: string[] | undefined): PdfValue | undefined {
    const seen = new Set<string>();
    while (v?.t === 'ref') {
      const key = `${v.num} ${v.gen}`;
      if (seen.has(key) || seen.size >= MAX_HOPS) {
        doubts?.push(seen.has(key) ? `object ${key} refers to itself` : `references past ${MAX_HOPS} hops`);
        return undefined;
      }
      seen.add(key);
      const d = this.definitions(v.num, v.gen, doubts !== undefined);
      if (doubts && d.note) doubts.push(d.note);
      if (d.values.length === 0) {
        doubts?.push(d.note ?? `object ${key} is found nowhere`);
        return undefined;
      }
      if (d.values.length > 1) met.set(key, d.values.length);
      v = d.values[Math.min(pick.get(key) ?? d.values.length - 1, d.values.length - 1)];
    }
    return v;
  }

  /** A stream dictionary's readings: parsed from `from` (just after `obj`) to `to` (`stream`). */
  readings(from: number, to: number, textual: StreamReading[]): StreamReading[] {
    const v = parseValue(this.s, from, to, 0, STREAM_DICT);
    if (!v || v.value.t !== 'dict' || this.s.slice(v.end, to).trim() !== '') return textual;
    const parsed = this.reading(v.value.v);
    const out = [...parsed];
    for (const t of textual) if (!out.some((p) => sameChain(p, t))) out.push(t);
    return out;
  }

  /**
   * The readings of a parsed dictionary: the newest definition of every object first, then
   * every other combination of the definitions its /Filter and /DecodeParms references meet.
   */
  reading(d: Map<string, PdfValue>): StreamReading[] {
    const out: StreamReading[] = [];
    const queue: Pick[] = [new Map()];
    const tried = new Set<string>(['']);
    const doubts: string[] = [];
    let builds = 0;
    while (queue.length > 0) {
      if (this.ctx?.timeUp()) break; // the sink says `time`
      if (builds + queue.length > MAX_READINGS) {
        doubts.push(`its references have more than ${MAX_READINGS} readings`);
        break;
      }
      builds++;
      const pick = queue.shift()!;
      const met = new Map<string, number>();
      const r = this.build(d, pick, met, doubts);
      if (!out.some((o) => sameChain(o, r))) out.push(r);
      for (const [key, n] of met) {
        if (pick.has(key)) continue;
        for (let j = 0; j < n - 1; j++) {
          const next = new Map(pick).set(key, j);
          const sig = [...next].sort().join(';');
          if (!tried.has(sig)) { tried.add(sig); queue.push(next); }
        }
      }
    }
    const doubt = doubts.length > 0 ? [...new Set(doubts)].slice(0, 3).join('; ') : undefined;
    return doubt === undefined ? out : [{ ...out[0]!, doubt }, ...out.slice(1)];
  }

  /** One reading: each reference resolved to the definition `pick` names, else the newest. */
  private build(d: Map<string, PdfValue>, pick: Pick, met: Map<string, number>, doubts: string[]): StreamReading {
    const res = (v: PdfValue | undefined, strict: boolean): PdfValue | undefined => this.follow(v, pick, met, strict ? doubts : undefined);
    const f = res(d.get('Filter') ?? d.get('F'), true);
    const list = f?.t === 'array' ? f.v : f === undefined || f.t === 'null' ? [] : [f];
    const filters = list.map((x) => { const n = res(x, true); return n?.t === 'name' ? n.v : ''; });
    const p = res(d.get('DecodeParms') ?? d.get('DP'), true);
    const plist = p?.t === 'array' ? p.v : p === undefined ? [] : [p];
    const parms = filters.map((_, i) => {
      const x = res(plist[i], true);
      if (x?.t !== 'dict') return undefined;
      const out = new Map<string, PdfValue>();
      for (const [k, v] of x.v) out.set(k, res(v, DECODER_PARMS.has(k)) ?? { t: 'null' });
      return out;
    });
    // /Length and /Type as the newest definition says: the data's end is found without them
    const len = this.textual(d.get('Length'));
    const type = this.textual(d.get('Type'));
    return { filters, parms, length: len?.t === 'num' && Number.isInteger(len.v) && len.v >= 0 ? len.v : undefined, type: type?.t === 'name' ? type.v : undefined };
  }
}

/** A value as a string, to tell definitions apart. */
function canonical(v: PdfValue): string {
  switch (v.t) {
    case 'array': return `[${v.v.map(canonical).join(' ')}]`;
    case 'dict': return `<<${[...v.v].map(([k, x]) => `/${k} ${canonical(x)}`).join(' ')}>>`;
    case 'str': return `<${v.v.toString('hex')}>`;
    case 'ref': return `${v.num} ${v.gen} R`;
    case 'null': return 'null';
    case 'name': return `/${v.v}`;
    default: return `${v.t}:${String(v.v)}`;
  }
}

function sameChain(a: StreamReading, b: StreamReading): boolean {
  return a.filters.length === b.filters.length && a.filters.every((f, i) => f === b.filters[i]) &&
    a.parms.every((p, i) => JSON.stringify(p ? [...p] : null) === JSON.stringify(b.parms[i] ? [...b.parms[i]!] : null));
}
