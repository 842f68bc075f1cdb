/**
 * Limits of the MIME extractor and the error codes it reports.
 *
 * Owns: MimeLimits and its defaults, the stable EMIME_* codes, MimeError, and Budget, the one
 * counter of parts and decoded bytes shared by everything that walks a message (nested
 * messages and every reading of the union extraction draw from the same budget).
 * Inputs: limits from the config. Outputs: MimeError thrown at the point a limit is crossed;
 * extract.ts turns it into Extraction.limit, which the caller treats as a verdict (tempfail),
 * never as clean.
 */
import { AvError, type Origin } from '../errors.js';

export interface MimeLimits {
  /** Deepest MIME path, counted in components: "1" is 1, "2.1.3" is 3. */
  maxDepth: number;
  /** Most MIME nodes (leaves, multipart containers, roots of attached messages) in one message. */
  maxParts: number;
  /** Largest header block of one node, in bytes. */
  maxHeaderBytes: number;
  /** Most decoded bytes over all parts; a nested message's bytes count again for its parts. */
  maxDecodedBytes: number;
  /** Parts larger than this spill to a private temp file; smaller ones stay in memory. */
  memoryPartBytes: number;
  /**
   * Most decoded bytes (over all readings) per byte of input, plus MAX_EXPANSION_SLACK_BYTES.
   * Undefined: DEFAULT_EXPANSION_RATIO.
   */
  maxExpansionRatio?: number;
  /**
   * Memory shared by every extraction of this process (a worker's memory_budget): a part stays
   * in memory only while both this pool and the extraction's own MEMORY_TOTAL_BYTES have room;
   * otherwise it goes to a temp file. Undefined: only the per-extraction bound applies.
   */
  memoryPool?: MemoryPool;
  /**
   * message/partial cannot be scanned (the other fragments are elsewhere): by default it is the
   * EMIME_PARTIAL limit. True lets it through with its fragment scanned as it is.
   */
  allowPartial?: boolean;
}

const MiB = 1024 * 1024;

/**
 * Base64 shrinks, so decoded bytes exceed the input only through nesting (a message inside a
 * message counts again) and through the union extraction's several readings (each re-decodes
 * what it reads differently). Legitimate mail stays well under 8 per input byte (two readings,
 * a forward or two); far more means a message built to multiply work.
 */
export const DEFAULT_EXPANSION_RATIO = 16;

/** Small messages may expand more in relative terms (a 1 KB digest of nested messages). */
export const MAX_EXPANSION_SLACK_BYTES = 4 * MiB;

export const DEFAULT_MIME_LIMITS: MimeLimits = Object.freeze({
  // Real mail nests 3-6 deep (a forwarded reply with multipart/alternative inside
  // multipart/related inside the forward). 20 leaves room for long forward chains; deeper
  // trees only exist to exhaust parsers.
  maxDepth: 20,
  // Newsletters and digests stay in the tens; 1000 is mailsplit's own default and bounds the
  // per-part work (a hash, a temp file, one scan per engine).
  maxParts: 1000,
  // The largest legitimate header blocks (long Received chains, DKIM, ARC) are tens of KiB;
  // 1 MiB is mailsplit's default and bounds what one node buffers before its body starts.
  maxHeaderBytes: 1 * MiB,
  // Bounds temp-file disk use and scan time per message. A 100 MB message (the largest the
  // defaults are made for) decodes to ~75 MB, and once more for an attached message's
  // contents: 512 MiB leaves room.
  maxDecodedBytes: 512 * MiB,
  // Small parts (text, signatures, logos) are cheaper in memory; 1 MiB keeps many of them
  // while every large attachment goes to disk.
  memoryPartBytes: 1 * MiB,
});

/**
 * Most lines in one header block. Real blocks have tens to a few hundred (long Received
 * chains, DKIM and ARC folded over a dozen lines each); mailsplit spends about a microsecond
 * and an object on each, so a block of a hundred thousand 3-byte lines cost ~100x what the
 * same bytes cost as a body. Past this the header is a limit (EMIME_HEADER_LIMIT).
 */
export const MAX_HEADER_LINES_PER_BLOCK = 10_000;

/**
 * Most header lines over all blocks of one reading (nested messages included): a thousand
 * parts of a hundred lines each, ten times a large digest. It bounds the header work of a
 * message built of many blocks just under MAX_HEADER_LINES_PER_BLOCK.
 */
