/**
 * What a notice or a handler says about a message, taken from an effect's environment once:
 * the virus names (or the banned file), the file names the findings were in, the recipients
 * the message was for when it came (pending then: the drop marks them done meanwhile), and the
 * action carried out.
 * Fails with nothing: data in, data out. The values are raw (from the message): whoever puts
 * them somewhere escapes them for it (policy/macros.ts).
 */
import { pendingRecipients } from '../courierfilter/control.js';
import type { MacroValues } from '../policy/macros.js';
import { findingFiles } from '../policy/verdict.js';
import type { EffectEnv } from './types.js';

export interface MessageFacts extends MacroValues {
  readonly names: readonly string[];
  readonly files: readonly string[];
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly queueId: string;
  readonly action: string;
}

export function factsOf(env: EffectEnv): MessageFacts {
  const v = env.verdict;
  const names = v.kind === 'infected' ? v.names : v.kind === 'banned' ? [`banned:${v.name}`] : [];
  const files = v.kind === 'infected' ? findingFiles(v.findings) : v.kind === 'banned' ? [v.name] : [];
  return {
    names, files,
    sender: env.envelope.sender,
    recipients: pendingRecipients(env.controls),
    queueId: env.envelope.queueId,
    clientIp: env.envelope.clientIp,
    // strip that could not deliver a stripped message dropped it instead
    action: env.state.dropInstead !== undefined ? 'drop' : env.decision.action,
  };
}
