/**
 * What a process holds, read from /proc: open file descriptors, resident memory; and how many
 * files lie under a directory. For "returns to its baseline" checks after a soak.
 * Fails with nothing: a process that is gone reads as undefined.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export function fdCount(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/** What the descriptors point at (for a failure message: which kind leaked). */
export function fdTargets(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/\[\d+\]$/, '[]');
      } catch {
        return '?';
      }
    }).sort();
  } catch {
    return [];
  }
}

export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Files and directories under `dir` (not `dir` itself), except the names in `skip`. */
export function entriesUnder(dir: string, skip: readonly string[] = []): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      if (skip.includes(n)) continue;
      const p = join(d, n);
      out.push(p);
      walk(p);
    }
  };
  walk(dir);
  return out;
}
