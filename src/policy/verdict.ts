/**
 * Verdicts are data: the one result of scanning a message, before any policy is applied.
 *
 * A "clean" verdict exists only when every engine answered clean for every item. Everything that
 * is not known to be clean or infected is an "error" (with its origin: scanner trouble, a bad
 * request, an abort from outside, an internal fault),
 * a "limit" (the message is beyond what we are willing to unpack), "encrypted" (an encrypted
 * archive whose members nobody can scan) or "busy" (waitfile present).
 */

/** Where a virus was found, for the log and for `-t -v`. */
export interface Finding {
  readonly name: string;
  readonly engine: string;
  /** "raw" or a MIME path such as "1.2". */
  readonly itemId: string;
  readonly filename?: string | undefined;
  readonly encoding?: string | undefined;
  readonly reading?: string | undefined;
  /** The container's format, when the item is a member the container stage took out of one. */
  readonly container?: string | undefined;
}

/** Where a failure came from (errors.ts); only 'scanner' may ever be accepted unscanned. */
export type ErrorOrigin = import('../errors.js').ErrorOrigin;

export type Verdict =
  | { readonly kind: 'clean'; readonly items: number }
  | { readonly kind: 'infected'; readonly names: readonly string[]; readonly findings: readonly Finding[] }
  | { readonly kind: 'error'; readonly code: string; readonly reason: string; readonly origin: ErrorOrigin }
  | { readonly kind: 'limit'; readonly code: string; readonly reason: string }
  /**
   * An encrypted container (a password-protected zip, 7z, rar...): its members cannot be
   * scanned. `name` is the report name (`Encrypted.Zip`), `path` where it is
   * ("2/invoice.zip/docs/a.exe" for an encrypted member, the archive's path when its header is).
   */
  | { readonly kind: 'encrypted'; readonly name: string; readonly format: string; readonly path: string }
  | { readonly kind: 'busy'; readonly reason: string }
  /**
   * A container that cannot be read and never will be (truncated, corrupt, an unsupported
   * method): retrying does not help, so it has its own action (action.damaged). `name` is the
   * file (as the sender named it), `path` where it is.
   */
  | { readonly kind: 'damaged'; readonly code: string; readonly reason: string; readonly name: string; readonly path: string }
  /** An attachment [banned] refuses by its name or type (`rule` says which). */
  | { readonly kind: 'banned'; readonly name: string; readonly path: string; readonly rule: string }
  /** Not scanned: a [skip] rule covers every recipient, or the message is a quarantine release. */
  | { readonly kind: 'skipped'; readonly reason: string }
  /** Not scanned: the client IP sent a virus a moment ago (action.block_ip_seconds). */
  | { readonly kind: 'blocked'; readonly ip: string };

/** The file names the findings were in (as the sender named them), each once. */
export function findingFiles(findings: readonly Finding[]): string[] {
  return [...new Set(findings.flatMap((f) => (f.filename !== undefined && f.filename !== '' ? [f.filename] : [])))];
}

/** Distinct names in the order they were found. */
export function uniqueNames(findings: readonly Finding[]): string[] {
  return [...new Set(findings.map((f) => f.name))];
}
