/**
 * The one table from verdict + config to the decision: the reply and the effects (decision.ts).
 * Read it top to bottom: most severe first. A 2xx comes only from an explicit clean verdict, a
 * [skip] rule, or an explicit, named policy (action.infected = "drop", "pass", "strip",
 * "quarantine"; action.error = "accept" for scanner errors only; action.encrypted/damaged =
 * "pass" or "drop"), and each of those is visible in the log's verdict/action fields.
 *
 * Owns: which action a verdict gets ([action.by_name] first, the most severe of the names),
 * the pass_recipients split, which effects each action has, and the reply texts ([replies]).
 * Inputs: a Verdict, the policy part of a Config, what the envelope says (for macros and the
 * split). Outputs: a Decision. Fails with nothing.
 */
import type { Config } from '../config/load.js';
import type { INFECTED_ACTIONS } from '../config/schema.js';
import type { Action, Decision, Effect, LogVerdict } from './decision.js';
import { compileGlobTable, matchRecipients } from './globs.js';
import { expandReply, type MacroValues } from './replies.js';
import { findingFiles, type Verdict } from './verdict.js';

export type { Action, Decision, Effect, LogVerdict } from './decision.js';

/** The parts of a Config the table reads. */
export type PolicyConfig = Pick<Config, 'action' | 'replies' | 'skip' | 'banned' | 'headers' | 'notify'>;

/** What the envelope says: for the macros, the pass_recipients split and the IP block. */
export interface MessageFacts {
  readonly queueId?: string | undefined;
  readonly sender?: string | undefined;
  /** The recipients not yet done (the ones the action is for). */
  readonly recipients?: readonly string[] | undefined;
  readonly clientIp?: string | undefined;
}

type InfectedAction = (typeof INFECTED_ACTIONS)[number];

/** Least severe first: with several virus names, the one furthest right wins. */
const SEVERITY: readonly InfectedAction[] = ['pass', 'strip', 'drop', 'quarantine', 'tempfail', 'reject'];

const byNameTables = new WeakMap<PolicyConfig['action']['by_name'], (name: string) => InfectedAction[]>();

/** [action.by_name] compiled once per config (its tables are frozen and kept while in force). */
function byNameOf(cfg: PolicyConfig): (name: string) => InfectedAction[] {
  let f = byNameTables.get(cfg.action.by_name);
  if (f === undefined) byNameTables.set(cfg.action.by_name, (f = compileGlobTable(cfg.action.by_name)));
  return f;
}

/** The action for these virus names: each name's own ([action.by_name], else action.infected), the most severe. */
export function infectedAction(names: readonly string[], cfg: PolicyConfig): InfectedAction {
  const byName = byNameOf(cfg);
  let worst: InfectedAction | undefined;
  for (const n of names) {
    const own = byName(n);
    const candidates = own.length > 0 ? own : [cfg.action.infected];
    for (const a of candidates) if (worst === undefined || SEVERITY.indexOf(a) > SEVERITY.indexOf(worst)) worst = a;
  }
  return worst ?? cfg.action.infected;
}

