/**
 * Scan slots: at most `size` requests of this worker scan at once; the others wait in order.
 *
 * Owns: the count of slots in use and the queue of waiters. A waiter whose signal aborts
 * leaves the queue WITHOUT a slot (the defect this replaces counted an aborted waiter as
 * holding one and never gave it back: after `size` timeouts every later message waited for a
 * slot that never came). Inputs: AbortSignals. Outputs: acquire() → true (a slot is held:
 * release it exactly once) or false (aborted while waiting: nothing to release).
 */
export class Slots {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`Slots: size must be a positive integer, got ${size}`);
  }

  get inUse(): number {
    return this.active;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.active < this.size) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const go = (): void => {
        signal.removeEventListener('abort', cancel);
        this.active++;
        resolve(true);
      };
      const cancel = (): void => {
        const i = this.waiters.indexOf(go);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      };
      this.waiters.push(go);
      signal.addEventListener('abort', cancel, { once: true });
    });
  }

  release(): void {
    if (this.active <= 0) throw new Error('Slots.release without a slot held');
    this.active--;
    const next = this.waiters.shift();
    if (next) next();
  }
}
