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

/**
 * Colors and bits past these are no colour space, and keep the arithmetic below exact; pdf.js
 * reads anything within them (/BitsPerComponent 3, /Colors 40), so this does too.
 */
const MAX_COLORS = 1 << 16;
const MAX_BITS = 32;

export function unpredict(data: Buffer, p: PredictorParams, ctx: FilterContext): Buffer {
  if (p.predictor === 1) return data;
  if (p.predictor !== 2 && (p.predictor < 10 || p.predictor > 15)) throw new FilterFailure('corrupt', `predictor ${p.predictor} is unknown`);
  if (!Number.isInteger(p.colors) || p.colors < 1 || p.colors > MAX_COLORS) throw new FilterFailure('corrupt', `predictor: /Colors ${p.colors}`);
  if (!Number.isInteger(p.bitsPerComponent) || p.bitsPerComponent < 1 || p.bitsPerComponent > MAX_BITS) throw new FilterFailure('corrupt', `predictor: /BitsPerComponent ${p.bitsPerComponent}`);
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

/**
 * TIFF predictor 2: each component is the difference from the same component one pixel left,
 * added modulo 2^bits; components of 8 and 16 bits by bytes, others (1 to 7 bits: pdf.js reads
 * them) as bit fields packed MSB first. Deeper components than 16 bits have no reader.
 */
function tiff(data: Buffer, p: PredictorParams, rowLength: number, ctx: FilterContext): Buffer {
  const bits = p.bitsPerComponent;
  if (bits > 8 && bits !== 16) throw new FilterFailure('corrupt', `TIFF predictor with /BitsPerComponent ${bits}`);
  const out = Buffer.from(data);
  let rows = 0;
  for (let r = 0; r < out.length; r += rowLength) {
    if ((++rows & 0xffff) === 0 && ctx.timeUp()) throw new FilterFailure('time', 'deadline passed');
    const end = Math.min(out.length, r + rowLength);
    if (bits === 8) {
      for (let k = r + p.colors; k < end; k++) out[k] = (out[k]! + out[k - p.colors]!) & 0xff;
    } else if (bits === 16) {
      const step = 2 * p.colors;
      for (let k = r + step; k + 1 < end; k += 2) {
        const v = (out.readUInt16BE(k) + out.readUInt16BE(k - step)) & 0xffff;
        out.writeUInt16BE(v, k);
      }
    } else {
      const n = Math.min(Math.floor(((end - r) * 8) / bits), p.colors * p.columns); // components in this row, not its padding
      const mask = (1 << bits) - 1;
      const get = (i: number): number => { const bit = i * bits; const byte = r + (bit >> 3); const shift = 16 - (bit & 7) - bits; return (((out[byte]! << 8) | (out[byte + 1] ?? 0)) >> shift) & mask; };
      const set = (i: number, v: number): void => {
        const bit = i * bits; const byte = r + (bit >> 3); const shift = 16 - (bit & 7) - bits;
        const word = ((out[byte]! << 8) | (out[byte + 1] ?? 0)) & ~(mask << shift) | ((v & mask) << shift);
        out[byte] = word >> 8;
        if (byte + 1 < out.length) out[byte + 1] = word & 0xff;
      };
      for (let i = p.colors; i < n; i++) set(i, get(i) + get(i - p.colors));
    }
  }
  return out;
}
