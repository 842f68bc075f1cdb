/**
 * The Courier section's headline: avfilter against the Perl peer in the same run, at 4 SMTP
 * sessions, each figure computed within its round (the modes of a round ran back to back under
 * the same load) and given as the median and range over the rounds, each target judged by
 * verdict.ts: met, missed, or inside the noise.
 *
 * Targets (the peer = Courier::Filter + ClamAVd):
 * - avfilter's own CPU per message (its whole process tree) ≤ 0.5 × the peer's;
 * - avfilter + its clamd ≤ 0.8 × the peer + its clamd, with the default routing;
 * - the embedded engine's CPU per message (avfilter's tree; clamd idle) ≤ the peer's own;
 * - throughput ≥ 1.10 × the peer's, the noise being how much Courier alone varied across the
 *   rounds (a relative range applied to the ratio);
 * - added p50 latency ≤ the peer's added p50, i.e. avfilter's p50 − the peer's p50 ≤ 0 (Courier
 *   alone cancels out), the noise being the range of Courier alone's p50 across the rounds.
 * Variants (role "variant") get the same figures without a target.
 *
 * Inputs: every run of the section and the modes. Output: Markdown and stdout lines. Runs with a
 * problem (wrong verdict, error, timeout) are left out of the headline and counted.
 */
import type { AvfilterMode } from './avfilter-modes.js';
import type { CourierMode } from './courier-modes.js';
import { onlyCourierOwn } from './courier-replies.js';
import { type CourierRun, isMeasured } from './courier-run.js';
import { table } from './report.js';
import { fmt } from './stats.js';
import { type Judgement, atLeast, atMost, fmtSpread, relativeRange, spread, versus } from './verdict.js';

export const HEADLINE_SESSIONS = 4;

export const TARGETS = {
  ownCpu: 0.5,
  withClamd: 0.8,
  embeddedCpu: 1.0,
  throughput: 1.1,
  addedP50Ms: 0,
} as const;

interface Row {
  figure: string;
  mode: string;
  values: string;
  target: string;
  verdict: string;
}

const VERSUS_ALONE: Record<ReturnType<typeof versus>, string> = {
  'inside the noise': 'inside the noise',
  lower: 'slower, beyond the noise',
  higher: 'faster, beyond the noise',
  'one round': 'one round: no noise estimate',
  'no data': 'no data',
};

function valid(r: CourierRun): boolean {
  return r.errors + r.timeouts + r.wrong === 0 && r.problems.length === 0;
}

