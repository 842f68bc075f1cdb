/**
 * action.handler: a program of the admin's run on each infected message (avcheck's -i), with a
 * private copy of it, before anything else is done to the message (after the quarantine copy).
 *
 *   HANDLER MESSAGE SENDER NAMES [RECIPIENT...]
 *
 * MESSAGE is the copy's path (mode 0600, in a directory of its own, 0700, under tmpdir, named
 * handler-<worker pid>-XXXXXX; removed when the handler exits, with whatever it left there);
 * SENDER the envelope sender ("" for the null sender); NAMES the virus names, comma-separated;
 * then the recipients the message was for. The environment holds only PATH, TMPDIR (the private
 * directory), SENDMAIL ([notify] sendmail's program), AVFILTER_MESSAGE, AVFILTER_SENDER,
 * AVFILTER_VIRUS_NAMES, AVFILTER_QUEUE_ID, AVFILTER_CLIENT_IP and AVFILTER_ACTION (what avfilter
 * is going to do: drop, reject, ...). No shell runs it; values from the message have control
 * and invisible format characters shown as \xHH / \uHHHH (policy/macros.ts), never raw.
 *
 * Its exit status: 0, the configured action stands; 75 (EX_TEMPFAIL), the message is answered
 * 451 and the effects before it are undone; anything else, a signal, or no exit within
 * action.handler_timeout (its whole process group is then killed): logged, the action stands.
 *
 * Owns: the copy, the argv and environment, reading the exit; the 'handler' EffectRunner.
 * Inputs: HandlerInput. Outputs: a HandlerOutcome; runHandler never throws but for the
 * request's own abort (AvError EABORTED).
 */
