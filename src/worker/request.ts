/**
 * One Courier request, start to finish — the worker's spine, each step one call:
 * paths → control files → scan slot → data file → waitfile → scan (and the data file still the
 * bytes that were scanned: EDATA_CHANGED otherwise) → decision → effects → reply.
 *
 * Effects that write (the drop's control records, the pass header in the data file) run under
 * a lock on the request's files shared by every worker (control-locks.ts), and the drop marks
 * the control files as they are then, read again: Courier never names a file in two requests
 * at once, but any client of the socket can, and the records must never be doubled. A file
 * locked by another request answers 451.
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
import { readControlFile, rereadControlFile } from '../courierfilter/control-io.js';
import { summarize, type ControlFile } from '../courierfilter/control.js';
import { insertHeader } from '../courierfilter/data-header.js';
import { decide, type Decision } from '../policy/actions.js';
import type { Verdict } from '../policy/verdict.js';
import type { LogFields, Logger } from '../ops/log.js';
import type { ControlLocks } from './control-locks.js';
import { scanDepsOf, type Runtime } from '../app/runtime.js';
import { IN_MEMORY_MESSAGE_BYTES, scanMessage } from '../scan/scan-message.js';
import { quarantine } from '../effects/quarantine.js';
import { dropRecipients, pendingAddresses } from '../effects/drop.js';
import { AvError, codeOf, messageOf, originOf } from '../errors.js';
import { checkRequestPaths } from './paths.js';
import { openDataFile, type DataFile } from './data-file.js';
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

export const TIMEOUT_REPLY: Reply = { code: 451, text: '4.3.0 Virus scan timed out, try again later' };
export const CONTROL_BUSY_REPLY: Reply = { code: 451, text: '4.3.0 Virus filter is already processing this message, try again later' };

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
    return { reply: aborted ? TIMEOUT_REPLY : { code: 451, text: `4.3.0 Virus filter cannot process this message (${code}), try again later` } };
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
  dataPath: string, data: DataFile, controls: ControlFile[], env: ReturnType<typeof summarize>,
  ctx: RequestContext, fields: LogFields, signal: AbortSignal,
): Promise<Handled> {
  const { rt } = ctx;
  let verdict: Verdict;
  if (rt.config.waitfile !== '' && (await exists(rt.config.waitfile))) {
    verdict = { kind: 'busy', reason: 'waitfile present' };
  } else {
    const bytes = data.size <= IN_MEMORY_MESSAGE_BYTES ? await data.readAll() : undefined;
    const deps = ctx.trace !== undefined ? { ...scanDepsOf(rt), trace: ctx.trace } : scanDepsOf(rt);
    const report = await scanMessage({ path: data.readPath, size: data.size, bytes }, deps, signal);
    fields['items'] = report.items;
    if (report.irregular !== undefined) fields['irregular'] = report.irregular;
    // a verdict on bytes that are no longer there says nothing about what Courier delivers
    const changed = await data.changed();
    if (changed !== undefined) throw new AvError('EDATA_CHANGED', 'input', `the data file changed while it was scanned: ${changed}`);
    verdict = report.verdict;
  }
  let decision = decide(verdict, rt.config.action);
  ctx.trace?.('policy', { verdict: verdict.kind, action: decision.action, reply: decision.code, log_verdict: decision.verdict });
  const tempfail = (why: string, key: string, err: unknown): void => {
    decision = { action: 'tempfail', code: 451, text: `4.3.0 Virus found but the message could not be ${why}, try again later`, verdict: 'infected' };
    fields[key] = codeOf(err) ?? 'EIO';
  };

  // Keep a copy before anything else happens to an infected message; no copy, no drop.
  if (verdict.kind === 'infected' && rt.config.action.quarantine && decision.code < 400) {
    try {
      fields['quarantine'] = await quarantine(rt.config.quarantine_dir, data.readPath, {
        queueId: env.queueId, sender: env.sender, clientIp: env.clientIp, names: verdict.names,
        recipients: controls.flatMap((c) => c.recipients.filter((r) => !r.done).map((r) => r.address)),
      });
    } catch (err) {
      tempfail('quarantined', 'quarantine_error', err);
    }
  }

  const writes = (decision.action === 'pass' && verdict.kind === 'infected') || decision.action === 'drop';
  let held: readonly string[] | undefined;
  if (writes && decision.code < 400) {
    try {
      held = ctx.locks.take([dataPath, ...controls.map((c) => c.path)]);
    } catch (err) {
      ctx.log.event('control-lock-error', { data: dataPath, code: codeOf(err) ?? 'EIO', reason: messageOf(err) }, 'error');
      held = undefined;
    }
    if (held === undefined) {
      ctx.log.event('control-busy', { data: dataPath, reason: 'a file of this request is in use by another request' }, 'warning');
      Object.assign(fields, { verdict: 'tempfail', action: 'tempfail', reply: CONTROL_BUSY_REPLY.code, code: 'ECONTROL_BUSY' });
      return { reply: CONTROL_BUSY_REPLY, verdict };
    }
  }
  try {
    if (decision.action === 'pass' && verdict.kind === 'infected') {
      try {
        await insertHeader(data.readPath, `X-Virus-Found: ${verdict.names.join(', ')} (avfilter)`, rt.config.tmpdir);
      } catch (err) {
        tempfail('marked', 'header_error', err);
      }
    }

    if (decision.action === 'drop') {
      try {
        // as they are now: another request may have marked some of them meanwhile
        const now = controls.map((c) => rereadControlFile(c, rt.config.max_control_size));
        const to = pendingAddresses(now);
        fields['dropped'] = await dropRecipients(now, signal);
        fields['to'] = to;
      } catch (err) {
        // Not every recipient could be marked: answer 4xx so Courier discards the whole
        // submission and the sender retries. Nothing is delivered, nothing is lost.
        tempfail('dropped', 'drop_error', err);
      }
    }
  } finally {
    if (held !== undefined) ctx.locks.release(held);
  }

  Object.assign(fields, {
    verdict: decision.verdict,
    names: verdict.kind === 'infected' ? verdict.names : verdict.kind === 'encrypted' ? [verdict.name] : undefined,
    where: verdict.kind === 'infected' ? verdict.findings.map((f) => `${f.engine}:${f.itemId}`) : verdict.kind === 'encrypted' ? [`unpack:${verdict.path}`] : undefined,
    // the formats of the containers the findings were in (the paths above say where)
    containers: verdict.kind === 'infected' && verdict.findings.some((f) => f.container !== undefined)
      ? [...new Set(verdict.findings.flatMap((f) => (f.container !== undefined ? [f.container] : [])))]
      : verdict.kind === 'encrypted' ? [verdict.format] : undefined,
    action: decision.action,
    reply: decision.code,
    code: verdict.kind === 'error' || verdict.kind === 'limit' ? verdict.code : undefined,
    origin: verdict.kind === 'error' ? verdict.origin : undefined,
    reason: verdict.kind === 'error' || verdict.kind === 'limit' || verdict.kind === 'busy' ? verdict.reason : undefined,
  });
  return { reply: { code: decision.code, text: decision.text }, decision, verdict };
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
