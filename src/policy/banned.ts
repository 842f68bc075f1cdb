/**
 * [banned]: attachments refused for their name or their type, whatever the engines say
 * (amavis's and scan-mail.pl's banned files).
 *
 * Owns: compiling the section once per config and checking the parts of one message: every
 * decoded MIME part under every reading, and every member the container stage took out of an
 * archive or document (their names are the members' names), so "*.exe" finds a.exe inside
 * invoice.zip — under every name the bytes go by (a Content-Type name that differs from the
 * disposition's filename, a second attachment or member with the same bytes: bytes/part.ts). Names are matched as a mail client or an unzip tool would save them (globs.ts:
 * the last path component, Windows' trailing dots and spaces dropped, case-insensitive);
 * double extensions are ordinary globs ("*.pdf.exe"). Types are matched against the part's
 * declared Content-Type and against the type detected from its first bytes by file-type (MIME
 * type and extension: an .exe renamed invoice.txt and declared text/plain is still
 * application/x-msdownload, "exe"). file-type is loaded only when a config lists types.
 * Inputs: the section; per message, its parts and the request's AbortSignal. Output: the first
 * banned part in the parts' order (MIME parts before the members found in them), or undefined.
 * An empty section compiles to undefined: the default costs a message nothing.
 * Fails with: the signal's reason (abort) and the errno of a part file that cannot be read
 * (the scan makes that an internal error: never clean, never banned by guess).
 */
import { open } from 'node:fs/promises';
import type { ScanSource } from '../bytes/sources.js';
import { compileGlobList } from './globs.js';

export interface BannedConfig {
  readonly names: readonly string[];
  readonly types: readonly string[];
}

/** What the check needs of a part (bytes/part.ts's ExtractedPart has it all). */
export interface BannedPart {
  readonly path: string;
  readonly filename?: string | undefined;
  /** Other names the same bytes go by (bytes/part.ts: Content-Type name, duplicates). */
  readonly alsoNamed?: readonly string[] | undefined;
  readonly contentType: string;
  readonly container?: string | undefined;
  readonly source: ScanSource;
}

export interface BannedHit {
  /** The file name as the message gives it (or the part's path when it has none). */
  readonly name: string;
  /** Where: the MIME path, and for a member the path down to it ("2/invoice.zip/a.exe"). */
  readonly path: string;
  /** Which rule: `name "*.exe"`, `type application/x-msdownload (detected)`, `type text/x-sh (declared)`. */
  readonly rule: string;
}

export type BannedCheck = (parts: readonly BannedPart[], signal: AbortSignal) => Promise<BannedHit | undefined>;

/**
 * Bytes file-type needs to tell a type (its own reasonableDetectionSizeInBytes): every magic
 * number it knows lies in them, and a part is read no further.
 */
export const TYPE_SNIFF_BYTES = 4100;

type Detect = (head: Uint8Array) => Promise<{ ext: string; mime: string } | undefined>;

export function compileBanned(c: BannedConfig): BannedCheck | undefined {
  const names = c.names.length > 0 ? compileGlobList(c.names, 'filename') : undefined;
  const types = c.types.length > 0 ? compileGlobList(c.types, 'name') : undefined;
  if (names === undefined && types === undefined) return undefined;
  let detect: Promise<Detect> | undefined;
  return async (parts, signal) => {
    for (const p of parts) {
      if (signal.aborted) throw signal.reason ?? new Error('aborted');
      const name = p.filename !== undefined && p.filename !== '' ? p.filename : undefined;
      if (names !== undefined) {
        for (const n of name !== undefined ? [name, ...(p.alsoNamed ?? [])] : p.alsoNamed ?? []) {
          const glob = names(n);
          if (glob !== undefined) return { name: n, path: p.path, rule: `name "${glob}"` };
        }
      }
      if (types === undefined) continue;
      // a member's declared type is the stage's placeholder (application/octet-stream): only the message's own parts declare one
      if (p.container === undefined && p.contentType !== '') {
        const glob = types(p.contentType);
        if (glob !== undefined) return { name: name ?? p.path, path: p.path, rule: `type ${p.contentType} (declared, "${glob}")` };
      }
      if (p.source.size === 0) continue;
      detect ??= loadDetector();
      const found = await (await detect)(await head(p.source));
      if (found === undefined) continue;
      const glob = types(found.mime) ?? types(found.ext);
      if (glob !== undefined) return { name: name ?? p.path, path: p.path, rule: `type ${found.mime} (detected, "${glob}")` };
    }
    return undefined;
  };
}

async function loadDetector(): Promise<Detect> {
  const { fileTypeFromBuffer } = await import('file-type/core');
  return async (bytes) => {
    try {
      return await fileTypeFromBuffer(bytes);
    } catch {
      // a head that ends inside a structure file-type follows (a zip's entries): no type told
      return undefined;
    }
  };
}

/** The first TYPE_SNIFF_BYTES of a part, from memory or from its file. */
async function head(src: ScanSource): Promise<Uint8Array> {
  const n = Math.min(src.size, TYPE_SNIFF_BYTES);
  if (src.bytes !== undefined) return src.bytes.subarray(0, n);
  if (src.path !== undefined) {
    const fh = await open(src.path, 'r');
    try {
      const buf = Buffer.alloc(n);
      const { bytesRead } = await fh.read(buf, 0, n, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }
  return (await src.buffer()).subarray(0, n);
}
