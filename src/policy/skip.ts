/**
 * [skip]: who is not scanned. A message is skipped only when every recipient it still goes to
 * is covered: by where it comes from (a client network), by who sent it (SMTP AUTH, an envelope
 * sender glob) — each of which covers the whole message — or by every pending recipient
 * matching a recipient glob. One recipient who is not covered and the whole message is scanned:
 * Courier delivers one data file to all of them.
 *
 * Owns: compiling the section once per config and the order of the rules (the reason logged
 * names the first rule that covers the message). Inputs: the section, then per message the
 * envelope (control.ts's summary) and the addresses of the pending recipients. Output: the
 * reason, or undefined (scan it). Fails with NetworkError at compile time for a bad network
 * (the loader and the runtime report it at the key); matching never throws.
 *
 * "Authenticated" is Courier's `i` record (the SMTP AUTH identity), never the `u` record's
 * "authsmtp", which Courier writes for any relaying client (RELAYCLIENT set, e.g. by
 * smtpaccess for a local network) whether or not it authenticated.
 */
import type { ControlSummary } from '../courierfilter/control.js';
import { compileGlobList } from './globs.js';
import { compileNetworks } from './networks.js';

export interface SkipConfig {
  readonly networks: readonly string[];
  readonly authenticated: boolean;
  readonly senders: readonly string[];
  readonly recipients: readonly string[];
}

/** The message's reason to be skipped (for the log), or undefined: it is scanned. */
export type SkipRule = (envelope: Pick<ControlSummary, 'sender' | 'clientIp' | 'authUser'>, pendingRecipients: readonly string[]) => string | undefined;

/** The compiled section: the rule, and the networks alone (a blocked IP in them is not blocked). */
export interface Skip {
  readonly rule: SkipRule;
  inNetworks(ip: string | undefined): boolean;
}

/**
 * The rules of one config as one function; undefined when the section skips nothing (the
 * default), so a message pays nothing for it.
 */
export function compileSkip(c: SkipConfig): SkipRule | undefined {
  return compileSkipSection(c)?.rule;
}

export function compileSkipSection(c: SkipConfig): Skip | undefined {
  const network = compileNetworks(c.networks);
  const sender = c.senders.length > 0 ? compileGlobList(c.senders, 'address') : undefined;
  const recipient = c.recipients.length > 0 ? compileGlobList(c.recipients, 'address') : undefined;
  if (network === undefined && !c.authenticated && sender === undefined && recipient === undefined) return undefined;
  const rule: SkipRule = (env, pending) => {
    // nobody left to deliver to: nothing to skip for (the scan answers as it always does)
    if (pending.length === 0) return undefined;
    if (network !== undefined && env.clientIp !== undefined && network(env.clientIp)) return `client ${env.clientIp} in skip.networks`;
    if (c.authenticated && env.authUser !== undefined && env.authUser.trim() !== '') return `authenticated as ${env.authUser} (skip.authenticated)`;
    const s = sender?.(env.sender);
    if (s !== undefined) return `sender <${env.sender}> in skip.senders ("${s}")`;
    if (recipient !== undefined && pending.every((r) => recipient(r) !== undefined)) {
      return `every recipient in skip.recipients (${pending.length})`;
    }
    return undefined;
  };
  return { rule, inNetworks: (ip) => ip !== undefined && network !== undefined && network(ip) };
}
