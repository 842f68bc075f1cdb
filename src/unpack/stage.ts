/**
 * The container stage: after the MIME readings, every stored part whose bytes are a
 * container (sniff.ts: archives, compressors, OLE2/PDF/RTF documents, TNEF, a mail message or
 * an mbox whatever its declared type), or hold one where a mainstream reader finds it (behind
 * other bytes, a zip placed from its end record or local headers: locate.ts), is unpacked under
 * every such reading, and its members become parts of their own,
 * unpacked again in turn down to UnpackOptions.maxDepth. Members are stored in the message's
 * part store (de-duplicated by SHA-256: a 42.zip-style bomb of identical copies is unpacked
 * once per level), so engines get them as items like any part, with the path down to them
 * ("2/invoice.zip/docs/a.exe") and the container's format.
 *
 * Owns: the walk over parts and members, the limits of one message's unpacking (depth,
 * members, bytes, ratio to the message size, time) and turning unpackers' outcomes into the
 * extraction's verdict material: `encrypted` (the first encrypted member or archive) and
 * `limit` (EUNPACK_* codes). Inputs: a ContainerHost (host.ts: the parts, their bytes, a store
 * for members, the readings of mail and text), the message size, the options with the
 * unpackers. Output: StageResult; members in the host's store. Rejects only with the signal's
 * reason (abort) or a store fault (a temp file that cannot be written), as the MIME readings
 * do; an unpacker that fails is the EUNPACK_INTERNAL limit record with origin internal (never
 * clean).
 *
 * Mail found as a part or a member (clam.mail typed application/octet-stream, an .eml in a
 * zip) is handed to the host to walk as mail; an mbox is split into its messages first. New
 * members are handed to the host to read for encodings inside their text (uuencode, BinHex...).
 */
import type { MessageBytes } from '../bytes/message-bytes.js';
import type { ExtractedPart } from '../bytes/part.js';
import { AvError } from '../errors.js';
import type { ContainerHost } from './host.js';
import { mboxSeparatorEnd, nsisAt, sniff, SNIFF_BYTES } from './sniff.js';
import { locate, locateBehind, type Opening } from './locate.js';
import { unpackMbox } from './mbox.js';
import { UnpackErrorCode, type ContainerFormat, type UnpackLimits, type UnpackResult } from './types.js';

/** Reads archives (the 7-Zip pool): the formats it reads, and one container at a time. */
export interface ArchiveReader {
  readonly formats: ReadonlySet<ContainerFormat>;
  unpack(input: Buffer, format: ContainerFormat, limits: UnpackLimits, signal?: AbortSignal): Promise<UnpackResult>;
}

/** A synchronous reader of one document format (formats/): linear in its input, bounded output. */
export type DocumentReader = (input: Buffer, limits: UnpackLimits) => UnpackResult;

export interface UnpackOptions {
  readonly maxDepth: number;
  readonly maxMembers: number;
  readonly maxBytes: number;
  readonly maxRatio: number;
  readonly maxTimeMs: number;
  readonly archives?: ArchiveReader | undefined;
  readonly documents?: Partial<Record<ContainerFormat, DocumentReader>> | undefined;
}

export interface StageResult {
  /** A limit crossed (EUNPACK_*) or an unpacker's fault: never clean. */
  limit?: { code: string; message: string; internal?: boolean; where?: string };
  /** The first encrypted content found. */
  encrypted?: { format: ContainerFormat; path: string };
}

/** Unpacked bytes may exceed maxRatio × the message size by this much (a small mail with a normal zip). */
export const RATIO_SLACK_BYTES = 16 * 1024 * 1024;

/** Longest member name kept in a path: names are for reports, and a sender can make them huge. */
const MAX_NAME_CHARS = 200;

/** Single-stream compressors: their member is the one stream they hold. */
const COMPRESSORS: ReadonlySet<string> = new Set(['gzip', 'bzip2', 'xz', 'zstd', 'compress', 'szdd', 'lzma', 'lz4']);

/** Types the MIME readings walk as messages already (src/mime: walk.ts, lenient/interpret.ts). */
const WALKED_MESSAGE_TYPES: ReadonlySet<string> = new Set(['message/rfc822', 'message/global', 'message/news']);

/** The format name reports use: `Encrypted.Zip`, `Encrypted.7z`, `Encrypted.RAR`. */
export function formatLabel(f: ContainerFormat): string {
  switch (f) {
    case 'zip': return 'Zip';
    case 'rar': return 'RAR';
    case 'pdf': return 'PDF';
    case 'ole2': return 'OLE2';
    default: return f;
  }
}

