/**
 * The events the embedded scanner hands its caller, and the buffers their bytes live in.
 *
 * Owns: ScanEvent, and gathering one item's decoded bytes of one push() into one buffer so
 * that they come out as one data event (not one per line), with the first bytes of every item
 * taken from one arena per push (not one allocation per item). Buffers are made for one push
 * and never reused: the events point into them until the caller has applied them. Never
 * throws.
 */

export type EmbeddedKind = 'uuencode' | 'base64-block' | 'qp-block' | 'yenc' | 'binhex' | 'data-uri';

/** The bytes of a data event are valid until the next push() or end(). */
export type ScanEvent =
  | { readonly type: 'open'; readonly id: number; readonly kind: EmbeddedKind; readonly name?: string | undefined }
  | { readonly type: 'data'; readonly id: number; readonly bytes: Buffer }
  | { readonly type: 'close'; readonly id: number };

const EMPTY = Buffer.alloc(0);

/** An item's first room in a push comes from the push's arena: most items are small. */
const FIRST_GATHER_BYTES = 256;
/** The arena's size when the push is small. */
const MIN_ARENA_BYTES = 64 * 1024;

/**
 * Memory for the items of one push: small slices handed out one after the other from a buffer
 * made for the push (never reused: events point into it until they are applied), so a page
 * of thousands of tiny items allocates a few buffers, not one each.
 */
export class Arena {
  private buf: Buffer = EMPTY;
  private used = 0;
  private size = MIN_ARENA_BYTES;

  /** A new push of about `hint` bytes: slices come from a new buffer from now on. */
  begin(hint: number): void {
    this.buf = EMPTY;
    this.used = 0;
    this.size = Math.max(MIN_ARENA_BYTES, hint);
  }

  take(n: number): Buffer {
    if (this.used + n > this.buf.length) {
      this.buf = Buffer.allocUnsafe(Math.max(n, this.size));
      this.used = 0;
    }
    const slice = this.buf.subarray(this.used, this.used + n);
    this.used += n;
    return slice;
  }
}

/**
 * The decoded bytes of one item (or of the data: URI being read) during one push, handed out
 * as one data event when the item changes or the push ends. Its first room comes from the
 * arena; an item that outgrows it gets buffers of its own, doubling up to the push's size.
 */
export class Gather {
  private buf: Buffer = EMPTY;
  private o = 0;
  private start = 0;
  private id = -1;
  private ev: ScanEvent[] = [];
  private hint = 0;

  constructor(private readonly arena: Arena) {}

  /** A new push: its events go to `ev`; about `hint` bytes may come (for item `id`, if one). */
  begin(ev: ScanEvent[], hint: number, id = -1): void {
    this.ev = ev;
    this.buf = EMPTY;
    this.o = this.start = 0;
    this.id = id;
    this.hint = hint;
  }

  /** Room for `n` more bytes of item `id` at `at`: write there, then call advance(). */
  room(id: number, n: number): Buffer {
    if (id !== this.id) {
      this.flush();
      this.id = id;
    }
    if (this.o + n > this.buf.length) {
      this.flush();
      this.buf = this.buf.length === 0 && n <= FIRST_GATHER_BYTES ? this.arena.take(FIRST_GATHER_BYTES) : Buffer.allocUnsafe(Math.max(n, Math.min(this.hint, this.buf.length * 2)));
      this.o = this.start = 0;
    }
    return this.buf;
  }

  get at(): number {
    return this.o;
  }

  advance(to: number): void {
    this.o = to;
  }

  /** Hands out what was gathered for the current item. */
  flush(): void {
    if (this.o > this.start && this.id >= 0) this.ev.push({ type: 'data', id: this.id, bytes: this.buf.subarray(this.start, this.o) });
    this.start = this.o;
  }
}