import { copyFile, chmod, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { constants } from 'node:fs';
import { AvError, codeOf, messageOf } from '../errors.js';
import { escapeValue } from '../policy/macros.js';
import { HANDLER_TEMPFAIL_REPLY } from '../courierfilter/replies.js';
import { runProgram } from './child.js';
import { factsOf } from './facts.js';
import type { EffectRunner } from './types.js';

/** sysexits.h EX_TEMPFAIL: "try again later", as mail programs use it. */
export const EX_TEMPFAIL = 75;
/** The prefix of the private directories; master/tmp-sweep.ts removes those of dead workers. */
export const HANDLER_DIR_PREFIX = 'handler';

export interface HandlerInput {
  /** action.handler, action.handler_timeout in ms, tmpdir */
  readonly program: string;
  readonly timeoutMs: number;
  readonly tmpdir: string;
  /** The request's deadline: the handler's group is killed when it fires. */
  readonly signal?: AbortSignal | undefined;
  /** The message and its facts. */
  readonly dataPath: string;
  readonly names: readonly string[];
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly queueId: string;
  readonly clientIp?: string | undefined;
  /** What avfilter is going to do (drop, reject, ...). */
  readonly action: string;
  /** The program notices are sent with, for handlers that write mail. */
  readonly sendmail: string;
}

export type HandlerOutcome =
  | { readonly kind: 'done'; readonly ms: number }
  | { readonly kind: 'tempfail'; readonly ms: number; readonly output: string }
  | { readonly kind: 'failed'; readonly code: 'EHANDLER_EXIT' | 'EHANDLER_TIMEOUT' | 'EHANDLER_SPAWN' | 'EHANDLER_COPY'; readonly reason: string; readonly ms: number };

/** A value for argv or the environment: never NUL (spawn refuses it) nor any other control. */
function arg(s: string): string {
  return escapeValue(s, 'text');
}

export async function runHandler(h: HandlerInput): Promise<HandlerOutcome> {
  const t0 = Date.now();
  let dir: string;
  try {
    dir = await mkdtemp(join(h.tmpdir, `${HANDLER_DIR_PREFIX}-${process.pid}-`)); // 0700
  } catch (err) {
    return { kind: 'failed', code: 'EHANDLER_COPY', reason: `cannot make a private directory in ${h.tmpdir}: ${messageOf(err)}`, ms: Date.now() - t0 };
  }
  try {
    const copy = join(dir, 'message');
    try {
      await copyFile(h.dataPath, copy, constants.COPYFILE_EXCL);
      await chmod(copy, 0o600);
    } catch (err) {
      return { kind: 'failed', code: 'EHANDLER_COPY', reason: `cannot copy the message: ${codeOf(err) ?? messageOf(err)}`, ms: Date.now() - t0 };
    }
    const names = h.names.map(arg).join(',');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      TMPDIR: dir,
      SENDMAIL: h.sendmail,
      AVFILTER_MESSAGE: copy,
      AVFILTER_SENDER: arg(h.sender),
      AVFILTER_VIRUS_NAMES: names,
      AVFILTER_QUEUE_ID: arg(h.queueId),
      AVFILTER_CLIENT_IP: arg(h.clientIp ?? ''),
      AVFILTER_ACTION: h.action,
    };
    const r = await runProgram({
      argv: [h.program, copy, arg(h.sender), names, ...h.recipients.map(arg)],
      env, cwd: dir, timeoutMs: h.timeoutMs, signal: h.signal,
    });
    const said = (o: string): string => (o.trim() === '' ? '' : `: ${o.trim().slice(-300)}`);
    switch (r.kind) {
      case 'exit':
        if (r.code === 0) return { kind: 'done', ms: r.ms };
        if (r.code === EX_TEMPFAIL) return { kind: 'tempfail', ms: r.ms, output: r.output.trim().slice(-300) };
        return { kind: 'failed', code: 'EHANDLER_EXIT', reason: `${r.code !== null ? `exited ${r.code}` : `killed by ${r.signal}`}${said(r.output)}`, ms: r.ms };
      case 'spawn-error':
        return { kind: 'failed', code: 'EHANDLER_SPAWN', reason: `cannot be started: ${r.error.code ?? r.error.message}`, ms: r.ms };
      case 'timeout':
        return { kind: 'failed', code: 'EHANDLER_TIMEOUT', reason: `still running after ${h.timeoutMs / 1000} s: its process group was killed${said(r.output)}`, ms: r.ms };
      case 'aborted':
        throw new AvError('EABORTED', 'abort', 'the request ended while the handler ran: its process group was killed');
    }
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

/**
 * The 'handler' effect: a commit effect after the quarantine copy and before anything changes
 * the message. Exit 75 throws EHANDLER_TEMPFAIL, which the runner answers 451
 * (HANDLER_TEMPFAIL_REPLY) after taking back the effects before it; every other failure is
 * logged (event handler-failed) and the action stands.
 */
export const handlerRunner: EffectRunner<'handler'> = {
  kind: 'handler',
  phase: 'commit',
  writes: false,
  failVerb: 'handed to the handler',
  failReply: (err) => (codeOf(err) === 'EHANDLER_TEMPFAIL' ? HANDLER_TEMPFAIL_REPLY : undefined),
  async run(effect, env) {
    const f = factsOf(env);
    const r = await runHandler({
      program: effect.program, timeoutMs: env.config.action.handler_timeout * 1000, tmpdir: env.config.tmpdir, signal: env.signal,
      dataPath: env.data.readPath, names: f.names, sender: f.sender, recipients: f.recipients, queueId: f.queueId, clientIp: f.clientIp,
      action: f.action, sendmail: env.config.notify.sendmail[0] ?? '',
    });
    env.fields['handler'] = r.kind === 'failed' ? r.code : r.kind;
    env.fields['handler_ms'] = r.ms;
    const about = { id: f.queueId, program: effect.program, ms: r.ms };
    if (r.kind === 'tempfail') {
      env.log.event('handler-tempfail', { ...about, text: r.output }, 'warning');
      throw new AvError('EHANDLER_TEMPFAIL', 'internal', `${effect.program} exited ${EX_TEMPFAIL}: try again later${r.output === '' ? '' : `: ${r.output}`}`);
    }
    if (r.kind === 'failed') env.log.event('handler-failed', { ...about, code: r.code, reason: r.reason }, 'error');
  },
};
