/**
 * The filename a part declares, decoded for reports.
 *
 * Owns: reading Content-Disposition `filename` (else Content-Type `name`) and decoding RFC 2231
 * (charset, percent-encoding, `*0*`/`*1` continuations) and RFC 2047 encoded words with libmime.
 * Input: the raw header values (first occurrence, as mailsplit reads them). Output: the decoded
 * name, or undefined. Never throws: an undecodable name is returned as it was written. Filenames
 * are never used to decide whether something is scanned (only whether it is banned).
 */
import libmime from 'libmime';

/** Longest filename kept; longer names are cut in the middle (reports, [banned] names). */
export const MAX_FILENAME_CHARS = 255;

export function decodeFilename(contentDisposition: string, contentType: string): string | undefined {
  return decodeName(param(contentDisposition, 'filename') || param(contentType, 'name'));
}

/**
 * The Content-Type `name` when Content-Disposition gives a `filename` that differs: mail
 * clients differ on which of the two they show and save, so [banned] checks both.
 */
export function otherDeclaredName(contentDisposition: string, contentType: string): string | undefined {
  const filename = param(contentDisposition, 'filename');
  if (!filename) return undefined;
  const name = decodeName(param(contentType, 'name'));
  return name !== undefined && name !== decodeName(filename) ? name : undefined;
}

function decodeName(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let name = raw;
  try {
    name = libmime.decodeWords(raw);
  } catch {
    // an unknown charset in an encoded word: keep the name as written
  }
  // control characters would let a filename forge log lines
  name = name.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
  // a long name keeps its end too: the extension is what [banned] names match
  if (name.length > MAX_FILENAME_CHARS) name = `${name.slice(0, MAX_FILENAME_CHARS - 128)}...${name.slice(-125)}`;
  return name || undefined;
}

function param(headerValue: string, key: string): string | undefined {
  if (!headerValue) return undefined;
  try {
    const v = libmime.parseHeaderValue(headerValue).params[key];
    return typeof v === 'string' && v !== '' ? v : undefined;
  } catch {
    return undefined;
  }
}