export const MAX_HEADER_LINES_PER_READING = 200_000;

/**
 * All parts kept in memory together never exceed this; later parts spill to disk whatever
 * their size. Without it, maxParts parts of memoryPartBytes each could hold ~1 GB.
 */
export const MEMORY_TOTAL_BYTES = 32 * MiB;

/** Stable codes; callers classify by these, never by message text. */
export const MimeErrorCode = {
  /** The input could not be parsed (mailsplit failed, or an unexpected fault in a reading). */
  PARSE: 'EMIME_PARSE',
  DEPTH_LIMIT: 'EMIME_DEPTH_LIMIT',
  PART_LIMIT: 'EMIME_PART_LIMIT',
  HEADER_LIMIT: 'EMIME_HEADER_LIMIT',
  DECODED_LIMIT: 'EMIME_DECODED_LIMIT',
  /** Decoded bytes out of proportion to the input (maxExpansionRatio). */
  EXPANSION_LIMIT: 'EMIME_EXPANSION_LIMIT',
  /**
   * The embedded post-pass reads what it finds again down to MAX_EMBEDDED_DEPTH levels; an
   * item below that still holds an encoding (or a message) that was not read.
   */
  EMBED_DEPTH: 'EMIME_EMBED_DEPTH',
  /**
   * More encoded items (uuencode, begin-base64, yEnc, BinHex) start inside one another in one
   * part than the post-pass reads at once (embedded/scan.ts MAX_OPEN_ITEMS): one was not read.
   */
  EMBED_LIMIT: 'EMIME_EMBED_LIMIT',
  /**
   * One header offers more interpretations (boundary= values, Content-Transfer-Encoding
   * values) than the lenient reading tries; the ones past the bound were not read.
   */
  CANDIDATE_LIMIT: 'EMIME_CANDIDATE_LIMIT',
  /** A message/partial fragment, refused unless allowPartial (RFC 2046 §5.2.2; CVE-2002-1121). */
  PARTIAL: 'EMIME_PARTIAL',
  /** Reading the input or writing a temp file failed (ENOSPC, EIO, ...). */
  IO: 'EMIME_IO',
  /** The caller's AbortSignal fired; extractParts rejects with this code. */
  ABORTED: 'EABORTED',
} as const;

export type MimeErrorCodeValue = (typeof MimeErrorCode)[keyof typeof MimeErrorCode];

/** Each code's origin: the limits are limits; a parse or I/O failure is ours; an abort is an abort. */
const MIME_ORIGINS: Readonly<Record<MimeErrorCodeValue, Origin>> = {
  EMIME_PARSE: 'internal',
  EMIME_DEPTH_LIMIT: 'limit',
  EMIME_PART_LIMIT: 'limit',
  EMIME_HEADER_LIMIT: 'limit',
  EMIME_DECODED_LIMIT: 'limit',
  EMIME_EXPANSION_LIMIT: 'limit',
  EMIME_EMBED_DEPTH: 'limit',
  EMIME_EMBED_LIMIT: 'limit',
  EMIME_CANDIDATE_LIMIT: 'limit',
  EMIME_PARTIAL: 'limit',
  EMIME_IO: 'internal',
  EABORTED: 'abort',
};

export class MimeError extends AvError {
  declare readonly code: MimeErrorCodeValue;
  constructor(code: MimeErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(code, MIME_ORIGINS[code], message, options);
    this.name = 'MimeError';
  }
}

/**
 * Bytes of decoded parts held in memory by all the extractions of one process: 16 requests at
 * once, each allowed MEMORY_TOTAL_BYTES, would otherwise hold 512 MiB. A refused reservation is
 * not an error: the part is written to tmpdir instead.
 */
export class MemoryPool {
  private used = 0;
  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) throw new RangeError(`MemoryPool: capacity must be a byte count, got ${capacity}`);
  }
  tryReserve(n: number): boolean {
    if (this.used + n > this.capacity) return false;
    this.used += n;
    return true;
  }
  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
  get inUse(): number {
    return this.used;
  }
}

/** Counts parts and decoded bytes for one extraction; throws MimeError when a limit is crossed. */
export class Budget {
  private readonly nodes = new Map<string, number>();
  private readonly headerLines = new Map<string, number>();
  private decoded = 0;
  /** Every decoded byte of every reading, duplicates included. */
  private work = 0;
  private inMemory = 0;

