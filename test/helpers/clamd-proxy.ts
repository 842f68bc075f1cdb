/**
 * A fault proxy between avfilter and a REAL clamd (helpers/clamd.ts), for the faults a real
 * clamd will not produce on demand. Each connection gets the mode set when it is accepted, so
 * a test switches faults on and off while traffic flows:
 *
 *   pass              bytes go through both ways unchanged (the real clamd answers)
 *   delay             like pass, but clamd's answer reaches the client `delayMs` later
 *   garbage           reads the whole INSTREAM, answers something that is not a clamd reply
 *   close-mid-stream  closes without a reply once the first chunk's payload has arrived
 *   hang              reads everything, never answers, never closes
 *   size-limit        like pass until the payload passes `sizeLimit` bytes, then answers
 *                     "INSTREAM size limit exceeded. ERROR" and closes, as clamd does past its
 *                     StreamMaxLength
 *
 * Owns: a unix listener (mode 0666, so a daemon running as another user can connect), its
 * connections and their upstream connections. Inputs: the upstream clamd socket path (it may
 * change, e.g. to another clamd). Outputs: per-mode connection counts. Fails with the listen
 * error at start; a connection's errors end that connection only (the client sees them).
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GARBAGE_REPLY } from './fake-clamd.js';

export const PROXY_MODES = ['pass', 'delay', 'garbage', 'close-mid-stream', 'hang', 'size-limit'] as const;
export type ProxyMode = (typeof PROXY_MODES)[number];

export const SIZE_LIMIT_REPLY = 'INSTREAM size limit exceeded. ERROR\0';

export interface ClamdProxy {
  /** Address in the config's `servers` form. */
  readonly server: string;
  readonly path: string;
  /** Mode for connections accepted from now on. */
  mode: ProxyMode;
  /** Modes for the next connections, one each, before `mode` applies again. */
  readonly next: ProxyMode[];
  /** `delay`: how long clamd's answer is held back. */
  delayMs: number;
  /** `size-limit`: payload bytes allowed before the refusal. */
  sizeLimit: number;
  /** The real clamd's socket path. */
  upstream: string;
  /** Connections accepted, by the mode they got. */
  readonly counts: Readonly<Record<ProxyMode, number>>;
  /** Connections still open. */
  readonly open: number;
  /** Most client connections open at one time since the last resetPeak(). */
  readonly peakClients: number;
  /**
   * pass/delay: most scans in flight at one time since the last resetPeak() — INSTREAM commands
   * seen from clients whose `stream:` answer has not yet been passed back (sessions included).
   */
  readonly peakScans: number;
  resetPeak(): void;
  stop(): Promise<void>;
}

