/**
 * Where decoded parts go: memory for small ones, a private temp file for large ones, one copy
 * of each distinct content.
 *
 * Owns: the temp directory of one extraction (created lazily with mkdtemp, so 0700, under the
 * caller's tmpdir, which is made again if it was removed), the files in it (0600), the SHA-256
 * de-duplication, and the list of parts; part-writer.ts owns one part in flight.
 * Inputs: decoded bytes through PartWriter.write(). Outputs: ExtractedPart records whose
 * sources stay valid until dispose(). Fails with MimeError EMIME_DECODED_LIMIT from the budget,
 * with the fs error of a failed temp-file write (extract.ts reports those as EMIME_IO), or with
 * the signal's reason once the extraction's deadline has passed (every write checks it).
 */
import { mkdir, mkdtemp, open, rm, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { MessageBytes } from '../bytes/message-bytes.js';
import type { ExtractedPart, PartMeta } from '../bytes/part.js';
import { AvError } from '../errors.js';
import { MimeError, MimeErrorCode, type Budget } from './limits.js';
import { CannotVouch } from './lenient/vouch.js';
import { PartWriter, sha256Hex, type FinishedPart, type PartHome } from './part-writer.js';

export { PartWriter, type FinishedPart } from './part-writer.js';

/**
 * Directories of this process whose removal failed: tmpdir made unwritable for a moment makes
 * rm() fail before it removes anything inside. Without a retry each would stay until the
 * process ends (one per message disposed in such a moment); the next dispose() retries.
 */
const leftBehind = new Set<string>();

async function removeDir(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true });
    leftBehind.delete(dir);
  } catch {
    leftBehind.add(dir);
  }
}

/** Contents up to this size are looked up by their bytes before their hash (PartStore.hasContent). */
const TINY_CONTENT_BYTES = 256;

export class PartStore implements PartHome {
  readonly parts: ExtractedPart[] = [];
  private readonly byDigest = new Map<string, { part: ExtractedPart; bytes: MessageBytes }>();
  private readonly open = new Set<PartWriter>();
  private readonly walkedMessages = new Set<string>();
  private readonly bytesByPart = new WeakMap<ExtractedPart, MessageBytes>();
  /** Spilled parts: does a line start an item (startLineOf). */
  private readonly startLines = new WeakMap<ExtractedPart, boolean>();
  /**
   * The message when it is in memory (MessageInput.fromBuffer): a body that is a range of it
   * is keyed by that range (rangeKey), not by a SHA-256 of its encoded bytes.
   */
  private message: Buffer | undefined;
  /** encodedKey() or rangeKey() of a body the standard reading decoded in full → the digest it decoded to. */
  private readonly byEncoded = new Map<string, string>();
  /** Tiny contents (as latin1 strings) → their digest (see hasContent). */
  private readonly tinyDigests = new Map<string, string>();
  private dir: string | undefined;
  private seq = 0;
  private disposed = false;
  /** Why a strict reader could read this message otherwise (see noteIrregular), if it could. */
  irregular: string | undefined;
  /**
   * The lenient reading runs alone and stands in for the standard one (extract.ts): any
   * irregularity or doubt (see doubt()) throws CannotVouch, and the message is read again with
   * both readings.
   */
  vouching = false;
  /**
   * While vouching: the byte ranges of the message that are base64 bodies decoded without any
   * irregularity, each into a part held here (Extraction.decodedBodies), in document order.
   */
  readonly decodedBodies: Array<readonly [number, number]> = [];

  constructor(
    private readonly tmpdir: string,
    readonly budget: Budget,
    /** The extraction's deadline: every write checks it, so no loop stores on past it. */
    private readonly signal?: AbortSignal,
  ) {}

  /**
   * @internal `n` decoded bytes of an extra reading, at `partBytes` into their part, charged
   * before they reach a writer (PartWriter.write(buf, true) then does not charge them again).
   */
  chargeLate(n: number, partBytes: number): void {
    this.checkAbort();
    this.budget.addDecoded(n, true, partBytes);
  }

  /** @internal Throws the signal's reason once it has fired. */
  checkAbort(): void {
    if (this.signal?.aborted) throw this.signal.reason ?? new Error('aborted');
  }

  begin(meta: PartMeta): PartWriter {
    const w = new PartWriter(this, meta);
    this.open.add(w);
    return w;
  }

