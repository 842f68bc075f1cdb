/**
 * One request at a time per control file. Courier never names a control file in two requests
 * at once, but any client of the socket can; two workers marking the same file would double
 * its drop records. The master sees every request, so it keeps the set of control paths in
 * use across all workers (paths are checked normalised in the worker, so one file has one
 * spelling inside spool_dirs).
 *
 * Owns: the set of control paths held. Inputs: a request's control paths. Outputs: a handle to
 * release, or undefined when one of them is held by another request. Fails with nothing.
 */
export class ControlLocks {
  private readonly held = new Set<string>();

  take(paths: readonly string[]): readonly string[] | undefined {
    const distinct = [...new Set(paths)];
    if (distinct.some((p) => this.held.has(p))) return undefined;
    for (const p of distinct) this.held.add(p);
    return distinct;
  }

  release(handle: readonly string[]): void {
    for (const p of handle) this.held.delete(p);
  }

  get size(): number {
    return this.held.size;
  }
}
