/**
 * Glob lists as matchers: the address globs of [skip] (senders, recipients, pass_recipients) and
 * the file-name and type globs of [banned].
 *
 * Owns: compiling a list once (per config) into one predicate, and what a subject is before it
 * is matched (an address lower-cased on the whole, a file name cut to the name a mail client
 * saves). Matching is minimatch's (`*`, `?`, `[...]`, `{a,b}`, `\` escapes), chosen over
 * regex-compiling matchers because its matching does not backtrack: `*a*a*a*a*b` against a
 * 2,000-character address a sender made up takes milliseconds, not hours, and the subjects here
 * are the sender's to choose. Inputs: the config's lists (the loader checked they are strings).
 * Outputs: predicates; an empty list compiles to undefined, so callers skip the work. Fails with
 * nothing: every string is a glob (an unmatched `[` is a literal).
 */
import { Minimatch, type MinimatchOptions } from 'minimatch';

export type Matcher = (subject: string) => boolean;

/**
 * Case-insensitive on the whole subject (a local part's case is the receiving host's to honour,
 * and every mail host we know ignores it); `*` also matches a leading dot; no `!` negation and
 * no `#` comments, so every entry means what it says.
 */
const OPTIONS: MinimatchOptions = { nocase: true, dot: true, nonegate: true, nocomment: true, noglobstar: true };

/**
 * minimatch splits patterns and subjects at "/" (it matches paths). Addresses and file names are
 * single strings that may hold one, so "/" is replaced on both sides by a character that is
 * never a glob's: `*` then matches across it, a "/" in a pattern still matches only "/".
 */
const SLASH = '\u2215';

function compileOne(glob: string): Minimatch {
  return new Minimatch(glob.replaceAll('/', SLASH), OPTIONS);
}

/** One predicate for a list of globs (true when any matches); undefined for an empty list. */
export function compileGlobs(globs: readonly string[]): Matcher | undefined {
  if (globs.length === 0) return undefined;
  const compiled = globs.map(compileOne);
  return (subject) => {
    const s = subject.replaceAll('/', SLASH);
    return compiled.some((m) => m.match(s));
  };
}

/**
 * An envelope address as globs see it: the angle brackets Courier may keep stripped, nothing
 * else changed (case is the matcher's). "" (the null sender) stays "" and matches only a glob
 * that matches the empty string.
 */
export function addressSubject(address: string): string {
  const a = address.trim();
  return a.startsWith('<') && a.endsWith('>') ? a.slice(1, -1) : a;
}

/**
 * A file name as the system that saves it sees it: the last component after "/" or "\" (a
 * client saves "../../a.exe" as a.exe), without the trailing dots and spaces Windows drops
 * ("a.exe. " opens as a.exe), and as a person reads it: control, bidi and zero-width characters
 * left out ("a.e\u200Bxe" shows as a.exe). A ban errs towards the name that is shown.
 */
export function fileNameSubject(name: string): string {
  // eslint-disable-next-line no-control-regex
  const visible = name.replace(/[\u0000-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]/g, '');
  const last = visible.slice(Math.max(visible.lastIndexOf('/'), visible.lastIndexOf('\\')) + 1);
  return last.replace(/[. ]+$/, '');
}

/** A config's lists are frozen and live as long as it: each is compiled once. */
const compiledLists = new WeakMap<readonly string[], Matcher | undefined>();

/** The addresses of `addresses` that any glob matches (for pass_recipients and the drop's keep list). */
export function matchRecipients(globs: readonly string[], addresses: readonly string[]): string[] {
  let m = compiledLists.get(globs);
  if (m === undefined && !compiledLists.has(globs)) {
    m = compileGlobs(globs);
    compiledLists.set(globs, m);
  }
  if (m === undefined) return [];
  return addresses.filter((a) => m(addressSubject(a)));
}

/**
 * A table of glob -> value ([action.by_name]) as one function: the values of every glob that
 * matches `subject`, in the table's order. Virus names are matched as they are (case aside).
 */
export function compileGlobTable<V>(table: Readonly<Record<string, V>>): (subject: string) => V[] {
  const rows = Object.entries(table).map(([glob, value]) => ({ m: compileOne(glob), value }));
  return (subject) => {
    const s = subject.replaceAll('/', SLASH);
    return rows.filter((r) => r.m.match(s)).map((r) => r.value);
  };
}