export async function startClamdProxy(upstream: string, opts: { dir?: string } = {}): Promise<ClamdProxy> {
  const ownDir = opts.dir === undefined ? await mkdtemp(join(tmpdir(), 'avf-proxy-')) : undefined;
  const path = join(opts.dir ?? ownDir!, 'clamd-proxy.sock');
  const sockets = new Set<Socket>();
  const counts = Object.fromEntries(PROXY_MODES.map((m) => [m, 0])) as Record<ProxyMode, number>;
  const state = { mode: 'pass' as ProxyMode, delayMs: 500, sizeLimit: 1024, upstream };
  const next: ProxyMode[] = [];
  const track = (s: Socket): Socket => {
    sockets.add(s);
    s.on('error', () => s.destroy());
    s.on('close', () => sockets.delete(s));
    return s;
  };
  const clients = { open: 0, peak: 0, scans: 0, peakScans: 0 };
  const server = createServer((client) => {
    track(client);
    clients.open++;
    clients.peak = Math.max(clients.peak, clients.open);
    client.on('close', () => { clients.open--; });
    const mode = next.shift() ?? state.mode;
    counts[mode]++;
    serveConnection(client, mode, state, track, (delta) => {
      clients.scans += delta;
      clients.peakScans = Math.max(clients.peakScans, clients.scans);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => { server.off('error', reject); resolve(); });
  });
  await chmod(path, 0o666);
  return {
    server: `unix:${path}`,
    path,
    get mode() { return state.mode; },
    next,
    set mode(m: ProxyMode) { state.mode = m; },
    get delayMs() { return state.delayMs; },
    set delayMs(ms: number) { state.delayMs = ms; },
    get sizeLimit() { return state.sizeLimit; },
    set sizeLimit(n: number) { state.sizeLimit = n; },
    get upstream() { return state.upstream; },
    set upstream(p: string) { state.upstream = p; },
    counts,
    get open() { return sockets.size; },
    get peakClients() { return clients.peak; },
    get peakScans() { return clients.peakScans; },
    resetPeak() {
      clients.peak = clients.open;
      clients.peakScans = clients.scans;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(path, { force: true });
      if (ownDir) await rm(ownDir, { recursive: true, force: true });
    },
  };
}

interface State { mode: ProxyMode; delayMs: number; sizeLimit: number; upstream: string }

/** Counts occurrences of `needle` in a stream of chunks (also across chunk boundaries). */
function counter(needle: string): (d: Buffer) => number {
  let tail = '';
  return (d) => {
    const text = tail + d.toString('latin1');
    let n = 0;
    for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
    tail = text.slice(-(needle.length - 1));
    return n;
  };
}

function serveConnection(client: Socket, mode: ProxyMode, state: State, track: (s: Socket) => Socket, scans: (delta: number) => void): void {
  const framing = new InstreamFraming();
  switch (mode) {
    case 'hang':
      client.on('data', () => undefined);
      return;
    case 'garbage':
      client.on('data', (d: Buffer) => {
        if (framing.push(d).ended) {
          client.removeAllListeners('data');
          client.end(GARBAGE_REPLY);
        }
      });
      return;
    case 'close-mid-stream':
      client.on('data', (d: Buffer) => {
        const f = framing.push(d);
        if (f.firstChunkDone || f.ended) client.destroy();
      });
      return;
    case 'pass':
    case 'delay':
    case 'size-limit': {
      const up = track(connect({ path: state.upstream }));
      const delay = mode === 'delay' ? state.delayMs : 0;
      const limit = state.sizeLimit;
      const later = (f: () => void): void => { if (delay > 0) setTimeout(f, delay); else f(); };
      // clamd killed (a reset) cuts the client off; a normal close ends it after the answer
      up.on('close', (hadError) => { if (hadError) later(() => client.destroy()); });
      client.on('close', () => up.destroy());
      const started = counter('zINSTREAM\0');
      const answered = counter('stream: ');
      let open = 0;
      client.on('close', () => { scans(-open); open = 0; });
      up.on('data', (d: Buffer) => later(() => {
        const n = Math.min(open, answered(d));
        open -= n;
        scans(-n);
        client.write(d);
      }));
      up.on('end', () => later(() => client.end()));
      client.on('data', (d: Buffer) => {
        if (mode === 'size-limit' && framing.push(d).payload > limit) {
          client.removeAllListeners('data');
          up.destroy();
          // like clamd: answer and close while the client may still be writing
          client.write(SIZE_LIMIT_REPLY, () => client.destroy());
          return;
        }
        const n = started(d);
        open += n;
        scans(n);
        up.write(d);
      });
      client.on('end', () => up.end());
      return;
    }
  }
}

/**
 * Follows the client's side of zINSTREAM: command, then length-prefixed chunks, then 0; on a
 * zIDSESSION connection, its first INSTREAM.
 */
class InstreamFraming {
  private state: 'cmd' | 'len' | 'data' | 'done' = 'cmd';
  private pending: Buffer = Buffer.alloc(0);
  private remaining = 0;
  payload = 0;
  firstChunkDone = false;
  ended = false;

  push(d: Buffer): this {
    let buf: Buffer = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    this.pending = Buffer.alloc(0);
    while (buf.length > 0 && this.state !== 'done') {
      if (this.state === 'cmd') {
        const nul = buf.indexOf(0);
        if (nul < 0) { this.pending = buf; break; }
        const cmd = buf.subarray(0, nul).toString('latin1');
        buf = buf.subarray(nul + 1);
        // a session's opening command: the INSTREAM follows
        if (cmd !== 'zIDSESSION') this.state = 'len';
      } else if (this.state === 'len') {
        if (buf.length < 4) { this.pending = buf; break; }
        this.remaining = buf.readUInt32BE(0);
        buf = buf.subarray(4);
        if (this.remaining === 0) { this.state = 'done'; this.ended = true; break; }
        this.state = 'data';
      } else {
        const take = Math.min(this.remaining, buf.length);
        this.payload += take;
        this.remaining -= take;
        buf = buf.subarray(take);
        if (this.remaining === 0) { this.state = 'len'; this.firstChunkDone = true; }
      }
    }
    return this;
  }
}
