/**
 * Glob patterns of the policy tables: virus names ([action.by_name]), addresses ([skip]
 * senders, recipients, pass_recipients) and file names ([banned] names), compiled once per
 * config with picomatch.
 *
 * Matching is case-insensitive everywhere (virus names differ in case between engines, mail
 * domains are case-insensitive, attachment names come in any case), and `*` matches any run of
 * characters, dots and slashes included ("*Eicar*" matches "Win.Test.EICAR_HDB-1"). A file name
 * is matched by its last path component (a member "docs/a.exe" inside an archive is "a.exe").
 * Inputs: patterns from a loaded config. Outputs: a predicate. Fails with nothing: the config
 * loader already refused empty patterns and control characters.
 */
import picomatch from 'picomatch';

export type GlobSubject = 'name' | 'address' | 'filename';

const OPTIONS: picomatch.PicomatchOptions = { nocase: true, dot: true, bash: true, nobrace: true, noextglob: true };

/** One predicate for a list of patterns: true when any pattern matches. Empty list: never. */
export function compileGlobs(patterns: readonly string[], subject: GlobSubject): (s: string) => boolean {
  if (patterns.length === 0) return () => false;
  const matchers = patterns.map((p) => picomatch(p, OPTIONS));
  const prepare = subject === 'filename' ? lastComponent : (s: string) => s;
  return (s) => {
    const x = prepare(s);
    return matchers.some((m) => m(x));
  };
}

/** Which of several patterns match, in their order (for [action.by_name]). */
export function compileGlobTable<V>(table: Readonly<Record<string, V>>): (s: string) => V[] {
  const rows = Object.entries(table).map(([p, v]) => ({ m: picomatch(p, OPTIONS), v }));
  return (s) => rows.filter((r) => r.m(s)).map((r) => r.v);
}

function lastComponent(s: string): string {
  const i = Math.max(s.lastIndexOf('/'), s.lastIndexOf('\\'));
  return i >= 0 ? s.slice(i + 1) : s;
}
