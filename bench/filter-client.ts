/**
 * The load clients of the "filter alone" and "memory" sections.
 *
 * courierfilterRequest(): what Courier's submit does with a filter socket: connect, write the
 * data file path, the control file path(s) and an empty line, read the reply until the filter
 * closes. clamdInstream(): clamd alone, `zINSTREAM` of a whole file in 64 KiB chunks, reply read
 * to its NUL. Both resolve with the reply and the ms from the first byte written to the reply
 * (connect excluded), and reject on a socket error or when `timeoutMs` passes.
 */
import { createReadStream } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';

export interface Exchange {
  reply: string;
  latencyMs: number;
}

function withSocket(path: string, timeoutMs: number, talk: (s: Socket, t0: () => void) => Promise<void>, done: (buf: Buffer) => boolean): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    const parts: Buffer[] = [];
    let t0 = 0;
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve({ reply: Buffer.concat(parts).toString('latin1'), latencyMs: performance.now() - t0 });
    };
    const timer = setTimeout(() => finish(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
    s.on('error', (e) => finish(e));
    s.on('data', (d: Buffer) => {
      parts.push(d);
      if (done(Buffer.concat(parts))) finish();
    });
    s.on('close', () => finish(parts.length ? undefined : new Error('closed without a reply')));
    s.once('connect', () => {
      talk(s, () => { t0 = performance.now(); }).catch((e: Error) => finish(e));
    });
  });
}

export function courierfilterRequest(socketPath: string, dataPath: string, controlPaths: readonly string[], timeoutMs: number): Promise<Exchange> {
  return withSocket(socketPath, timeoutMs, async (s, start) => {
    start();
    s.write(`${dataPath}\n${controlPaths.join('\n')}\n\n`);
  }, () => false); // the reply ends when the filter closes the connection
}

export function clamdInstream(socketPath: string, file: string, timeoutMs: number): Promise<Exchange> {
  return withSocket(socketPath, timeoutMs, async (s, start) => {
    start();
    s.write('zINSTREAM\0');
    for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 })) {
      const len = Buffer.alloc(4);
      len.writeUInt32BE((chunk as Buffer).length);
      if (!s.write(Buffer.concat([len, chunk as Buffer]))) await once(s, 'drain');
    }
    s.write(Buffer.alloc(4));
  }, (buf) => buf.includes(0));
}
