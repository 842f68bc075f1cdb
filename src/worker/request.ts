/**
 * One Courier request, start to finish — the worker's spine, each step one call:
 * paths → control files → scan slot → data file → waitfile → gates (gates.ts: [skip], a blocked
 * client IP) → scan (and the data file still the
 * bytes that were scanned: EDATA_CHANGED otherwise) → decision (policy/actions.ts: the reply
 * and the list of effects) → effects (effects/run.ts: in their fixed order, with the one
 * rollback rule, under the request's file lock) → reply.
 *
 * Owns: the order of the steps and what each failure answers. It fills in `fields` (the
 * message's log line) as it learns things, so whoever writes the line — this function's caller
 * at the end, or the deadline, whichever comes first — has the queue id and the sender.
 * Every failure before a verdict (a bad path, an unreadable control or data file) is a 451
 * whatever action.error says: fail-open applies to scanner errors only, by origin.
 * Inputs: the request, a RequestContext, the log fields, the request's AbortSignal.
 * Outputs: the reply; `fields` completed. Never throws for a bad request or a failing engine.
 */
import { access } from 'node:fs/promises';
import type { CourierRequest } from '../courierfilter/request.js';
import type { Reply } from '../courierfilter/server.js';
import { readControlFile } from '../courierfilter/control-io.js';
import { pendingRecipients, summarize, type ControlFile, type ControlSummary } from '../courierfilter/control.js';
import { CONTROL_BUSY_REPLY, TIMEOUT_REPLY, cannotProcess } from '../courierfilter/replies.js';
import { decide, type Decision } from '../policy/actions.js';
import type { Verdict } from '../policy/verdict.js';
import type { LogFields, Logger } from '../ops/log.js';
import type { ControlLocks } from './control-locks.js';
import { scanDepsOf, type Runtime } from '../app/runtime.js';
import { IN_MEMORY_MESSAGE_BYTES, scanMessage } from '../scan/scan-message.js';
import { runEffects, type Outcome } from '../effects/run.js';
import { AvError, codeOf, messageOf, originOf } from '../errors.js';
import { checkRequestPaths } from './paths.js';
import { releasedMarker } from '../quarantine/release.js';
import { openDataFile, type DataFile } from './data-file.js';
import { checkGates } from './gates.js';
import type { Trace } from '../ops/trace.js';

export interface RequestContext {
  readonly rt: Runtime;
  /** Locks on the files an effect writes, shared by every worker process. */
  readonly locks: ControlLocks;
  readonly log: Logger;
  /** Waits for a scan slot; false when the signal fired first (then there is none to release). */
  acquire(signal: AbortSignal): Promise<boolean>;
  release(): void;
  /** This message's debug trace (ops/trace.ts); undefined when debug lines are off. */
  readonly trace?: Trace | undefined;
}

export interface Handled {
  readonly reply: Reply;
  readonly decision?: Decision | undefined;
  readonly verdict?: Verdict | undefined;
}

export { CONTROL_BUSY_REPLY, TIMEOUT_REPLY };

export async function handleRequest(req: CourierRequest, ctx: RequestContext, fields: LogFields, signal: AbortSignal): Promise<Handled> {
  const { rt } = ctx;
  fields['data'] = req.dataPath;
  const fail = (err: unknown, fallback: string): Handled => {
    const code = codeOf(err) ?? fallback;
    const aborted = signal.aborted || originOf(err) === 'abort';
    Object.assign(fields, {
      verdict: 'tempfail', action: 'tempfail', reply: 451, code: aborted ? 'ETIMEOUT' : code,
      reason: aborted ? 'request deadline reached' : messageOf(err),
    });
    return { reply: aborted ? TIMEOUT_REPLY : cannotProcess(code) };
  };

  let paths;
  try {
    paths = await checkRequestPaths(req, rt.spoolDirs);
  } catch (err) {
    return fail(err, 'EPATH');
  }
  if (paths.repeated > 0) fields['repeated_controls'] = paths.repeated;

  let controls: ControlFile[];
  try {
    controls = await readControlFiles(paths.controlPaths, rt.config.max_control_size);
  } catch (err) {
    return fail(err, 'ECONTROL');
  }
  const env = summarize(controls);
  Object.assign(fields, { id: env.queueId, from: `<${env.sender}>`, rcpts: env.pending, ip: env.clientIp, auth: env.authUser });
  ctx.trace?.('read', { controls: controls.length, id: env.queueId, from: `<${env.sender}>`, rcpts: env.pending });

  if (!(await ctx.acquire(signal))) return fail(new Error('deadline reached waiting for a scan slot'), 'ETIMEOUT');
  let data: DataFile | undefined;
  try {
    data = await openDataFile(paths.dataPath);
    return await scanAndAct(paths.dataPath, data, controls, env, ctx, fields, signal);
  } catch (err) {
    return fail(err, 'EINTERNAL');
  } finally {
    await data?.close();
    ctx.release();
  }
}

