/**
 * A stream's bytes through its whole /Filter chain, however long, as a viewer's pipeline runs
 * it (pdf.js, qpdf): every filter in order, each one's predictor undone after it, what a
 * damaged filter decoded passed on to the next, an unknown name passed over (pdf.js warns and
 * goes on with the bytes as they are). Nothing is cut short silently: where this reader cannot
 * go on and a viewer would (an image codec with more filters after it, a chain longer than
 * MAX_CHAIN), the result says `unsupported`, a limit verdict; a spent room or deadline says
 * `size` or `time`.
 *
 * Input: the (decrypted) stream data, filter names, each filter's /DecodeParms (references
 * resolved: pdf-objects.ts), the room and the deadline. Output: ChainResult: the bytes, how
 * many filters decoded, `damage` (data a filter refused, parameters no viewer reads: the
 * stream is what a viewer shows too, so this is not a limit) and `stop`. Never throws.
 */
import { FILTERS, FilterFailure, type FilterContext } from './pdf-filters.js';
import { PREDICTOR_DEFAULTS, unpredict, type PredictorParams } from './pdf-predictors.js';
import type { PdfValue } from './pdf-syntax.js';

/**
 * Most filters in one chain: far past any writer (a real chain has one to three). Each filter
 * costs a pass over the data, so a chain of thousands is a way to spend the deadline; past this
 * it is a limit verdict, never the half-decoded bytes.
 */
export const MAX_CHAIN = 4096;

/** Image codecs: their output is pixels, and their coded bytes are what a scanner reads. */
const IMAGE = new Set(['DCTDecode', 'DCT', 'JPXDecode', 'JPX', 'JBIG2Decode', 'CCITTFaxDecode', 'CCF']);

/** Filters whose /DecodeParms may name a predictor (7.4.4.4). */
const PREDICTED = new Set(['FlateDecode', 'Fl', 'LZWDecode', 'LZW', 'BrotliDecode']);

export interface ChainResult {
  readonly data: Buffer;
  /** Filters that decoded (wholly or in part). */
  readonly decoded: number;
  readonly damage?: string | undefined;
  readonly stop?: { readonly outcome: 'size' | 'time' | 'unsupported'; readonly message: string } | undefined;
}

/** A number of a parameter dictionary; 0 and a missing value both mean the default, as pdf.js reads them. */
function param(p: Map<string, PdfValue> | undefined, key: string, dflt: number): number {
  const v = p?.get(key);
  return v?.t === 'num' && v.v !== 0 ? Math.floor(v.v) : dflt;
}

export function predictorOf(p: Map<string, PdfValue> | undefined): PredictorParams {
  return {
    predictor: param(p, 'Predictor', PREDICTOR_DEFAULTS.predictor),
    colors: param(p, 'Colors', PREDICTOR_DEFAULTS.colors),
    bitsPerComponent: param(p, 'BitsPerComponent', PREDICTOR_DEFAULTS.bitsPerComponent),
    columns: param(p, 'Columns', PREDICTOR_DEFAULTS.columns),
  };
}

export function decodeChain(input: Buffer, filters: readonly string[], parms: readonly (Map<string, PdfValue> | undefined)[],
  base: Omit<FilterContext, 'earlyChange'>): ChainResult {
  if (filters.length > MAX_CHAIN) {
    return { data: input, decoded: 0, stop: { outcome: 'unsupported', message: `a /Filter chain of ${filters.length} filters (more than ${MAX_CHAIN})` } };
  }
  let data = input;
  let decoded = 0;
  let damage: string | undefined;
  for (let f = 0; f < filters.length; f++) {
    const name = filters[f]!;
    const decode = FILTERS[name];
    if (!decode) {
      if (IMAGE.has(name)) {
        if (f === filters.length - 1) break; // an image: its coded bytes are the member
        return { data, decoded, damage, stop: { outcome: 'unsupported', message: `${name} with ${filters.length - f - 1} more filters after it` } };
      }
      damage ??= `filter ${name === '' ? '(not a name)' : name} is unknown: passed over`;
      continue;
    }
    const p = parms[f];
    const early = p?.get('EarlyChange');
    const ctx: FilterContext = { ...base, earlyChange: early?.t === 'num' && Number.isInteger(early.v) ? early.v : 1 };
    try {
      data = decode(data, ctx);
    } catch (err) {
      if (!(err instanceof FilterFailure)) throw err;
      if (err.outcome !== 'corrupt') return { data, decoded, damage, stop: { outcome: err.outcome, message: `${name}: ${err.message}` } };
      damage ??= `${name}: ${err.message}`;
      if (err.partial === undefined || err.partial.length === 0) return { data, decoded, damage };
      data = err.partial; // what decoded before the damage goes on, as a viewer's pipeline passes it
    }
    decoded++;
    if (p && PREDICTED.has(name)) {
      const pp = predictorOf(p);
      if (pp.predictor === 1) continue;
      try {
        data = unpredict(data, pp, ctx);
      } catch (err) {
        if (!(err instanceof FilterFailure)) throw err;
        if (err.outcome !== 'corrupt') return { data, decoded, damage, stop: { outcome: err.outcome, message: `${name} predictor: ${err.message}` } };
        // parameters no viewer reads either: the filter's output goes on as it is
        damage ??= err.message;
      }
    }
  }
  return { data, decoded, damage };
}