/** A limit of the stage (depth, members, time, a damaged or unreadable container): never leaves this module. */
class StageLimit extends AvError {
  /** `where`: the damaged container's path (CORRUPT, UNSUPPORTED), for the reply and the log. */
  constructor(code: string, message: string, readonly where?: string) {
    super(code, 'limit', message);
    this.name = 'StageLimit';
  }
}

export async function unpackContainers(host: ContainerHost, inputSize: number, opts: UnpackOptions): Promise<StageResult> {
  const run = new Stage(host, inputSize, opts);
  return run.run();
}

class Stage {
  private readonly depth = new Map<ExtractedPart, number>();
  private readonly seen = new Set<ExtractedPart>();
  private members = 0;
  private bytes = 0;
  private readonly deadline: number;
  private readonly ratioCap: number;
  private readonly result: StageResult = {};
  private readonly later: Array<{ part: ExtractedPart; bytes: MessageBytes; depth: number; opening: Opening }> = [];
  /** Readings opened of each item ("cab@1234"): a container found by two searches is opened once. */
  private readonly opened = new Map<ExtractedPart, Set<string>>();

  constructor(
    private readonly host: ContainerHost,
    inputSize: number,
    private readonly opts: UnpackOptions,
  ) {
    this.deadline = Date.now() + opts.maxTimeMs;
    this.ratioCap = inputSize * opts.maxRatio + RATIO_SLACK_BYTES;
  }

  async run(): Promise<StageResult> {
    const { parts } = this.host;
    for (const p of parts) this.depth.set(p, 0);
    // parts added while the loop runs (members, parts of walked mail, embedded finds) are
    // visited in turn: the list only grows, each distinct content is stored once. Readings put
    // off (a zip placed inside another container) come when every part so far is visited, so
    // the container's own members are named first.
    let i = 0;
    for (;;) {
      for (; i < parts.length; i++) {
        const part = parts[i]!;
        if (this.seen.has(part)) continue;
        this.seen.add(part);
        this.checkAbort();
        if (!(await this.attempt(() => this.visit(part, this.depth.get(part) ?? 0)))) return this.result;
      }
      const later = this.later.shift();
      if (later === undefined) break;
      this.checkAbort();
      // a container found behind another that again leaves bytes unread (cab, junk, cab, junk,
      // cab): what follows it is searched in turn, as cabextract reads every cabinet
      if (!(await this.attempt(async () => {
        if (await this.open(later.part, later.bytes, later.depth, later.opening)) await this.searchBehind(later.part, later.bytes, later.depth, later.opening.offset + 1);
      }))) return this.result;
    }
    return this.result;
  }

  /** Runs one visit or opening; false when a spent budget (members, bytes, time) ends the stage. */
  private async attempt(step: () => Promise<void>): Promise<boolean> {
    try {
      await step();
      return true;
    } catch (err) {
      if (!(err instanceof StageLimit)) throw err;
      this.result.limit ??= { code: err.code, message: err.message, ...(err.where !== undefined ? { where: err.where } : {}) };
      return err.code === UnpackErrorCode.DEPTH || err.code === UnpackErrorCode.CORRUPT || err.code === UnpackErrorCode.UNSUPPORTED;
    }
  }

  private checkAbort(): void {
    const s = this.host.signal;
    if (s?.aborted) throw s.reason ?? new Error('aborted');
  }