  /** Decoded bytes allowed by the expansion ratio; Infinity until the input size is known. */
  private expansionCap = Infinity;

  constructor(readonly limits: MimeLimits) {}

  /** The input's size is known: from now on the expansion ratio applies. */
  setInputSize(bytes: number): void {
    const ratio = this.limits.maxExpansionRatio ?? DEFAULT_EXPANSION_RATIO;
    this.expansionCap = bytes * ratio + MAX_EXPANSION_SLACK_BYTES;
  }

  /** One more MIME node at `depth` path components with a header block of `headerBytes` in `headerLines` lines. */
  addNode(depth: number, headerBytes: number, reading = 'standard', headerLines = 0): void {
    if (headerBytes > this.limits.maxHeaderBytes) {
      throw new MimeError(MimeErrorCode.HEADER_LIMIT, `header block of ${headerBytes} bytes exceeds ${this.limits.maxHeaderBytes}`);
    }
    if (headerLines > MAX_HEADER_LINES_PER_BLOCK) {
      throw new MimeError(MimeErrorCode.HEADER_LIMIT, `header block of more than ${MAX_HEADER_LINES_PER_BLOCK} lines`);
    }
    const lines = (this.headerLines.get(reading) ?? 0) + headerLines;
    this.headerLines.set(reading, lines);
    if (lines > MAX_HEADER_LINES_PER_READING) {
      throw new MimeError(MimeErrorCode.HEADER_LIMIT, `more than ${MAX_HEADER_LINES_PER_READING} header lines in one message`);
    }
    if (depth > this.limits.maxDepth) {
      throw new MimeError(MimeErrorCode.DEPTH_LIMIT, `MIME nesting depth ${depth} exceeds ${this.limits.maxDepth}`);
    }
    // nodes are counted per reading (each reading walks the same tree its own way); distinct
    // stored parts are counted across readings by the part store
    const parts = (this.nodes.get(reading) ?? 0) + 1;
    this.nodes.set(reading, parts);
    if (parts > this.limits.maxParts) {
      throw new MimeError(MimeErrorCode.PART_LIMIT, `more than ${this.limits.maxParts} MIME parts`);
    }
  }

  /**
   * `n` more decoded bytes are about to be stored. `late`: the reading is one of the union's
   * extra readings, whose parts mostly repeat what the standard reading stored; they count
   * against maxDecodedBytes only when kept (chargeKept at finish), so an unambiguous message
   * does not pay twice. Every byte, kept or not, counts against the expansion ratio, which
   * bounds the work and the disk in flight; a single part never exceeds maxDecodedBytes.
   */
  addDecoded(n: number, late = false, partBytes = 0): void {
    if (late) {
      if (partBytes + n > this.limits.maxDecodedBytes) {
        throw new MimeError(MimeErrorCode.DECODED_LIMIT, `decoded content exceeds ${this.limits.maxDecodedBytes} bytes`);
      }
    } else {
      this.chargeKept(n);
    }
    if (this.work + n > this.expansionCap) {
      throw new MimeError(MimeErrorCode.EXPANSION_LIMIT, `decoded content exceeds ${this.limits.maxExpansionRatio ?? DEFAULT_EXPANSION_RATIO} times the message size`);
    }
    this.work += n;
  }

  /** A late-charged part of `n` bytes was kept (it is new content). */
  chargeKept(n: number): void {
    if (this.decoded + n > this.limits.maxDecodedBytes) {
      throw new MimeError(MimeErrorCode.DECODED_LIMIT, `decoded content exceeds ${this.limits.maxDecodedBytes} bytes`);
    }
    this.decoded += n;
  }

  /** May a part of `n` bytes (so far) stay in memory? Reserves the room when it may. */
  reserveMemory(n: number): boolean {
    if (this.inMemory + n > MEMORY_TOTAL_BYTES) return false;
    if (this.limits.memoryPool && !this.limits.memoryPool.tryReserve(n)) return false;
    this.inMemory += n;
    return true;
  }

  releaseMemory(n: number): void {
    const r = Math.min(n, this.inMemory);
    this.inMemory -= r;
    this.limits.memoryPool?.release(r);
  }

  /** The extraction is over: whatever it still holds goes back to the process's pool. */
  releaseAllMemory(): void {
    this.releaseMemory(this.inMemory);
  }

  get decodedBytes(): number {
    return this.decoded;
  }
}
