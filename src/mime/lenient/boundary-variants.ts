/**
 * The boundaries other mail readers take from a Content-Type written outside the grammar.
 *
 * Owns: the extra boundary candidates of one entity, beyond the parameters header.ts parses
 * (interpret.ts adds them after its own, so they never come first). Readers differ where the
 * grammar is broken: clamd and Python trim blanks inside the quotes (`boundary="b "` is
 * delimited by `--b`); clamd keeps the quotes of a quoted string followed by more bytes or
 * never closed (`boundary="Zq"x` is `--"Zq"x`, `boundary="Zq` is `--"Zq`); single quotes are
 * quotes to some (`boundary='Zq'` is `--Zq`); a comment inside the quotes is one to some
 * (`boundary="Zq(c)"` is `--Zq`); a fold inside the quotes is removed whole, not unfolded to a
 * blank (`"ab` CRLF ` cd"` is `--abcd`); a boundary with no `;` before it, or `,` or `:`
 * instead, is a boundary. Input: the header fields of one entity. Output: candidate strings,
 * in order, duplicates of each other removed (interpret.ts drops those it has already and
 * bounds the total). For a plainly written Content-Type every candidate here is one the
 * parameter parse already gave, so a plain message keeps its one reading. Never throws.
 */
import type { HeaderField } from './header.js';

/**
 * `boundary=` occurrences looked at in one value. A real header has one; a value listing
 * more is built to multiply work, and interpret.ts's own bound on candidates (with its limit
 * verdict) applies to what these give.
 */
export const MAX_LOOSE_BOUNDARY_MATCHES = 4;

/**
 * `boundary` then `=` anywhere in the value (blanks around the `=` allowed), any case, not the
 * tail of another parameter's name (`x-boundary=`).
 */
const BOUNDARY_RE = /(?<![-\w.*])boundary[ \t]*=[ \t]*/gi;

export function looseBoundaries(fields: readonly HeaderField[]): string[] {
  const out: string[] = [];
  const add = (b: string): void => {
    if (b !== '' && !out.includes(b)) out.push(b);
  };
  for (const f of fields) {
    if (f.name !== 'content-type') continue;
    for (const value of f.tight !== undefined ? [f.value, f.tight] : [f.value]) {
      // most values have no irregular boundary at all: nothing to do past this test
      if (!/boundary/i.test(value)) continue;
      let n = 0;
      for (const m of value.matchAll(BOUNDARY_RE)) {
        if (++n > MAX_LOOSE_BOUNDARY_MATCHES) break;
        for (const b of readingsOf(value.slice(m.index + m[0].length))) add(b);
      }
    }
  }
  return out;
}

/** The boundaries readers make of the bytes after `boundary=`. */
function readingsOf(rest: string): string[] {
  const out: string[] = [];
  const q = rest[0];
  if (q === '"' || q === "'") {
    const close = rest.indexOf(q, 1);
    const inner = close < 0 ? rest.slice(1).split(/[\s;]/, 1)[0]! : rest.slice(1, close);
    out.push(inner, inner.trim(), withoutComments(inner));
    // the quoted string with what follows it up to a separator, quotes kept, when it is not
    // a plain quoted string: a reader that does not parse quotes takes the token as written
    const literal = rest.split(/[\s;,]/, 1)[0]!;
    if (close < 0 || close + 1 < literal.length) out.push(literal);
    // a double-quoted string that is no quoted string to this reader: up to the closing quote
    if (close < 0) out.push(rest.slice(1).trim());
  } else {
    // no `;` before it, or `,`/`:` as separators: a token up to the next separator
    const token = rest.split(/[\s;,]/, 1)[0]!;
    out.push(token, token.replace(/^["']|["']$/g, ''));
  }
  return out.filter((b) => b !== '');
}

/** `Zq(c)` → `Zq`: comments removed even inside quotes, as some readers do, then trimmed. */
function withoutComments(s: string): string {
  return s.replace(/\([^()]*\)/g, '').trim();
}
