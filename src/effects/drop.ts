/**
 * The drop effect: every recipient not yet done, in every control file of the message, is
 * marked delivered (courier-filter-protocol.md §4.3) so the virus reaches no mailbox and
 * nobody gets a bounce.
 *
 * Owns: marking all files, and the all-or-nothing rule across them: when one file cannot be
 * marked, the caller answers 4xx and submit discards the whole submission (files included), so
 * nothing is delivered and nothing is lost. Inputs: the parsed control files, the request's
 * AbortSignal (the deadline stops the marking; records already written are taken back).
 * Outputs: how many recipients were marked. Fails with ControlError (control-io.ts codes).
 */
import { markDelivered, rereadControlFile } from '../courierfilter/control-io.js';
import { pendingRecipients, type ControlFile } from '../courierfilter/control.js';
import type { EffectRunner } from './types.js';

/** The text recorded in the control file for each dropped recipient. */
export const DROP_REASON = '250 Ok - virus found, message dropped by avfilter';

/** Courier logs nothing about recipients a filter marks delivered, so the log names them. */
const MAX_LOGGED_RECIPIENTS = 20;

/** `keep`: addresses that stay pending (they get the message); the others are marked. */
export async function dropRecipients(controls: readonly ControlFile[], signal: AbortSignal, now = new Date(), keep: readonly string[] = []): Promise<number> {
  const sec = Math.floor(now.getTime() / 1000);
  const kept = new Set(keep);
  let dropped = 0;
  for (const c of controls) dropped += await markDelivered(c, DROP_REASON, sec, { signal, ...(kept.size > 0 ? { keep: (address: string) => kept.has(address) } : {}) });
  return dropped;
}

/**
 * Marks the control files as they are now, read again under the request's lock: another
 * request may have marked some of them meanwhile. Not every recipient marked: the runner
 * fails, the answer is 4xx and submit discards the whole submission; nothing is delivered,
 * nothing is lost.
 */
export const dropRunner: EffectRunner<'drop'> = {
  kind: 'drop',
  phase: 'commit',
  writes: true,
  failVerb: 'dropped',
  async run(effect, env) {
    const now = env.controls.map((c) => rereadControlFile(c, env.config.max_control_size));
    const keep = new Set(effect.keep);
    env.fields['to'] = pendingAddresses(now.map((c) => ({ ...c, recipients: c.recipients.filter((r) => !keep.has(r.address)) })));
    env.fields['dropped'] = await dropRecipients(now, env.signal, new Date(), effect.keep);
    if (effect.keep.length > 0) env.fields['passed_to'] = effect.keep;
  },
};

/** The addresses a drop would mark, for the log line (the first 20, then "+N"). */
export function pendingAddresses(controls: readonly ControlFile[]): string[] {
  const all = pendingRecipients(controls);
  return all.length > MAX_LOGGED_RECIPIENTS ? [...all.slice(0, MAX_LOGGED_RECIPIENTS), `+${all.length - MAX_LOGGED_RECIPIENTS}`] : all;
}