async function scanAndAct(
  dataPath: string, data: DataFile, controls: ControlFile[], env: ControlSummary,
  ctx: RequestContext, fields: LogFields, signal: AbortSignal,
): Promise<Handled> {
  const { rt } = ctx;
  const deps = ctx.trace !== undefined ? { ...scanDepsOf(rt), trace: ctx.trace } : scanDepsOf(rt);
  let verdict: Verdict;
  let bytes: Buffer | undefined;
  let gate: Verdict | undefined;
  if (rt.config.waitfile !== '' && (await exists(rt.config.waitfile))) {
    verdict = { kind: 'busy', reason: 'waitfile present' };
  } else if ((gate = checkGates(env, controls, undefined, rt)) !== undefined) {
    verdict = gate;
    ctx.trace?.('gates', { verdict: gate.kind, reason: gate.kind === 'skipped' ? gate.reason : undefined, ip: gate.kind === 'blocked' ? gate.ip : undefined });
  } else {
    bytes = data.size <= IN_MEMORY_MESSAGE_BYTES ? await data.readAll() : undefined;
    // released from the quarantine by an admin (its marker verifies, its release is under way): not scanned again
    const released = await releasedMarker({ path: data.readPath, bytes }, rt.config.quarantine_dir);
    if (released !== undefined) {
      fields['released'] = released.id;
      verdict = { kind: 'skipped', reason: `released from quarantine ${released.id}` };
    } else {
      const report = await scanMessage({ path: data.readPath, size: data.size, bytes }, deps, signal);
      fields['items'] = report.items;
      if (report.irregular !== undefined) fields['irregular'] = report.irregular;
      verdict = report.verdict;
    }
    // a verdict on bytes that are no longer there says nothing about what Courier delivers
    const changed = await data.changed();
    if (changed !== undefined) throw new AvError('EDATA_CHANGED', 'input', `the data file changed while it was scanned: ${changed}`);
  }
  const recipients = pendingRecipients(controls);
  const decision = decide(verdict, rt.config, { queueId: env.queueId, sender: env.sender, recipients, clientIp: env.clientIp });
  ctx.trace?.('policy', { verdict: verdict.kind, action: decision.action, reply: decision.code, log_verdict: decision.verdict, effects: decision.effects.map((e) => e.kind) });

  const outcome = await runEffects(decision, {
    dataPath, data, bytes, controls, envelope: env, verdict, config: rt.config, log: ctx.log, fields, signal,
    rescan: async (input) => (await scanMessage(input, deps, signal)).verdict, engines: rt.engines,
  }, ctx.locks);
  logOutcome(fields, verdict, decision, outcome);
  return { reply: outcome.reply, decision, verdict };
}

/** The message line's verdict, names, where and action fields. */
function logOutcome(fields: LogFields, verdict: Verdict, decision: Decision, outcome: Outcome): void {
  const failed = outcome.failed !== undefined;
  Object.assign(fields, {
    verdict: failed && decision.verdict !== 'infected' && decision.verdict !== 'banned' ? 'tempfail' : decision.verdict,
    names: verdict.kind === 'infected' ? verdict.names : verdict.kind === 'encrypted' ? [verdict.name] : undefined,
    where: verdict.kind === 'infected' ? verdict.findings.map((f) => `${f.engine}:${f.itemId}`)
      : verdict.kind === 'encrypted' ? [`unpack:${verdict.path}`]
        : verdict.kind === 'damaged' || verdict.kind === 'banned' ? [`unpack:${verdict.path}`] : undefined,
    // the formats of the containers the findings were in (the paths above say where)
    containers: verdict.kind === 'infected' && verdict.findings.some((f) => f.container !== undefined)
      ? [...new Set(verdict.findings.flatMap((f) => (f.container !== undefined ? [f.container] : [])))]
      : verdict.kind === 'encrypted' ? [verdict.format] : undefined,
    files: verdict.kind === 'damaged' || verdict.kind === 'banned' ? [verdict.name] : undefined,
    rule: verdict.kind === 'banned' ? verdict.rule : undefined,
    action: outcome.action,
    reply: outcome.reply.code,
    code: fields['code'] ?? (verdict.kind === 'error' || verdict.kind === 'limit' || verdict.kind === 'damaged' ? verdict.code : undefined),
    origin: verdict.kind === 'error' ? verdict.origin : undefined,
    reason: fields['reason'] ?? (verdict.kind === 'error' || verdict.kind === 'limit' || verdict.kind === 'busy' || verdict.kind === 'damaged' || verdict.kind === 'skipped' ? verdict.reason : undefined),
  });
}

/**
 * Control files open at once per request. A request may name up to max_request_lines - 1
 * files; opening them all at once took one descriptor each, and 999 files under a limit of
 * 1,024 descriptors failed with EMFILE (451 for a message that is fine, and for whatever else
 * the worker was opening at that moment).
 */
const CONTROL_READS_AT_ONCE = 8;

async function readControlFiles(paths: readonly string[], maxBytes: number): Promise<ControlFile[]> {
  const out: ControlFile[] = new Array(paths.length);
  let next = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed && next < paths.length) {
      const i = next++;
      try {
        out[i] = await readControlFile(paths[i]!, maxBytes);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONTROL_READS_AT_ONCE, paths.length) }, lane));
  return out;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
