/**
 * The memory section's headline: the two memory targets, each marked met or missed.
 * - Idle return: after each burst, the RSS summed over master and workers is ≤ 160 MiB from
 *   30 s after the last reply to the end of the window (memory-idle.ts).
 * - One 100 MB message: the peak PSS (sampled every 20 ms) ≤ 128 MiB, summed over the tree and
 *   for the largest worker alone, per engine.
 * Memory is not noisy the way time is: one reading per case, no spread.
 *
 * Inputs: the section's peak rows and idle results. Output: Markdown and stdout lines.
 */
import { IDLE_TARGET_MIB, IDLE_WITHIN_S, type IdleResult } from './memory-idle.js';
import { table } from './report.js';
import { fmt } from './stats.js';

export const BIG_MESSAGE_MB = 100;
export const BIG_TARGET_PSS_MIB = 128;

/** One message's peak memory with one engine (memory-section.ts measures it). */
export interface PeakRow {
  engine: 'clamd' | 'yara';
  sizeMB: number;
  idleMB: number;
  peakMB: number;
  peakPssMB: number;
  /** the largest PSS of one worker (a non-root process) in any sample */
  workerPeakPssMB: number;
  hwmSumMB: number;
  hwmMaxMB: number;
  processes: number;
  seconds: number;
  reply: string;
}

const ENGINE: Record<PeakRow['engine'], string> = { clamd: 'clamd engine', yara: 'embedded engine' };

export function memoryHeadline(peaks: readonly PeakRow[], idle: readonly IdleResult[], windowS: number): { markdown: string; summary: string[] } {
  const rows: string[][] = [];
  const summary: string[] = [`memory (MiB; idle target: RSS of master + workers ≤ ${IDLE_TARGET_MIB} within ${IDLE_WITHIN_S} s of the last reply; one ${BIG_MESSAGE_MB} MB message: peak PSS ≤ ${BIG_TARGET_PSS_MIB}):`];
  const mark = (ok: boolean): string => (ok ? 'met' : 'missed');
  for (const r of idle) {
    const a = r.atTarget;
    const under = r.backUnderAt === undefined ? `not within ${windowS} s` : `from ${r.backUnderAt} s on`;
    const measured = a ? `at ${a.t} s: ${fmt(a.rssMiB, 0)} (master ${fmt(a.masterRssMiB, 0)} + workers ${fmt(a.workersRssMiB, 0)}), PSS ${fmt(a.pssMiB, 0)}; ≤ ${IDLE_TARGET_MIB} ${under}; at ${windowS} s: ${fmt(r.readings.at(-1)?.rssMiB, 0)}` : 'no reading';
    const verdict = r.problems.length ? `${mark(r.met)} (with wrong replies: see PROBLEMS)` : mark(r.met);
    rows.push([`idle: RSS ≤ ${IDLE_TARGET_MIB} MiB within ${IDLE_WITHIN_S} s`, `after ${r.name} (embedded engine)`, measured, `**${verdict}**`]);
    summary.push(`  idle after ${r.name}: ${measured}: ${verdict}`);
  }
  const big = peaks.filter((p) => Math.round(p.sizeMB) === BIG_MESSAGE_MB);
  for (const p of big) {
    const ok = p.reply.startsWith('2');
    const treeOk = p.peakPssMB <= BIG_TARGET_PSS_MIB;
    const workerOk = p.workerPeakPssMB <= BIG_TARGET_PSS_MIB;
    const note = ok ? '' : ' (not scanned to a 2xx: see PROBLEMS)';
    rows.push([`one ${BIG_MESSAGE_MB} MB message: peak PSS ≤ ${BIG_TARGET_PSS_MIB} MiB, master + workers`, ENGINE[p.engine], `${fmt(p.peakPssMB, 0)} (RSS ${fmt(p.peakMB, 0)})`, `**${mark(treeOk)}${note}**`]);
    rows.push([`one ${BIG_MESSAGE_MB} MB message: peak PSS ≤ ${BIG_TARGET_PSS_MIB} MiB, the worker alone`, ENGINE[p.engine], fmt(p.workerPeakPssMB, 0), `**${mark(workerOk)}${note}**`]);
    summary.push(`  one ${BIG_MESSAGE_MB} MB message, ${ENGINE[p.engine]}: peak PSS ${fmt(p.peakPssMB, 0)} (master + workers): ${mark(treeOk)}; worker alone ${fmt(p.workerPeakPssMB, 0)}: ${mark(workerOk)}${note}`);
  }
  if (!big.length) summary.push(`  one ${BIG_MESSAGE_MB} MB message: not run`);
  const markdown = [
    '### Memory (filter alone, MiB)',
    `Idle return: a fresh avfilter per burst, every message of the burst sent at once; RSS of the master and all its workers (/proc/PID/status) read every second for ${windowS} s after the last reply; ` +
      `met when every reading from ${IDLE_WITHIN_S} s on is ≤ ${IDLE_TARGET_MIB} MiB. One ${BIG_MESSAGE_MB} MB message: PSS (/proc/PID/smaps_rollup, shared pages split between the processes) sampled every 20 ms while a fresh avfilter scans it whole (limits raised), peak of the sum and of the largest worker.`,
    table(['target', 'case', 'measured', 'verdict'], rows),
  ].join('\n\n');
  return { markdown, summary };
}
