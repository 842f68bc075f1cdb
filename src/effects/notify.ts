/**
 * Notices about infected mail ([notify]): one short text message per infected message, to the
 * postmaster and, when asked, the recipients and the sender, handed to sendmail once with every
 * address as an argument after "--" (no shell; an address cannot become an option).
 *
 * A notice never carries the virus: it is text made from the macros (names, file names, sender,
 * recipients, queue id, client IP, the original headers cut at 16 KB), every value escaped by
 * policy/macros.ts. It is sent with the null sender (sendmail -f ""), so a bounce of it goes
 * nowhere, and marked `Auto-Submitted: auto-generated` (RFC 3834) and `X-Avfilter-Notice: yes`.
 * It goes through Courier like any mail and avfilter scans it like any mail: the marker is no
 * scan bypass. It only keeps avfilter from noticing a notice (a notice found infected, or one
 * forged with the marker, is handled by the action and gets no notice in turn), so notices
 * cannot loop. Senders get none for mail that is itself automatic (null sender, Auto-Submitted).
 *
 * Owns: the notice's bytes (the template: policy/notice-template.ts), the address list,
 * running sendmail.
 * Inputs: NoticeInput (the message's facts, its header section), the [notify] config.
 * Outputs: what was sent to whom, or why nothing was. Fails with AvError: ENOTIFY_TEMPLATE (the
 * template does not load: file, line, why), ENOTIFY_SENDMAIL (sendmail could not be started,
 * exited non-zero or was killed), ENOTIFY_TIMEOUT. The caller logs; a notice never changes the
 * reply.
 */
import { open, readFile, stat } from 'node:fs/promises';
import libqp from 'libqp';
import { AvError, codeOf, messageOf } from '../errors.js';
import { expandTemplate, foldHeader, type MacroValues } from '../policy/macros.js';
import { BUILT_IN_TEMPLATE, NOTICE_MARKER, parseNoticeTemplate, type NoticeTemplate } from '../policy/notice-template.js';
import { runProgram } from './child.js';
import { factsOf } from './facts.js';
import type { EffectRunner } from './types.js';

export interface NotifyConfig {
  readonly postmaster: string;
  readonly recipients: boolean;
  readonly sender: boolean;
  readonly sendmail: readonly string[];
  readonly template: string;
}

export interface NoticeInput {
  readonly values: MacroValues;
  /** The infected message's header section as it came (read by readHeaderSection). */
  readonly headers: string;
  readonly sender: string;
  /** The recipients the message was for (pending when it came). */
  readonly recipients: readonly string[];
}

export type NoticeOutcome =
  | { readonly sent: true; readonly to: readonly string[]; readonly ms: number }
  | { readonly sent: false; readonly reason: string };

/** sendmail queues a message in well under a second; one that hangs must not hold a worker. */
export const SENDMAIL_TIMEOUT_MS = 30_000;
/** What is read of the infected message for %h and the loop checks. */
export const MAX_HEAD_BYTES = 64 * 1024;

let cached: { path: string; mtimeMs: number; size: number; template: NoticeTemplate } | undefined;
const builtIn = parseNoticeTemplate(BUILT_IN_TEMPLATE, '(built-in notice)');

