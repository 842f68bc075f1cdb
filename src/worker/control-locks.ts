/**
 * One request at a time per control file, across every worker process. Courier never names a
 * control file in two requests at once, but any client of the socket can; two workers marking
 * the same file would double its drop records. Workers accept their connections themselves, so
 * no process sees every request: the lock is a file.
 *
 * A lock is a symbolic link in the private tmpdir (0700) named `lock-` and a digest of the
 * control path, whose target is the holder's pid (nothing stays in tmpdir while no request runs): symlink() either creates it or fails with
 * EEXIST, in one system call, and the holder is readable without opening anything. A lock
 * whose holder is dead (a killed worker) is taken over; the master also removes a dead
 * worker's locks when it exits (master/tmp-sweep.ts). Paths are checked normalised in the
 * worker, so one file has one spelling inside spool_dirs.
 *
 * Synchronous on purpose: two or three metadata calls on a local private directory, once per
 * request; the thread pool hand-off of the async calls cost more than the calls.
 *
 * Owns: the lock directory and its links. Inputs: a request's control paths. Outputs: a handle to
 * release, or undefined when one of them is held by another request. Fails with the fs error of
 * a lock directory that cannot be made or written (the caller answers 451).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

/** Link names: this and the SHA-1 of the control path (a path may be long and hold any byte). */
export const LOCK_PREFIX = 'lock-';

export class ControlLocks {
  private readonly dir: string;
  private readonly me = String(process.pid);
  /** The links this process holds now. */
  private readonly held = new Set<string>();
  /**
   * Links released whose removal failed (tmpdir not writable for a moment): removed at the next
   * call. Until then they name this live process, so they are recognised as leftovers, not held.
   */
  private readonly leftBehind = new Set<string>();

  constructor(tmpdir: string) {
    this.dir = tmpdir;
  }

  take(paths: readonly string[]): readonly string[] | undefined {
    this.retryLeftBehind();
    const taken: string[] = [];
    for (const p of new Set(paths)) {
      const link = join(this.dir, LOCK_PREFIX + createHash('sha1').update(p).digest('hex'));
      if (!this.lock(link)) {
        this.release(taken);
        return undefined;
      }
      taken.push(link);
    }
    return taken;
  }

  release(handle: readonly string[]): void {
    for (const link of handle) {
      this.held.delete(link);
      this.unlink(link);
    }
    this.retryLeftBehind();
  }

  private unlink(link: string): void {
    try {
      unlinkSync(link);
      this.leftBehind.delete(link);
    } catch (err) {
      // ENOENT: gone already (swept); anything else: try again later
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.leftBehind.delete(link);
      else this.leftBehind.add(link);
    }
  }

  private retryLeftBehind(): void {
    for (const link of [...this.leftBehind]) if (!this.held.has(link)) this.unlink(link);
  }

  private lock(link: string): boolean {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        symlinkSync(this.me, link);
        this.held.add(link);
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          // tmpdir was removed (a cleanup job): made again, 0700, as the daemon made it at start
          // (only tmpdir itself: a missing parent stays an error)
          mkdirSync(this.dir, { mode: 0o700 });
          continue;
        }
        if (code !== 'EEXIST') throw err;
      }
      let holder: string;
      try {
        holder = readlinkSync(link);
      } catch {
        continue; // released between the two calls: try again
      }
      if (holder === this.me) {
        if (this.held.has(link)) return false; // another request of this process holds it
        // a leftover of ours that could not be removed: take it as it is
        this.leftBehind.delete(link);
        this.held.add(link);
        return true;
      }
      if (alive(Number(holder))) return false;
      try {
        unlinkSync(link); // its holder died: take it over
      } catch {
        // someone else took it over first; the next round sees theirs
      }
    }
    return false;
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