  /**
   * The message is not one that every reader reads alike: a header a strict parser rejects,
   * several candidates for a type, boundary or encoding, a delimiter only a lenient reader
   * finds, a base64 body a strict decoder decodes otherwise. Reported in the message's log
   * line (`irregular=`).
   */
  noteIrregular(why: string): void {
    this.irregular ??= why;
    this.doubt(why);
  }

  /**
   * While vouching: the message's bytes [start, end) are a base64 body that was decoded, with
   * nothing irregular, into a part of this store. Ignored otherwise.
   */
  noteDecodedBody(start: number, end: number): void {
    if (this.vouching && end > start) this.decodedBodies.push([start, end]);
  }

  /** While vouching: the lenient reading cannot stand in for the standard one here (CannotVouch). */
  doubt(why: string): void {
    if (this.vouching) throw new CannotVouch(why);
  }

  /** Closes open writers and removes every temp file; the parts' sources are dead after this. */
  async dispose(): Promise<void> {
    this.disposed = true;
    for (const w of [...this.open]) await w.abort();
    this.budget.releaseAllMemory();
    await this.closeHandles();
    if (this.dir !== undefined) {
      const dir = this.dir;
      this.dir = undefined;
      await removeDir(dir);
    }
    // what an earlier dispose could not remove (tmpdir was not writable for a moment)
    for (const d of [...leftBehind]) await removeDir(d);
  }

  /** @internal A new 0600 file in the private directory. */
  async createFile(prefix = 'part'): Promise<{ handle: FileHandle; path: string }> {
    if (this.disposed) throw new AvError('EDISPOSED', 'internal', 'part store already disposed');
    if (this.dir === undefined) {
      const dir = await this.makeDir();
      if (this.disposed) {
        await rm(dir, { recursive: true, force: true });
        throw new AvError('EDISPOSED', 'internal', 'part store already disposed');
      }
      this.dir = dir;
    }
    const path = join(this.dir, `${prefix}-${++this.seq}`);
    return { handle: await open(path, 'wx', 0o600), path };
  }

  /**
   * The private directory, under the caller's tmpdir. A tmpdir removed while the daemon runs
   * (a cleanup job, an admin) is made again, 0700 as the daemon made it at start: otherwise
   * every message from then on would fail. Only the tmpdir itself: a missing parent stays an
   * error (ENOENT), as does anything else.
   */
  private async makeDir(): Promise<string> {
    // the pid in the name lets the master remove what a killed worker left (master/tmp-sweep.ts)
    const prefix = join(this.tmpdir, `avfilter-mime-${process.pid}-`);
    try {
      return await mkdtemp(prefix);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
      await mkdir(this.tmpdir, { mode: 0o700 }).catch((e: unknown) => {
        if ((e as { code?: unknown }).code !== 'EEXIST') throw e;
      });
      return await mkdtemp(prefix);
    }
  }

  /** A fresh path in the private directory (for a spooled input); nothing is created there. */
  async reservePath(): Promise<string> {
    const { handle, path } = await this.createFile('message');
    await handle.close();
    await unlink(path);
    return path;
  }

  /**
   * True the first time it is asked for a digest in a namespace (one per reading): that
   * content is walked as a message once per reading.
   */
  claimMessageWalk(digest: string, namespace = 'standard'): boolean {
    const key = `${namespace}:${digest}`;
    if (this.walkedMessages.has(key)) return false;
    this.walkedMessages.add(key);
    return true;
  }

  /** Has the content `digest` been claimed for a walk in `namespace`? */
  hasWalked(digest: string, namespace = 'standard'): boolean {
    return this.walkedMessages.has(`${namespace}:${digest}`);
  }

  /** The stored bytes of a part, for range reads. */
  bytesOf(part: ExtractedPart): MessageBytes | undefined {
    return this.bytesByPart.get(part);
  }

  /** Closes the read handles of stored parts (reopened if they are read again). */
  async closeHandles(): Promise<void> {
    for (const { bytes } of this.byDigest.values()) await bytes.close();
  }

  /**
   * The standard reading decoded a whole body: `key` (encodedKey of the decoder and the
   * encoded bytes) gave the content `digest`. A later reading that meets the same encoded
   * bytes under the same decoder gets the same content, so it need not decode them again.
   */
  noteEncoded(key: string, digest: string): void {
    if (this.byDigest.has(digest)) this.byEncoded.set(key, digest);
  }

