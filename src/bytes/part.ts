/**
 * A decoded part as the engines get it: where it was found, how, and its bytes.
 *
 * Owns: the record only. The MIME extractor (src/mime) stores such parts, the container stage
 * (src/unpack) reads them and adds its members as parts of their own, and the scan
 * (src/scan) hands each one to the engines.
 */
import type { ScanSource } from './sources.js';

export interface ExtractedPart {
  /** "1", "1.2", ... as in IMAP BODYSTRUCTURE numbering. */
  path: string;
  /** Lower case, no parameters. */
  contentType: string;
  /** Decoded with libmime (RFC 2047/2231); for reports and [banned] names. */
  filename?: string;
  /**
   * Other names the same content goes by, for [banned]: the Content-Type `name` where the
   * disposition's `filename` says otherwise (mail clients differ on which they show), and the
   * names of later parts or members with the same bytes, which the store keeps only once
   * (at most MAX_ALSO_NAMED).
   */
  alsoNamed?: string[];
  /** The CTE that was undone: base64, quoted-printable, 7bit, 8bit, binary, or the unknown token. */
  encoding: string;
  /**
   * Which interpretation of the message yielded the part: "standard" (mailsplit), "lenient"
   * (the tolerant walker), a tag naming the ambiguity it resolved differently ("last-CTE",
   * "dup-boundary-2", "preamble", ...), or the decoder of an encoding found inside a text body
   * ("uuencode", "base64-block", "qp-block", "yenc", "binhex", "data-uri").
   */
  reading: string;
  /**
   * The format of the container this part was taken out of by the container stage
   * (src/unpack/), for a member; absent for everything the MIME readings found.
   */
  container?: string;
  size: number;
  source: ScanSource;
}

/** What is known of a part before its bytes are stored. */
export type PartMeta = Omit<ExtractedPart, 'size' | 'source'>;

/** Most other names kept on one part (a message that repeats one attachment under 10,000 names gets no more). */
export const MAX_ALSO_NAMED = 32;

/** Adds `name` to the part's other names (not its own name, no repeats, bounded). */
export function addAlsoNamed(part: { filename?: string; alsoNamed?: string[] }, name: string | undefined): void {
  if (name === undefined || name === '' || name === part.filename) return;
  const list = (part.alsoNamed ??= []);
  if (list.length < MAX_ALSO_NAMED && !list.includes(name)) list.push(name);
}

/** The names `meta` gives to content already stored as `part` (a duplicate): kept for [banned]. */
export function addNamesOf(part: { filename?: string; alsoNamed?: string[] }, meta: { filename?: string | undefined; alsoNamed?: readonly string[] | undefined }): void {
  addAlsoNamed(part, meta.filename);
  for (const n of meta.alsoNamed ?? []) addAlsoNamed(part, n);
}
