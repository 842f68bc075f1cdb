/**
 * The soak's fault injector: two lanes of faults at seeded random moments while traffic flows.
 *
 *   clamd lane   the real clamd SIGKILLed (then restarted), SIGSTOPped (then SIGCONTed), or,
 *                through the fault proxy (clamd-proxy.ts), slowed, answering garbage, closing
 *                mid-stream, hanging, refusing over its stream limit
 *   daemon lane  a worker process SIGKILLed; tmpdir full (a small tmpfs filled up) or
 *                unwritable (mode 0500: meaningful because the daemon is not root); control
 *                files written read-only for a while; a reload (SIGHUP) or a storm of them
 *
 * Each fault is held for a while, then undone; stop() undoes the one in progress and resolves
 * once every lane is idle and clamd, the proxy and tmpdir are as they were.
 * Owns: the lanes, the per-kind counts, the tmpfs filler file. Inputs: the world (clamd, proxy,
 * master pid, tmpdir, a reload function), a seed. Outputs: counts. Fails with: the error of
 * an undo that cannot be done (clamd that does not come back): the soak must stop then.
 */
import { chmodSync, closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { RunningClamd } from './clamd.js';
import type { ClamdProxy, ProxyMode } from './clamd-proxy.js';
import { workerPids } from './daemon-env.js';
import { between, pick, prng } from './soak-mix.js';

export const CLAMD_FAULTS = ['clamd-kill', 'clamd-stop', 'clamd-slow', 'clamd-garbage', 'clamd-close-mid-stream', 'clamd-hang', 'clamd-size-limit'] as const;
export const DAEMON_FAULTS = ['worker-kill', 'tmp-full', 'tmp-unwritable', 'control-readonly', 'reload', 'reload-storm'] as const;
export type FaultKind = (typeof CLAMD_FAULTS)[number] | (typeof DAEMON_FAULTS)[number];

export interface FaultWorld {
  readonly clamd: RunningClamd;
  readonly proxy: ClamdProxy;
  readonly masterPid: number;
  /** The daemon's tmpdir: a tmpfs of its own (mountTmpfs). */
  readonly tmpdir: string;
  /** Rewrites the config (the test decides what changes) before a reload's SIGHUP. */
  readonly rewriteConfig: (rng: () => number) => void;
  /** Read by the traffic: while true, control files are written mode 0444. */
  readonly controls: { readOnly: boolean };
}

const PROXY_FAULTS: Partial<Record<FaultKind, ProxyMode>> = {
  'clamd-slow': 'delay', 'clamd-garbage': 'garbage', 'clamd-close-mid-stream': 'close-mid-stream',
  'clamd-hang': 'hang', 'clamd-size-limit': 'size-limit',
};

export class FaultInjector {
  readonly counts = new Map<FaultKind, number>();
  /** The fault injected last (for a failure message). */
  last: FaultKind | undefined;
  /** Reloads sent (a storm counts each signal). */
  signals = 0;
  /** When workers were killed (epoch ms): the connections they held closed unanswered then. */
  readonly workerKills: number[] = [];
  private stopping = false;
  private wake: Array<() => void> = [];
  private lanes: Promise<void>[] = [];

  constructor(private readonly w: FaultWorld, private readonly seed: number) {}

  start(): void {
    this.lanes = [
      this.lane(prng(this.seed * 7 + 1), CLAMD_FAULTS, [500, 3000], [200, 1500], 0),
      this.lane(prng(this.seed * 7 + 2), DAEMON_FAULTS, [500, 3000], [300, 2000], 1),
    ];
  }

  /** Undoes what is in progress and waits for both lanes. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const f of [...this.wake]) f();
    await Promise.all(this.lanes);
    if (this.failure) throw this.failure;
  }

  /** An undo that failed (clamd did not come back): the lanes have stopped. */
  failure: Error | undefined;

  get total(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0);
  }

  /** Waits `ms`, or less when stop() is called. */
  private hold(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        const i = this.wake.indexOf(done);
        if (i >= 0) this.wake.splice(i, 1);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wake.push(done);
    });
  }

  /** Rounds completed by the slower lane: every kind has been injected at least this often. */
  get rounds(): number {
    return Math.min(...this.laneRounds);
  }
  private readonly laneRounds = [0, 0];

  /** Rounds of every kind of the lane in a seeded shuffled order, so each kind comes up. */
  private async lane(rng: () => number, kinds: readonly FaultKind[], gap: [number, number], held: [number, number], n: number): Promise<void> {
    try {
      while (!this.stopping) {
        const round = [...kinds];
        for (let i = round.length - 1; i > 0; i--) {
          const j = Math.floor(rng() * (i + 1));
          [round[i], round[j]] = [round[j]!, round[i]!];
        }
        for (const kind of round) {
          await this.hold(between(rng, ...gap));
          if (this.stopping) return;
          if (await this.inject(kind, rng, between(rng, ...held))) this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
        }
        this.laneRounds[n]!++;
      }
    } catch (err) {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
      this.stopping = true;
      for (const f of [...this.wake]) f();
    }
  }

  /** One fault, held for `ms`, then undone. False when there was nothing to do it to. */
  private async inject(kind: FaultKind, rng: () => number, ms: number): Promise<boolean> {
    const { clamd, proxy, tmpdir } = this.w;
    this.last = kind;
    const mode = PROXY_FAULTS[kind];
    if (mode) {
      if (mode === 'delay') proxy.delayMs = between(rng, 200, 3000);
      if (mode === 'size-limit') proxy.sizeLimit = between(rng, 64, 4096);
      proxy.mode = mode;
      await this.hold(ms);
      proxy.mode = 'pass';
      return true;
    }
    switch (kind) {
      case 'clamd-kill':
        process.kill(clamd.pid, 'SIGKILL');
        await this.hold(ms);
        await clamd.restart();
        return true;
      case 'clamd-stop':
        process.kill(clamd.pid, 'SIGSTOP');
        await this.hold(ms);
        process.kill(clamd.pid, 'SIGCONT');
        return true;
      case 'worker-kill': {
        const pids = workerPids(this.w.masterPid);
        if (pids.length === 0) return false;
        try {
          process.kill(pick(rng, pids), 'SIGKILL');
          this.workerKills.push(Date.now());
        } catch {
          return false; // it exited by itself (a retiring worker)
        }
        return true;
      }
      case 'tmp-full': {
        const filler = join(tmpdir, '.soak-filler');
        fill(filler);
        await this.hold(ms);
        rmSync(filler, { force: true });
        return true;
      }
      case 'tmp-unwritable':
        chmodSync(tmpdir, 0o500);
        await this.hold(ms);
        chmodSync(tmpdir, 0o700);
        return true;
      case 'control-readonly':
        this.w.controls.readOnly = true;
        await this.hold(ms);
        this.w.controls.readOnly = false;
        return true;
      case 'reload':
        this.w.rewriteConfig(rng);
        process.kill(this.w.masterPid, 'SIGHUP');
        this.signals++;
        return true;
      case 'reload-storm': {
        this.w.rewriteConfig(rng);
        for (let n = between(rng, 5, 20); n > 0 && !this.stopping; n--) {
          process.kill(this.w.masterPid, 'SIGHUP');
          this.signals++;
          await this.hold(between(rng, 10, 50));
        }
        return true;
      }
      default:
        throw new Error(`unknown fault ${kind}`);
    }
  }
}

/** Writes zeros to `path` until the file system is full (root is not held back by tmpfs). */
function fill(path: string): void {
  const fd = openSync(path, 'w', 0o600);
  const block = Buffer.alloc(1024 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

/**
 * Mounts a tmpfs of `sizeBytes` at `dir`, mode 0700, owned by `owner`. Throws with mount's
 * own words when it cannot (the soak needs root, as CI has).
 */
export function mountTmpfs(dir: string, sizeBytes: number, owner: { uid: number; gid: number }): void {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700,uid=${owner.uid},gid=${owner.gid}`, 'avfilter-soak', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`cannot mount a tmpfs on ${dir} for the tmpdir-full fault (the soak needs root, as CI runs): ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  }
}

export function unmount(dir: string): void {
  if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
}
