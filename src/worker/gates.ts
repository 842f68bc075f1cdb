/**
 * The pre-scan gates: what is decided about a message before it is read. A [skip] rule that
 * covers every pending recipient (policy/skip.ts) skips the scan; a client IP blocked after a
 * virus (action.block_ip_seconds, policy/ip-blocks.ts) is answered 451 — except an IP in
 * [skip] networks, which is never blocked.
 *
 * Owns: the order of the gates (skip networks, then the block, then the other skip rules: an
 * authenticated sender, a sender or recipient glob do not lift a block, since a host that just
 * sent a virus may send it again under any of them). Inputs: the envelope, the control files,
 * the head of the message (for gates that read it: a quarantine release marker), the runtime.
 * Output: a Verdict (`skipped`, `blocked`) or undefined: scan it. Fails with nothing: the
 * compiled rules never throw.
 */
import { pendingRecipients, type ControlFile, type ControlSummary } from '../courierfilter/control.js';
import type { Verdict } from '../policy/verdict.js';
import type { Runtime } from '../app/runtime.js';

export type GateVerdict = Extract<Verdict, { kind: 'skipped' | 'blocked' }>;

export function checkGates(
  envelope: ControlSummary, controls: readonly ControlFile[], _head: Buffer | undefined, rt: Pick<Runtime, 'skip' | 'blocks'>,
): GateVerdict | undefined {
  const pending = pendingRecipients(controls);
  const ip = envelope.clientIp;
  const skip = rt.skip;
  if (skip !== undefined && skip.inNetworks(ip)) {
    const reason = skip.rule(envelope, pending);
    if (reason !== undefined) return { kind: 'skipped', reason };
  }
  if (ip !== undefined && rt.blocks.blockedUntil(ip) !== undefined) return { kind: 'blocked', ip };
  const reason = skip?.rule(envelope, pending);
  return reason !== undefined ? { kind: 'skipped', reason } : undefined;
}
