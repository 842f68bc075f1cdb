/**
 * Section "courier": the mix through a real Courier over SMTP, at 1, 4 and 16 sessions, in four
 * modes (courier-modes.ts), interleaved: round 0 is a warm-up, then each round installs every
 * mode in turn (alone, clamd, yara, peer, alone, ...) and runs every concurrency in it.
 *
 * Per run: msg/s over the SMTP phase (first connect to last reply); DATA→reply latency of each
 * message (final "." handed to the kernel → reply read); CPU of the filter's process tree, of
 * clamd and of Courier's own daemons (the holders of Courier's lock files and their descendants,
 * filters excluded), read from /proc before the run and again once every accepted message was
 * delivered, divided by the messages; verdicts checked (smtp-load.ts). A run with a wrong
 * verdict, an error or a timeout is invalid and reported as a problem.
 *
 * Figures: medians over the measured rounds; "added" latency = the mode's median minus Courier
 * alone's at the same concurrency. Every round's values are kept in the raw table.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startCourier, type CourierHarness } from '../test/helpers/courier.js';
import { LOCK } from '../test/helpers/courier-setup.js';
import { lockHolder } from '../test/helpers/courier-proc.js';
import type { RunningClamd } from '../test/helpers/clamd.js';
import { type ActiveMode, MODE_IDS, MODE_LABELS, type ModeId, assertSockets, installMode, peerMissing } from './courier-modes.js';
import { withFileLock } from './lock.js';
import { KINDS, type MessageKind, type MixMessage, describeMix, generateMix } from './mix.js';
import { treeCpuMs } from './proc.js';
import { type BenchContext, type SectionReport, table } from './report.js';
import { smtpLoad } from './smtp-load.js';
import { fmt, median, percentile, ratio } from './stats.js';
import { lineChart } from './svg.js';

export const CONCURRENCIES = [1, 4, 16] as const;
// A clean message takes well under a second; a filter stuck on one gets this long.
const REPLY_TIMEOUT_MS = 60_000;
// Local delivery of 300 messages takes a few seconds here; past this the run is flagged.
const DELIVERY_TIMEOUT_MS = 180_000;
// couriertcpd's default limits (MAXPERIP=5) would refuse part of 16 sessions from 127.0.0.1.
const ESMTPD_SETTINGS = { MAXPERIP: '100', MAXPERC: '100', MAXDAEMONS: '100' };

interface CpuReading {
  filter: number;
  clamd: number;
  courier: number;
}

/** The processes a CPU reading covered: a reading is only comparable with one of the same. */
interface Roots {
  filter: number[];
  courier: number[];
}

/** Courier or the filter was stopped or restarted under the benchmark: the section cannot go on. */
export class CourierGoneError extends Error {
  readonly code = 'BENCH_COURIER_GONE';
}

export interface CourierRun {
  mode: ModeId;
  sessions: number;
  /** 0 = warm-up */
  round: number;
  messages: number;
  msgPerS: number;
  p50: number;
  p95: number;
  kind: Record<MessageKind, { p50: number; p95: number }>;
  /** CPU ms per message */
  cpu: CpuReading;
  errors: number;
  timeouts: number;
  wrong: number;
  problems: string[];
}

function courierRoots(): number[] {
  return [LOCK.courierd, LOCK.courierfilter, LOCK.esmtpd, LOCK.authdaemond].map((f) => lockHolder(f)).filter((p): p is number => p !== undefined);
}

function cpuNow(mode: ActiveMode, clamd: RunningClamd): { cpu: CpuReading; roots: Roots } {
  const filters = mode.filterPids();
  const courier = courierRoots();
  return {
    cpu: { filter: treeCpuMs(filters), clamd: treeCpuMs([clamd.pid]), courier: treeCpuMs(courier, new Set(filters)) },
    roots: { filter: filters, courier },
  };
}

/** Why two readings are not comparable (a daemon or the filter went away or was restarted), or undefined. */
function rootsChanged(before: Roots, after: Roots, mode: ActiveMode): string | undefined {
  const same = (a: number[], b: number[]): boolean => a.join(',') === b.join(',');
  if (after.courier.length < 4 || !same(before.courier, after.courier)) {
    return `Courier's daemons changed during the run (pids ${before.courier.join(',')} -> ${after.courier.join(',') || 'none'}): something else stopped or restarted Courier (everything that starts Courier must hold the Courier lock)`;
  }
  if (!same(before.filter, after.filter)) return `the ${mode.id} filter process changed during the run (pids ${before.filter.join(',')} -> ${after.filter.join(',') || 'none'})`;
  return undefined;
}

