/**
 * PNG and TIFF predictors of PDF FlateDecode and LZWDecode (PDF 1.7, 7.4.4.4): undone after
 * the filter, so an embedded file stored with `/DecodeParms << /Predictor 12 /Columns 17 >>`
 * is scanned as its own bytes and not as rows of differences.
 *
 * Input: the filter's output, the stream's /DecodeParms values (pdf.ts parses them) and the
 * filter context (room, deadline). Output: the bytes with the predictor undone. The output is
 * never longer than the input (PNG drops one type byte per row, TIFF keeps the length), so a
 * hostile /Columns (2^31) allocates nothing more: rows are walked inside the data, and a last
 * row cut short is undone as far as it goes, as viewers do.
 * Fails with FilterFailure `corrupt` for parameters no writer produces (BitsPerComponent 3,
 * PNG row type 9, a TIFF predictor over components that are not 8 bits): pdf.ts then keeps
 * the bytes as the filter gave them and says the stream is damaged. `time` past the deadline.
 */
import { FilterFailure, type FilterContext } from './pdf-filters.js';

export interface PredictorParams {
  /** 1 none, 2 TIFF, 10..15 PNG (the value only says which the writer tried: rows carry their own type). */
  readonly predictor: number;
  readonly colors: number;
  readonly bitsPerComponent: number;
  readonly columns: number;
}

/** Defaults of 7.4.4.4, Table 8. */
export const PREDICTOR_DEFAULTS: PredictorParams = { predictor: 1, colors: 1, bitsPerComponent: 8, columns: 1 };

/** Colors past this are no colour space; the bound keeps bytes-per-pixel small. */
const MAX_COLORS = 32;

export function unpredict(data: Buffer, p: PredictorParams, ctx: FilterContext): Buffer {
  if (p.predictor === 1) return data;
  if (p.predictor !== 2 && (p.predictor < 10 || p.predictor > 15)) throw new FilterFailure('corrupt', `predictor ${p.predictor} is unknown`);
  if (!Number.isInteger(p.colors) || p.colors < 1 || p.colors > MAX_COLORS) throw new FilterFailure('corrupt', `predictor: /Colors ${p.colors}`);
  if (![1, 2, 4, 8, 16].includes(p.bitsPerComponent)) throw new FilterFailure('corrupt', `predictor: /BitsPerComponent ${p.bitsPerComponent}`);
  if (!Number.isInteger(p.columns) || p.columns < 1) throw new FilterFailure('corrupt', `predictor: /Columns ${p.columns}`);
  const bpp = Math.ceil((p.colors * p.bitsPerComponent) / 8);
  // A double holds colors*bpc*columns exactly (< 2^50); the row is then capped by the data, so
  // a huge /Columns makes one short row, not a huge allocation.
  const rowLength = Math.ceil((p.colors * p.bitsPerComponent * p.columns) / 8);
  return p.predictor === 2 ? tiff(data, p, rowLength, ctx) : png(data, bpp, rowLength, ctx);
}

/** PNG: each row is a type byte then rowLength bytes, predicted from the left and the row above. */
function png(data: Buffer, bpp: number, rowLength: number, ctx: FilterContext): Buffer {
  const out = Buffer.allocUnsafe(Math.max(0, data.length - Math.ceil(data.length / (rowLength + 1))));
  let i = 0; // in data
  let o = 0; // in out
  let rows = 0;
  while (i < data.length) {
    if ((++rows & 0xffff) === 0 && ctx.timeUp()) throw new FilterFailure('time', 'deadline passed');
    const type = data[i++]!;
    const n = Math.min(rowLength, data.length - i); // the last row may be cut short
    const up = o - rowLength; // start of the row above in out (none when < 0)
    const row = o;
    switch (type) {
      case 0:
        data.copy(out, o, i, i + n);
        break;
      case 1: // Sub
        for (let k = 0; k < n; k++) out[row + k] = (data[i + k]! + (k >= bpp ? out[row + k - bpp]! : 0)) & 0xff;
        break;
      case 2: // Up
        for (let k = 0; k < n; k++) out[row + k] = (data[i + k]! + (up >= 0 ? out[up + k]! : 0)) & 0xff;
        break;
      case 3: // Average
        for (let k = 0; k < n; k++) {
          const a = k >= bpp ? out[row + k - bpp]! : 0;
          const b = up >= 0 ? out[up + k]! : 0;
          out[row + k] = (data[i + k]! + ((a + b) >> 1)) & 0xff;
        }
        break;
      case 4: // Paeth
        for (let k = 0; k < n; k++) {
          const a = k >= bpp ? out[row + k - bpp]! : 0;
          const b = up >= 0 ? out[up + k]! : 0;
          const c = k >= bpp && up >= 0 ? out[up + k - bpp]! : 0;
          out[row + k] = (data[i + k]! + paeth(a, b, c)) & 0xff;
        }
        break;
      default:
        throw new FilterFailure('corrupt', `PNG predictor: row type ${type}`);
    }
    i += n;
    o += n;
  }
  return out.subarray(0, o);
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/** TIFF predictor 2: each component is the difference from the same component one pixel left. */
function tiff(data: Buffer, p: PredictorParams, rowLength: number, ctx: FilterContext): Buffer {
  // Only 8-bit components: other depths are for images, which a scanner does not need whole.
  if (p.bitsPerComponent !== 8) throw new FilterFailure('corrupt', `TIFF predictor with /BitsPerComponent ${p.bitsPerComponent}`);
  const out = Buffer.from(data);
  const step = p.colors;
  let rows = 0;
  for (let r = 0; r < out.length; r += rowLength) {
    if ((++rows & 0xffff) === 0 && ctx.timeUp()) throw new FilterFailure('time', 'deadline passed');
    const end = Math.min(out.length, r + rowLength);
    for (let k = r + step; k < end; k++) out[k] = (out[k]! + out[k - step]!) & 0xff;
  }
  return out;
}
