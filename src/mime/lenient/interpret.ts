/**
 * Every plausible reading of one entity's header fields: which types it may have, which
 * boundaries may split it, which transfer encodings may apply.
 *
 * Owns: the choice of candidates where readers disagree. Input: the header fields of one
 * entity and its default type (text/plain, or message/rfc822 inside multipart/digest).
 * Output: an Interpretation with the candidates in order (the first is what a first-wins
 * reader sees), each alternative tagged with the reading name reported for the parts it
 * yields, and whether candidates past the bounds were left out. Never throws.
 */
import type { HeaderField } from './header.js';
import { parseStructured, rfc2231Value, stripComments } from './header.js';
import { looseBoundaries } from './boundary-variants.js';

/**
 * More boundary candidates than this only come from a message built to multiply work; the
 * ones past it are not tried, and Interpretation.truncated says so (a limit, never clean).
 */
export const MAX_BOUNDARY_CANDIDATES = 8;
/** Likewise for distinct transfer encodings of one entity. */
export const MAX_CTE_CANDIDATES = 4;
/**
 * Longest boundary tried. RFC 2046 allows 70 bytes; mailsplit takes any length, so a long one
 * is tried too, up to what a delimiter line of lenient/delimiters.ts can hold whole; a longer
 * one is not tried and Interpretation.truncated says so.
 */
export const MAX_BOUNDARY_BYTES = 3000;

export interface BoundaryCandidate {
  readonly boundary: string;
  /** "" for the first one a strict reader would take, else the reading name. */
  readonly tag: string;
}

export interface CteCandidate {
  /** Lower-case token, "" when absent. */
  readonly token: string;
  readonly tag: string;
}

export interface Interpretation {
  /** Distinct types, first-wins first ("text/plain" when none is given). */
  readonly types: readonly string[];
  readonly boundaries: readonly BoundaryCandidate[];
  readonly ctes: readonly CteCandidate[];
  /** Content-Disposition says attachment (under any of its values). */
  readonly attachment: boolean;
  /** Some candidates were not kept (too many, or a boundary too long): the reading is incomplete. */
  readonly truncated: boolean;
}

export function interpret(fields: readonly HeaderField[], defaultType: string): Interpretation {
  const cts = fields.filter((f) => f.name === 'content-type').map((f) => parseStructured(f.value));
  const cds = fields.filter((f) => f.name === 'content-disposition').map((f) => parseStructured(f.value));
  const types: string[] = [];
  for (const ct of cts) if (/^[^/\s]+\/[^/\s]+$/.test(ct.value) && !types.includes(ct.value)) types.push(ct.value);
  if (types.length === 0) types.push(defaultType);

  const boundaries: BoundaryCandidate[] = [];
  let truncated = false;
  // `own`: the tag is kept even for the first candidate (no strict reader takes it)
  const addBoundary = (b: string | undefined, tag: string, own = false): void => {
    if (b === undefined || b === '' || boundaries.some((c) => c.boundary === b)) return;
    if (b.length > MAX_BOUNDARY_BYTES || boundaries.length >= MAX_BOUNDARY_CANDIDATES) {
      truncated = true;
      return;
    }
    boundaries.push({ boundary: b, tag: boundaries.length === 0 && !own ? '' : tag });
  };
  let n = 0;
  for (const ct of cts) {
    for (const p of ct.params) {
      if (p.name !== 'boundary') continue;
      n++;
      p.values.forEach((v, i) => addBoundary(v, i === 0 ? `dup-boundary-${n}` : 'boundary-variant'));
    }
    addBoundary(rfc2231Value(ct.params, 'boundary'), 'rfc2231-boundary');
  }
  // what other readers make of a Content-Type outside the grammar (none new for a plain one)
  for (const b of looseBoundaries(fields)) addBoundary(b, 'loose-boundary', true);
  // a boundary given in Content-Disposition: some readers merge the two fields' parameters
  for (const cd of cds) {
    for (const p of cd.params) if (p.name === 'boundary') p.values.forEach((v) => addBoundary(v, 'disposition-boundary'));
    addBoundary(rfc2231Value(cd.params, 'boundary'), 'disposition-boundary');
  }

  const ctes: CteCandidate[] = [];
  const cteFields = fields.filter((f) => f.name === 'content-transfer-encoding');
  cteFields.forEach((f, i) => {
    const token = stripComments(f.value).trim().split(/\s+/, 1)[0]!.toLowerCase();
    if (ctes.some((c) => c.token === token)) return;
    if (ctes.length >= MAX_CTE_CANDIDATES) {
      truncated = true;
      return;
    }
    ctes.push({ token, tag: ctes.length === 0 ? '' : i === cteFields.length - 1 ? 'last-CTE' : `CTE-${i + 1}` });
  });
  if (ctes.length === 0) ctes.push({ token: '', tag: '' });

  const attachment = cds.some((cd) => cd.value === 'attachment');
  return { types, boundaries, ctes, attachment, truncated };
}

/** Types whose body is a message (walked again from the decoded bytes). */
export function isMessageType(t: string): boolean {
  return t === 'message/rfc822' || t === 'message/global' || t === 'message/news';
}