/** The template of `path` ("" = built-in), read again when the file changes. */
async function loadTemplate(path: string): Promise<NoticeTemplate> {
  if (path === '') return builtIn;
  let st;
  let text;
  try {
    st = await stat(path);
    if (cached?.path === path && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached.template;
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AvError('ENOTIFY_TEMPLATE', 'internal', `${path}: cannot read the notice template: ${(err as NodeJS.ErrnoException).code ?? messageOf(err)}`, { cause: err });
  }
  const template = parseNoticeTemplate(text, path);
  cached = { path, mtimeMs: st.mtimeMs, size: st.size, template };
  return template;
}

/** RFC 5322 date-time in UTC. */
function rfc5322Date(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}

/** The notice as bytes: headers (ours and the template's), a quoted-printable UTF-8 body. */
export function buildNotice(t: NoticeTemplate, values: MacroValues, from: string, now = new Date()): Buffer {
  const named = new Set(t.headers.map(([n]) => n.toLowerCase()));
  const head = [
    ...(named.has('from') ? [] : [foldHeader('From', `avfilter <${from}>`)]),
    ...(named.has('date') ? [] : [`Date: ${rfc5322Date(now)}\n`]),
    ...t.headers.map(([n, v]) => foldHeader(n, expandTemplate(v, values, 'header'))),
    `Auto-Submitted: auto-generated\n`,
    `${NOTICE_MARKER}: yes\n`,
    'MIME-Version: 1.0\n',
    'Content-Type: text/plain; charset=utf-8\n',
    'Content-Transfer-Encoding: quoted-printable\n',
  ];
  const body = expandTemplate(t.body, values, 'text');
  // QP keeps every line short and 7-bit whatever the names hold; libqp writes CRLF soft
  // breaks, Courier's sendmail takes LF lines.
  const qp = libqp.wrap(libqp.encode(Buffer.from(body, 'utf8')), 76).replace(/\r\n/g, '\n');
  return Buffer.from(`${head.join('')}\n${qp}${qp.endsWith('\n') ? '' : '\n'}`, 'utf8');
}

/** An address usable as a sendmail argument: no control character, no space, not empty. */
function usable(a: string): boolean {
  return a.length > 0 && a.length <= 320 && !/[\p{Cc}\p{Cf}\p{Z}\p{Cs}]/u.test(a);
}

/** Whether a header section has the field `name` (case-insensitive, at a line start). */
function hasField(headers: string, name: string): RegExpExecArray | null {
  return new RegExp(`^${name}[ \\t]*:[ \\t]*(.*)$`, 'im').exec(headers);
}

/** Who gets the notice, or why nobody does. */
export function noticeAddresses(cfg: NotifyConfig, input: NoticeInput): { to: string[] } | { none: string } {
  // Our notices have the null sender and the marker; both can be forged, which only spares the
  // forger a notice about his message (the scan and the action are the same for every message).
  if (input.sender === '' && hasField(input.headers, NOTICE_MARKER) !== null) return { none: 'the message is a notice itself' };
  const want: string[] = [];
  if (cfg.postmaster !== '') want.push(cfg.postmaster);
  if (cfg.recipients) want.push(...input.recipients);
  if (cfg.sender) {
    const auto = hasField(input.headers, 'Auto-Submitted');
    // RFC 3834 §2: no automatic answer to the null sender or to automatic mail
    if (input.sender !== '' && (auto === null || /^no\b/i.test(auto[1]!.trim()))) want.push(input.sender);
  }
  const seen = new Set<string>();
  const to = want.filter((a) => {
    const k = a.toLowerCase();
    if (!usable(a) || seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  return to.length > 0 ? { to } : { none: 'no address to notify' };
}

/** Sends the notice for one message, or says why none was sent. */
export async function sendNotice(cfg: NotifyConfig, input: NoticeInput, signal?: AbortSignal, timeoutMs = SENDMAIL_TIMEOUT_MS): Promise<NoticeOutcome> {
  const who = noticeAddresses(cfg, input);
  if ('none' in who) return { sent: false, reason: who.none };
  const template = await loadTemplate(cfg.template);
  const msg = buildNotice(template, { ...input.values, headers: input.headers }, cfg.postmaster !== '' ? cfg.postmaster : 'MAILER-DAEMON');
  const r = await runProgram({
    argv: [...cfg.sendmail, '--', ...who.to],
    env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    input: msg,
    timeoutMs,
    signal,
  });
  const prog = cfg.sendmail[0] ?? '';
  switch (r.kind) {
    case 'exit':
      if (r.code === 0) return { sent: true, to: who.to, ms: r.ms };
      throw new AvError('ENOTIFY_SENDMAIL', 'internal', `${prog} ${r.code !== null ? `exited ${r.code}` : `was killed by ${r.signal}`}${said(r.output)}`);
    case 'spawn-error':
      throw new AvError('ENOTIFY_SENDMAIL', 'internal', `${prog} could not be started: ${r.error.code ?? r.error.message}`, { cause: r.error });
    case 'timeout':
    case 'aborted':
      throw new AvError('ENOTIFY_TIMEOUT', 'internal', `${prog} did not finish ${r.kind === 'timeout' ? `within ${timeoutMs / 1000} s` : 'before the request ended'}: killed${said(r.output)}`);
  }
}

function said(output: string): string {
  const t = output.trim();
  return t === '' ? '' : `: ${t.slice(-300)}`;
}

/**
 * The header section of a message file, as text: up to the first empty line, at most
 * MAX_HEAD_BYTES (UTF-8 decoded; bytes that are not become U+FFFD, escaped or not, never raw).
 */
export async function readHeaderSection(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(MAX_HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, MAX_HEAD_BYTES, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    const end = /\r?\n\r?\n/.exec(text);
    return end === null ? text : text.slice(0, end.index + 1);
  } finally {
    await fh.close();
  }
}

/**
 * The 'notify' effect: after the answer stands. Whatever happens here is logged (notice-sent,
 * notice-failed) and changes nothing else; the message line says notified=ADDRESSES or
 * notice=WHY-NOT.
 */
export const notifyRunner: EffectRunner<'notify'> = {
  kind: 'notify',
  phase: 'after',
  writes: false,
  failVerb: 'notified',
  async run(_effect, env) {
    const f = factsOf(env);
    const id = f.queueId;
    try {
      const headers = await readHeaderSection(env.data.readPath).catch(() => '');
      const r = await sendNotice(env.config.notify, { values: f, headers, sender: f.sender, recipients: f.recipients }, env.signal);
      if (!r.sent) {
        env.fields['notice'] = r.reason;
        return;
      }
      env.fields['notified'] = r.to;
      env.log.event('notice-sent', { id, to: r.to, names: f.names, ms: r.ms });
    } catch (err) {
      env.fields['notice'] = codeOf(err) ?? 'EIO';
      env.log.event('notice-failed', { id, code: codeOf(err) ?? 'EIO', reason: messageOf(err) }, 'error');
    }
  },
};
