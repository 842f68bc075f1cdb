/**
 * The filter socket's life cycle in Courier's socket directories (courier-filter-protocol.md §1.5).
 *
 * Creation: refuse if a live filter already answers on DIR/NAME; remove NAME from the other
 * directory; bind DIR/.NAME (submit and courierfilter skip dot-names, so the socket appears only
 * when ready) and listen; publish(): chmod 0660 (submit for local mail runs with group courier)
 * and rename to NAME, once something accepts on it.
 * Fails with an AvError EALREADY_RUNNING (origin config), or an Error with the errno of the failing step.
 */
import { chmodSync, renameSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { AvError } from '../errors.js';

export interface FilterSocket {
  /** Listening on DIR/.NAME from the start; its handle is what the workers accept on. */
  readonly server: Server;
  /** The final path, DIR/NAME. */
  readonly path: string;
  /** Puts the socket in place: chmod 0660, rename DIR/.NAME to DIR/NAME. */
  publish(): void;
  /** Stop accepting and remove DIR/NAME (Node only knows the bound .NAME path). */
  close(): Promise<void>;
}

/** Backlog: submit retries a full backlog only 6 times a second apart, so make it deep. */
const LISTEN_BACKLOG = 511;
/** How long to wait for an existing socket to answer before calling it stale. */
const PROBE_TIMEOUT_MS = 1000;

/**
 * Binds DIR/.NAME and listens (it is not yet where Courier looks: publish() puts it there).
 * `onConnection` serves what this process itself accepts on it; the master's server only does
 * so when no worker ever took the socket over.
 */
export async function bindFilterSocket(
  dir: string, otherDir: string, name: string, onConnection: (s: Socket) => void,
): Promise<FilterSocket> {
  const finalPath = join(dir, name);
  const dotPath = join(dir, `.${name}`);
  if (await answers(finalPath)) {
    throw new AvError('EALREADY_RUNNING', 'config', `${finalPath}: another filter is already listening there`);
  }
  unlinkQuiet(join(otherDir, name));
  unlinkQuiet(dotPath);
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: dotPath, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let published = false;
  let closed = false;
  return {
    server,
    path: finalPath,
    publish: () => {
      if (published) return;
      try {
        chmodSync(dotPath, 0o660);
        renameSync(dotPath, finalPath);
        published = true;
      } catch (err) {
        server.close();
        unlinkQuiet(dotPath);
        throw err;
      }
    },
    close: async () => {
      if (closed) return;
      closed = true;
      unlinkQuiet(published ? finalPath : dotPath);
      // Stops accepting at once; connections in flight stay open to get their replies (the
      // server's close callback would wait for them, so it is not awaited here).
      server.close();
    },
  };
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Not there: that is the state we want.
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const done = (v: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
