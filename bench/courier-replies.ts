/**
 * Replies through Courier that are Courier's own, not a filter's: a bench run that got one is
 * still invalid, and its problem line and the headline say whose reply it was.
 *
 * Pure: strings in, strings out.
 */
/**
 * `432 Service temporarily unavailable.` is what Courier's SMTP server prints when it reads no
 * answer from `submit` (Courier's comsubmitclient.c: EOF from submit, logged as "submitclient: EOF
 * from submit."), or when it cannot fork. A filter that fails (no socket, a connection closed
 * without a reply) makes submit answer "432 Mail filters temporarily unavailable." instead, and
 * avfilter's own temporary replies are 451s that name the virus filter.
 */
export const COURIER_OWN_CAUSE = "Courier's own reply: its SMTP server read no answer from submit (Courier logs \"submitclient: EOF from submit.\"); a filter's failure reads \"432 Mail filters temporarily unavailable.\"";

/** The cause to add to a wrong-verdict line, when the reply names one; undefined otherwise. */
export function replyCause(code: number, text: string): string | undefined {
  return code === 432 && /^Service temporarily unavailable\.?$/.test(text.split('\n')[0]!.trim()) ? COURIER_OWN_CAUSE : undefined;
}

/** True when every problem of a run is a reply that is Courier's own (replyCause). */
export function onlyCourierOwn(problems: readonly string[]): boolean {
  return problems.length > 0 && problems.every((p) => p.includes(COURIER_OWN_CAUSE));
}
