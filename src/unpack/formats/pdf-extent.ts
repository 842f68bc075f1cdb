/**
 * Where a stream's data starts after its `stream` keyword. The keyword should be followed by a
 * line end (7.3.8.1); where it is not, readers disagree: qpdf skips spaces and tabs one by one,
 * then a line end if there is one, and otherwise starts the data right there ("stream keyword
 * not followed by proper line terminator"); pdf.js skips to the end of the line, which may lie
 * inside the data. Both starts are returned then, and the PDF reader decodes from each, so no
 * reading a viewer has is left out; a regular file has one start.
 *
 * Owns: the keyword test (after a dictionary's `>>` anything may follow; elsewhere only spaces
 * and a line end, so "stream" in a word is not a stream) and the starts. Input: the file as a
 * latin1 string, the keyword's offset, where the search for a line end stops (the next
 * `endstream`: the data of two streams never overlap, so the searches are linear). Output:
 * offsets, qpdf's first, or none. Never throws.
 */

/** What qpdf skips after `stream` before it looks for a line end (QUtil::is_space but CR, LF). */
const isBlank = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0c || c === 0x0b;
const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x0c || c === 0x00;

/** The data's starts after the `stream` keyword at `k` (empty: not the keyword); qpdf's start first. */
export function dataStarts(s: string, k: number, limit: number): number[] {
  let i = k + 6;
  // the runs skipped after two keywords never overlap: linear however long
  while (i < s.length && isBlank(s.charCodeAt(i))) i++;
  if (s[i] === '\r') return [s[i + 1] === '\n' ? i + 2 : i + 1]; // a lone CR happens (qpdf and pdf.js take it)
  if (s[i] === '\n') return [i + 1];
  let b = k - 1;
  while (b >= 0 && k - b < 64 && isSpace(s.charCodeAt(b))) b--;
  if (b < 1 || s[b] !== '>' || s[b - 1] !== '>') return [];
  // no line end: qpdf starts here, pdf.js at the next line (the rest of this one is skipped)
  const rest = s.slice(i, Math.max(i, limit));
  const eol = rest.search(/[\r\n]/);
  if (eol < 0) return [i];
  let j = i + eol;
  if (s[j] === '\r') j++;
  if (s[j] === '\n') j++;
  return [i, j];
}
