/**
 * The `metrics` endpoint: an HTTP server in the master answering GET /metrics with the
 * Prometheus text of the counters. The master handles no mail, so a scrape never competes with
 * a request; the text is built from sums it already holds.
 *
 * Owns: binding the configured address (metrics-address.ts), rebinding when a reload changes
 * it, closing it at shutdown. Only GET and HEAD of /metrics answer 200; other paths 404, other
 * methods 405. A bind that fails (port in use, no permission) is logged at error and the filter
 * goes on without metrics: counters are never worth a mail outage. A non-loopback address is
 * served (the admin named it) and logged at warning. A unix socket: a stale socket left at the
 * path (nothing accepts on it) is replaced; anything else there is an error.
 * Inputs: the key's value on start and on each reload; a render function. Outputs: log events
 * metrics-listening, metrics-exposed, metrics-error, metrics-closed. Never throws.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { lstatSync, unlinkSync } from 'node:fs';
import { formatMetricsAddress, parseMetricsAddress, type MetricsAddress } from '../config/metrics-address.js';
import { messageOf } from '../errors.js';
import type { Logger } from './log.js';

/** A scraper that sends nothing for this long is closed (a slow client must not hold sockets). */
const REQUEST_TIMEOUT_MS = 10_000;
/** Scrapers at once; a scrape takes a millisecond, so more means something is wrong. */
const MAX_CONNECTIONS = 16;
/** How long a unix socket found at the path may take to answer before it counts as stale. */
const STALE_PROBE_MS = 500;

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class MetricsServer {
  private server: Server | undefined;
  private value = '';
  /** The address it listens on ("" when none), e.g. for the tests: "tcp:127.0.0.1:40123". */
  bound = '';
  /** Configures and binds in order: a reload while a bind runs waits for it. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly log: Logger, private readonly render: () => string) {}

  /** Serve at `value` ("" = off); rebinds only when the value changed. Resolves once done; never rejects. */
  configure(value: string): Promise<void> {
    this.queue = this.queue.then(() => this.apply(value)).catch(() => undefined);
    return this.queue;
  }

  close(): Promise<void> {
    return this.configure('');
  }

  private async apply(value: string): Promise<void> {
    if (value === this.value && (this.server !== undefined || value === '')) return;
    await this.stop();
    this.value = value;
    let addr: MetricsAddress | undefined;
    try {
      addr = parseMetricsAddress(value);
    } catch (err) {
      // the config loader refuses it first; this is a second line of defence
      this.log.event('metrics-error', { address: value, reason: messageOf(err) }, 'error');
      return;
    }
    if (addr === undefined) return;
    const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => this.answer(req, res));
    server.maxConnections = MAX_CONNECTIONS;
    server.on('clientError', (_err, socket) => socket.destroy());
    try {
      if (addr.kind === 'unix') await removeStaleSocket(addr.path);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        if (addr.kind === 'unix') server.listen(addr.path, resolve);
        else server.listen({ host: addr.host, port: addr.port, exclusive: true }, resolve);
      });
    } catch (err) {
      this.log.event('metrics-error', { address: value, reason: `cannot listen: ${messageOf(err)}; the filter goes on without metrics` }, 'error');
      server.close();
      return;
    }
    server.on('error', (err) => this.log.event('metrics-error', { address: this.bound, reason: messageOf(err) }, 'error'));
    this.server = server;
    const a = server.address();
    this.bound = addr.kind === 'unix' ? formatMetricsAddress(addr) : formatMetricsAddress({ ...addr, port: (a as AddressInfo).port });
    this.log.event('metrics-listening', { address: this.bound });
    if (addr.kind === 'tcp' && addr.exposed) {
      this.log.event('metrics-exposed', { address: this.bound, reason: 'not a loopback address: anyone who can reach it sees the counters (virus names, mail volume)' }, 'warning');
    }
  }

  private async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    const was = this.bound;
    this.bound = '';
    this.value = '';
    if (s === undefined) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
    this.log.event('metrics-closed', { address: was });
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    try {
      const path = (req.url ?? '').split('?')[0];
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the counters are at /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'text/plain; charset=utf-8', allow: 'GET, HEAD' }).end('use GET\n');
        return;
      }
      const body = Buffer.from(this.render(), 'utf8');
      res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      this.log.event('metrics-error', { reason: messageOf(err) }, 'error');
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    }
  }
}

/** A socket at `path` that nobody accepts on is ours to replace; anything else is left alone. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) return; // listen fails with EADDRINUSE, which names the problem
  const alive = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    const done = (v: boolean): void => {
      c.destroy();
      resolve(v);
    };
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
    c.setTimeout(STALE_PROBE_MS, () => done(true));
  });
  if (!alive) unlinkSync(path);
}