  private async visit(part: ExtractedPart, depth: number): Promise<void> {
    if (part.size === 0) return;
    const bytes = this.host.bytesOf(part);
    if (bytes === undefined) return;
    const head = await bytes.read(0, Math.min(bytes.size, SNIFF_BYTES));
    let format = sniff(head, bytes.size);
    if (format === undefined) {
      if (!WALKED_MESSAGE_TYPES.has(part.contentType) && (await this.host.isMessage(bytes, head))) format = 'mail';
      else if (mboxSeparatorEnd(head) !== undefined) format = 'mbox';
      else if (head[0] === 0x4d && head[1] === 0x5a && this.opts.archives?.formats.has('nsis')) {
        if (bytes.size <= this.remainingBytes() && nsisAt(await bytes.read(0, bytes.size))) format = 'nsis';
      }
    }
    // every reading a mainstream reader has of it: at its start, behind other bytes, each zip
    // placed from its end record or its local headers (locate.ts). A reading that fails does
    // not stop the others (a damaged first reading must not hide a second one); its limit is
    // raised once they have all been read.
    const canRead = (f: ContainerFormat): boolean => this.canRead(f);
    const located = await locate((start, len, into) => bytes.read(start, len, into), bytes.size, {
      atStart: format,
      search: format === undefined,
      readable: canRead,
      maxEntries: Math.max(0, this.opts.maxMembers - this.members),
    });
    let failed: StageLimit | undefined;
    let behind = false;
    for (const o of located.openings) {
      if (o.later) { this.later.push({ part, bytes, depth, opening: o }); continue; }
      try {
        const left = await this.open(part, bytes, depth, o);
        // a container found behind other bytes that leaves bytes unread: the search goes on behind it
        if (left && o.offset > 0 && o.input === undefined) await this.searchBehind(part, bytes, depth, o.offset + 1);
        behind = left || behind;
      } catch (err) {
        if (!(err instanceof StageLimit) || (err.code !== UnpackErrorCode.CORRUPT && err.code !== UnpackErrorCode.UNSUPPORTED)) throw err;
        failed ??= err;
        behind ||= format !== undefined && this.opts.archives?.formats.has(format) === true;
      }
    }
    const problem = located.problem;
    // the container at the start left bytes unread (after its end, or past damage): another
    // container there is what cabextract or GNU tar would read next
    if (behind && format !== undefined) {
      try {
        await this.searchBehind(part, bytes, depth, 1);
      } catch (err) {
        if (!(err instanceof StageLimit)) throw err;
        failed ??= err;
      }
    }
    if (problem !== undefined) failed ??= new StageLimit(UnpackErrorCode.CORRUPT, `damaged ${format ?? 'container'} at ${this.pathOf(part, format ?? 'zip')}: ${problem}`, this.pathOf(part, format ?? 'zip'));
    if (failed) throw failed;
  }

  private canRead(f: ContainerFormat): boolean {
    return f === 'mbox' || f === 'mail' || this.opts.documents?.[f] !== undefined || this.opts.archives?.formats.has(f) === true;
  }

  /** Puts off the containers found in the item from `from` on (not opened yet); a search that gives up is a limit. */
  private async searchBehind(part: ExtractedPart, bytes: MessageBytes, depth: number, from: number): Promise<void> {
    const more = await locateBehind((start, len, into) => bytes.read(start, len, into), bytes.size, (f) => this.canRead(f), from);
    const done = this.opened.get(part);
    for (const o of more.openings) if (!done?.has(`${o.format}@${o.offset}`)) this.later.push({ part, bytes, depth, opening: o });
    if (more.problem !== undefined) {
      const where = this.pathOf(part, 'zip');
      throw new StageLimit(UnpackErrorCode.CORRUPT, `damaged container at ${where}: ${more.problem}`, where);
    }
  }

  /** Opens one reading; true when its reader left bytes after the container unread. */
  private async open(part: ExtractedPart, bytes: MessageBytes, depth: number, o: Opening): Promise<boolean> {
    const { format, offset } = o;
    // each reading of an item once (a rebuilt zip has its own bytes: not deduplicated here)
    if (o.input === undefined) {
      let done = this.opened.get(part);
      if (done === undefined) this.opened.set(part, (done = new Set()));
      const key = `${format}@${offset}`;
      if (done.has(key)) return false;
      done.add(key);
    }
    const where = this.pathOf(part, format) + (offset > 0 ? `@${offset}` : '');
    if (depth >= this.opts.maxDepth) {
      throw new StageLimit(UnpackErrorCode.DEPTH, `containers nested deeper than ${this.opts.maxDepth} at ${where}`);
    }
    if (Date.now() >= this.deadline) throw new StageLimit(UnpackErrorCode.TIME, `unpacking took longer than ${this.opts.maxTimeMs / 1000} s`);
    const before = this.host.parts.length;
    let trailing = false;
    if (format === 'mail') {
      await this.host.walkMessage(part, bytes);
    } else {
      trailing = await this.unpack(bytes, o, where);
    }
    const added = this.host.parts.slice(before);
    // a compressor's one stream is not a level of its own: a .tar.gz is one container to
    // whoever opens it (ClamAV's nested .tgz test is 9 levels of them); a compressor inside a
    // compressor is, so that a chain of them is bounded by the depth as well
    const level = COMPRESSORS.has(format) && !COMPRESSORS.has(part.container ?? '') ? 0 : 1;
    for (const p of added) if (!this.depth.has(p)) this.depth.set(p, depth + level);
    // text inside members (a uuencoded file in a .txt in a zip) is read as MIME text parts are
    const text = added.filter((p) => !this.seen.has(p));
    if (text.length > 0) {
      const beforeEmbedded = this.host.parts.length;
      await this.host.readEmbedded(text);
      for (const p of this.host.parts.slice(beforeEmbedded)) if (!this.depth.has(p)) this.depth.set(p, depth + 1);
    }
    return trailing;
  }

  private remainingBytes(): number {
    return Math.max(0, Math.min(this.opts.maxBytes, this.ratioCap) - this.bytes);
  }

