/**
 * Memory given back once the daemon is idle: a fresh avfilter --foreground (embedded engine,
 * default limits) gets a burst of messages at once (e.g. 8 or 16 messages of 30 MB, two zip
 * bombs of 1 GiB unpacked), and from the last reply on, the RSS and PSS of its whole tree
 * (master and workers, /proc/PID/status and /proc/PID/smaps_rollup) are read every second for
 * the observation window.
 *
 * Target: the tree's RSS sum ≤ IDLE_TARGET_MIB within IDLE_WITHIN_S of the last reply, and
 * staying there: met when every reading from IDLE_WITHIN_S to the end of the window is at or
 * below it. "Back under at" = the first reading from which every later one is under.
 *
 * Inputs: the scenario, the run's clamd socket (unused by the embedded engine), a work
 * directory. Output: IdleResult. A reply that is not what the message must get (2xx for clean
 * mail, anything but 2xx for a bomb) is returned as a problem; avfilter failing to start throws.
 */
import { startAvfilter } from './avfilter-daemon.js';
import { courierfilterRequest } from './filter-client.js';
import { sampleMemory, treeMemory } from './proc.js';

export const IDLE_TARGET_MIB = 160;
export const IDLE_WITHIN_S = 30;
// the bursts take a loaded 2-core machine a minute or two; the verdict, not the deadline, matters
const BURST_TIMEOUT_S = 900;
const BURST_SAMPLE_MS = 250;

export interface IdleScenario {
  name: string;
  /** the data files of the burst, all sent at once (one may repeat) */
  files: string[];
  /** a control file per message: avfilter refuses a second request with a control file in use */
  controls: string[];
  /** what every reply must be: clean mail 2xx, a bomb anything but 2xx (a limit is never clean) */
  expect: 'accepted' | 'not accepted';
  /** extra top-level TOML lines */
  top?: string[];
}

export interface IdleReading {
  /** seconds after the last reply */
  t: number;
  rssMiB: number;
  pssMiB: number;
  masterRssMiB: number;
  workersRssMiB: number;
  processes: number;
}

export interface IdleResult {
  name: string;
  /** before the burst, after start-up settled */
  before: IdleReading;
  /** peaks during the burst (sampled every BURST_SAMPLE_MS) */
  burstPeakRssMiB: number;
  burstPeakPssMiB: number;
  burstSeconds: number;
  readings: IdleReading[];
  /** first t from which every reading is ≤ the target, or undefined */
  backUnderAt: number | undefined;
  /** the reading at IDLE_WITHIN_S (the first at or after it) */
  atTarget: IdleReading | undefined;
  met: boolean;
  replies: string[];
  problems: string[];
}

const mib = (kb: number): number => kb / 1024;

function reading(roots: readonly number[], t: number): IdleReading {
  const m = treeMemory(roots);
  return {
    t,
    rssMiB: mib(m.rssKb),
    pssMiB: mib(m.pssKb),
    masterRssMiB: mib(m.perProcess.filter((p) => p.root).reduce((a, p) => a + p.rssKb, 0)),
    workersRssMiB: mib(m.perProcess.filter((p) => !p.root).reduce((a, p) => a + p.rssKb, 0)),
    processes: m.processes,
  };
}

export async function idleReturn(scenario: IdleScenario, windowS: number, log: (s: string) => void): Promise<IdleResult> {
  const av = await startAvfilter({ engine: 'yara', top: [`request_timeout = ${BURST_TIMEOUT_S}`, ...(scenario.top ?? [])] });
  try {
    const roots = (): number[] => {
      const p = av.pid();
      return p === undefined ? [] : [p];
    };
    await new Promise((r) => setTimeout(r, 1000));
    const before = reading(roots(), NaN);
    const sampler = sampleMemory(roots, BURST_SAMPLE_MS);
    const t0 = performance.now();
    const replies = await Promise.all(scenario.files.map(async (f, i) => {
      try {
        return (await courierfilterRequest(av.socketPath, f, [scenario.controls[i]!], (BURST_TIMEOUT_S + 60) * 1000)).reply.trim();
      } catch (err) {
        return `ERROR ${(err as Error).message}`;
      }
    }));
    const burstSeconds = (performance.now() - t0) / 1000;
    const burst = sampler.stop();
    log(`memory: idle ${scenario.name}: burst done in ${burstSeconds.toFixed(1)} s (peak RSS ${mib(burst.peakRssKb).toFixed(0)} MiB); watching ${windowS} s`);
    const readings: IdleReading[] = [];
    const start = performance.now();
    for (let s = 0; s <= windowS; s++) {
      const wait = start + s * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      readings.push(reading(roots(), s));
    }
    let backUnderAt: number | undefined;
    for (let i = readings.length - 1; i >= 0 && readings[i]!.rssMiB <= IDLE_TARGET_MIB; i--) backUnderAt = readings[i]!.t;
    const atTarget = readings.find((r) => r.t >= IDLE_WITHIN_S);
    const met = atTarget !== undefined && readings.filter((r) => r.t >= IDLE_WITHIN_S).every((r) => r.rssMiB <= IDLE_TARGET_MIB);
    const problems: string[] = [];
    replies.forEach((r, i) => {
      const ok = scenario.expect === 'accepted' ? r.startsWith('2') : !r.startsWith('2') && !r.startsWith('ERROR');
      if (!ok) problems.push(`memory, idle after ${scenario.name}: message ${i + 1} (${scenario.files[i]!.split('/').pop()}) got ${JSON.stringify(r.slice(0, 200))}, expected ${scenario.expect === 'accepted' ? '2xx' : 'a refusal (4xx/5xx), never 2xx'}`);
    });
    return { name: scenario.name, before, burstPeakRssMiB: mib(burst.peakRssKb), burstPeakPssMiB: mib(burst.peakPssKb), burstSeconds, readings, backUnderAt, atTarget, met, replies, problems };
  } finally {
    await av.stop();
  }
}
