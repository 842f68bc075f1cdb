/**
 * Carrying out a decision: its effects in one fixed order (policy/decision.ts EFFECT_ORDER:
 * quarantine, handler, strip, mark, headers, drop, then block and notify), whatever order the
 * policy table listed them in.
 *
 * The one rollback rule: a commit effect that fails turns the answer into 451 (or the answer
 * its runner gives, the handler's exit 75) and the commit effects already done are taken back
 * in reverse order (each gives its undo: the quarantine copy removed, the data file restored).
 * Courier discards a submission answered 4xx with its files, so nothing half-done is ever
 * delivered, and the sender's retry starts from the same message. The after effects (block,
 * notify) run only once the answer stands; their failures are logged and change nothing.
 *
 * Effects that write the request's files (strip, mark, headers, drop) run under the lock on
 * those files shared by every worker (worker/control-locks.ts); a file locked by another
 * request answers 451.
 *
 * Inputs: the decision, the message's EffectEnv, the locks. Outputs: the answer and the action
 * taken; the log fields completed. Never throws.
 */
import { CONTROL_BUSY_REPLY, effectFailed } from '../courierfilter/replies.js';
import type { Reply } from '../courierfilter/server.js';
import { AvError, codeOf, messageOf } from '../errors.js';
import { EFFECT_ORDER, type Action, type Decision, type Effect, type EffectKind } from '../policy/decision.js';
import { blockRunner } from './block.js';
import { dropRunner } from './drop.js';
import { handlerRunner } from './handler.js';
import { headersRunner } from './headers.js';
import { markRunner } from './mark.js';
import { notifyRunner } from './notify.js';
import { quarantineRunner } from './quarantine.js';
import { stripRunner } from './strip.js';
import type { EffectDone, EffectEnv, EffectRunner } from './types.js';

export type Runners = { readonly [K in EffectKind]?: EffectRunner<K> };

/** Every runner, one line each. */
const RUNNERS: Runners = {
  quarantine: quarantineRunner,
  mark: markRunner,
  drop: dropRunner,
  block: blockRunner,
  strip: stripRunner,
  headers: headersRunner,
  handler: handlerRunner,
  notify: notifyRunner,
};

export interface FileLocks {
  take(paths: readonly string[]): readonly string[] | undefined;
  release(held: readonly string[]): void;
}

export interface Outcome {
  readonly reply: Reply;
  /** The action carried out: the decision's, or "drop" when strip could not deliver, or "tempfail". */
  readonly action: Action;
  /** An effect failed and everything was taken back (the reply is its 451). */
  readonly failed?: EffectKind | undefined;
}

const DELIVERY: ReadonlySet<EffectKind> = new Set(['mark', 'headers']);

export function sortEffects(effects: readonly Effect[]): Effect[] {
  return [...effects].sort((a, b) => EFFECT_ORDER.indexOf(a.kind) - EFFECT_ORDER.indexOf(b.kind));
}

/** `runners`: the table (tests give their own). */
export async function runEffects(decision: Decision, envIn: Omit<EffectEnv, 'state' | 'decision'>, locks: FileLocks, runners: Runners = RUNNERS): Promise<Outcome> {
  const env: EffectEnv = { ...envIn, decision, state: {} };
  const runnerOf = (kind: EffectKind): EffectRunner => (runners[kind] as EffectRunner | undefined) ?? missingRunner(kind);
  const { fields, log } = env;
  const effects = sortEffects(decision.effects);
  const ok: Outcome = { reply: { code: decision.code, text: decision.text }, action: decision.action };
  if (effects.length === 0) return ok;

  let held: readonly string[] | undefined;
  if (effects.some((e) => runners[e.kind]?.writes ?? true)) {
    try {
      held = locks.take([env.dataPath, ...env.controls.map((c) => c.path)]);
    } catch (err) {
      log.event('control-lock-error', { data: env.dataPath, code: codeOf(err) ?? 'EIO', reason: messageOf(err) }, 'error');
      held = undefined;
    }
    if (held === undefined) {
      log.event('control-busy', { data: env.dataPath, reason: 'a file of this request is in use by another request' }, 'warning');
      Object.assign(fields, { code: 'ECONTROL_BUSY' });
      return { reply: CONTROL_BUSY_REPLY, action: 'tempfail', failed: 'drop' };
    }
  }

  const done: EffectDone[] = [];
  let action = decision.action;
  const queue = effects.filter((e) => runnerOf(e.kind).phase === 'commit');
  try {
    for (let i = 0; i < queue.length; i++) {
      const e = queue[i]!;
      // strip could not give a deliverable message: deliver nothing, drop it instead
      if (env.state.dropInstead !== undefined && DELIVERY.has(e.kind)) continue;
      const runner = runnerOf(e.kind);
      try {
        const d = await runner.run(e as never, env);
        if (d?.undo !== undefined) done.push(d);
      } catch (err) {
        fields[`${e.kind}_error`] = codeOf(err) ?? 'EIO';
        fields['reason'] = messageOf(err);
        await undoAll(done, env);
        const what = decision.verdict === 'infected' ? 'Virus found' : decision.verdict === 'banned' ? 'Banned attachment found' : 'Message accepted';
        return { reply: runner.failReply?.(err) ?? effectFailed(what, runner.failVerb), action: 'tempfail', failed: e.kind };
      }
      if (e.kind === 'strip' && env.state.dropInstead !== undefined) {
        fields['strip_failed'] = env.state.dropInstead;
        action = 'drop';
        if (!queue.some((x) => x.kind === 'drop')) queue.push({ kind: 'drop', keep: [] });
      }
    }
  } finally {
    if (held !== undefined) locks.release(held);
  }

  for (const e of effects) {
    const runner = runners[e.kind] as EffectRunner | undefined;
    if (runner === undefined || runner.phase !== 'after') continue;
    try {
      await runner.run(e as never, env);
    } catch (err) {
      log.event('effect-failed', { effect: e.kind, id: env.envelope.queueId, code: codeOf(err) ?? 'EIO', reason: messageOf(err) }, 'warning');
    }
  }
  return { ...ok, action };
}

/** An effect the policy asks for and no runner carries out: a fault (451), never skipped. */
function missingRunner(kind: EffectKind): EffectRunner {
  return {
    kind, phase: 'commit', writes: false, failVerb: 'handled',
    run: () => Promise.reject(new AvError('EINTERNAL', 'internal', `no runner for the ${kind} effect in this build`)),
  };
}

async function undoAll(done: readonly EffectDone[], env: EffectEnv): Promise<void> {
  for (const d of [...done].reverse()) {
    try {
      await d.undo!();
    } catch (err) {
      env.log.event('effect-failed', { effect: 'undo', id: env.envelope.queueId, code: codeOf(err) ?? 'EIO', reason: messageOf(err) }, 'warning');
    }
  }
}
