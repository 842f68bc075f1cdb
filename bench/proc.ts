/**
 * What the benchmark reads from /proc about processes it treats as black boxes: the process
 * tree under a pid, CPU time of a tree, resident memory of a tree.
 *
 * CPU of a tree = the sum over its live processes of utime + stime + cutime + cstime (all threads
 * included; cutime/cstime hold the children a process has reaped, so a worker that exits and is
 * waited for keeps counting). The benchmark takes the difference of two readings. Memory: VmRSS
 * and VmHWM from /proc/PID/status and Pss from /proc/PID/smaps_rollup, summed over the tree and
 * kept per process (the root, e.g. avfilter's master, apart from its descendants, the workers).
 *
 * Inputs: pids. Outputs: plain numbers (milliseconds, KiB). A process that vanishes between two
 * reads counts as absent; nothing here throws for a missing pid.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second of utime/stime (USER_HZ); 100 on every Linux seen, asked once. */
export const CLK_TCK = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

export interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  state: string;
  /** utime + stime, ticks */
  selfTicks: number;
  /** cutime + cstime (reaped children), ticks */
  childTicks: number;
}

/** /proc/PID/stat parsed, or undefined when the process is gone. */
export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // comm may hold spaces and parentheses: the fields after it start after the LAST ')'
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state); field n is f[n - 3]
  const n = (i: number): number => Number(f[i - 3]);
  return { pid, ppid: n(4), comm, state: f[0]!, selfTicks: n(14) + n(15), childTicks: n(16) + n(17) };
}

/** Every process now: pid -> stat. */
export function allProcesses(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st) out.set(st.pid, st);
  }
  return out;
}

/**
 * The roots and all their descendants, except the subtrees rooted at `exclude` (e.g. filters
 * under courierfilter, counted as the filter's, not Courier's).
 */
export function treePids(roots: readonly number[], exclude: ReadonlySet<number> = new Set(), procs = allProcesses()): number[] {
  const children = new Map<number, number[]>();
  for (const p of procs.values()) {
    const list = children.get(p.ppid);
    if (list) list.push(p.pid);
    else children.set(p.ppid, [p.pid]);
  }
  const out: number[] = [];
  const seen = new Set<number>();
  const stack = roots.filter((r) => procs.has(r) && !exclude.has(r));
  while (stack.length) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    out.push(pid);
    for (const c of children.get(pid) ?? []) if (!exclude.has(c)) stack.push(c);
  }
  return out;
}

/**
 * CPU milliseconds of the trees (see the module header). With `exclude`, the reaped-children
 * time of a process whose children include an excluded pid is left out too: it would hold an
 * excluded process's time once that one exits.
 */
export function treeCpuMs(roots: readonly number[], exclude: ReadonlySet<number> = new Set()): number {
  const procs = allProcesses();
  let ticks = 0;
  for (const pid of treePids(roots, exclude, procs)) {
    const st = procs.get(pid)!;
    const parentOfExcluded = exclude.size > 0 && [...exclude].some((e) => procs.get(e)?.ppid === pid);
    ticks += st.selfTicks + (parentOfExcluded ? 0 : st.childTicks);
  }
  return (ticks * 1000) / CLK_TCK;
}

/** One process of a tree, KiB. */
export interface ProcMemory {
  pid: number;
  /** whether it is one of the roots given (avfilter's master), not a descendant */
  root: boolean;
  rssKb: number;
  pssKb: number;
  hwmKb: number;
}

export interface TreeMemory {
  /** sum of VmRSS over the tree, KiB */
  rssKb: number;
  /** sum of VmHWM (each process's own peak) over the tree, KiB */
  hwmSumKb: number;
  /** the largest single VmHWM, KiB */
  hwmMaxKb: number;
  /**
   * sum of Pss (proportional set size, /proc/PID/smaps_rollup) over the tree, KiB: pages the
   * processes share (node's own binary and libraries, mapped by master and workers alike) are
   * counted once, split between them, where the RSS sum counts them once per process
   */
  pssKb: number;
  processes: number;
  perProcess: ProcMemory[];
}

function statusKb(text: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

export function treeMemory(roots: readonly number[]): TreeMemory {
  const out: TreeMemory = { rssKb: 0, hwmSumKb: 0, hwmMaxKb: 0, pssKb: 0, processes: 0, perProcess: [] };
  for (const pid of treePids(roots)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/status`, 'latin1');
    } catch {
      continue;
    }
    const hwm = statusKb(text, 'VmHWM');
    const rss = statusKb(text, 'VmRSS');
    let pss = 0;
    try {
      pss = statusKb(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'), 'Pss');
    } catch {
      // gone, or no smaps_rollup (kernel < 4.14): the RSS sum stands
    }
    out.rssKb += rss;
    out.pssKb += pss;
    out.hwmSumKb += hwm;
    out.hwmMaxKb = Math.max(out.hwmMaxKb, hwm);
    out.perProcess.push({ pid, root: roots.includes(pid), rssKb: rss, pssKb: pss, hwmKb: hwm });
    out.processes++;
  }
  return out;
}

export interface MemorySamples {
  /** peaks of the sums over the tree */
  peakRssKb: number;
  peakPssKb: number;
  /** the largest RSS / PSS any one non-root process (a worker) had in a sample */
  peakWorkerRssKb: number;
  peakWorkerPssKb: number;
  /** the reading taken at stop, while the processes still live (VmHWM) */
  last: TreeMemory;
  samples: number;
}

/** Samples treeMemory() every `intervalMs` until stop(); returns the peaks (see MemorySamples). */
export function sampleMemory(roots: () => readonly number[], intervalMs: number): { stop(): MemorySamples } {
  let peakRssKb = 0;
  let peakPssKb = 0;
  let peakWorkerRssKb = 0;
  let peakWorkerPssKb = 0;
  let samples = 0;
  const take = (): TreeMemory => {
    const m = treeMemory(roots());
    peakRssKb = Math.max(peakRssKb, m.rssKb);
    peakPssKb = Math.max(peakPssKb, m.pssKb);
    for (const p of m.perProcess) {
      if (p.root) continue;
      peakWorkerRssKb = Math.max(peakWorkerRssKb, p.rssKb);
      peakWorkerPssKb = Math.max(peakWorkerPssKb, p.pssKb);
    }
    samples++;
    return m;
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      const last = take();
      return { peakRssKb, peakPssKb, peakWorkerRssKb, peakWorkerPssKb, last, samples };
    },
  };
}

/** The pid in a pid file, when that process is alive. */
export function pidFromFile(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return pid > 0 && readStat(pid) !== undefined ? pid : undefined;
  } catch {
    return undefined;
  }
}
