/**
 * The decision as a value: what avfilter answers and what it does to the message, computed by
 * the policy table (actions.ts) from the verdict and the config, and carried out by the spine
 * (effects/run.ts) in a fixed order. Pure data: nothing here touches a file.
 */

/** What the log's action= says was done. */
export type Action =
  | 'accept' | 'accept-unscanned' | 'skip'
  | 'drop' | 'quarantine' | 'strip' | 'pass'
  | 'reject' | 'tempfail';

/** What the log's verdict= says the message was (contract: clean, infected, tempfail, accepted-unscanned). */
export type LogVerdict =
  | 'clean' | 'infected' | 'tempfail' | 'accepted-unscanned' | 'unscannable' | 'encrypted'
  | 'damaged' | 'banned' | 'skipped' | 'blocked';

/**
 * One thing done to the message besides the reply. The spine runs them in EFFECT_ORDER:
 * every "commit" effect before any "after" one.
 */
export type Effect =
  /** Keep a copy of the message and its envelope (before anything changes it). */
  | { readonly kind: 'quarantine' }
  /** Run action.handler with a private copy; its exit 75 turns the answer into 451. */
  | { readonly kind: 'handler'; readonly program: string }
  /** Replace the infected attachments by a note and scan again; what cannot be cut is dropped. */
  | { readonly kind: 'strip' }
  /** X-Virus-Found: infected mail delivered on purpose (pass, pass_recipients). */
  | { readonly kind: 'mark' }
  /** [headers]: X-Virus-Scanned and X-Virus-Status on delivered mail. */
  | { readonly kind: 'headers' }
  /** Mark every pending recipient delivered except `keep` (they get the message). */
  | { readonly kind: 'drop'; readonly keep: readonly string[] }
  /** Tempfail further mail from this client IP for a while (action.block_ip_seconds). */
  | { readonly kind: 'block'; readonly ip: string; readonly seconds: number }
  /** [notify]: a notice to the postmaster, recipients or sender. */
  | { readonly kind: 'notify' };

export type EffectKind = Effect['kind'];

/** The order effects run in, whatever order the table listed them in. */
export const EFFECT_ORDER: readonly EffectKind[] = ['quarantine', 'handler', 'strip', 'mark', 'headers', 'drop', 'block', 'notify'];

export interface Decision {
  readonly action: Action;
  readonly code: number;
  readonly text: string;
  readonly verdict: LogVerdict;
  /** In any order; the spine sorts them by EFFECT_ORDER. */
  readonly effects: readonly Effect[];
  /** Recipients who get the message while the others get the action ([skip] pass_recipients). */
  readonly passTo?: readonly string[] | undefined;
}

export function hasEffect(d: Decision, kind: EffectKind): boolean {
  return d.effects.some((e) => e.kind === kind);
}
