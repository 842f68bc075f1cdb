/**
 * The clamd engine: the Engine seam (engines/engine.ts) over clamd's INSTREAM.
 *
 * Owns: option validation, how the raw message is presented (raw-message.ts), server choice and
 * health (pool.ts),
 * which connection an item goes on (an item in memory of up to SESSION_MAX_BYTES on a kept
 * IDSESSION connection, session.ts; a larger or file-backed one, or one a broken session left
 * without a verdict, on a connection of its own, client.ts), and the engine's own shutdown signal.
 * Inputs: ClamdOptions once; then ScanItems with an AbortSignal.
 * Outputs: EngineResults (never a rejection); version() gives clamd's VERSION line or says why not.
 * Fails with: createClamdEngine/parseServer throw (config time) with code EBADSERVER or
 * EBADOPTION; scans return error results with the codes listed in client.ts.
 */
import { setMaxListeners } from 'node:events';
import { AvError } from '../../errors.js';
import { EngineErrorCode, type Engine, type EngineResult, type ScanItem } from '../engine.js';
import { parseServer } from './address.js';
import { instream, ping, version as clamdVersion } from './client.js';
import { ClamdPool, type PoolEvent, type ServerHealth } from './pool.js';
import { presentRaw, RAW_MESSAGE_MODES, type PiecedSource, type RawMessageMode } from './raw-message.js';
import { SessionPool } from './session.js';
import { parseClamdVersion } from './version.js';
import type { ClamdAddress } from './address.js';

/**
 * Items in memory up to this size go on a kept session (one write each); larger ones stream on
 * a connection of their own, so that one big transfer never holds up the scans queued behind it.
 */
export const SESSION_MAX_BYTES = 1024 * 1024;

export { formatServer, parseServer, type ClamdAddress } from './address.js';

export interface ClamdOptions {
  /** Tried in order: `unix:/abs/path`, `/abs/path`, `tcp:host:port`, `tcp:[v6addr]:port`. */
  servers: string[];
  connectTimeoutMs: number;
  /** From the first byte sent until clamd's reply. */
  scanTimeoutMs: number;
  /** INSTREAM payload bytes per chunk. */
  chunkBytes: number;
  /** clamd's StreamMaxLength (it cannot be asked over the protocol); larger items are not sent. */
  maxStreamBytes: number;
  /** The raw message parsed by clamd as mail, scanned as plain data, as plain data without its decoded base64 bodies, or left to the parts when the message read one way (raw-message.ts); default CLAMD_DEFAULTS.rawMessage. */
  rawMessage?: RawMessageMode | undefined;
  /** Scans in flight to one server from this process (its share of max_scans_per_server); default CLAMD_DEFAULTS.maxScansPerServer. */
  maxScansPerServer?: number | undefined;
  /** A server went down or came back (pool.ts). */
  onEvent?: ((e: PoolEvent) => void) | undefined;
}

/** The clamd engine, with the health of its servers (for logs and stats). */
export interface ClamdEngine extends Engine {
  health(): ServerHealth[];
}

/** Defaults matching Debian's clamd.conf and the config schema. */
export const CLAMD_DEFAULTS: Readonly<Omit<ClamdOptions, 'servers'>> = Object.freeze({
  rawMessage: 'parts' as RawMessageMode,
  maxScansPerServer: 10,
  connectTimeoutMs: 5_000,
  scanTimeoutMs: 60_000,
  chunkBytes: 64 * 1024,
  // Debian ships StreamMaxLength 25M; sending more only earns "size limit exceeded".
  maxStreamBytes: 25 * 1024 * 1024,
});

/** How often the servers' signature versions are read again once someone asks for them. */
const VERSION_REFRESH_MS = 30_000;