  private async unpack(bytes: MessageBytes, o: Opening, where: string): Promise<boolean> {
    const { format, offset } = o;
    const room = this.remainingBytes();
    const memberRoom = this.opts.maxMembers - this.members;
    if (memberRoom <= 0) throw new StageLimit(UnpackErrorCode.MEMBERS, `more than ${this.opts.maxMembers} members in the containers of this message`);
    const limits: UnpackLimits = { maxOutputBytes: room, maxMembers: memberRoom, deadline: this.deadline };
    let result: UnpackResult;
    if (format === 'mbox') {
      result = unpackMbox(await bytes.read(0, bytes.size), limits);
    } else {
      const doc = this.opts.documents?.[format];
      const archives = this.opts.archives;
      if (doc === undefined && !archives?.formats.has(format)) return false; // no reader for it here: the engines see its bytes
      const input = o.input?.() ?? await bytes.read(offset, bytes.size - offset);
      try {
        result = doc !== undefined ? doc(input, limits) : await archives!.unpack(input, format, limits, this.host.signal);
      } catch (err) {
        this.checkAbort();
        const why = err instanceof Error ? err.message : String(err);
        this.result.limit ??= { code: UnpackErrorCode.INTERNAL, message: `cannot unpack ${where}: ${why}`, internal: true };
        return false;
      }
    }
    // a find behind other bytes that has no checked header (zstd, a PDF header in text) and
    // opens to nothing was no container: neither a reader nor this one sees anything in it
    if (o.weak && result.members.length === 0 && result.outcome !== 'size' && result.outcome !== 'members' && result.outcome !== 'time') return false;
    this.checkAbort();
    let n = 0;
    for (const m of result.members) {
      const chunks = m.chunks ?? [m.bytes];
      this.members++;
      for (const c of chunks) this.bytes += c.length;
      const name = cleanName(m.name) || `[member ${n + 1}]`;
      n++;
      await this.host.addMember({
        path: `${where}/${name}`,
        contentType: 'application/octet-stream',
        filename: name.slice(name.lastIndexOf('/') + 1) || name,
        encoding: format,
        reading: 'container',
        container: format,
      }, chunks);
    }
    switch (result.outcome) {
      case 'ok':
        return result.trailing === true;
      case 'encrypted':
        this.result.encrypted ??= { format, path: result.detail ? `${where}/${cleanName(result.detail)}` : where };
        return false;
      case 'corrupt':
        // a PDF stream with damage a viewer meets as well (data a filter refuses, a stream cut
        // short): what decoded and the raw stream are both members, so nothing a viewer shows
        // is unseen, and such streams are common in harmless PDFs. Where the reader stops and
        // a viewer would go on, pdf.ts says `unsupported`, which is a limit.
        if (format === 'pdf') return false;
        throw new StageLimit(UnpackErrorCode.CORRUPT, `damaged ${format} at ${where}${result.detail ? `: ${result.detail}` : ''}`, where);
      case 'unsupported':
        throw new StageLimit(UnpackErrorCode.UNSUPPORTED, `${format} at ${where} uses a method that cannot be read${result.detail ? `: ${result.detail}` : ''}`, where);
      case 'members':
        throw new StageLimit(UnpackErrorCode.MEMBERS, `more than ${this.opts.maxMembers} members in the containers of this message`);
      case 'time':
        throw new StageLimit(UnpackErrorCode.TIME, `unpacking took longer than ${this.opts.maxTimeMs / 1000} s`);
      case 'size':
        if (this.ratioCap < this.opts.maxBytes) {
          throw new StageLimit(UnpackErrorCode.RATIO, `unpacked content exceeds ${this.opts.maxRatio} times the message size (at ${where})`);
        }
        throw new StageLimit(UnpackErrorCode.SIZE, `unpacked content exceeds ${this.opts.maxBytes} bytes (at ${where})`);
    }
  }

  /** Where the container is: a part's MIME path and file name; a member's path already says both. */
  private pathOf(part: ExtractedPart, format: ContainerFormat): string {
    if (part.container !== undefined) return part.path;
    return `${part.path}/${part.filename !== undefined ? cleanName(part.filename) : `[${format}]`}`;
  }
}

/**
 * A name fit for a path in a report: no control characters, bounded length. A long name keeps
 * its start and its end: the end is the file's extension, which [banned] names match ("*.exe"
 * must still see a 300-character name ending in .exe).
 */
function cleanName(s: string): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\x00-\x1f\x7f]/g, '?');
  const half = MAX_NAME_CHARS / 2;
  return t.length > MAX_NAME_CHARS ? `${t.slice(0, half)}...${t.slice(-half)}` : t;
}
