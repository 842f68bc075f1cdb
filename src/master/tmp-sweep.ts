/**
 * What dead workers left in tmpdir. A worker's temporary files (spilled MIME parts, the copy a
 * "pass" header is written through) live in directories named after its pid
 * (`avfilter-mime-<pid>-XXXXXX`, `hdr-<pid>-XXXXXX`, the command engine's `cmd-<pid>-XXXXXX`, action.handler's `handler-<pid>-XXXXXX`) and are removed when its request ends; a
 * worker that is killed (SIGKILL, an overdue kill, a crash) never gets there, and its files
 * stayed in tmpdir for good — a fault soak with worker kills left one directory per kill, and
 * enough of them fill tmpdir, after which every large message is answered 451.
 *
 * Control-file locks (worker/control-locks.ts: `lock-*` links naming their holder's pid) of a
 * dead worker are removed the same way.
 *
 * Owns: removing the directories and the locks of every pid that is not alive. The master sweeps at start
 * (what the workers of a master that was killed left) and whenever a worker exits — every dead
 * pid each time, so a sweep that failed (tmpdir not writable at that moment) is retried at the
 * next one. Directories of a live process (a concurrent `avfilter -t`) are never touched.
 * Inputs: tmpdir, a pid. Outputs: how many directories were removed. Fails with nothing: what
 * cannot be removed is left for the next sweep.
 */
import { readdir, readlink, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LOCK_PREFIX } from '../worker/control-locks.js';

const OWNED = /^(?:avfilter-mime|hdr|cmd|handler)-(\d+)-/;

export async function sweepStale(tmpdir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(tmpdir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const m = OWNED.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    try {
      await rm(join(tmpdir, name), { recursive: true, force: true });
      removed++;
    } catch {
      // left for the next sweep
    }
  }
  return removed + (await sweepLocks(tmpdir, names.filter((n) => n.startsWith(LOCK_PREFIX))));
}

async function sweepLocks(dir: string, names: readonly string[]): Promise<number> {
  let removed = 0;
  for (const name of names) {
    try {
      const holder = Number(await readlink(join(dir, name)));
      if (alive(holder)) continue;
      await unlink(join(dir, name));
      removed++;
    } catch {
      // released meanwhile, or left for the next sweep
    }
  }
  return removed;
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
