/**
 * The ICAP engine (`type = "icap"`): each item as the body of an encapsulated HTTP response in
 * an ICAP RESPMOD request (RFC 3507) to one ICAP service, e.g. c-icap's virus_scan.
 *
 * Owns: option validation, the server's OPTIONS (asked when the engine is built and again at
 * the first scan after its Options-TTL has passed; one request in flight however many scans wait for it), the bound
 * on connections open at once (max_connections, else the server's Max-Connections shared among
 * the worker processes, else DEFAULT_MAX_CONNECTIONS), the size limit, the per-item deadline
 * (waiting for a connection counts), and the engine's shutdown.
 * Inputs: IcapOptions once; then ScanItems with an AbortSignal.
 * Outputs: EngineResults (a rejection only for a bug of ours; verdict.ts says what an answer means); version()
 * gives the server's Service and ISTag (the ISTag changes with the signatures); signatureVersion()
 * (the verdict cache's key) is the URL and the ISTag of the last OPTIONS; healthy() is false
 * from a failed OPTIONS or connection until an OPTIONS answers again.
 * Fails with: createIcapEngine throws EBADOPTION (config time); scans return errors with the
 * codes of client.ts and verdict.ts, ESIZE_LIMIT for an item over maxBytes (never skipped:
 * servers such as c-icap pass objects over their own size limit unscanned) and ESCANNER when
 * the service does not offer RESPMOD or OPTIONS fails.
 */
import { setMaxListeners } from 'node:events';
import { EngineErrorCode, type Engine, type EngineResult, type ScanItem } from '../engine.js';
import { options as askOptions, respmod, where, type Outcome } from './client.js';
import { header, type IcapHead } from './protocol.js';
import { parseIcapUrl, type IcapUrl } from './url.js';
import { verdictOf } from './verdict.js';
import { deadline } from '../deadline.js';
import { badOption, positiveInt } from '../options.js';
import { Slots } from '../slots.js';

const ENGINE = 'icap';

export { parseIcapUrl } from './url.js';

export interface IcapOptions {
  /** icap://host[:port]/service */
  url: string;
  connectTimeoutMs: number;
  /** From the connection being up until the whole answer is read. */
  scanTimeoutMs: number;
  /** Larger items are not sent: ESIZE_LIMIT. */
  maxBytes: number;
  /** Connections open at once; 0: the server's Max-Connections / processes, else DEFAULT_MAX_CONNECTIONS. */
  maxConnections: number;
  /** Worker processes sharing the server's Max-Connections. */
  processes?: number | undefined;
}

export const DEFAULT_MAX_CONNECTIONS = 8;
/** Options-TTL when the server gives none: ask again after an hour all the same. */
const DEFAULT_OPTIONS_TTL_MS = 3600_000;
/** A failed OPTIONS is asked again no sooner than this (each scan meanwhile is an error). */
const OPTIONS_RETRY_MS = 1000;
const MAX_TIMER_MS = 2 ** 31 - 1;

interface ServerOptions {
  readonly head: IcapHead;
  readonly preview: number | undefined;
  readonly expires: number;
}

