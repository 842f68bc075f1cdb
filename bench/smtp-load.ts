/**
 * SMTP load for the Courier section: `concurrency` sessions at a time, one message per session
 * (connect, EHLO, MAIL, RCPT, DATA, message, QUIT), until every message of the list was sent.
 * Each reply to the final "." is checked against what the mode must answer: 2xx for clean mail,
 * 5xx for infected mail when a filter rejects viruses, 2xx for everything with no filter.
 *
 * Inputs: esmtpd's port, the messages, the recipient, the expectation. Output: LoadResult with
 * the wall time and one Outcome per message (code, DATA→reply latency, or the error). Never
 * throws for one message: errors and timeouts are counted in the outcomes.
 */
import { SmtpClientError, sendSmtp } from '../test/helpers/smtp.js';
import { replyCause } from './courier-replies.js';
import type { MessageKind, MixMessage } from './mix.js';
import { pool } from './pool.js';

export interface Outcome {
  kind: MessageKind;
  /** the code of the reply to the final ".", when one came */
  code?: number;
  /** ms from the final "." leaving to its reply */
  latencyMs?: number;
  /** the verdict was not the expected one (code given) */
  wrong: boolean;
  timeout: boolean;
  /** a transport or protocol failure, or a refusal before DATA */
  error?: string;
}

export interface LoadResult {
  wallMs: number;
  outcomes: Outcome[];
}

export interface LoadOptions {
  port: number;
  to: string;
  messages: readonly MixMessage[];
  concurrency: number;
  /** true: infected mail must get 5xx (a filter that rejects); false: everything gets 2xx */
  rejectInfected: boolean;
  replyTimeoutMs: number;
}

function wrongVerdict(what: string, want: number, code: number, text: string): string {
  const cause = replyCause(code, text);
  return `${what}: expected ${want}xx, got ${code} ${text.split('\n')[0]}${cause ? ` (${cause})` : ''}`;
}

export async function smtpLoad(opts: LoadOptions): Promise<LoadResult> {
  const outcomes: Outcome[] = new Array(opts.messages.length);
  const t0 = performance.now();
  await pool(opts.messages, opts.concurrency, async (m, i) => {
    try {
      const r = await sendSmtp({ port: opts.port, from: m.from, to: [opts.to], message: m.raw, replyTimeoutMs: opts.replyTimeoutMs });
      if (!r.final || !r.timing) {
        outcomes[i] = { kind: m.kind, code: r.last.code, wrong: false, timeout: false, error: `refused before the message was sent: ${r.last.code} ${r.last.text}` };
        return;
      }
      const code = r.final.code;
      const want = m.infected && opts.rejectInfected ? 5 : 2;
      outcomes[i] = {
        kind: m.kind,
        code,
        latencyMs: r.timing.finalMs - r.timing.dataSentMs,
        wrong: Math.floor(code / 100) !== want,
        timeout: false,
        ...(Math.floor(code / 100) !== want ? { error: wrongVerdict(`${m.kind} #${m.index}`, want, code, r.final.text) } : {}),
      };
    } catch (err) {
      const timeout = err instanceof SmtpClientError && err.code === 'SMTP_TIMEOUT';
      outcomes[i] = { kind: m.kind, wrong: false, timeout, error: `${m.kind} #${m.index}: ${(err as Error).message}` };
    }
  });
  return { wallMs: performance.now() - t0, outcomes };
}
