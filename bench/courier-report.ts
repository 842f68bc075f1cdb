/**
 * The Courier section's report: the headline (courier-headline.ts) and below it the tables of
 * medians over the measured rounds (throughput and DATA→reply latency, latency per message kind,
 * CPU per message, the clamd routing comparison), the throughput chart and every run raw.
 *
 * Inputs: the section's runs, modes, mix and problems. Output: a SectionReport. Pure apart from
 * writing the chart beside the report (ctx.asset).
 */
import type { CourierMode } from './courier-modes.js';
import { courierHeadline, HEADLINE_SESSIONS } from './courier-headline.js';
import { CONCURRENCIES, FIRST_PASS_SESSIONS, type CourierRun, type CpuReading, isMeasured } from './courier-run.js';
import { KINDS, type MessageKind, type MixMessage, describeMix } from './mix.js';
import { type BenchContext, type SectionReport, table } from './report.js';
import { fmt, median, ratio } from './stats.js';
import { lineChart } from './svg.js';
import { fmtSpread, spread } from './verdict.js';

/** Medians over the measured rounds of one mode at one concurrency. */
interface Cell {
  runs: CourierRun[];
  msgPerS: number;
  p50: number;
  p95: number;
  kind: Record<MessageKind, { p50: number; p95: number }>;
  cpu: CpuReading;
  errors: number;
  timeouts: number;
  wrong: number;
}

function cellOf(runs: CourierRun[]): Cell {
  const m = (f: (r: CourierRun) => number): number => median(runs.map(f));
  return {
    runs,
    msgPerS: m((r) => r.msgPerS),
    p50: m((r) => r.p50),
    p95: m((r) => r.p95),
    kind: Object.fromEntries(KINDS.map((k) => [k, { p50: m((r) => r.kind[k].p50), p95: m((r) => r.kind[k].p95) }])) as Cell['kind'],
    cpu: { filter: m((r) => r.cpu.filter), clamd: m((r) => r.cpu.clamd), courier: m((r) => r.cpu.courier) },
    errors: runs.reduce((s, r) => s + r.errors, 0),
    timeouts: runs.reduce((s, r) => s + r.timeouts, 0),
    wrong: runs.reduce((s, r) => s + r.wrong, 0),
  };
}

function added(x: number, base: number | undefined): string {
  if (base === undefined || !Number.isFinite(base) || !Number.isFinite(x)) return '–';
  const d = x - base;
  return `${d >= 0 ? '+' : ''}${d.toFixed(1)}`;
}

