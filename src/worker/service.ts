/**
 * A request under its deadline: the wrapper around the spine (request.ts) that guarantees one
 * reply and one log line per request, at the deadline at the latest.
 *
 * Owns: the request's AbortController and deadline timer, the log line (written once: by the
 * spine's end, or by the deadline with what the spine had learnt by then: queue id, sender),
 * and the scan slots of this process. At the deadline the work is aborted (MIME, engines and
 * the drop loop all stop on the signal) and 451 is answered at once; the spine's late result
 * is dropped. Used by the worker process and by --batch-test alike.
 * Inputs: requests with their accept time and deadline. Outputs: replies. Never rejects.
 */
import { setMaxListeners } from 'node:events';
import type { CourierRequest } from '../courierfilter/request.js';
import type { Reply } from '../courierfilter/server.js';
import type { Logger, LogFields } from '../ops/log.js';
import type { Runtime } from '../app/runtime.js';
import type { StatsRecorder } from '../ops/stats.js';
import type { Verdict } from '../policy/verdict.js';
import { messageOf } from '../errors.js';
import { messageTrace } from '../ops/trace.js';
import { handleRequest } from './request.js';
import { INTERNAL_REPLY, SHUTDOWN_REPLY, TIMEOUT_REPLY } from '../courierfilter/replies.js';
import { Slots } from './slots.js';
import { ControlLocks } from './control-locks.js';


export interface Timing {
  /** When the connection was accepted (epoch ms): the log's `ms` counts from here. */
  readonly acceptedAt: number;
  /** The answer is due by then (epoch ms). */
  readonly deadlineAt: number;
}

export class RequestService {
  private readonly slots: Slots;
  private readonly locks: ControlLocks;
  private readonly inFlight = new Set<AbortController>();

  /** `stats`: where each message is counted, once, when its log line is written. */
  constructor(private readonly rt: Runtime, private readonly log: Logger, slots: number, private readonly stats?: StatsRecorder) {
    this.slots = new Slots(slots);
    this.locks = new ControlLocks(rt.config.tmpdir);
  }

  get pending(): number {
    return this.inFlight.size;
  }

  /** One request; `stop` (optional) ends it early with the shutdown reply. */
  serve(req: CourierRequest, timing: Timing, stop?: AbortSignal): Promise<Reply> {
    const ctl = new AbortController();
    // every engine scan and reading of this request listens on it: no warning at 10
    setMaxListeners(0, ctl.signal);
    this.inFlight.add(ctl);
    const fields: LogFields = {};
    const trace = messageTrace(this.log, req.dataPath, timing.acceptedAt);
    let logged = false;
    const writeLine = (verdict?: Verdict): void => {
      if (logged) return;
      logged = true;
      const line = inOrder({ ...fields, ms: Math.max(0, Date.now() - timing.acceptedAt) });
      this.log.message(line);
      this.stats?.message(line, verdict);
    };
    const stopWith = (reason: string, code: string): void => {
      Object.assign(fields, { verdict: 'tempfail', action: 'tempfail', reply: 451, code, reason, origin: 'abort' });
    };
    return new Promise<Reply>((resolve) => {
      let answered = false;
      const answer = (r: Reply): void => {
        if (answered) return;
        answered = true;
        trace?.('reply', { reply: r.code, text: Array.isArray(r.text) ? r.text.join(' / ') : r.text });
        clearTimeout(timer);
        stop?.removeEventListener('abort', onStop);
        this.inFlight.delete(ctl);
        resolve(r);
      };
      const timer = setTimeout(() => {
        ctl.abort();
        stopWith('request deadline reached', 'ETIMEOUT');
        writeLine();
        answer(TIMEOUT_REPLY);
      }, Math.max(0, timing.deadlineAt - Date.now()));
      const onStop = (): void => {
        ctl.abort();
        stopWith('avfilter is shutting down', 'ESHUTDOWN');
        writeLine();
        answer(SHUTDOWN_REPLY);
      };
      if (stop?.aborted) return onStop();
      stop?.addEventListener('abort', onStop, { once: true });
      handleRequest(req, { rt: this.rt, locks: this.locks, log: this.log, acquire: (s) => this.slots.acquire(s), release: () => this.slots.release(), trace }, fields, ctl.signal).then(
        (h) => {
          if (answered) return;
          writeLine(h.verdict);
          answer(h.reply);
        },
        (err: unknown) => {
          if (answered) return;
          Object.assign(fields, { verdict: 'tempfail', action: 'tempfail', reply: 451, code: 'EINTERNAL', reason: messageOf(err), origin: 'internal' });
          writeLine();
          answer(INTERNAL_REPLY);
        },
      );
    });
  }

  /** Aborts everything in flight (each is answered by its own serve()). */
  abortAll(): void {
    for (const c of this.inFlight) c.abort();
  }
}

/** The message line's fields in the order an admin reads them (contract.md's example). */
const ORDER = ['data', 'id', 'from', 'rcpts', 'ip', 'auth', 'verdict', 'names', 'where', 'action', 'dropped', 'to', 'reply', 'code', 'origin', 'reason', 'items'];

function inOrder(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const k of ORDER) if (k in fields) out[k] = fields[k];
  for (const [k, v] of Object.entries(fields)) if (!(k in out)) out[k] = v;
  return out;
}
