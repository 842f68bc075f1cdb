/**
 * Objects stored in object streams (/Type /ObjStm, PDF 1.5, 7.5.7): values with no `N G obj`
 * of their own, which a reference may point at. `qpdf --object-streams=generate` puts every
 * object that is not a stream there, a /Filter array, a filter name or a /DecodeParms
 * dictionary included; a reader that looks only for `N G obj` finds nothing and decodes the
 * stream with no filter.
 *
 * Owns: finding every object stream (by the name /ObjStm in its dictionary, wherever it is: no
 * xref is trusted), decoding it (its own dictionary's references resolved through the file's
 * `N G obj` only, as the spec requires of an object stream's /Length; decrypted with its
 * object's key when the document is encrypted) and the table of the objects it holds.
 * Input: the file as a latin1 string, a resolver for the stream dictionary, the room and the
 * deadline. Output: object number → its values (an object in several streams has several), in
 * file order. Bounded: each stream is decoded once, within the room, its objects parsed within
 * a window each. Never throws: a stream that does not decode gives the objects that did, and a
 * reference to an object found nowhere is the caller's limit.
 */
import type { Decryptor } from './pdf-crypt.js';
import { decodeChain } from './pdf-chain.js';
import { dataStarts } from './pdf-extent.js';
import { isDelimiter, parseValue, STREAM_DICT, type PdfValue } from './pdf-syntax.js';

/** How far an object stream's dictionary may run from its object header (a real one is < 200 bytes). */
const DICT_WINDOW = 64 * 1024;

export interface PackedContext {
  readonly decryptor?: Decryptor | undefined;
  /** Output bytes a decoded stream may still take. */
  room(): number;
  timeUp(): boolean;
}

/** `N G` of the `N G obj` whose keyword starts at `o`. */
export type ObjectIdAt = (o: number) => { num: number; gen: number } | undefined;

/**
 * Every object of every object stream. `resolve` follows a reference through `N G obj` only
 * (an object stream's /Length, /Filter, /N, /First are never themselves in one).
 */
export function packedObjects(s: string, resolve: (v: PdfValue | undefined) => PdfValue | undefined, idAt: ObjectIdAt,
  ctx: PackedContext, window: number): Map<number, PdfValue[]> {
  const out = new Map<number, PdfValue[]>();
  const done = new Set<number>(); // object headers and keywords already tried
  // object headers and keywords are met in file order, once each: linear however many names
  let o = -1; // the last `obj` (not `endobj`) before the name
  let nextObj = s.indexOf('obj');
  let k = -1; // the first `stream` (not `endstream`) after it
  for (let h = s.indexOf('/ObjStm'); h >= 0; h = s.indexOf('/ObjStm', h + 7)) {
    if (ctx.timeUp()) break;
    if (!isDelimiter(s.charCodeAt(h + 7))) continue;
    for (; nextObj >= 0 && nextObj < h; nextObj = s.indexOf('obj', nextObj + 3)) if (!s.startsWith('end', nextObj - 3)) o = nextObj;
    if (o < 0 || h - o > DICT_WINDOW || done.has(o)) continue;
    done.add(o);
    if (k < h) {
      k = s.indexOf('stream', h);
      while (k >= 3 && s.startsWith('end', k - 3)) k = s.indexOf('stream', k + 6);
    }
    if (k < 0) break;
    if (k - h > DICT_WINDOW || done.has(k)) continue;
    done.add(k);
    const d = parseValue(s, o + 3, k, 0, STREAM_DICT)?.value;
    if (d?.t !== 'dict') continue;
    const type = resolve(d.v.get('Type'));
    if (type?.t !== 'name' || type.v !== 'ObjStm') continue;
    const data = decoded(s, k, d.v, resolve, idAt(o), ctx);
    if (data) table(data, d.v, resolve, out, window);
  }
  return out;
}

/** An object stream's data, decrypted and decoded (what decoded before any damage). */
function decoded(s: string, k: number, d: Map<string, PdfValue>, resolve: (v: PdfValue | undefined) => PdfValue | undefined,
  id: { num: number; gen: number } | undefined, ctx: PackedContext): Buffer | undefined {
  let endKw = s.indexOf('endstream', k + 6);
  if (endKw < 0) endKw = s.length;
  const start = dataStarts(s, k, endKw)[0];
  if (start === undefined) return undefined;
  const len = resolve(d.get('Length'));
  let end = endKw;
  if (len?.t === 'num' && Number.isInteger(len.v) && len.v >= 0 && start + len.v <= endKw) end = start + len.v;
  else {
    if (s[end - 1] === '\n') end--;
    if (s[end - 1] === '\r') end--;
  }
  if (end < start) return undefined;
  let raw: Buffer = Buffer.from(s.slice(start, end), 'latin1');
  if (ctx.decryptor && id) raw = ctx.decryptor.stream(raw, id.num, id.gen, false);
  const f = resolve(d.get('Filter') ?? d.get('F'));
  const list = f?.t === 'array' ? f.v : f === undefined || f.t === 'null' ? [] : [f];
  const filters = list.map((x) => { const n = resolve(x); return n?.t === 'name' ? n.v : ''; });
  const p = resolve(d.get('DecodeParms') ?? d.get('DP'));
  const plist = p?.t === 'array' ? p.v : p === undefined ? [] : [p];
  const parms = filters.map((_, i) => {
    const x = resolve(plist[i]);
    if (x?.t !== 'dict') return undefined;
    return new Map([...x.v].map(([key, v]) => [key, resolve(v) ?? { t: 'null' as const }]));
  });
  const r = decodeChain(raw, filters, parms, { room: ctx.room(), timeUp: () => ctx.timeUp() });
  return r.data;
}

/** The objects of one decoded object stream: /N pairs `number offset`, offsets from /First. */
function table(data: Buffer, d: Map<string, PdfValue>, resolve: (v: PdfValue | undefined) => PdfValue | undefined,
  out: Map<number, PdfValue[]>, window: number): void {
  const n = resolve(d.get('N'));
  const first = resolve(d.get('First'));
  if (n?.t !== 'num' || first?.t !== 'num' || !Number.isInteger(first.v) || first.v < 0 || first.v > data.length) return;
  const text = data.toString('latin1');
  const head = text.slice(0, first.v).match(/\d+/g) ?? [];
  const count = Math.min(Math.max(0, Math.floor(n.v)), Math.floor(head.length / 2));
  for (let i = 0; i < count; i++) {
    const num = Number(head[2 * i]);
    const at = first.v + Number(head[2 * i + 1]);
    if (at >= text.length) continue;
    const v = parseValue(text, at, Math.min(text.length, at + window), 0, STREAM_DICT)?.value;
    if (v === undefined) continue;
    const list = out.get(num);
    if (list) list.push(v);
    else out.set(num, [v]);
  }
}
