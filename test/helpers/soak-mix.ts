/**
 * The soak's traffic: a seeded mix of messages (clean text, clean attachments, EICAR as a
 * base64 attachment, EICAR inside attached messages) with their control files, and the check
 * of each reply against what the message is.
 *
 * Owns: the PRNG (one stream per use, so the message sequence does not depend on timing), the
 * message kinds and variants, control-file texts, and the rules a reply and the control files
 * must satisfy afterwards. Nothing here holds EICAR: it is built at run time (eicar.ts).
 * Fails with nothing: checks return a problem text or undefined.
 */
import { eicar } from './eicar.js';
import { attachment, message, messagePart, multipart, pseudoRandom, textPart } from './mail.js';
export { prng } from '../../bench/mix.js';
import { prng } from '../../bench/mix.js';


/** An integer in [lo, hi]. */
export const between = (rng: () => number, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
export const pick = <T>(rng: () => number, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;

export const KINDS = ['clean-text', 'clean-attachment', 'eicar-base64', 'eicar-nested'] as const;
export type Kind = (typeof KINDS)[number];
export const isInfected = (k: Kind): boolean => k === 'eicar-base64' || k === 'eicar-nested';

const WORDS = ['invoice', 'meeting', 'lunch', 'report', 'quarter', 'attached', 'please', 'review', 'thanks', 'regards', 'schedule', 'budget'];

function text(rng: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(pick(rng, WORDS) + (i % 12 === 11 ? '\n' : ''));
  return out.join(' ') + '\n';
}

function build(kind: Kind, rng: () => number): Buffer {
  const body = textPart(text(rng, between(rng, 10, 600)));
  switch (kind) {
    case 'clean-text':
      return message(body, { subject: 'text' });
    case 'clean-attachment': {
      // a tenth are large enough to be spilled to tmpdir (memory_part_size is small in the soak)
      const size = rng() < 0.1 ? between(rng, 100_000, 300_000) : between(rng, 500, 40_000);
      return message(multipart([body, attachment(pseudoRandom(size, between(rng, 1, 1e9)), { cte: 'base64', filename: 'data.bin' })]), { subject: 'attachment' });
    }
    case 'eicar-base64':
      return message(multipart([body, attachment(eicar(), { cte: 'base64', filename: 'eicar.com' })]), { subject: 'base64' });
    case 'eicar-nested': {
      let inner = message(multipart([textPart('inner'), attachment(eicar(), { cte: 'base64', filename: 'x.com' })]), { subject: 'inner' });
      for (let depth = between(rng, 1, 3); depth > 0; depth--) {
        const padding = rng() < 0.3 ? [attachment(pseudoRandom(between(rng, 9000, 20_000), depth), { cte: 'base64', filename: 'pad.bin' })] : [];
        inner = message(multipart([textPart(text(rng, 20)), ...padding, messagePart(inner, { cte: rng() < 0.5 ? '7bit' : 'base64' })]), { subject: `nested ${depth}` });
      }
      return inner;
    }
  }
}

/** Variants per kind: built once, so the test process spends its time sending, not encoding. */
const VARIANTS = 24;

export interface Mix {
  /** The message number i: always the same for the same seed. */
  message(i: number): SoakMessage;
}

export interface SoakMessage {
  readonly kind: Kind;
  readonly data: Buffer;
  /** One or two control files, each with 1-3 pending recipients. */
  readonly controls: readonly string[];
}

export function messageMix(seed: number): Mix {
  const rng = prng(seed);
  const variants = new Map<Kind, Buffer[]>(KINDS.map((k) => [k, Array.from({ length: VARIANTS }, () => build(k, rng))]));
  return {
    message(i) {
      const r = prng(seed * 1_000_003 + i);
      const kind = pick(r, KINDS);
      const data = pick(r, variants.get(kind)!);
      const controls = Array.from({ length: r() < 0.2 ? 2 : 1 }, (_, f) => controlText(`${i}.${f}`, between(r, 1, 3)));
      return { kind, data, controls };
    },
  };
}

export function controlText(id: string, recipients: number): string {
  const rcpts = Array.from({ length: recipients }, (_, n) => `rrcpt${n}@example.test\nR\nN\n`).join('');
  return `ssender@example.test\nfdns; soak ([127.0.0.1])\nMSOAK.${id}\n${rcpts}`;
}

/** What a control file shows after the request: untouched, every recipient dropped once, or damage. */
export type ControlState = 'untouched' | 'dropped' | { damage: string };

export function controlState(before: string, after: string): ControlState {
  if (!after.startsWith(before)) return { damage: 'the original records changed' };
  const added = after.slice(before.length);
  if (added === '') return 'untouched';
  if (!added.endsWith('\n')) return { damage: `half a record at the end: ${JSON.stringify(added.slice(-40))}` };
  const recipients = (before.match(/^r/gm) ?? []).length;
  const i = new Map<number, number>();
  const s = new Map<number, number>();
  for (const line of added.slice(0, -1).split('\n')) {
    const m = /^([IS])(\d+) (.*)$/.exec(line);
    if (!m || (m[1] === 'S' && !/^\d+$/.test(m[3]!)) || (m[1] === 'I' && !m[3]!.startsWith('R '))) return { damage: `unexpected record ${JSON.stringify(line)}` };
    const map = m[1] === 'I' ? i : s;
    const n = Number(m[2]);
    map.set(n, (map.get(n) ?? 0) + 1);
  }
  for (const [n, c] of [...i, ...s]) if (c > 1) return { damage: `recipient ${n} marked ${c} times` };
  for (let n = 0; n < recipients; n++) {
    if (!i.has(n) || !s.has(n)) return { damage: `recipient ${n} not marked (${i.size} I and ${s.size} S records for ${recipients} recipients)` };
  }
  if (i.size !== recipients || s.size !== recipients) return { damage: 'records for recipients that do not exist' };
  return 'dropped';
}

export type Outcome =
  | 'clean-accepted' | 'infected-rejected' | 'infected-dropped' | 'tempfail'
  /** violations */
  | 'infected-accepted' | 'clean-rejected' | 'control-damage' | 'bad-reply';

export const VIOLATIONS: ReadonlySet<Outcome> = new Set(['infected-accepted', 'clean-rejected', 'control-damage', 'bad-reply']);

/**
 * The rules: an infected message is never answered 2xx unless every recipient of every control
 * file was dropped (marked delivered exactly once); a clean one is never rejected; no control
 * file ever holds half a record or a record twice; after a 4xx nothing is marked — except when
 * the worker was killed (the master's "worker failed"), where a file may be whole-dropped: the
 * 4xx makes Courier discard the submission anyway.
 */
export function judge(kind: Kind, code: number, text: string, states: readonly ControlState[]): Outcome {
  const damaged = states.some((st) => typeof st === 'object');
  if (damaged) return 'control-damage';
  const allDropped = states.every((st) => st === 'dropped');
  const noneTouched = states.every((st) => st === 'untouched');
  if (code >= 200 && code < 300) {
    if (!isInfected(kind)) return noneTouched ? 'clean-accepted' : 'control-damage';
    return allDropped ? 'infected-dropped' : 'infected-accepted';
  }
  if (code >= 400 && code < 500) {
    if (noneTouched || /worker failed/.test(text)) return 'tempfail';
    return 'control-damage';
  }
  if (code >= 500 && code < 600) {
    if (!isInfected(kind)) return 'clean-rejected';
    return noneTouched ? 'infected-rejected' : 'control-damage';
  }
  return 'bad-reply';
}