export function courierReport(ctx: BenchContext, modes: readonly CourierMode[], runs: CourierRun[], mix: readonly MixMessage[], problems: string[], skipped: readonly string[]): SectionReport {
  const measured = runs.filter((r) => r.round > 0 && isMeasured(r));
  const cells = new Map<string, Cell>();
  const key = (m: string, s: number): string => `${m}/${s}`;
  for (const m of modes) for (const s of CONCURRENCIES) cells.set(key(m.id, s), cellOf(measured.filter((r) => r.mode === m.id && r.sessions === s)));
  const c = (m: string, s: number): Cell | undefined => cells.get(key(m, s));
  const invalid = (cell: Cell): string => (cell.errors + cell.timeouts + cell.wrong > 0 ? ' **INVALID**' : '');
  const label = new Map(modes.map((m) => [m.id, m.label]));

  const tput: string[][] = [];
  const kinds: string[][] = [];
  const cpu: string[][] = [];
  for (const s of CONCURRENCIES) {
    const alone = c('alone', s);
    const peer = c('peer', s);
    for (const m of modes) {
      const x = c(m.id, s)!;
      const isAlone = m.kind === 'alone';
      tput.push([String(s), m.label + invalid(x), fmt(x.msgPerS), ratio(x.msgPerS, alone?.msgPerS ?? NaN), ratio(x.msgPerS, peer?.msgPerS ?? NaN),
        fmt(x.p50), fmt(x.p95), isAlone ? '–' : added(x.p50, alone?.p50), isAlone ? '–' : added(x.p95, alone?.p95),
        String(x.errors), String(x.timeouts), String(x.wrong)]);
      kinds.push([String(s), m.label, ...KINDS.flatMap((k) => [`${fmt(x.kind[k].p50)} / ${fmt(x.kind[k].p95)}`, isAlone ? '–' : `${added(x.kind[k].p50, alone?.kind[k].p50)} / ${added(x.kind[k].p95, alone?.kind[k].p95)}`])]);
      cpu.push([String(s), m.label, isAlone ? '–' : fmt(x.cpu.filter, 2), fmt(x.cpu.clamd, 2), isAlone ? '–' : fmt(x.cpu.filter + x.cpu.clamd, 2),
        isAlone ? '–' : ratio(x.cpu.filter, peer?.cpu.filter ?? NaN), isAlone ? '–' : ratio(x.cpu.filter + x.cpu.clamd, peer ? peer.cpu.filter + peer.cpu.clamd : NaN),
        fmt(x.cpu.courier, 2), fmt(x.cpu.filter + x.cpu.clamd + x.cpu.courier, 2)]);
    }
  }

  // the clamd routing comparison: every avfilter mode with the clamd engine, and the peer
  const routed = modes.filter((m) => (m.kind === 'avfilter' && m.av?.engine === 'clamd') || m.kind === 'peer');
  const routing: string[][] = [];
  for (const s of CONCURRENCIES) {
    for (const m of routed) {
      const rs = measured.filter((r) => r.mode === m.id && r.sessions === s);
      const sp = (f: (r: CourierRun) => number, d = 2): string => fmtSpread(spread(rs.map(f)), d);
      routing.push([String(s), m.label, m.kind === 'peer' ? 'each decoded MIME part (the peer)' : m.av!.routing, sp((r) => r.cpu.filter), sp((r) => r.cpu.clamd), sp((r) => r.cpu.filter + r.cpu.clamd), sp((r) => r.msgPerS, 1), sp((r) => r.p50, 1)]);
    }
  }

  // each variant's filter CPU per message ÷ the default's, paired round by round (the same
  // machine state), so a feature's cost ([headers], metrics) reads as one number
  const base = modes.find((m) => m.av?.role === 'default');
  const variants: string[][] = [];
  if (base !== undefined) {
    for (const s of CONCURRENCIES) {
      for (const m of modes.filter((x) => x.av?.role === 'variant')) {
        const per = measured.filter((r) => r.mode === m.id && r.sessions === s).flatMap((r) => {
          const b = measured.find((o) => o.mode === base.id && o.sessions === s && o.round === r.round);
          return b !== undefined && b.cpu.filter > 0 ? [{ cpu: r.cpu.filter / b.cpu.filter, tput: r.msgPerS / b.msgPerS }] : [];
        });
        variants.push([String(s), m.label, fmtSpread(spread(per.map((p) => p.cpu)), 3), fmtSpread(spread(per.map((p) => p.tput)), 3), String(per.length)]);
      }
    }
  }

  // the first pass after each start (cold), then the warm-up passes: the filter's own CPU, and ÷ the peer's in the same round
  const firsts = runs.filter((r) => r.round > 0 && r.first === true);
  // per mode and round: the warm-up's messages and its CPU per message over all its passes
  const warmUps = new Map<string, { messages: number; cpu: number }>();
  for (const r of runs) {
    if (r.warm === undefined) continue;
    const w = warmUps.get(`${r.mode}/${r.round}`) ?? { messages: 0, cpu: 0 };
    w.cpu = (w.cpu * w.messages + r.cpu.filter * r.messages) / (w.messages + r.messages);
    w.messages += r.messages;
    warmUps.set(`${r.mode}/${r.round}`, w);
  }
  const warmOf = (mode: string, round: number): number | undefined => warmUps.get(`${mode}/${round}`)?.cpu;
  const rounds = [...new Set(firsts.map((r) => r.round))];
  const warmMessages = Math.max(0, ...[...warmUps.values()].map((w) => w.messages));
  const cold: string[][] = modes.filter((m) => m.kind !== 'alone').map((m) => {
    const rs = firsts.filter((r) => r.mode === m.id);
    const perPeer = rs.flatMap((r) => {
      const p = firsts.find((o) => o.mode === 'peer' && o.round === r.round);
      return p !== undefined && p.cpu.filter > 0 ? [r.cpu.filter / p.cpu.filter] : [];
    });
    const warm = rounds.flatMap((n) => warmOf(m.id, n) ?? []);
    const warmPerPeer = rounds.flatMap((n) => {
      const w = warmOf(m.id, n);
      const p = warmOf('peer', n);
      return w !== undefined && p !== undefined && p > 0 ? [w / p] : [];
    });
    const later = measured.filter((r) => r.mode === m.id && r.sessions === FIRST_PASS_SESSIONS);
    return [m.label, fmtSpread(spread(rs.map((r) => r.cpu.filter)), 2), fmtSpread(spread(rs.map((r) => r.cpu.clamd)), 2),
      m.kind === 'peer' ? '–' : fmtSpread(spread(perPeer), 2),
      warm.length === 0 ? '–' : fmtSpread(spread(warm), 2), m.kind === 'peer' || warmPerPeer.length === 0 ? '–' : fmtSpread(spread(warmPerPeer), 2),
      fmtSpread(spread(later.map((r) => r.cpu.filter)), 2)];
  });

  const raw = runs.map((r) => [r.first === true ? `${r.sessions} (first pass)` : r.warm !== undefined ? `${r.sessions} (warm-up ${r.warm})` : String(r.sessions), label.get(r.mode) ?? r.mode, r.round === 0 ? '0 (warm-up)' : String(r.round), fmt(r.msgPerS), fmt(r.p50), fmt(r.p95),
    fmt(r.cpu.filter, 2), fmt(r.cpu.clamd, 2), fmt(r.cpu.courier, 2), `${r.errors}/${r.timeouts}/${r.wrong}`]);

  const chart = ctx.asset('courier-throughput.svg', lineChart({
    title: 'Through Courier over SMTP: throughput',
    xLabel: 'concurrent SMTP sessions (one message each)',
    yLabel: 'messages per second (median)',
    categories: CONCURRENCIES.map(String),
    series: modes.map((m) => ({ name: m.label, values: CONCURRENCIES.map((s) => c(m.id, s)!.msgPerS) })),
  }));

  const headline = courierHeadline(runs, modes);
  const md = [
    `Mix: ${describeMix(mix)}. Concurrency ${CONCURRENCIES.join(', ')} SMTP sessions, one message per session, all to one local Maildir user. ` +
      `One warm-up round, then ${ctx.rounds} measured rounds; in each round every mode is installed in turn (${modes.map((m) => m.label).join(', ')}; each measured round in the order of the next row of a Williams design over this list, so that over as many rounds as modes each runs at every place, and over as many rounds (an even number of modes) or twice as many (an odd number) each runs right after every other equally often), gets the mix once at ${FIRST_PASS_SESSIONS} sessions as its first pass (the filter just started: reported on its own below, as "cold"), ${warmMessages > 0 ? `then ${warmMessages} messages more as its warm-up (a JIT-compiled filter keeps getting cheaper for thousands of messages after a start; reported with the first pass), ` : 'no warm-up after it (`--warm 0`), '}and then runs every concurrency. ` +
      'The headline is repeated at the top of the report; the tables after it give medians over the measured rounds (ratios there are ratios of medians: the per-round ratios are in the headline).',
    ...(skipped.length ? [`Modes left out: ${skipped.join('; ')}.`] : []),
    'The peer is Debian\'s courier-filter-perl (Courier::Filter + its ClamAVd module, libclamav-client-perl) with ../shared/bench-peers/courier-filter-perl.conf, ' +
      'which redefines ClamAV::Client::scan_stream with clamd\'s INSTREAM command: the shipped client speaks STREAM, which clamd 1.x no longer knows, so the stock peer answers 432 to every message. ' +
      'The peer scans each decoded MIME part (temp files from MIME::Parser), over TCP to clamd; avfilter uses clamd\'s unix socket. Both reject viruses with a 5xx and every reply is checked ' +
      '(clean → 2xx, EICAR → 5xx; with no filter everything → 2xx). clamd is private to the run: DisableCache yes, a signature database generated at run time.',
    headline.markdown,
    `![throughput](${chart})`,
    '### Throughput and DATA→reply latency',
    'Latency in ms from the final "." leaving the client to the reply; "added" = the mode minus Courier alone at the same concurrency. Errors / timeouts / wrong verdicts are totals over the measured rounds.',
    table(['sessions', 'mode', 'msg/s', '÷ alone', '÷ peer', 'p50', 'p95', 'added p50', 'added p95', 'errors', 'timeouts', 'wrong verdicts'], tput),
    '### Latency per message kind (ms, p50 / p95)',
    table(['sessions', 'mode', ...KINDS.flatMap((k) => [k, `${k} added`])], kinds),
    '### CPU per message (ms)',
    'filter = avfilter (the pid in its pid file and all its descendants: master and workers) or the peer (the courier-filter-perl process); Courier = courierd, courierfilter (without its filters), esmtpd (couriertcpd and each session\'s courieresmtpd and submit), authdaemond, with their descendants; all utime+stime including reaped children, from the start of a run until its last accepted message was delivered.',
    table(['sessions', 'mode', 'filter', 'clamd', 'filter + clamd', 'filter ÷ peer', '+clamd ÷ peer+clamd', 'Courier', 'total'], cpu),
    '### The first pass after each start (cold)',
    `Each mode's first ${mix.length} messages after it was installed (the filter had just started), at ${FIRST_PASS_SESSIONS} sessions, then its warm-up (${warmMessages} messages more, in passes of the mix at ${FIRST_PASS_SESSIONS} sessions, unmeasured by the tables above: \`--warm\`): CPU ms per message, median (min–max) over the measured rounds; "÷ peer" is computed within each round against the peer's own first pass or warm-up; the last column is the same mode at ${FIRST_PASS_SESSIONS} sessions in the measured runs that follow. A filter on a mail host pays this once per start, not per message: the measured tables above are of filters that have seen mail.`,
    table(['mode', 'filter CPU, first pass', 'clamd CPU, first pass', 'filter ÷ peer (first passes)', 'filter CPU, warm-up', 'filter ÷ peer (warm-ups)', `filter CPU later, ${FIRST_PASS_SESSIONS} sessions`], cold),
    '### clamd routing: what the raw message is sent as',
    'Every avfilter mode with the clamd engine, and the peer, side by side: CPU ms per message and throughput, median (min–max) over the measured rounds.',
    table(['sessions', 'mode', 'raw message', 'filter CPU', 'clamd CPU', 'filter + clamd', 'msg/s', 'p50 ms'], routing),
    ...(variants.length > 0 && base !== undefined ? [
      `### Variants ÷ ${base.label}`,
      'Filter CPU per message and throughput of each variant divided by the default\'s in the same round and at the same concurrency: median (min–max) of the per-round ratios.',
      table(['sessions', 'mode', 'filter CPU ÷ default', 'msg/s ÷ default', 'rounds'], variants),
    ] : []),
    '### Every run (raw)',
    'CPU columns in ms per message ("filter" is avfilter or the peer, by mode); E/T/W = errors / timeouts / wrong verdicts.',
    table(['sessions', 'mode', 'round', 'msg/s', 'p50', 'p95', 'filter CPU', 'clamd CPU', 'Courier CPU', 'E/T/W'], raw),
  ].join('\n\n');

  const summary: string[] = [];
  const alone4 = c('alone', HEADLINE_SESSIONS);
  const peer4 = c('peer', HEADLINE_SESSIONS);
  for (const m of modes) {
    const x = c(m.id, HEADLINE_SESSIONS)!;
    summary.push(`  ${m.label.padEnd(40)} ${fmt(x.msgPerS).padStart(6)} msg/s (÷alone ${ratio(x.msgPerS, alone4?.msgPerS ?? NaN)}, ÷peer ${ratio(x.msgPerS, peer4?.msgPerS ?? NaN)}), p50 ${fmt(x.p50)} ms, p95 ${fmt(x.p95)} ms, filter ${m.kind === 'alone' ? '–' : fmt(x.cpu.filter, 2)} / clamd ${fmt(x.cpu.clamd, 2)} / Courier ${fmt(x.cpu.courier, 2)} ms CPU/msg${invalid(x)}`);
  }
  return {
    title: 'Through Courier over SMTP',
    headline,
    markdown: md,
    summary: [`courier (${HEADLINE_SESSIONS} sessions, medians):`, ...summary],
    problems,
  };
}
