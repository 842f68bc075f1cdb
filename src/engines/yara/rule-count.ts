/**
 * Counts the rules declared in YARA source, for the engine's version line ("N rules from DIR"),
 * and checks that a rule file ends at top level.
 *
 * Owns: a minimal YARA lexer. The binding offers no way to enumerate compiled rules, so we count
 * `rule` keywords at brace depth 0, skipping comments, text strings and regular expressions
 * (which may hold braces or the word "rule"). Hex strings nest balanced braces, so depth
 * tracking covers them.
 * Inputs: the text of one rule file.
 * Outputs: the number of rule declarations (private and global ones included), their names, and whether the
 * text ends at top level: rule files are compiled as one concatenated source, so a file that
 * ends inside a comment or a rule body would silently swallow the start of the next one.
 * Pure, no throws.
 */

export interface RuleSourceShape {
  /** Rule declarations at top level. */
  readonly rules: number;
  /** Their identifiers, in order. */
  readonly names: readonly string[];
  /** False when the text ends inside a block comment, a literal or a rule body. */
  readonly complete: boolean;
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;
const SPACE = /\s/;

export function countRules(src: string): RuleSourceShape {
  let rules = 0;
  const names: string[] = [];
  let depth = 0;
  let unclosed = false;
  // The last significant token, so "/" can be told apart: a regex follows "=" or "matches",
  // anything else makes it division.
  let prev = '';
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    if (SPACE.test(c)) {
      i++;
    } else if (src.startsWith('//', i)) {
      const end = src.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) unclosed = true;
      i = end < 0 ? n : end + 2;
    } else if (c === '"' || (c === '/' && (prev === '=' || prev === 'matches'))) {
      const lit = skipLiteral(src, i, c);
      if (!lit.closed) unclosed = true;
      i = lit.end;
      if (c === '/') while (i < n && IDENT_PART.test(src[i]!)) i++; // modifiers: /re/is
      prev = 'literal';
    } else if (IDENT_START.test(c)) {
      const start = i;
      while (i < n && IDENT_PART.test(src[i]!)) i++;
      const word = src.slice(start, i);
      if (depth === 0 && prev === 'rule') names.push(word);
      if (depth === 0 && word === 'rule') rules++;
      prev = word;
    } else {
      if (c === '{') depth++;
      else if (c === '}') depth = Math.max(0, depth - 1);
      // A lone "=" (assignment in strings/meta), not part of ==, !=, <=, >=.
      const before = i > 0 ? src[i - 1]! : ' ';
      const lone = c === '=' && src[i + 1] !== '=' && !'=!<>'.includes(before);
      prev = lone ? '=' : c;
      i++;
    }
  }
  return { rules, names, complete: depth === 0 && !unclosed };
}

/** Skips the literal opening at `i` (text string or regex, backslash escapes, one line). */
function skipLiteral(src: string, i: number, quote: string): { end: number; closed: boolean } {
  let j = i + 1;
  while (j < src.length && src[j] !== quote && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
  const closed = j < src.length && src[j] === quote;
  return { end: closed ? j + 1 : j, closed };
}
