/**
 * Every reading of one item the stage opens: the container at its start (sniff.ts), containers
 * behind other bytes as 7-Zip, unrar, cabextract and pdf.js find them (search.ts), and the zip
 * archives in it as unzip, Python and 7-Zip place them (zip-layout.ts), so that a container
 * any mainstream reader opens is opened here too, whatever sits before or after it.
 *
 * Owns: which of those apply to an item and in which order. Inputs: a range reader over the
 * item, its size, its first SNIFF_BYTES, the format found at its start (the stage also tells
 * mail, mbox and NSIS apart), whether to search (not in mail or an mbox: their text is walked
 * as mail), the formats with a reader, the members still allowed. Output: Located: openings
 * (format, offset, the bytes to unpack when they are not the item's own from that offset, and
 * `weak` for finds without a checked header), and `problem` when the item holds a container
 * that no reading can place (a zip end record whose directory is nowhere, too many decoys):
 * a limit verdict, never "nothing here". Fails only with the reader's errors.
 */
import type { ContainerFormat } from './types.js';
import { MAX_FINDS, searchContainers, SEARCH_BYTES, SEARCH_TAIL_BYTES, type Find, type SearchResult } from './search.js';
import { plausibleLocal, zipLayout } from './zip-layout.js';

/** The zip end record: 22 bytes, then a comment of up to 65,535 (where unzip and Python look). */
const ZIP_TAIL_BYTES = 22 + 0xffff;
const SIG_END = Buffer.from([0x50, 0x4b, 0x05, 0x06]);
const SIG_LOCAL = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

/** Bytes [start, start + len) of the item; into `into` (reused by the caller) when given and the item is not in memory. */
export type ReadRange = (start: number, len: number, into?: Buffer) => Promise<Buffer>;

export interface Opening {
  readonly format: ContainerFormat;
  readonly offset: number;
  /** The bytes to unpack (a rebuilt zip); undefined: the item's bytes from `offset`. */
  readonly input?: (() => Buffer) | undefined;
  /** A find with no checked header: opening it to nothing (corrupt, no member) is no verdict. */
  readonly weak?: boolean | undefined;
  /** How it was found, for reports ("end record, relocated by 8"). */
  readonly how?: string | undefined;
  /**
   * Open after the parts found so far (a zip inside another container: the container's own
   * members, read first, then name what both readings hold).
   */
  readonly later?: boolean | undefined;
}

export interface Located {
  readonly openings: Opening[];
  readonly problem?: string | undefined;
}

export interface LocateOptions {
  /** The format at the item's start, if any (sniff, or the stage's mail/mbox/NSIS tests). */
  readonly atStart: ContainerFormat | undefined;
  /** Search behind other bytes (false for mail and mbox, whose text is walked as mail). */
  readonly search: boolean;
  readonly readable: (f: ContainerFormat) => boolean;
  /** Members still allowed: a zip walk stops one past it (7-Zip's cap then says `members`). */
  readonly maxEntries: number;
}

