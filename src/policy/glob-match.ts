/**
 * One glob pattern, compiled, and matched without backtracking.
 *
 * Written here rather than taken from a library, on purpose: the glob libraries that compile a
 * pattern to a regular expression (picomatch, micromatch, minimatch up to 10) backtrack, and
 * "*a*a*a*a*b" against a 5,000-character address — which a sender chooses — runs for hours in
 * one worker; minimatch 11's matcher does not backtrack, but it is under the BlueOak licence,
 * which this project has not decided on (tools/licences.ts). The subjects here are single
 * strings (an address, a file name, a virus or type name), the patterns have only `*`, `?`,
 * `[...]` and `\`, and for those the classic two-cursor algorithm is exact and linear in the
 * subject for each star: at most O(pattern × subject) steps, whatever the input.
 *
 * Owns: the pattern grammar — `*` any run of characters (none, "/", "@" and dots included),
 * `?` one character, `[abc]` `[a-z]` `[!a-z]` `[^a-z]` one character of (or not of) a class,
 * `\x` the character x; an unclosed `[` is a literal "[". Matching is case-insensitive (both
 * sides lower-cased, character by character: code points, not UTF-16 units).
 * Inputs: a pattern; then subjects. Outputs: true or false. Fails with nothing.
 */

type Token =
  | { readonly t: 'lit'; readonly c: string }
  | { readonly t: 'any' }
  | { readonly t: 'star' }
  | { readonly t: 'class'; readonly negated: boolean; readonly singles: ReadonlySet<string>; readonly ranges: ReadonlyArray<readonly [number, number]> };

export type GlobMatcher = (subject: string) => boolean;

const fold = (c: string): string => c.toLowerCase();

export function compileGlob(pattern: string): GlobMatcher {
  const tokens = tokenize(Array.from(pattern));
  return (subject) => matchTokens(tokens, Array.from(subject, fold));
}

function tokenize(p: readonly string[]): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '\\' && i + 1 < p.length) {
      out.push({ t: 'lit', c: fold(p[++i]!) });
    } else if (c === '*') {
      if (out[out.length - 1]?.t !== 'star') out.push({ t: 'star' }); // "**" is "*"
    } else if (c === '?') {
      out.push({ t: 'any' });
    } else if (c === '[') {
      const cls = readClass(p, i);
      if (cls === undefined) out.push({ t: 'lit', c: '[' });
      else {
        out.push(cls.token);
        i = cls.end;
      }
    } else {
      out.push({ t: 'lit', c: fold(c) });
    }
  }
  return out;
}

/** A class starting at p[start] = "[", or undefined when it is not closed. */
function readClass(p: readonly string[], start: number): { token: Token; end: number } | undefined {
  let i = start + 1;
  const negated = p[i] === '!' || p[i] === '^';
  if (negated) i++;
  const singles = new Set<string>();
  const ranges: Array<[number, number]> = [];
  let first = true;
  for (; i < p.length; i++) {
    let c = p[i]!;
    if (c === ']' && !first) return { token: { t: 'class', negated, singles, ranges }, end: i };
    first = false;
    if (c === '\\' && i + 1 < p.length) c = p[++i]!;
    // a range "a-z" (a "-" first or last is itself)
    if (p[i + 1] === '-' && p[i + 2] !== undefined && p[i + 2] !== ']') {
      let hi = p[i + 2]!;
      i += 2;
      if (hi === '\\' && i + 1 < p.length) hi = p[++i]!;
      const a = fold(c).codePointAt(0)!;
      const b = fold(hi).codePointAt(0)!;
      ranges.push(a <= b ? [a, b] : [b, a]);
    } else {
      singles.add(fold(c));
    }
  }
  return undefined;
}

function matchOne(tok: Token, c: string): boolean {
  switch (tok.t) {
    case 'lit': return tok.c === c;
    case 'any': return true;
    case 'class': {
      const cp = c.codePointAt(0)!;
      const inside = tok.singles.has(c) || tok.ranges.some(([a, b]) => cp >= a && cp <= b);
      return inside !== tok.negated;
    }
    case 'star': return false;
  }
}

/**
 * Every token but `*` takes exactly one character, so one resume point is enough: on a
 * mismatch, the last `*` takes one more character and the tokens after it are tried again from
 * there. An earlier star never needs to take more (anything it could give the later ones, the
 * last star can take instead), which is what keeps this linear per star.
 */
function matchTokens(tokens: readonly Token[], s: readonly string[]): boolean {
  let ti = 0;
  let si = 0;
  let starTi = -1;
  let starSi = 0;
  while (si < s.length) {
    const tok = tokens[ti];
    if (tok !== undefined && tok.t === 'star') {
      starTi = ti++;
      starSi = si;
    } else if (tok !== undefined && matchOne(tok, s[si]!)) {
      ti++;
      si++;
    } else if (starTi >= 0) {
      ti = starTi + 1;
      si = ++starSi;
    } else {
      return false;
    }
  }
  while (tokens[ti]?.t === 'star') ti++;
  return ti === tokens.length;
}
