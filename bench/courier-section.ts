/**
 * Section "courier": the mix through a real Courier over SMTP, at 1, 4 and 16 sessions, in every
 * mode (courier-modes.ts: Courier alone, each avfilter mode of avfilter-modes.ts, the Perl peer;
 * `--modes` picks some), interleaved: round 0 is a warm-up, then each round installs every mode
 * in turn, in an order that changes each round (roundOrder: the machine's load and Courier's
 * state change through a round, and a mode carries into its figures both its place and the
 * mode run just before it), sends the mix once as its first pass
 * (courier-run.ts FIRST_PASS_SESSIONS: the filter just started, reported as "cold"), then
 * warms each filter up (DEFAULT_WARM_MESSAGES, `--warm`: reported with the first pass), then
 * runs every concurrency in it.
 *
 * Per run: msg/s over the SMTP phase (first connect to last reply); DATA→reply latency of each
 * message (final "." handed to the kernel → reply read); CPU of the filter's process tree, of
 * clamd and of Courier's own daemons (the holders of Courier's lock files and their descendants,
 * filters excluded), read from /proc before the run and again once every accepted message was
 * delivered, divided by the messages; verdicts checked (smtp-load.ts). A run with a wrong
 * verdict, an error or a timeout is invalid and reported as a problem.
 *
 * The runs go to courier-report.ts (tables, medians) and courier-headline.ts (per-round ratios
 * to the peer, targets judged). Every round's values are kept in the raw table.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startCourier, type CourierHarness } from '../test/helpers/courier.js';
import { LOCK } from '../test/helpers/courier-setup.js';
import { lockHolder } from '../test/helpers/courier-proc.js';
import type { RunningClamd } from '../test/helpers/clamd.js';
import { availableModes } from './avfilter-modes.js';
import { type ActiveMode, type CourierMode, assertSockets, courierModes, installMode, peerMissing } from './courier-modes.js';
import { courierReport } from './courier-report.js';
import { CONCURRENCIES, FIRST_PASS_SESSIONS, type CourierRun, type CpuReading } from './courier-run.js';
import { withFileLock } from './lock.js';
import { KINDS, type MessageKind, type MixMessage, describeMix, generateMix } from './mix.js';
import { treeCpuMs } from './proc.js';
import type { BenchContext, SectionReport } from './report.js';
import { smtpLoad } from './smtp-load.js';
import { fmt, percentile } from './stats.js';

// A clean message takes well under a second; a filter stuck on one gets this long.
const REPLY_TIMEOUT_MS = 60_000;
// Local delivery of 300 messages takes a few seconds here; past this the run is flagged.
const DELIVERY_TIMEOUT_MS = 180_000;
// couriertcpd's default limits (MAXPERIP=5) would refuse part of 16 sessions from 127.0.0.1.
const ESMTPD_SETTINGS = { MAXPERIP: '100', MAXPERC: '100', MAXDAEMONS: '100' };

/** The processes a CPU reading covered: a reading is only comparable with one of the same. */
interface Roots {
  filter: number[];
  courier: number[];
}

/** Courier or the filter was stopped or restarted under the benchmark: the section cannot go on. */
export class CourierGoneError extends Error {
  readonly code = 'BENCH_COURIER_GONE';
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

/** Every round of every mode at every concurrency, in one Courier started for them. */
async function runAll(ctx: BenchContext, modes: readonly CourierMode[], clamd: RunningClamd, mix: readonly MixMessage[], problems: string[]): Promise<CourierRun[]> {
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

/**
 * The order of the modes in `round`: the warm-up as given; measured round r the row r − 1 of a
 * Williams design over the modes (a Latin square balanced for carry-over: the first row is
 * 0, 1, n−1, 2, n−2, …, each next row adds one to every index, modulo n; with an odd number of
 * modes, rows n to 2n−1 are the first n reversed). Over n rounds every mode runs at every place;
 * every mode runs right after every other equally often: once in n rounds (n even), twice in
 * 2n rounds (n odd). Where a mode runs in a round, and after which mode, shows in its CPU figures, not only
 * its code: turning the list by one each round, as before, kept every mode after the same
 * neighbour in all but one round of n, and that neighbour's mark on its figures.
 */
export function roundOrder<T>(modes: readonly T[], round: number): T[] {
  const n = modes.length;
  if (n === 0 || round === 0) return [...modes];
  const first: number[] = [];
  for (let i = 0, lo = 1, hi = n - 1; i < n; i++) first.push(i === 0 ? 0 : i % 2 === 1 ? lo++ : hi--);
  const rows = n % 2 === 0 ? n : 2 * n;
  const r = (round - 1) % rows;
  const row = first.map((j) => modes[(j + (r % n)) % n]!);
  return r < n ? row : row.reverse();
}

async function runRounds(ctx: BenchContext, h: CourierHarness, modes: readonly CourierMode[], clamd: RunningClamd, mix: readonly MixMessage[], problems: string[], runs: CourierRun[]): Promise<void> {
  for (let round = 0; round <= ctx.rounds; round++) {
    for (const m of roundOrder(modes, round)) {
      const mode = await installMode(m, h, clamd);
      let ok = false;
      try {
        const warmPasses = m.kind === 'alone' ? 0 : Math.ceil(ctx.warm / mix.length);
        const passes = [
          { sessions: FIRST_PASS_SESSIONS, first: true, warm: 0 },
          ...Array.from({ length: warmPasses }, (_, i) => ({ sessions: FIRST_PASS_SESSIONS, first: false, warm: i + 1 })),
          ...CONCURRENCIES.map((sessions) => ({ sessions, first: false, warm: 0 })),
        ];
        for (const { sessions, first, warm } of passes) {
          const r = { ...(await runOnce(h, mode, clamd, mix, sessions, round)), ...(first ? { first } : {}), ...(warm > 0 ? { warm } : {}) };
          runs.push(r);
          const pass = first ? 'first pass ' : warm > 0 ? `warm-up pass ${warm} ` : '';
          ctx.log(`courier: round ${round}${round === 0 ? ' (warm-up)' : ''} ${m.id} ${pass}x${sessions}: ${r.msgPerS.toFixed(1)} msg/s, p50 ${fmt(r.p50)} ms, filter ${fmt(r.cpu.filter, 2)} clamd ${fmt(r.cpu.clamd, 2)} courier ${fmt(r.cpu.courier, 2)} ms/msg${r.problems.length ? `, ${r.problems.length} PROBLEMS` : ''}`);
          const where = `INVALID RUN ${m.label}, ${first ? 'first pass, ' : warm > 0 ? `warm-up pass ${warm}, ` : ''}${sessions} sessions, round ${round}`;
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
  const { modes: av, skipped } = availableModes();
  // an optional mode (metrics on) runs only when --modes names it
  let modes = courierModes(av).filter((m) => (ctx.modes === undefined ? m.av?.optional !== true : ctx.modes.includes(m.id)));
  const peerWhy = peerMissing();
  if (peerWhy && modes.some((m) => m.kind === 'peer')) {
    problems.push(`PEER NOT RUN: ${peerWhy}`);
    modes = modes.filter((m) => m.kind !== 'peer');
  }
  const mix = generateMix(ctx.messages);
  const clamd = await ctx.clamd();
  const runs = await withFileLock(ctx.courierLock, ctx.log, () => runAll(ctx, modes, clamd, mix, problems));
  return courierReport(ctx, modes, runs, mix, problems, skipped);
}