export function courierHeadline(runs: readonly CourierRun[], modes: readonly CourierMode[]): { markdown: string; summary: string[] } {
  const S = HEADLINE_SESSIONS;
  const at = runs.filter((r) => r.round > 0 && r.sessions === S && isMeasured(r));
  const rounds = [...new Set(at.map((r) => r.round))].sort((a, b) => a - b);
  const run = (mode: string, round: number): CourierRun | undefined => at.find((r) => r.mode === mode && r.round === round);
  const excluded = at.filter((r) => !valid(r)).length;
  const courierOwn = at.filter((r) => !valid(r) && onlyCourierOwn(r.problems)).length;
  const leftOut = excluded ? `; ${excluded} invalid run(s) left out${courierOwn ? ` (${courierOwn === excluded ? 'each' : `${courierOwn} of them`} only for Courier's own 432: its SMTP server read no answer from submit)` : ''}` : '';
  /** f(a's run, b's run) in every round where both ran and are valid */
  const perRound = (a: string, b: string, f: (x: CourierRun, y: CourierRun) => number): number[] =>
    rounds.flatMap((n) => {
      const x = run(a, n);
      const y = run(b, n);
      return x && y && valid(x) && valid(y) ? [f(x, y)] : [];
    });
  const alone = rounds.map((n) => run('alone', n)).filter((r): r is CourierRun => r !== undefined && valid(r));
  const aloneTput = alone.map((r) => r.msgPerS);
  const aloneP50 = alone.map((r) => r.p50);
  const tputNoiseRel = relativeRange(aloneTput);
  const p50Noise = aloneTput.length >= 2 ? Math.max(...aloneP50) - Math.min(...aloneP50) : NaN;
  const hasPeer = modes.some((m) => m.kind === 'peer') && at.some((r) => r.mode === 'peer');

  const rows: Row[] = [];
  const summary: string[] = [];
  const push = (figure: string, mode: CourierMode, values: number[], target: string, j: Judgement | undefined, digits = 2, unit = ''): void => {
    const s = spread(values);
    rows.push({ figure, mode: mode.label, values: `${fmtSpread(s, digits)}${unit}`, target, verdict: j ? `**${j.text}**` : '–' });
    summary.push(`  ${figure.padEnd(48)} ${mode.label.padEnd(40)} ${`${fmtSpread(s, digits)}${unit}`.padEnd(22)} ${target === '–' ? '' : `target ${target}: ${j?.text ?? '–'}`}`.trimEnd());
  };
  const avModes = modes.filter((m): m is CourierMode & { av: AvfilterMode } => m.kind === 'avfilter' && m.av !== undefined);
  if (hasPeer) {
    for (const m of avModes) {
      const role = m.av.role;
      const own = perRound(m.id, 'peer', (x, y) => x.cpu.filter / y.cpu.filter);
      const sum = perRound(m.id, 'peer', (x, y) => (x.cpu.filter + x.cpu.clamd) / (y.cpu.filter + y.cpu.clamd));
      if (role === 'embedded') {
        push('CPU/msg ÷ Perl filter\'s own', m, own, `≤ ${TARGETS.embeddedCpu.toFixed(2)}`, atMost(own, TARGETS.embeddedCpu));
        push('CPU/msg ÷ Perl filter + its clamd', m, sum, '–', undefined);
      } else {
        push('own CPU/msg ÷ Perl filter\'s', m, own, role === 'default' ? `≤ ${TARGETS.ownCpu.toFixed(2)}` : '–', role === 'default' ? atMost(own, TARGETS.ownCpu) : undefined);
        push('CPU/msg with its clamd ÷ Perl filter + its clamd', m, sum, role === 'default' ? `≤ ${TARGETS.withClamd.toFixed(2)}` : '–', role === 'default' ? atMost(sum, TARGETS.withClamd) : undefined);
      }
    }
    for (const m of avModes) {
      const tput = perRound(m.id, 'peer', (x, y) => x.msgPerS / y.msgPerS);
      const noise = spread(tput).median * tputNoiseRel;
      const isDefault = m.av.role === 'default';
      push('msg/s ÷ Perl filter\'s', m, tput, isDefault ? `≥ ${TARGETS.throughput.toFixed(2)}` : '–', isDefault ? atLeast(tput, TARGETS.throughput, noise) : undefined);
    }
    for (const m of avModes) {
      const d = perRound(m.id, 'peer', (x, y) => x.p50 - y.p50);
      const isDefault = m.av.role === 'default';
      push('added p50 − Perl filter\'s added p50', m, d, isDefault ? `≤ ${TARGETS.addedP50Ms} ms` : '–', isDefault ? atMost(d, TARGETS.addedP50Ms, p50Noise) : undefined, 1, ' ms');
    }
  }

  // every mode against Courier alone: is the throughput difference measurable at all?
  const perMode: string[][] = [];
  for (const m of modes) {
    const rs = rounds.map((n) => run(m.id, n)).filter((r): r is CourierRun => r !== undefined && valid(r));
    const med = (f: (r: CourierRun) => number): string => fmtSpread(spread(rs.map(f)), 2);
    const vsAlone = perRound(m.id, 'alone', (x, y) => x.msgPerS / y.msgPerS);
    const where = versus(vsAlone, 1, spread(vsAlone).median * tputNoiseRel);
    perMode.push([
      m.label,
      m.kind === 'alone' ? '–' : med((r) => r.cpu.filter),
      med((r) => r.cpu.clamd),
      m.kind === 'alone' ? '–' : med((r) => r.cpu.filter + r.cpu.clamd),
      med((r) => r.cpu.courier),
      med((r) => r.cpu.filter + r.cpu.clamd + r.cpu.courier),
      fmtSpread(spread(rs.map((r) => r.msgPerS)), 1),
      m.kind === 'alone' ? '–' : `${fmtSpread(spread(vsAlone))}: ${VERSUS_ALONE[where]}`,
      m.kind === 'alone' ? '–' : fmtSpread(spread(perRound(m.id, 'alone', (x, y) => x.p50 - y.p50)), 1),
    ]);
  }

  const noiseLine = `Noise: Courier alone at ${S} sessions ran at ${fmtSpread(spread(aloneTput), 1)} msg/s across the rounds ` +
    `(${Number.isFinite(tputNoiseRel) ? `a range of ${(tputNoiseRel * 100).toFixed(0)}% of its median` : 'one round: no spread'}), DATA→reply p50 ${fmtSpread(spread(aloneP50), 1)} ms` +
    `${Number.isFinite(p50Noise) ? ` (a range of ${fmt(p50Noise)} ms)` : ''}.`;
  const markdown = [
    `### Through Courier: avfilter against the Perl filter (${S} SMTP sessions)`,
    hasPeer
      ? `Each figure is computed within a round (all modes of a round ran back to back, each after its first pass of the mix and its warm-up: see "The first pass after each start") and given as the median (min–max) over ${rounds.length} measured round(s)${leftOut}. ` +
        'CPU is utime+stime from /proc of every process of each filter\'s tree (avfilter: master and workers; the peer: its process), and of clamd, per message of the mix. ' +
        'Rules: a "≤" target is **met** when every round\'s value is at or below it, **missed** when every round\'s value is above it, and **inside the noise** when the rounds fall on both sides. ' +
        `Throughput: the same, with the interval widened to median × (1 ± Courier alone's relative range across the rounds); added p50: widened by ± the range of Courier alone's p50 (the difference of two p50s, so Courier alone cancels out). One round has no spread: its verdict says so.`
      : '**The Perl peer did not run: no ratio to it, no target judged** (see PROBLEMS).',
    noiseLine,
    ...(hasPeer ? [table(['figure', 'avfilter mode', 'median (min–max)', 'target', 'verdict'], rows.map((r) => [r.figure, r.mode, r.values, r.target, r.verdict]))] : []),
    `Per message at ${S} sessions (ms of CPU, median (min–max) over the rounds); "÷ alone" is this mode's throughput over Courier alone's in the same round, marked inside the noise when Courier alone itself varied more across the rounds; "added p50" is the mode's p50 − Courier alone's in the same round.`,
    table(['mode', 'filter CPU', 'clamd CPU', 'filter + clamd', 'Courier CPU', 'all three', 'msg/s', 'msg/s ÷ alone', 'added p50 ms'], perMode),
  ].join('\n\n');
  const head = `courier, ${S} sessions, ${rounds.length} round(s), per-round ratios: median (min–max)${leftOut}:`;
  return {
    markdown,
    summary: [head, ...(hasPeer ? summary : ['  the Perl peer did not run: no target judged']), `  ${noiseLine}`],
  };
}
