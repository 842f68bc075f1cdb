/**
 * Verdicts are data: the one result of scanning a message, before any policy is applied.
 *
 * A "clean" verdict exists only when every engine answered clean for every item. Everything that
 * is not known to be clean or infected is an "error" (with its origin: scanner trouble, a bad
 * request, an abort from outside, an internal fault),
 * a "limit" (the message is beyond what we are willing to unpack) or "busy" (waitfile present).
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
}

/** Where a failure came from (errors.ts); only 'scanner' may ever be accepted unscanned. */
export type ErrorOrigin = 'scanner' | 'input' | 'abort' | 'internal';

export type Verdict =
  | { readonly kind: 'clean'; readonly items: number }
  | { readonly kind: 'infected'; readonly names: readonly string[]; readonly findings: readonly Finding[] }
  | { readonly kind: 'error'; readonly code: string; readonly reason: string; readonly origin: ErrorOrigin }
  | { readonly kind: 'limit'; readonly code: string; readonly reason: string }
  | { readonly kind: 'busy'; readonly reason: string };

/** Distinct names in the order they were found. */
export function uniqueNames(findings: readonly Finding[]): string[] {
  return [...new Set(findings.map((f) => f.name))];
}