export function createIcapEngine(opts: IcapOptions): Engine {
  const url = parseIcapUrl(opts.url);
  positiveInt(ENGINE, 'connectTimeoutMs', opts.connectTimeoutMs, MAX_TIMER_MS);
  positiveInt(ENGINE, 'scanTimeoutMs', opts.scanTimeoutMs, MAX_TIMER_MS);
  positiveInt(ENGINE, 'maxBytes', opts.maxBytes, Number.MAX_SAFE_INTEGER);
  if (!Number.isInteger(opts.maxConnections) || opts.maxConnections < 0) throw badOption(ENGINE, `maxConnections must be 0 or more, got ${opts.maxConnections}`);
  const processes = Math.max(1, opts.processes ?? 1);
  const slots = new Slots(opts.maxConnections || DEFAULT_MAX_CONNECTIONS);
  const shutdown = new AbortController();
  setMaxListeners(0, shutdown.signal);
  let current: ServerOptions | undefined;
  let asking: Promise<Outcome<ServerOptions>> | undefined;
  let failedAt = 0;
  let lastFailure: Outcome<ServerOptions> | undefined;

  /** The server's OPTIONS, fresh; one request at a time. */
  function serverOptions(signal: AbortSignal): Promise<Outcome<ServerOptions>> {
    if (current !== undefined && Date.now() < current.expires) return Promise.resolve({ ok: true, value: current });
    if (lastFailure !== undefined && Date.now() - failedAt < OPTIONS_RETRY_MS) return Promise.resolve(lastFailure);
    asking ??= fetchOptions(url, opts, shutdown.signal).then((r) => {
      asking = undefined;
      if (r.ok) {
        current = r.value;
        lastFailure = undefined;
        const max = Number.parseInt(header(r.value.head, 'max-connections') ?? '', 10);
        if (opts.maxConnections === 0) slots.resize(max > 0 ? Math.max(1, Math.floor(max / processes)) : DEFAULT_MAX_CONNECTIONS);
      } else {
        lastFailure = r;
        failedAt = Date.now();
      }
      return r;
    });
    return raceAbort(asking, signal);
  }

  // asked at start, so that the first item does not wait for it (a failure is asked again)
  void serverOptions(shutdown.signal);

  async function scan(item: ScanItem, signal: AbortSignal): Promise<EngineResult> {
    if (shutdown.signal.aborted) return error(EngineErrorCode.ABORTED, 'ICAP engine closed');
    if (!(item.source.size <= opts.maxBytes)) {
      return error(EngineErrorCode.SIZE_LIMIT, `${where(url)}: ${item.source.size} bytes exceed max_size ${opts.maxBytes}; not sent`);
    }
    const linked = deadline(opts.connectTimeoutMs + opts.scanTimeoutMs, signal, shutdown.signal);
    try {
      const so = await serverOptions(linked.signal);
      if (!so.ok) return so.code === EngineErrorCode.ABORTED ? stopped(linked.timedOut()) : error(so.code, so.message);
      const methods = header(so.value.head, 'methods') ?? '';
      if (!/(^|[\s,])RESPMOD([\s,]|$)/i.test(methods)) {
        return error(EngineErrorCode.SCANNER, `${where(url)}: the service offers ${JSON.stringify(methods)}, not RESPMOD`);
      }
      const release = await slots.acquire(linked.signal);
      if (release === undefined) return stopped(linked.timedOut());
      try {
        const r = await respmod(url, item.source, {
          connectTimeoutMs: opts.connectTimeoutMs, replyTimeoutMs: opts.scanTimeoutMs, signal: linked.signal,
          preview: so.value.preview, itemId: item.id,
        });
        if (!r.ok) {
          if (r.code === EngineErrorCode.CONNECT || r.code === EngineErrorCode.CONNECT_TIMEOUT) {
            // the server went away: unhealthy (engine_mode = "failover" skips it) until an
            // OPTIONS answers again, asked at the next item after OPTIONS_RETRY_MS
            current = undefined;
            lastFailure = r;
            failedAt = Date.now();
          }
          return r.code === EngineErrorCode.ABORTED ? stopped(linked.timedOut()) : error(r.code, r.message);
        }
        return verdictOf(r.value, where(url));
      } finally {
        release();
      }
    } finally {
      // a bug here throws: the scan pipeline counts it as ours (origin internal), never as a
      // scanner error that action.error = "accept" could let through
      linked.release();
    }
  }

  function stopped(timedOut: boolean): EngineResult {
    return timedOut
      ? error(EngineErrorCode.SCAN_TIMEOUT, `${where(url)}: no answer within ${opts.connectTimeoutMs + opts.scanTimeoutMs} ms (waiting for a connection included)`)
      : error(EngineErrorCode.ABORTED, `${where(url)}: aborted`);
  }

  async function version(signal: AbortSignal): Promise<string> {
    const r = await fetchOptions(url, opts, signal);
    return r.ok ? describeOptions(r.value.head) : `ICAP version unknown (${r.code}: ${r.message})`;
  }

  let closed = false;
  return {
    label: 'icap',
    scan,
    version,
    // the server's ISTag as of its last OPTIONS (it changes with the signatures), with the URL:
    // two servers' tags say nothing about each other
    signatureVersion: () => {
      const tag = current !== undefined ? header(current.head, 'istag') : undefined;
      return tag !== undefined && tag !== '' ? `${url.text} ${tag}` : undefined;
    },
    healthy: () => !closed && lastFailure === undefined,
    async close() {
      closed = true;
      shutdown.abort();
    },
  };
}

async function fetchOptions(url: IcapUrl, opts: IcapOptions, signal: AbortSignal): Promise<Outcome<ServerOptions>> {
  const r = await askOptions(url, { connectTimeoutMs: opts.connectTimeoutMs, replyTimeoutMs: opts.scanTimeoutMs, signal });
  if (!r.ok) return r;
  const head = r.value;
  if (head.status !== 200) {
    return { ok: false, code: head.status >= 400 ? EngineErrorCode.SCANNER : EngineErrorCode.PROTOCOL, message: `${where(url)}: OPTIONS answered ICAP ${head.status} ${head.reason}` };
  }
  const p = header(head, 'preview');
  const preview = p !== undefined && /^\d{1,9}$/.test(p) ? Number(p) : undefined;
  const ttl = Number.parseInt(header(head, 'options-ttl') ?? '', 10);
  const ttlMs = ttl > 0 ? Math.min(ttl * 1000, DEFAULT_OPTIONS_TTL_MS * 24) : DEFAULT_OPTIONS_TTL_MS;
  return { ok: true, value: { head, preview, expires: Date.now() + ttlMs } };
}

/** `--config -v`: "C-ICAP/0.5.10 server - Antivirus service; ISTag "CI0001-..."". */
export function describeOptions(head: IcapHead): string {
  const clean = (s: string): string => s.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 200);
  const service = header(head, 'service') ?? 'service not named';
  const istag = header(head, 'istag');
  return `${clean(service)}; ISTag ${istag !== undefined ? clean(istag) : 'none'}`;
}

function raceAbort<T>(p: Promise<Outcome<T>>, signal: AbortSignal): Promise<Outcome<T>> {
  if (signal.aborted) return Promise.resolve({ ok: false, code: EngineErrorCode.ABORTED, message: 'aborted' });
  return new Promise((resolve) => {
    const onAbort = (): void => resolve({ ok: false, code: EngineErrorCode.ABORTED, message: 'aborted' });
    signal.addEventListener('abort', onAbort, { once: true });
    void p.then((r) => {
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    });
  });
}

function error(code: string, message: string): EngineResult {
  return { status: 'error', code, message };
}