export async function locate(read: ReadRange, size: number, o: LocateOptions): Promise<Located> {
  const openings: Opening[] = [];
  let problem: string | undefined;
  if (o.atStart !== undefined && o.atStart !== 'zip') openings.push({ format: o.atStart, offset: 0 });
  const zip = o.readable('zip');
  let zipSeen = o.atStart === 'zip';
  let window: Buffer | undefined;
  if (o.search && o.atStart === undefined) {
    const found = await searchItem(read, size, (f) => f !== 'zip' && o.readable(f), 1, (w) => {
      window ??= w;
      if (zip && !zipSeen) zipSeen = w.includes(SIG_END) || hasPlausibleLocal(w);
    });
    for (const f of found.finds) openings.push({ format: f.format, offset: f.offset, weak: f.weak });
    problem = found.tooMany;
  }
  if (zip && !zipSeen && size >= 22) {
    const tailLen = Math.min(size, ZIP_TAIL_BYTES);
    zipSeen = (await read(size - tailLen, tailLen)).includes(SIG_END);
  }
  if (zip && zipSeen) {
    const whole = window !== undefined && window.length === size ? window : await read(0, size);
    const layout = zipLayout(whole, o.maxEntries);
    const later = o.atStart !== undefined && o.atStart !== 'zip';
    for (const r of layout.readings) openings.push({ format: 'zip', offset: r.offset, input: r.bytes, how: r.how, later });
    // nothing placed: the item as it is, to 7-Zip (a zip this code cannot place may still open)
    if (layout.readings.length === 0 && o.atStart === 'zip') openings.push({ format: 'zip', offset: 0 });
    else if (layout.readings.length === 0 && layout.unplaced !== undefined && openings.length === 0) problem ??= layout.unplaced;
    problem ??= layout.tooMany;
  }
  return { openings, ...(problem !== undefined ? { problem } : {}) };
}

/**
 * Containers behind one the stage opened, when its reader stopped with bytes left over (7-Zip's
 * "data after the end", or damage): cabextract reads every cabinet of a file, GNU tar skips
 * damage to the next header. Searched from `from` on; opened after the parts found so far.
 */
export async function locateBehind(read: ReadRange, size: number, readable: (f: ContainerFormat) => boolean, from = 1): Promise<Located> {
  const found = await searchItem(read, size, (f) => f !== 'zip' && readable(f), from);
  const openings = found.finds.map((f): Opening => ({ format: f.format, offset: f.offset, weak: f.weak, later: true }));
  return { openings, ...(found.tooMany !== undefined ? { problem: found.tooMany } : {}) };
}

/**
 * search.ts over the whole item, a window of SEARCH_BYTES at a time (each read with the header
 * room after it): 7-Zip looks only in the first 8 MiB, but cabextract, unrar and pdf.js read a
 * container wherever it is, so a payload behind 9 MiB of padding must be found too. A window
 * costs one memchr-speed pass per signature (about 1.6 ms a MiB of random bytes in all, measured); ordinary mail rarely
 * has an item that is no container at its start and this large. `each`: sees every window (the
 * zip tests of locate()).
 */
async function searchItem(read: ReadRange, size: number, readable: (f: ContainerFormat) => boolean, from: number, each?: (w: Buffer) => void): Promise<SearchResult> {
  const finds: Find[] = [];
  let candidates = 0;
  // The windows after the first are read into one buffer, reused: a new one for each left the
  // garbage of a 100 MB part (12 windows) for the collector to find, 20-30 MB above the
  // worker's peak. The first window is the caller's to keep (locate() reads a zip from it).
  let scratch: Buffer | undefined;
  const first = Math.floor(Math.max(0, from - 1) / SEARCH_BYTES) * SEARCH_BYTES;
  for (let base = first; base < size; base += SEARCH_BYTES) {
    const len = Math.min(size - base, SEARCH_BYTES + SEARCH_TAIL_BYTES);
    if (base !== first) scratch ??= Buffer.allocUnsafe(SEARCH_BYTES + SEARCH_TAIL_BYTES);
    const w = await read(base, len, base !== first ? scratch : undefined);
    each?.(w);
    const r = searchContainers(w, readable, undefined, { from: Math.max(1, from - base), base, candidates });
    candidates = r.candidates ?? candidates;
    finds.push(...r.finds);
    if (r.tooMany !== undefined) return { finds, tooMany: r.tooMany };
    if (finds.length > MAX_FINDS) return { finds, tooMany: `more than ${MAX_FINDS} containers behind other bytes in one item` };
  }
  return { finds };
}

function hasPlausibleLocal(b: Buffer): boolean {
  for (let i = b.indexOf(SIG_LOCAL, 1); i >= 0; i = b.indexOf(SIG_LOCAL, i + 1)) if (plausibleLocal(b, i)) return true;
  return false;
}
