/**
 * One request on a filter socket as Courier's submit makes it, with everything that can happen
 * told apart: the reply bytes up to the server's close, a connection that could not be made,
 * and a server that neither answered nor closed within the client's patience (a hang).
 * The reply bytes are checked with the project's own parser (exactly one reply, nothing after).
 * Fails with nothing: every outcome is a value.
 */
import { connect } from 'node:net';
import { parseReply } from '../../src/courierfilter/reply.js';

export interface Exchange {
  /** closed: the server closed (with or without a reply); hang: the client gave up. */
  readonly end: 'closed' | 'hang' | 'connect-error';
  readonly bytes: Buffer;
  /** The connect error's code. */
  readonly error?: string | undefined;
  readonly ms: number;
}

export function exchange(socketPath: string, request: string | Buffer, timeoutMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const chunks: Buffer[] = [];
    let connected = false;
    let done = false;
    const s = connect({ path: socketPath });
    const finish = (end: Exchange['end'], error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ end, bytes: Buffer.concat(chunks), error, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish('hang'), timeoutMs);
    s.on('connect', () => {
      connected = true;
      s.write(request);
    });
    s.on('data', (d: Buffer) => chunks.push(d));
    // after the connect, a reset or EPIPE is the server closing on us: 'close' follows
    s.on('error', (e: NodeJS.ErrnoException) => { if (!connected) finish('connect-error', e.code ?? e.message); });
    s.on('close', () => finish('closed'));
  });
}

export type ReplyReading =
  | { readonly kind: 'reply'; readonly code: number; readonly text: string }
  | { readonly kind: 'no-reply' }
  | { readonly kind: 'bad'; readonly why: string };

/** What the bytes of a closed exchange were: one whole reply, nothing, or something else. */
export function readReply(bytes: Buffer): ReplyReading {
  if (bytes.length === 0) return { kind: 'no-reply' };
  const r = parseReply(bytes, true);
  if (r.state !== 'done') return { kind: 'bad', why: r.state === 'error' ? `${r.code}: ${r.message}` : 'incomplete' };
  if (r.length !== bytes.length) return { kind: 'bad', why: `${bytes.length - r.length} bytes after the reply` };
  return { kind: 'reply', code: r.code, text: r.lines.join('\n') };
}