function clearMaildirs(h: CourierHarness): void {
  for (const root of Object.values(h.maildirs)) {
    for (const sub of ['new', 'cur', 'tmp']) {
      const dir = path.join(root, sub);
      for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true });
    }
  }
}

function deliveredCount(h: CourierHarness): number {
  return Object.values(h.maildirs).reduce((n, root) => n + fs.readdirSync(path.join(root, 'new')).length + fs.readdirSync(path.join(root, 'cur')).length, 0);
}

async function waitDeliveries(h: CourierHarness, expected: number): Promise<boolean> {
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  while (deliveredCount(h) < expected) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

async function runOnce(h: CourierHarness, mode: ActiveMode, clamd: RunningClamd, mix: readonly MixMessage[], sessions: number, round: number): Promise<CourierRun> {
  assertSockets(mode);
  clearMaildirs(h);
  const { cpu: before, roots: rootsBefore } = cpuNow(mode, clamd);
  const load = await smtpLoad({ port: h.port, to: h.address('avtest'), messages: mix, concurrency: sessions, rejectInfected: mode.rejectInfected, replyTimeoutMs: REPLY_TIMEOUT_MS });
  const accepted = load.outcomes.filter((o) => o.code !== undefined && o.code >= 200 && o.code < 300).length;
  const delivered = await waitDeliveries(h, accepted);
  const { cpu: after, roots: rootsAfter } = cpuNow(mode, clamd);
  const gone = rootsChanged(rootsBefore, rootsAfter, mode);
  if (gone) throw new CourierGoneError(gone);
  const n = mix.length;
  const lat = (k?: MessageKind): number[] => load.outcomes.filter((o) => o.latencyMs !== undefined && (k === undefined || o.kind === k)).map((o) => o.latencyMs!);
  const problems = load.outcomes.filter((o) => o.error !== undefined).map((o) => o.error!);
  if (!delivered) problems.push(`only ${deliveredCount(h)} of ${accepted} accepted messages were delivered within ${DELIVERY_TIMEOUT_MS} ms`);
  const kind = Object.fromEntries(KINDS.map((k) => [k, { p50: percentile(lat(k), 50), p95: percentile(lat(k), 95) }])) as CourierRun['kind'];
  return {
    mode: mode.id,
    sessions,
    round,
    messages: n,
    msgPerS: n / (load.wallMs / 1000),
    p50: percentile(lat(), 50),
    p95: percentile(lat(), 95),
    kind,
    cpu: { filter: (after.filter - before.filter) / n, clamd: (after.clamd - before.clamd) / n, courier: (after.courier - before.courier) / n },
    errors: load.outcomes.filter((o) => o.error !== undefined && !o.wrong && !o.timeout).length,
    timeouts: load.outcomes.filter((o) => o.timeout).length,
    wrong: load.outcomes.filter((o) => o.wrong).length,
    problems,
  };
}

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

/** Every round of every mode at every concurrency, in one Courier started for them. */
async function runAll(ctx: BenchContext, modes: readonly ModeId[], clamd: RunningClamd, mix: readonly MixMessage[], problems: string[]): Promise<CourierRun[]> {
  const runs: CourierRun[] = [];
  ctx.log(`courier: starting Courier (${describeMix(mix)})`);
  const h = await startCourier({ esmtpd: ESMTPD_SETTINGS });
  try {
    await runRounds(ctx, h, modes, clamd, mix, problems, runs);
  } catch (err) {
    // the runs done so far are kept and reported; the failure makes the section invalid
    const e = err as Error & { code?: string };
    ctx.log(`courier: section stopped: ${e.stack ?? e.message}`);
    problems.push(`COURIER SECTION STOPPED after ${runs.length} runs: ${e.code ? `${e.code}: ` : ''}${e.message}`);
  } finally {
    await h.stop().catch((e: Error) => problems.push(`stopping Courier failed: ${e.message}`));
  }
  return runs;
}

async function runRounds(ctx: BenchContext, h: CourierHarness, modes: readonly ModeId[], clamd: RunningClamd, mix: readonly MixMessage[], problems: string[], runs: CourierRun[]): Promise<void> {
  for (let round = 0; round <= ctx.rounds; round++) {
    for (const id of modes) {
      const mode = await installMode(id, h, clamd);
      let ok = false;
      try {
        for (const sessions of CONCURRENCIES) {
          const r = await runOnce(h, mode, clamd, mix, sessions, round);
          runs.push(r);
          ctx.log(`courier: round ${round}${round === 0 ? ' (warm-up)' : ''} ${id} x${sessions}: ${r.msgPerS.toFixed(1)} msg/s, p50 ${fmt(r.p50)} ms, filter ${fmt(r.cpu.filter, 2)} clamd ${fmt(r.cpu.clamd, 2)} courier ${fmt(r.cpu.courier, 2)} ms/msg${r.problems.length ? `, ${r.problems.length} PROBLEMS` : ''}`);
          const where = `INVALID RUN ${MODE_LABELS[id]}, ${sessions} sessions, round ${round}`;
          for (const p of r.problems.slice(0, 5)) problems.push(`${where}: ${p}`);
          if (r.problems.length > 5) problems.push(`${where}: ... ${r.problems.length - 5} more`);
        }
        ok = true;
      } finally {
        // after a failure the error that matters is the first one, not the removal's
        await mode.remove().catch((e: Error) => {
          if (ok) throw e;
        });
      }
    }
  }
}

export async function courierSection(ctx: BenchContext): Promise<SectionReport> {
  const problems: string[] = [];
  const modes: ModeId[] = [...MODE_IDS];
  const peerWhy = peerMissing();
  if (peerWhy) {
    problems.push(`PEER NOT RUN: ${peerWhy}`);
    modes.splice(modes.indexOf('peer'), 1);
  }
  const mix = generateMix(ctx.messages);
  const clamd = await ctx.clamd();
  const runs = await withFileLock(ctx.courierLock, ctx.log, () => runAll(ctx, modes, clamd, mix, problems));
  return report(ctx, modes, runs, mix, problems);
}

function report(ctx: BenchContext, modes: ModeId[], runs: CourierRun[], mix: readonly MixMessage[], problems: string[]): SectionReport {
  const measured = runs.filter((r) => r.round > 0);
  const cells = new Map<string, Cell>();
  const key = (m: ModeId, s: number): string => `${m}/${s}`;
  for (const m of modes) for (const s of CONCURRENCIES) cells.set(key(m, s), cellOf(measured.filter((r) => r.mode === m && r.sessions === s)));
  const c = (m: ModeId, s: number): Cell | undefined => cells.get(key(m, s));
  const invalid = (cell: Cell): string => (cell.errors + cell.timeouts + cell.wrong > 0 ? ' **INVALID**' : '');

  const tput: string[][] = [];
  const kinds: string[][] = [];
  const cpu: string[][] = [];
  for (const s of CONCURRENCIES) {
    const alone = c('alone', s);
    const peer = c('peer', s);
    for (const m of modes) {
      const x = c(m, s)!;
      tput.push([String(s), MODE_LABELS[m] + invalid(x), fmt(x.msgPerS), ratio(x.msgPerS, alone?.msgPerS ?? NaN), ratio(x.msgPerS, peer?.msgPerS ?? NaN),
        fmt(x.p50), fmt(x.p95), m === 'alone' ? '–' : added(x.p50, alone?.p50), m === 'alone' ? '–' : added(x.p95, alone?.p95),
        String(x.errors), String(x.timeouts), String(x.wrong)]);
      kinds.push([String(s), MODE_LABELS[m], ...KINDS.flatMap((k) => [`${fmt(x.kind[k].p50)} / ${fmt(x.kind[k].p95)}`, m === 'alone' ? '–' : `${added(x.kind[k].p50, alone?.kind[k].p50)} / ${added(x.kind[k].p95, alone?.kind[k].p95)}`])]);
      const filterCpu = m === 'clamd' || m === 'yara' ? fmt(x.cpu.filter, 2) : '–';
      const peerCpu = m === 'peer' ? fmt(x.cpu.filter, 2) : '–';
      cpu.push([String(s), MODE_LABELS[m], filterCpu, fmt(x.cpu.clamd, 2), peerCpu, fmt(x.cpu.courier, 2), fmt(x.cpu.filter + x.cpu.clamd + x.cpu.courier, 2)]);
    }
  }
  const raw = runs.map((r) => [String(r.sessions), MODE_LABELS[r.mode], r.round === 0 ? '0 (warm-up)' : String(r.round), fmt(r.msgPerS), fmt(r.p50), fmt(r.p95),
    fmt(r.cpu.filter, 2), fmt(r.cpu.clamd, 2), fmt(r.cpu.courier, 2), `${r.errors}/${r.timeouts}/${r.wrong}`]);

  const chart = ctx.asset('courier-throughput.svg', lineChart({
    title: 'Through Courier over SMTP: throughput',
    xLabel: 'concurrent SMTP sessions (one message each)',
    yLabel: 'messages per second (median)',
    categories: CONCURRENCIES.map(String),
    series: modes.map((m) => ({ name: MODE_LABELS[m], values: CONCURRENCIES.map((s) => c(m, s)!.msgPerS) })),
  }));

  const md = [
    `Mix: ${describeMix(mix)}. Concurrency ${CONCURRENCIES.join(', ')} SMTP sessions, one message per session, all to one local Maildir user. ` +
      `One warm-up round, then ${ctx.rounds} measured rounds; in each round every mode is installed in turn and runs every concurrency. Figures are medians over the measured rounds.`,
    'The peer is Debian\'s courier-filter-perl (Courier::Filter + its ClamAVd module, libclamav-client-perl) with ../shared/bench-peers/courier-filter-perl.conf, ' +
      'which redefines ClamAV::Client::scan_stream with clamd\'s INSTREAM command: the shipped client speaks STREAM, which clamd 1.x no longer knows, so the stock peer answers 432 to every message. ' +
      'The peer scans each decoded MIME part (temp files from MIME::Parser), over TCP to clamd; avfilter uses clamd\'s unix socket. Both reject viruses with a 5xx and every reply is checked ' +
      '(clean → 2xx, EICAR → 5xx; with no filter everything → 2xx). clamd is private to the run: DisableCache yes, a signature database generated at run time.',
    `![throughput](${chart})`,
    '### Throughput and DATA→reply latency',
    'Latency in ms from the final "." leaving the client to the reply; "added" = the mode minus Courier alone at the same concurrency. Errors / timeouts / wrong verdicts are totals over the measured rounds.',
    table(['sessions', 'mode', 'msg/s', '÷ alone', '÷ peer', 'p50', 'p95', 'added p50', 'added p95', 'errors', 'timeouts', 'wrong verdicts'], tput),
    '### Latency per message kind (ms, p50 / p95)',
    table(['sessions', 'mode', ...KINDS.flatMap((k) => [k, `${k} added`])], kinds),
    '### CPU per message (ms)',
    'avfilter = the pid in its pid file and all its descendants; peer = the courier-filter-perl process; Courier = courierd, courierfilter (without its filters), esmtpd (couriertcpd and each session\'s courieresmtpd and submit), authdaemond, with their descendants; all utime+stime including reaped children, from the start of a run until its last accepted message was delivered.',
    table(['sessions', 'mode', 'avfilter', 'clamd', 'peer', 'Courier', 'total'], cpu),
    '### Every run (raw)',
    'CPU columns in ms per message ("filter" is avfilter or the peer, by mode); E/T/W = errors / timeouts / wrong verdicts.',
    table(['sessions', 'mode', 'round', 'msg/s', 'p50', 'p95', 'filter CPU', 'clamd CPU', 'Courier CPU', 'E/T/W'], raw),
  ].join('\n\n');

  const summary: string[] = [];
  const alone4 = c('alone', 4);
  const peer4 = c('peer', 4);
  for (const m of modes) {
    const x = c(m, 4)!;
    summary.push(`  ${MODE_LABELS[m].padEnd(34)} ${fmt(x.msgPerS).padStart(6)} msg/s (÷alone ${ratio(x.msgPerS, alone4?.msgPerS ?? NaN)}, ÷peer ${ratio(x.msgPerS, peer4?.msgPerS ?? NaN)}), p50 ${fmt(x.p50)} ms, p95 ${fmt(x.p95)} ms, filter ${m === 'alone' ? '–' : fmt(x.cpu.filter, 2)} / clamd ${fmt(x.cpu.clamd, 2)} / Courier ${fmt(x.cpu.courier, 2)} ms CPU/msg${invalid(x)}`);
  }
  return { title: 'Through Courier over SMTP', markdown: md, summary: ['courier (4 sessions):', ...summary], problems };
}