  /** @internal The message is this buffer, in memory and unchanged until the extraction ends. */
  setMessage(buf: Buffer): void {
    this.message = buf;
  }

  /**
   * Where `view` starts in the message, when it is a view of the message's own memory (the
   * standard reading of a message in memory gets its bodies as such views); -1 otherwise.
   */
  offsetInMessage(view: Buffer): number {
    const m = this.message;
    if (m === undefined || view.buffer !== m.buffer) return -1;
    const at = view.byteOffset - m.byteOffset;
    return at >= 0 && at + view.length <= m.length ? at : -1;
  }

  /** @internal The message's bytes [start, end) (only while it is set: see setMessage). */
  messageRange(start: number, end: number): Buffer {
    return this.message!.subarray(start, end);
  }

  /** Is `bytes` the message itself (so that its ranges are the message's)? */
  isMessage(bytes: MessageBytes): boolean {
    return this.message !== undefined && bytes.buffer === this.message;
  }

  /** Has any full decode been noted (noteEncoded)? Until one has, no lookupEncoded can hit. */
  knowsEncoded(): boolean {
    return this.byEncoded.size > 0;
  }

  /** The part an earlier full decode of the same encoded bytes by the same decoder gave. */
  lookupEncoded(key: string): FinishedPart | undefined {
    const digest = this.byEncoded.get(key);
    const hit = digest !== undefined ? this.byDigest.get(digest) : undefined;
    return hit !== undefined && digest !== undefined ? { part: hit.part, duplicate: true, digest, bytes: hit.bytes } : undefined;
  }

  /** @internal The part stored earlier with this content, if any. */
  lookup(digest: string): { part: ExtractedPart; bytes: MessageBytes } | undefined {
    return this.byDigest.get(digest);
  }

  /**
   * @internal Is this content stored already? A content of at most TINY_CONTENT_BYTES is
   * keyed by its bytes first: a SHA-256 costs microseconds of fixed overhead, and a part can
   * hold a hundred thousand identical tiny finds. The map holds only contents that are (or are
   * about to be) parts, so it stays as small as the part list.
   */
  hasContent(content: Buffer): boolean {
    if (content.length > TINY_CONTENT_BYTES) return this.byDigest.has(sha256Hex(content));
    const key = content.toString('latin1');
    let digest = this.tinyDigests.get(key);
    if (digest === undefined) {
      digest = sha256Hex(content);
      this.tinyDigests.set(key, digest);
    }
    return this.byDigest.has(digest);
  }

  /** @internal Throws EMIME_PART_LIMIT when one more distinct part would be too many. */
  checkRoom(): void {
    if (this.parts.length >= this.budget.limits.maxParts) {
      throw new MimeError(MimeErrorCode.PART_LIMIT, `more than ${this.budget.limits.maxParts} distinct decoded parts`);
    }
  }

  /** @internal */
  add(w: PartWriter, digest: string, part: ExtractedPart, bytes: MessageBytes): void {
    this.open.delete(w);
    if (w.sniffer !== undefined) this.startLines.set(part, w.sniffer.found);
    this.byDigest.set(digest, { part, bytes });
    this.bytesByPart.set(part, bytes);
    this.parts.push(part);
  }

  /**
   * Whether a line of a spilled part starts an item the post-pass finds in any part
   * (embedded/start-lines.ts), as its writer saw; undefined for a part kept in memory.
   */
  startLineOf(part: ExtractedPart): boolean | undefined {
    return this.startLines.get(part);
  }

  /** @internal */
  release(w: PartWriter): void {
    this.open.delete(w);
  }
}

/**
 * The identity of "these encoded bytes under this decoder": decoders are pure functions of
 * their input (chunking does not matter, tested at every offset), so equal keys decode to
 * equal content. The decoder is named by its class, which is what fixes the function.
 */
export function encodedKey(decoder: object, encodedSha256: string): string {
  return `${decoder.constructor.name}:${encodedSha256}`;
}

/**
 * The identity of "the message's bytes [start, end) under this decoder": the message in memory
 * is one buffer that does not change while it is extracted, so the same range is the same
 * encoded bytes, and no hash of them is needed. Distinct from every encodedKey (no hex digest
 * holds "@").
 */
export function rangeKey(decoder: object, start: number, end: number): string {
  return `${decoder.constructor.name}:@${start}-${end}`;
}
