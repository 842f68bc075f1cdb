/**
 * Glob patterns of the policy tables: virus names ([action.by_name]), addresses ([skip]
 * senders, recipients, pass_recipients) and file names and types ([banned]), compiled once per
 * config.
 *
 * Matching is case-insensitive everywhere (virus names differ in case between engines, mail
 * domains are case-insensitive and every mail host we know ignores the local part's case,
 * attachment names come in any case), and `*` matches any run of characters, dots and slashes
 * included ("*Eicar*" matches "Win.Test.EICAR_HDB-1", "*@example.com" matches "a/b@example.com").
 * `?`, `[...]` and `\` escapes work as in the shell; no braces, extglobs or `!` negation, so
 * every entry means what it says. The matcher (glob-match.ts) never backtracks: addresses and
 * attachment names are the sender's to choose, and a regex-compiled glob against a long made-up
 * one can run for hours (test/gates-policy.test.ts measures it).
 * Inputs: patterns from a loaded config (the loader refused empty patterns and control
 * characters). Outputs: predicates. Fails with nothing.
 */
import { compileGlob, type GlobMatcher } from './glob-match.js';

export type GlobSubject = 'name' | 'address' | 'filename';

const PREPARE: Record<GlobSubject, (s: string) => string> = {
  name: (s) => s,
  address: (s) => addressSubject(s),
  filename: (s) => fileNameSubject(s),
};

/** One predicate for a list of patterns: true when any pattern matches. Empty list: never. */
export function compileGlobs(patterns: readonly string[], subject: GlobSubject): (s: string) => boolean {
  const named = compileGlobList(patterns, subject);
  return (s) => named(s) !== undefined;
}

/** Like compileGlobs, but answers with the first pattern that matches (for the log), or undefined. */
export function compileGlobList(patterns: readonly string[], subject: GlobSubject): (s: string) => string | undefined {
  if (patterns.length === 0) return () => undefined;
  const rows: Array<{ p: string; m: GlobMatcher }> = patterns.map((p) => ({ p, m: compileGlob(p) }));
  const prepare = PREPARE[subject];
  return (s) => {
    const x = prepare(s);
    return rows.find((r) => r.m(x))?.p;
  };
}

/** Which of several patterns match, in their order (for [action.by_name]). */
export function compileGlobTable<V>(table: Readonly<Record<string, V>>): (s: string) => V[] {
  const rows = Object.entries(table).map(([p, v]) => ({ m: compileGlob(p), v }));
  return (s) => rows.filter((r) => r.m(s)).map((r) => r.v);
}

/**
 * An envelope address as globs see it: the angle brackets stripped, nothing else changed (case
 * is the matcher's). "" (the null sender) stays "" and matches only a pattern that matches "".
 */
export function addressSubject(address: string): string {
  const a = address.trim();
  return a.startsWith('<') && a.endsWith('>') ? a.slice(1, -1) : a;
}

/**
 * A file name as the system that saves it sees it: the last component after "/" or "\" (a
 * client saves "../../a.exe" as a.exe, a member "docs/a.exe" inside an archive is a.exe), without
 * the trailing dots and spaces Windows drops ("a.exe. " opens as a.exe), and as a person reads
 * it: control, bidi and zero-width characters left out ("a.e\u200Bxe" shows as a.exe). A ban
 * errs towards the name that is shown.
 */
export function fileNameSubject(name: string): string {
  // eslint-disable-next-line no-control-regex
  const visible = name.replace(/[\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]/g, '');
  const last = visible.slice(Math.max(visible.lastIndexOf('/'), visible.lastIndexOf('\\')) + 1);
  return last.replace(/[. ]+$/, '');
}

/** A config's lists are frozen and live as long as it: each is compiled once. */
const compiledLists = new WeakMap<readonly string[], (s: string) => boolean>();

/**
 * The addresses among `addresses` that a pattern matches ([skip] pass_recipients: they get
 * infected mail tagged, the drop's keep list).
 */
export function matchRecipients(globs: readonly string[], addresses: readonly string[]): string[] {
  if (globs.length === 0) return [];
  let m = compiledLists.get(globs);
  if (m === undefined) {
    m = compileGlobs(globs, 'address');
    compiledLists.set(globs, m);
  }
  return addresses.filter(m);
}
