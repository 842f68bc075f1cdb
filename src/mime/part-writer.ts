/**
 * One part being stored: its decoded bytes in memory until they outgrow it, then in a private
 * temp file; its SHA-256; its place in the part store once finished (or nothing, when it is a
 * duplicate of a part stored before).
 *
 * Owns: the bytes of one part in flight. Inputs: decoded bytes through write(). Outputs: a
 * FinishedPart. Fails with MimeError from the budget (EMIME_DECODED_LIMIT,
 * EMIME_EXPANSION_LIMIT, EMIME_PART_LIMIT), with the fs error of a failed temp-file write
 * (thrown again by every later call: the bytes on disk are not the bytes hashed), or with the
 * signal's reason once the extraction's deadline has passed. part-store.ts owns the directory
 * and the list of parts: the writer sees it as a PartHome.
 */
import * as crypto from 'node:crypto';
import { createHash, type Hash } from 'node:crypto';
import { unlink, type FileHandle } from 'node:fs/promises';
import { bufferBytes, fileBytesOfSize, type MessageBytes } from '../bytes/message-bytes.js';
import { addNamesOf, type ExtractedPart, type PartMeta } from '../bytes/part.js';
import { bufferSource, fileSource, type ScanSource } from '../bytes/sources.js';
import { StartLineSniffer } from './embedded/start-lines.js';
import type { Budget } from './limits.js';

/** crypto.hash, when this Node has it. */
const oneShotHash = (crypto as { hash?: (alg: string, data: Buffer, enc: 'hex') => string }).hash;

/** Spilled bytes are gathered into writes of this size: fewer syscalls, little memory. */
const SPILL_WRITE_BYTES = 256 * 1024;

export interface FinishedPart {
  /** The stored part; for a duplicate, the first part with the same content. */
  part: ExtractedPart;
  duplicate: boolean;
  /** SHA-256 of the content, hex. */
  digest: string;
  /** The stored bytes with range reads, for walking an attached message again. */
  bytes: MessageBytes;
}

/** What a writer needs of the store it writes into (part-store.ts's PartStore). */
export interface PartHome {
  readonly budget: Budget;
  /** Throws the signal's reason once it has fired. */
  checkAbort(): void;
  /** The part stored earlier with this content, if any. */
  lookup(digest: string): { part: ExtractedPart; bytes: MessageBytes } | undefined;
  /** Throws EMIME_PART_LIMIT when one more distinct part would be too many. */
  checkRoom(): void;
  /** A new 0600 file in the private directory. */
  createFile(): Promise<{ handle: FileHandle; path: string }>;
  /** Takes a finished part (new content) into the store. */
  add(w: PartWriter, digest: string, part: ExtractedPart, bytes: MessageBytes): void;
  /** Forgets a writer that was aborted or found a duplicate. */
  release(w: PartWriter): void;
}

/** Receives one part's decoded bytes; keeps them in memory until they outgrow it. */
export class PartWriter {
  /** The SHA-256 of a spilled part, fed as it is written; a part in memory is hashed once, at finish(). */
  private hash: Hash | undefined;
  private size = 0;
  /**
   * The bytes of a part still in memory: one buffer that grows by doubling (a part written a
   * line at a time once kept one buffer per line, and wrote each one to disk when it spilled).
   * Its capacity is what is reserved against MEMORY_TOTAL_BYTES.
   */
  private memory: Buffer | undefined;
  private memoryBytes = 0;
  private file: { handle: FileHandle; path: string } | undefined;
  /** Spilled bytes gather here (one buffer per writer) so a write never keeps the caller's buffer. */
  private staging: Buffer | undefined;
  private pendingBytes = 0;
  private done = false;
  /** The fs error that left this writer unusable: thrown again (same code) by later calls. */
  private failure: unknown;
  /**
   * A spilled part's bytes searched for start lines as they are written (embedded/index.ts
   * then need not read a large binary back); undefined for a part in memory.
   */
  readonly sniffer: StartLineSniffer | undefined = undefined;

  /** Charged against maxDecodedBytes only if kept (see Budget.addDecoded). */
  private readonly late: boolean;

  constructor(
    private readonly store: PartHome,
    private readonly meta: PartMeta,
  ) {
    this.late = meta.reading !== 'standard';
  }

  /** `charged`: the bytes were charged to the budget already (PartStore.chargeLate). */
  async write(buf: Buffer, charged = false): Promise<void> {
    if (buf.length === 0 || this.done) return;
    if (this.failure !== undefined) throw this.failure;
    if (!charged) {
      this.store.checkAbort();
      this.store.budget.addDecoded(buf.length, this.late, this.size);
    }
    if (this.file === undefined) {
      // a copy: decoders may reuse the buffer they hand out
      if (this.size + buf.length <= this.store.budget.limits.memoryPartBytes && this.grow(this.memoryBytes + buf.length)) {
        buf.copy(this.memory!, this.memoryBytes);
        this.memoryBytes += buf.length;
        this.size += buf.length;
        return;
      }
      await this.guard(() => this.spill());
    }
    this.hash!.update(buf);
    this.sniffer?.push(buf);
    this.size += buf.length;
    let off = 0;
    while (off < buf.length) {
      const staging = (this.staging ??= Buffer.allocUnsafe(SPILL_WRITE_BYTES));
      const n = buf.copy(staging, this.pendingBytes, off);
      off += n;
      this.pendingBytes += n;
      if (this.pendingBytes >= SPILL_WRITE_BYTES) await this.guard(() => this.flushPending());
    }
  }

