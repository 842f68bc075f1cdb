/**
 * The verdict cache in Redis (`cache = "redis://..."`), shared by every worker and every Courier
 * host that names the same server: node-redis' client (@redis/client), one connection per worker
 * process.
 *
 * Owns: the connection's life (connected in the background, reconnecting with backoff up to 5 s
 * between tries, commands refused at once while it is down rather than queued, a bounded queue
 * while it is up) and turning every failure into a miss. Never rejects, never throws into the
 * scan, never holds up a message: the caller bounds each lookup (verdict-cache.ts lookupMs).
 * Trust: a value found there decides a verdict, so the server must be as trusted as the scanner
 * (loopback or a private network, a password in the URL, `rediss://` for TLS); only values of the
 * exact form avfilter writes are used (verdict-cache.ts), anything else is skipped.
 */
import { createClient } from '@redis/client';
import type { VerdictStore } from './verdict-cache.js';

export interface RedisStoreOptions {
  readonly url: string;
  /** A failure, at most once a minute (a down server must not flood the log). */
  readonly onError?: ((reason: string) => void) | undefined;
}

const ERROR_EVERY_MS = 60_000;
const CONNECT_TIMEOUT_MS = 2_000;

export function redisStore(opts: RedisStoreOptions): VerdictStore {
  let lastError = 0;
  const report = (err: unknown): void => {
    const now = Date.now();
    if (now - lastError < ERROR_EVERY_MS) return;
    lastError = now;
    opts.onError?.(err instanceof Error ? err.message : String(err));
  };
  const client = createClient({
    url: opts.url,
    disableOfflineQueue: true,
    commandsQueueMaxLength: 1000,
    socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: (retries: number) => Math.min(5_000, 100 * 2 ** retries) },
  });
  client.on('error', report);
  let closed = false;
  const connecting = client.connect().catch((err: unknown) => report(err));
  return {
    async get(key) {
      if (closed || !client.isReady) return undefined;
      try {
        const v = await client.get(key);
        return typeof v === 'string' ? v : undefined;
      } catch (err) {
        report(err);
        return undefined;
      }
    },
    set(key, value, ttlSeconds) {
      if (closed || !client.isReady) return;
      client.set(key, value, { expiration: { type: 'EX', value: Math.max(1, Math.round(ttlSeconds)) } }).catch(report);
    },
    async close() {
      closed = true;
      await connecting;
      try {
        client.destroy();
      } catch {
        // already gone
      }
    },
  };
}
