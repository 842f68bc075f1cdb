/**
 * A bound on how many things an engine does at once (ICAP connections, scanner processes),
 * shared by the engines that talk to something with a limit of its own.
 *
 * Owns: the count, the FIFO of waiters, a waiter giving up when its signal aborts.
 * Inputs: the bound (changeable: the ICAP server says its Max-Connections later).
 * Outputs: acquire() resolves with a release function, or undefined when the signal aborted
 * first. Never rejects; release is idempotent.
 */
export class Slots {
  private used = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(private limit: number) {}

  resize(limit: number): void {
    this.limit = Math.max(1, limit);
    this.wake();
  }

  acquire(signal: AbortSignal): Promise<(() => void) | undefined> {
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        this.used++;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.used--;
          this.wake();
        });
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(undefined);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(grant);
      this.wake();
    });
  }

  private wake(): void {
    while (this.used < this.limit && this.waiters.length > 0) this.waiters.shift()!();
  }
}