  /** Completes the part. A duplicate of earlier content is dropped and the earlier part returned. */
  async finish(): Promise<FinishedPart> {
    if (this.done) throw new Error('part already finished');
    // after a failed temp-file write the bytes on disk are not the bytes hashed
    if (this.failure !== undefined) throw this.failure;
    const inMemory = this.memory !== undefined ? this.memory.subarray(0, this.memoryBytes) : Buffer.alloc(0);
    const digest = this.file !== undefined ? this.hash!.digest('hex') : sha256Hex(inMemory);
    const first = this.store.lookup(digest);
    if (first !== undefined) {
      await this.abort();
      // the same bytes under another name (a second attachment, a member): [banned] must see it
      addNamesOf(first.part, this.meta);
      return { part: first.part, duplicate: true, digest, bytes: first.bytes };
    }
    try {
      // members of containers are counted by the container stage against its own limit
      if (this.meta.container === undefined) this.store.checkRoom();
    } catch (err) {
      await this.abort();
      throw err;
    }
    let source: ScanSource;
    let bytes: MessageBytes;
    if (this.file !== undefined) {
      const file = this.file;
      await this.guard(async () => {
        await this.flushPending();
        await file.handle.close();
      });
      source = fileSource(file.path, this.size);
      bytes = fileBytesOfSize(file.path, this.size);
      this.file = undefined; // closed; the path now belongs to the part and dispose() removes it
    } else {
      // the growing buffer may be up to twice the size of what it holds: an exact copy then;
      // one that fits (a part written in one go, as a body in memory is) is kept as it is
      const buf = this.memory !== undefined && this.memoryBytes === this.memory.length ? this.memory : Buffer.from(inMemory);
      this.store.budget.releaseMemory((this.memory?.length ?? 0) - buf.length);
      source = bufferSource(buf);
      bytes = bufferBytes(buf);
      this.memory = undefined;
    }
    this.done = true;
    const part: ExtractedPart = { ...this.meta, size: this.size, source };
    if (part.filename === undefined) delete part.filename;
    this.store.add(this, digest, part, bytes);
    // new content of an extra reading: it counts now, and it is kept even when it crosses
    // the limit (a virus in it still counts)
    if (this.late) this.store.budget.chargeKept(this.size);
    return { part, duplicate: false, digest, bytes };
  }

  /** Drops whatever was written (temp file included). Safe to call more than once. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.store.budget.releaseMemory(this.memory?.length ?? 0);
    this.memory = undefined;
    this.memoryBytes = 0;
    this.staging = undefined;
    this.pendingBytes = 0;
    const file = this.file;
    this.file = undefined;
    if (file !== undefined) {
      await file.handle.close().catch(() => undefined);
      await unlink(file.path).catch(() => undefined);
    }
    this.store.release(this);
  }

  /**
   * Room in memory for `n` bytes: the buffer doubles (up to memoryPartBytes), each growth
   * reserved against MEMORY_TOTAL_BYTES. False when the reservation is refused.
   */
  private grow(n: number): boolean {
    const cap = this.memory?.length ?? 0;
    if (n <= cap) return true;
    const next = Math.min(this.store.budget.limits.memoryPartBytes, Math.max(n, cap * 2, 256));
    if (!this.store.budget.reserveMemory(next - cap)) return false;
    const buf = Buffer.allocUnsafe(next);
    this.memory?.copy(buf, 0, 0, this.memoryBytes);
    this.memory = buf;
    return true;
  }

  /** An fs failure leaves the writer unusable: finish() refuses, abort() cleans up. */
  private async guard(io: () => Promise<void>): Promise<void> {
    try {
      await io();
    } catch (err) {
      this.failure = err;
      throw err;
    }
  }

  /** Moves the part to a temp file: what was in memory is hashed and written first, in one write. */
  private async spill(): Promise<void> {
    this.file = await this.store.createFile();
    const held = this.memory?.subarray(0, this.memoryBytes);
    this.hash = createHash('sha256');
    // a text part is read whole by the post-pass anyway: no search for it
    if (!/^(?:text|message)\//.test(this.meta.contentType)) (this as { sniffer: StartLineSniffer | undefined }).sniffer = new StartLineSniffer();
    this.store.budget.releaseMemory(this.memory?.length ?? 0);
    this.memory = undefined;
    this.memoryBytes = 0;
    if (held !== undefined && held.length > 0) {
      this.hash.update(held);
      this.sniffer?.push(held);
      await writeAll(this.file.handle, held);
    }
  }

  private async flushPending(): Promise<void> {
    if (this.file === undefined || this.pendingBytes === 0) return;
    const n = this.pendingBytes;
    this.pendingBytes = 0;
    await writeAll(this.file.handle, this.staging!.subarray(0, n));
  }
}

/** One-shot SHA-256, hex (crypto.hash where Node has it, from 20.12: no Hash object per small part). */
export function sha256Hex(buf: Buffer): string {
  return typeof oneShotHash === 'function' ? oneShotHash('sha256', buf, 'hex') : createHash('sha256').update(buf).digest('hex');
}

async function writeAll(handle: FileHandle, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await handle.write(data, off, data.length - off);
    off += bytesWritten;
  }
}