/** setTimeout cannot wait longer than this many ms (it fires at once instead). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function createClamdEngine(opts: ClamdOptions): ClamdEngine {
  const o = validate(opts);
  const probeMs = Math.min(o.scanTimeoutMs, Math.max(o.connectTimeoutMs, 2_000));
  const servers = new ClamdPool({
    servers: o.servers.map(parseServer),
    maxScans: o.maxScansPerServer,
    probe: async (addr) => (await ping(addr, { connectTimeoutMs: o.connectTimeoutMs, replyTimeoutMs: probeMs, signal: AbortSignal.timeout(o.connectTimeoutMs + probeMs + 1000) })).ok,
    onEvent: o.onEvent,
  });
  const sessions = new Map<ClamdAddress, SessionPool>();
  const sessionsOf = (addr: ClamdAddress): SessionPool => {
    let p = sessions.get(addr);
    if (p === undefined) sessions.set(addr, (p = new SessionPool(addr)));
    return p;
  };
  const shutdown = new AbortController();
  // Every scan in flight listens on it (16 connections x 4 items is far more than Node's default
  // warning threshold of 10, which would print a non key=value line on stderr).
  setMaxListeners(0, shutdown.signal);

  async function scan(item: ScanItem, signal: AbortSignal): Promise<EngineResult> {
    if (shutdown.signal.aborted) return { status: 'error', code: EngineErrorCode.ABORTED, message: 'clamd engine closed' };
    let source: PiecedSource = item.source;
    if (item.kind === 'raw') {
      try {
        source = await presentRaw(source, o.rawMessage, item.decodedBodies, item.readOnce);
      } catch (err) {
        return { status: 'error', code: EngineErrorCode.IO, message: `reading the message failed: ${String(err)}` };
      }
    }
    const linked = linkSignals(signal, shutdown.signal);
    try {
      const opts = {
        connectTimeoutMs: o.connectTimeoutMs,
        scanTimeoutMs: o.scanTimeoutMs,
        chunkBytes: o.chunkBytes,
        maxStreamBytes: o.maxStreamBytes,
        signal: linked.signal,
      };
      const bytes = source.size <= Math.min(SESSION_MAX_BYTES, o.maxStreamBytes) ? piecesOf(source) : undefined;
      return await servers.run(source.size, linked.signal, async (addr) => {
        if (bytes !== undefined) {
          const r = await sessionsOf(addr).scan(bytes, opts);
          if (r !== undefined) return r;
          if (linked.signal.aborted) return { status: 'error', code: EngineErrorCode.ABORTED, message: 'aborted' };
        }
        // A connection of its own: an idle session to this server goes first, so that the
        // connections to a server never outnumber the scans in flight to it.
        sessions.get(addr)?.closeIdle();
        return instream(addr, source, opts);
      });
    } finally {
      linked.release();
    }
  }

  // The servers' signature versions, for the verdict cache: read when first asked for, then every
  // VERSION_REFRESH_MS. Undefined (nothing cached) until known, and whenever a server that answers
  // has no official database (its local signature files have no version to tell a change by).
  let signatures: string | undefined;
  let versionTimer: NodeJS.Timeout | undefined;
  const readVersions = async (): Promise<void> => {
    const lines = await Promise.all(o.servers.map(parseServer).map((addr) =>
      clamdVersion(addr, { connectTimeoutMs: o.connectTimeoutMs, replyTimeoutMs: probeMs, signal: AbortSignal.timeout(o.connectTimeoutMs + probeMs + 1000) })));
    const known = lines.flatMap((r) => (r.ok ? [parseClamdVersion(r.reply)] : []));
    signatures = known.length === 0 || known.some((v) => v.database === undefined)
      ? undefined
      : [...new Set(known.map((v) => `${v.engine}/${v.database}/${v.date ?? ''}`))].sort().join('|');
  };
  const signatureVersion = (): string | undefined => {
    if (versionTimer === undefined && !shutdown.signal.aborted) {
      void readVersions();
      versionTimer = setInterval(() => void readVersions(), VERSION_REFRESH_MS);
      versionTimer.unref();
    }
    return signatures;
  };

  async function version(signal: AbortSignal): Promise<string> {
    const reasons: string[] = [];
    for (const addr of o.servers.map(parseServer)) {
      const r = await clamdVersion(addr, { connectTimeoutMs: o.connectTimeoutMs, replyTimeoutMs: o.scanTimeoutMs, signal });
      if (r.ok) return r.reply;
      reasons.push(`${r.code}: ${r.message}`);
      if (r.code === EngineErrorCode.ABORTED) break;
    }
    return `clamd version unknown (${reasons.join('; ')})`;
  }

  return {
    label: 'clamd',
    scan,
    ...(o.rawMessage === 'parts' ? { declines: (item: ScanItem) => item.kind === 'raw' && item.readOnce === true } : {}),
    version,
    health: () => servers.health(),
    healthy: () => servers.health().some((h) => h.up),
    signatureVersion,
    async close() {
      clearInterval(versionTimer);
      shutdown.abort();
      servers.close();
      for (const p of sessions.values()) p.close();
    },
  };
}

type Validated = Readonly<Required<Omit<ClamdOptions, 'onEvent'>> & Pick<ClamdOptions, 'onEvent'>>;

function validate(opts: ClamdOptions): Validated {
  if (!Array.isArray(opts.servers) || opts.servers.length === 0) {
    throw badOption('servers must list at least one clamd address, e.g. ["unix:/run/clamav/clamd.ctl"]');
  }
  for (const s of opts.servers) parseServer(s);
  positiveInt('connectTimeoutMs', opts.connectTimeoutMs, MAX_TIMER_MS);
  positiveInt('scanTimeoutMs', opts.scanTimeoutMs, MAX_TIMER_MS);
  positiveInt('chunkBytes', opts.chunkBytes, 0xffffffff);
  positiveInt('maxStreamBytes', opts.maxStreamBytes, Number.MAX_SAFE_INTEGER);
  const maxScansPerServer = opts.maxScansPerServer ?? CLAMD_DEFAULTS.maxScansPerServer ?? 10;
  positiveInt('maxScansPerServer', maxScansPerServer, 100_000);
  const rawMessage: RawMessageMode = opts.rawMessage ?? CLAMD_DEFAULTS.rawMessage ?? 'parts';
  if (!RAW_MESSAGE_MODES.includes(rawMessage)) throw badOption(`rawMessage must be one of ${RAW_MESSAGE_MODES.map((m) => `"${m}"`).join(', ')}, got ${JSON.stringify(rawMessage)}`);
  return Object.freeze({ ...opts, rawMessage, maxScansPerServer, onEvent: opts.onEvent, servers: [...opts.servers] });
}

function positiveInt(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 1 || v > max) throw badOption(`${name} must be an integer in 1..${max}, got ${String(v)}`);
}

function badOption(message: string): AvError {
  return new AvError('EBADOPTION', 'config', `clamd engine: ${message}`);
}

/** The bytes of a source in memory, as pieces (a prefixed raw message: no copy), or undefined. */
function piecesOf(source: PiecedSource): readonly Buffer[] | undefined {
  if (source.pieces !== undefined) return source.pieces.reduce((n, b) => n + b.length, 0) === source.size ? source.pieces : undefined;
  return source.bytes !== undefined && source.bytes.length === source.size ? [source.bytes] : undefined;
}

/** One signal that aborts when either does (AbortSignal.any needs Node 20.3). */
function linkSignals(a: AbortSignal, b: AbortSignal): { signal: AbortSignal; release(): void } {
  const ctl = new AbortController();
  const onAbort = (): void => ctl.abort();
  if (a.aborted || b.aborted) ctl.abort();
  a.addEventListener('abort', onAbort, { once: true });
  b.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ctl.signal,
    release() {
      a.removeEventListener('abort', onAbort);
      b.removeEventListener('abort', onAbort);
    },
  };
}
