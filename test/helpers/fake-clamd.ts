/**
 * Fake clamd servers, ONLY for faults a real clamd will not produce on demand. Everything a
 * real clamd can do is tested against a real clamd (helpers/clamd.ts).
 *
 * Owns: a loopback TCP or unix listener that reads the zINSTREAM framing and misbehaves in one
 * chosen way; and a TCP listener that never accepts (to provoke a connect timeout).
 * Faults:
 *   hang               accepts and reads, never answers
 *   garbage            answers something that is not a clamd reply (NUL-terminated) and closes
 *   close-mid-stream   closes without a reply after the first chunk's bytes arrived
 *   size-limit-early   at the first chunk header answers "INSTREAM size limit exceeded. ERROR"
 *                      and closes at once, while the client is still writing (like clamd)
 *   no-nul-then-close  after the end marker answers "stream: OK" WITHOUT the NUL, then closes
 *   ok-before-end      answers "stream: OK" at the first chunk header and stops reading, so a
 *                      large body cannot be sent completely
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type FakeFault = 'hang' | 'garbage' | 'close-mid-stream' | 'size-limit-early' | 'no-nul-then-close' | 'ok-before-end' | 'ok-then-partial';

export interface FakeClamd {
  /** Address in ClamdOptions.servers form. */
  readonly server: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Payload bytes (inside INSTREAM chunks) received so far, over all connections. */
  readonly payloadBytes: number;
  /** INSTREAM commands begun so far, over all connections (a session carries several). */
  readonly instreams: number;
  stop(): Promise<void>;
}

/** Not a clamd reply in any form. */
export const GARBAGE_REPLY = 'I am not clamd, I am a teapot\0';

export async function startFakeClamd(fault: FakeFault, opts: { transport?: 'tcp' | 'unix' } = {}): Promise<FakeClamd> {
  const sockets = new Set<Socket>();
  let connections = 0;
  let payloadBytes = 0;
  let instreams = 0;
  const server = createServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on('error', () => { /* the client's problem; the test checks the client */ });
    sock.on('close', () => sockets.delete(sock));
    serve(sock, fault, (n) => { payloadBytes += n; }, () => { instreams++; });
  });
  let dir: string | undefined;
  let address: string;
  if (opts.transport === 'unix') {
    dir = await mkdtemp(join(tmpdir(), 'avf-fake-clamd-'));
    const path = join(dir, 'fake.sock');
    await listen(server, { path });
    address = `unix:${path}`;
  } else {
    await listen(server, { host: '127.0.0.1', port: 0 });
    address = `tcp:127.0.0.1:${(server.address() as { port: number }).port}`;
  }
  return {
    server: address,
    get connections() { return connections; },
    get payloadBytes() { return payloadBytes; },
    get instreams() { return instreams; },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Reads the client's request (command, then length-prefixed chunks) and plays the fault; on a
 * zIDSESSION connection, on its first INSTREAM, its replies numbered as clamd numbers them.
 */
function serve(sock: Socket, fault: FakeFault, count: (n: number) => void, begun: () => void): void {
  let state: 'cmd' | 'len' | 'data' | 'done' = 'cmd';
  let session = false;
  let pending: Buffer = Buffer.alloc(0);
  let remaining = 0;

  const reply = (text: string, close: 'end' | 'destroy'): void => {
    state = 'done';
    sock.write(session && text.startsWith('stream:') ? `1: ${text}` : text);
    if (close === 'end') sock.end();
    else sock.destroy(); // like clamd's close(): unread input makes the kernel reset the connection
  };
  const onHeader = (): boolean => {
    if (fault === 'size-limit-early') { reply('INSTREAM size limit exceeded. ERROR\0', 'destroy'); return false; }
    if (fault === 'ok-before-end') {
      // Stop reading too: the client shares our event loop and could otherwise finish sending
      // before this reply reaches it, which would make the OK legitimate.
      reply('stream: OK\0', 'end');
      sock.pause();
      return false;
    }
    return true;
  };
  const onEnd = (): void => {
    // a session's stream ended with nothing to play: the next command follows (hang)
    state = session && fault === 'hang' ? 'cmd' : 'done';
    if (fault === 'garbage') reply(GARBAGE_REPLY, 'end');
    else if (fault === 'no-nul-then-close') reply('stream: OK', 'end');
    // a complete OK, then the start of another line cut off: the reply as a whole is broken
    else if (fault === 'ok-then-partial') reply('stream: OK\0stream: Evil.Virus FOU', 'end');
    else if (fault === 'close-mid-stream') sock.destroy();
    // hang: nothing, ever; ok-before-end: already answered
  };

  sock.on('data', (d: Buffer) => {
    let buf: Buffer = pending.length ? Buffer.concat([pending, d]) : d;
    pending = Buffer.alloc(0);
    while (buf.length > 0 && state !== 'done') {
      if (state === 'cmd') {
        const nul = buf.indexOf(0);
        if (nul < 0) { pending = buf; return; }
        const cmd = buf.subarray(0, nul).toString('latin1');
        buf = buf.subarray(nul + 1);
        if (cmd === 'zIDSESSION' && !session) { session = true; continue; }
        if (cmd !== 'zINSTREAM') { onEnd(); return; }
        begun();
        state = 'len';
      } else if (state === 'len') {
        if (buf.length < 4) { pending = buf; return; }
        remaining = buf.readUInt32BE(0);
        buf = buf.subarray(4);
        if (remaining === 0) {
          onEnd();
          if ((state as string) === 'cmd') continue; // a session: the next command follows
          return;
        }
        if (!onHeader()) return;
        state = 'data';
      } else {
        const take = Math.min(remaining, buf.length);
        count(take);
        remaining -= take;
        buf = buf.subarray(take);
        if (remaining === 0) {
          state = 'len';
          if (fault === 'close-mid-stream') { state = 'done'; sock.destroy(); return; }
        }
      }
    }
  });
}

function listen(server: Server, where: { path: string } | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => { server.off('error', reject); resolve(); });
  });
}

export interface Unaccepting {
  /** Address in ClamdOptions.servers form; a connect to it hangs (the accept queue is full). */
  readonly server: string;
  stop(): Promise<void>;
}

/**
 * A loopback TCP port whose accept queue is full, so the next connect hangs in SYN retries.
 * Node's net.Server always accepts, so the listener is a tiny perl process (perl-base is part
 * of every Debian system) with backlog 0 that never calls accept(); we fill its queue.
 */
export async function startUnacceptingListener(): Promise<Unaccepting> {
  const script = 'use IO::Socket::INET; $|=1; my $s = IO::Socket::INET->new(Listen => 0, LocalAddr => "127.0.0.1", LocalPort => 0, Proto => "tcp") or die "listen: $!"; print $s->sockport, "\\n"; <STDIN>;';
  const child: ChildProcess = spawn('perl', ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`perl listener exited (${code})`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
  });
  // Fill the accept queue; once a connect does not complete quickly, the queue is full.
  const fillers: Socket[] = [];
  for (let i = 0; i < 16; i++) {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => { /* dropped SYNs end in errors when we stop */ });
    fillers.push(s);
    const up = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 200);
      s.once('connect', () => { clearTimeout(t); resolve(true); });
    });
    if (!up) break;
  }
  return {
    server: `tcp:127.0.0.1:${port}`,
    async stop() {
      for (const s of fillers) s.destroy();
      child.removeAllListeners('exit');
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin!.end();
      child.kill('SIGTERM');
      await gone;
    },
  };
}