export function decide(v: Verdict, cfg: PolicyConfig, facts: MessageFacts = {}): Decision {
  const r = cfg.replies;
  const macros: MacroValues = { sender: facts.sender, recipients: facts.recipients, queueId: facts.queueId, clientIp: facts.clientIp };
  const reply = (template: string, extra: MacroValues = {}): { code: number; text: string } => {
    const x = expandReply(template, { ...macros, ...extra });
    return { code: x.code, text: x.text as string };
  };
  const make = (action: Action, verdict: LogVerdict, template: string, effects: Effect[] = [], extra: MacroValues = {}, passTo?: readonly string[]): Decision =>
    ({ action, verdict, ...reply(template, extra), effects, ...(passTo !== undefined ? { passTo } : {}) });
  const headers: Effect[] = cfg.headers.scanned || cfg.headers.status ? [{ kind: 'headers' }] : [];
  const notify: Effect[] = cfg.notify.postmaster !== '' || cfg.notify.recipients || cfg.notify.sender ? [{ kind: 'notify' }] : [];

  switch (v.kind) {
    case 'infected': {
      const names = v.names;
      const extra: MacroValues = { names, files: findingFiles(v.findings) };
      let action = infectedAction(names, cfg);
      // recipients who asked for infected mail get it marked; the others get the action, and
      // since one reply goes to all of them, a refusal becomes a drop for the others
      const all = facts.recipients ?? [];
      const keep = action === 'pass' ? [] : matchRecipients(cfg.skip.pass_recipients, all);
      if (keep.length > 0 && keep.length === all.length) action = 'pass';
      const split = keep.length > 0 && action !== 'pass';
      if (split && (action === 'reject' || action === 'tempfail' || action === 'strip')) action = 'drop';
      const handler: Effect[] = cfg.action.handler !== '' ? [{ kind: 'handler', program: cfg.action.handler }] : [];
      const block: Effect[] = cfg.action.block_ip_seconds > 0 && facts.clientIp !== undefined && facts.clientIp !== ''
        ? [{ kind: 'block', ip: facts.clientIp, seconds: cfg.action.block_ip_seconds }] : [];
      const copy: Effect[] = cfg.action.quarantine || action === 'quarantine' ? [{ kind: 'quarantine' }] : [];
      switch (action) {
        case 'reject':
          return make('reject', 'infected', r.infected_reject, [...handler, ...block, ...notify], extra);
        case 'tempfail':
          return make('tempfail', 'infected', r.infected_tempfail, [...handler, ...block], extra);
        case 'drop':
        case 'quarantine': {
          const marked: Effect[] = split ? [{ kind: 'mark' }, ...headers] : [];
          return make(action, 'infected', r.accept, [...copy, ...handler, ...marked, { kind: 'drop', keep }, ...block, ...notify], extra, split ? keep : undefined);
        }
        case 'strip':
          return make('strip', 'infected', r.accept, [...copy, ...handler, { kind: 'strip' }, ...headers, ...block, ...notify], extra);
        case 'pass':
          return make('pass', 'infected', r.accept, [...copy, ...handler, { kind: 'mark' }, ...headers, ...block, ...notify], extra);
      }
      break;
    }
    case 'banned': {
      const extra: MacroValues = { names: [v.rule], files: [v.name], reason: `banned by ${v.rule}` };
      switch (cfg.banned.action) {
        case 'reject': return make('reject', 'banned', r.banned_reject, [...notify], extra);
        case 'tempfail': return make('tempfail', 'banned', r.banned_tempfail, [], extra);
        case 'drop': return make('drop', 'banned', r.accept, [{ kind: 'drop', keep: [] }, ...notify], extra);
        case 'quarantine': return make('quarantine', 'banned', r.accept, [{ kind: 'quarantine' }, { kind: 'drop', keep: [] }, ...notify], extra);
        case 'pass': return make('pass', 'banned', r.accept, [...headers], extra);
      }
      break;
    }
    case 'encrypted': {
      // Malware is routinely mailed in encrypted zips with the password in the body: nothing
      // can scan the members, so by default the message is refused, saying why. The path (a
      // name the sender chose) stays in the log; the reply names the format.
      const extra: MacroValues = { names: [v.name], files: [lastName(v.path)], reason: 'encrypted archive' };
      switch (cfg.action.encrypted) {
        case 'reject': return make('reject', 'encrypted', r.encrypted_reject, [], extra);
        case 'tempfail': return make('tempfail', 'encrypted', r.encrypted_tempfail, [], extra);
        case 'pass': return make('pass', 'encrypted', r.accept, [...headers], extra);
        case 'drop': return make('drop', 'encrypted', r.accept, [{ kind: 'drop', keep: [] }], extra);
      }
      break;
    }
    case 'damaged': {
      // a container nobody can read and retrying cannot change: not a resource limit
      const extra: MacroValues = { files: [v.name], reason: v.code === 'EUNPACK_UNSUPPORTED' ? 'unsupported method' : 'damaged' };
      switch (cfg.action.damaged) {
        case 'reject': return make('reject', 'damaged', r.damaged_reject, [], extra);
        case 'tempfail': return make('tempfail', 'damaged', r.damaged_tempfail, [], extra);
        case 'pass': return make('pass', 'damaged', r.accept, [...headers], extra);
        case 'drop': return make('drop', 'damaged', r.accept, [{ kind: 'drop', keep: [] }], extra);
      }
      break;
    }
    case 'blocked':
      return make('tempfail', 'blocked', r.blocked, [], { clientIp: v.ip });
    case 'busy':
      // The admin asked for it (waitfile): never accept, whatever action.error says.
      return make('tempfail', 'tempfail', r.busy, [], { reason: v.reason });
    case 'limit':
      if (cfg.action.limit === 'reject') return make('reject', 'unscannable', r.limit_reject, [], { reason: v.reason });
      return make('tempfail', 'tempfail', r.limit_tempfail, [], { reason: v.reason });
    case 'error':
      // Fail open applies to the scanners' own failures only: an abort (deadline, shutdown), a
      // bad request or a fault in avfilter is never a reason to deliver unscanned mail.
      if (cfg.action.error === 'accept' && v.origin === 'scanner') {
        const d = make('accept-unscanned', 'accepted-unscanned', r.accept, [...headers]);
        return { ...d, text: `${d.text} (not scanned)` };
      }
      return make('tempfail', 'tempfail', r.error, [], { reason: v.code });
    case 'skipped':
      return make('skip', 'skipped', r.accept);
    case 'clean':
      return make('accept', 'clean', r.accept, [...headers]);
  }
  // Unreachable with a well-typed verdict and config; fail closed anyway.
  return { action: 'tempfail', code: 451, text: '4.3.0 Internal error, try again later', verdict: 'tempfail', effects: [] };
}

function lastName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
