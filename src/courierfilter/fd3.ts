/**
 * The fd 3 handshake with courierfilter (courier-filter-protocol.md §1.4).
 *
 * courierfilter hands every filter the write end of a pipe as fd 3 and waits until all filters
 * have closed it. "fd 3 is open" proves nothing in Node (its event loop may own fd 3 when nothing
 * was inherited), so we ask what fd 3 *is*: only a FIFO counts as courierfilter's pipe.
 */
import { closeSync, fstatSync } from 'node:fs';

const COURIERFILTER_FD = 3;

export function startedByCourierfilter(): boolean {
  try {
    return fstatSync(COURIERFILTER_FD).isFIFO();
  } catch {
    return false;
  }
}

/**
 * Close fd 3 once the socket is in place, and before any child process is spawned (a child
 * would inherit it and keep `courierfilter start` waiting). Only a FIFO is closed: anything else
 * on fd 3 belongs to Node itself.
 */
export function releaseCourierfilter(): boolean {
  if (!startedByCourierfilter()) return false;
  closeSync(COURIERFILTER_FD);
  return true;
}
