/**
 * The filter socket's life cycle in Courier's socket directories (courier-filter-protocol.md §1.5).
 *
 * Creation: refuse if a live filter already answers on DIR/NAME; remove NAME from the other
 * directory; bind DIR/.NAME (submit and courierfilter skip dot-names, so the socket appears only
 * when ready); chmod 0660 (submit for local mail runs with group courier); rename to NAME.
 * Fails with an Error whose code is EALREADY_RUNNING or the errno of the failing step.
 */
import { chmodSync, renameSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

export interface FilterSocket {
  readonly server: Server;
  /** The final path, DIR/NAME. */
  readonly path: string;
  /** Stop accepting and remove DIR/NAME (Node only knows the bound .NAME path). */
  close(): Promise<void>;
}

/** Backlog: submit retries a full backlog only 6 times a second apart, so make it deep. */
const LISTEN_BACKLOG = 511;
/** How long to wait for an existing socket to answer before calling it stale. */
const PROBE_TIMEOUT_MS = 1000;

export async function createFilterSocket(
  dir: string, otherDir: string, name: string, onConnection: (s: Socket) => void,
): Promise<FilterSocket> {
  const finalPath = join(dir, name);
  const dotPath = join(dir, `.${name}`);
  if (await answers(finalPath)) {
    throw Object.assign(new Error(`${finalPath}: another filter is already listening there`), { code: 'EALREADY_RUNNING' });
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
  try {
    chmodSync(dotPath, 0o660);
    renameSync(dotPath, finalPath);
  } catch (err) {
    server.close();
    unlinkQuiet(dotPath);
    throw err;
  }
  let closed = false;
  return {
    server,
    path: finalPath,
    close: async () => {
      if (closed) return;
      closed = true;
      unlinkQuiet(finalPath);
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
