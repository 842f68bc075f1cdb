/**
 * Section "filter": the mix without Courier's load. The messages are written to a spool directory
 * as Courier leaves them (spool.ts): each data file as a real Courier wrote it, captured once
 * through Courier (courier-capture.ts; --quick, or no Courier: the mix as generated, and the
 * report says which) and sent through avfilter's socket by a client speaking
 * the courierfilter protocol, one avfilter --foreground per mode of avfilter-modes.ts with the
 * clamd engine (private config, infected mail rejected; `--modes` picks some), against clamd
 * alone (zINSTREAM of each whole data file), at concurrency 1 and 4, and the default mode and
 * clamd alone once more at Courier's pace (one message at a time, PACED_GAP_MS apart).
 * Each avfilter first gets `--warm` messages at concurrency 4 (not reported). Interleaved: one
 * warm-up round, then rounds of (every avfilter mode x1, clamd x1, every avfilter mode x4,
 * clamd x4, the default mode paced, clamd paced).
 *
 * Per run: msg/s, request→reply latency, CPU ms per message of avfilter's process tree and of
 * clamd, verdicts checked (clean → 2xx / "OK", EICAR → 5xx / "FOUND"); a run with a wrong
 * verdict or an error is invalid and reported as a problem.
 *
 * Headline: the clamd routing comparison at concurrency 4, each ratio computed within its round
 * (a mode's clamd CPU and avfilter + clamd CPU over the default mode's, and over clamd alone's).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AvfilterMode, availableModes } from './avfilter-modes.js';
import { startScraper, type Scraper } from './metrics-scraper.js';
import { type RunningAvfilter, startAvfilter } from './avfilter-daemon.js';
import { clamdInstream, courierfilterRequest } from './filter-client.js';
import { captureCourierData } from './courier-capture.js';
import { courierDataFile, describeMix, generateMix } from './mix.js';
import { treeCpuMs } from './proc.js';
import { type BenchContext, type SectionReport, table } from './report.js';
import { pool } from './pool.js';
import { queueId, type SpoolEntry, writeSpool } from './spool.js';
import { fmt, median, percentile, ratio } from './stats.js';
import { fmtSpread, spread } from './verdict.js';

const CONCURRENCIES = [1, 4] as const;
/**
 * "At Courier's pace": one message at a time with this pause after each reply, as a filter
 * behind a Courier that takes ~10–50 ms of its own CPU per message sees its mail. Between two
 * messages the process sleeps, and what it runs next runs with cold caches (on a virtual
 * machine also on a woken virtual CPU): its CPU per message then is what it costs through
 * Courier, where the back-to-back runs measure it warm.
 */
const PACED_GAP_MS = 25;
const HEADLINE_CONCURRENCY = 4;
const REQUEST_TIMEOUT_MS = 60_000;
/** the target id of clamd alone; the others are avfilter mode ids */
const CLAMD = 'clamd-alone';
const CLAMD_LABEL = 'clamd alone (zINSTREAM)';

interface FilterRun {
  target: string;
  concurrency: number;
  /** one at a time, PACED_GAP_MS after each reply (concurrency 1) */
  paced?: boolean;
  round: number;
  msgPerS: number;
  p50: number;
  p95: number;
  avfilterCpu: number;
  clamdCpu: number;
  problems: string[];
}

/**
 * The top-level config lines of the section's avfilter daemons. A worker idle for 15 s that holds
 * more than worker_idle_memory_limit is replaced by a fresh one (the memory section measures
 * that): between its runs here a mode can wait longer than that, and its next run would be
 * measured on a cold worker; so none is replaced. `metricsSock`: metrics on that unix socket.
 */
export function filterDaemonTop(metricsSock?: string): string[] {
  return ['worker_idle_memory_limit = 0', ...(metricsSock !== undefined ? [`metrics = ${JSON.stringify(`unix:${metricsSock}`)}`] : [])];
}

/** One target: an avfilter (its socket and pids) or clamd alone (no avfilter). */
interface Target {
  id: string;
  label: string;
  av?: RunningAvfilter;
}

async function runOnce(target: Target, spool: readonly SpoolEntry[], concurrency: number, round: number, clamdSocket: string, clamdPid: number, gapMs = 0): Promise<FilterRun> {
  const lat: number[] = [];
  const problems: string[] = [];
  const avPids = (): number[] => {
    const p = target.av?.pid();
    return p === undefined ? [] : [p];
  };
  const cpu = (): [number, number] => [treeCpuMs(avPids()), treeCpuMs([clamdPid])];
  const before = cpu();
  const t0 = performance.now();
  await pool(spool, concurrency, async (e) => {
    try {
      if (target.av) {
        const r = await courierfilterRequest(target.av.socketPath, e.dataPath, [e.controlPath], REQUEST_TIMEOUT_MS);
        lat.push(r.latencyMs);
        const want = e.message.infected ? '5' : '2';
        if (r.reply[0] !== want) problems.push(`${e.message.kind} #${e.message.index}: expected ${want}xx, got ${JSON.stringify(r.reply.trim().slice(0, 120))}`);
      } else {
        const r = await clamdInstream(clamdSocket, e.dataPath, REQUEST_TIMEOUT_MS);
        lat.push(r.latencyMs);
        const ok = e.message.infected ? / FOUND\0$/.test(r.reply) : /: OK\0$/.test(r.reply);
        if (!ok) problems.push(`${e.message.kind} #${e.message.index}: clamd answered ${JSON.stringify(r.reply)}`);
      }
    } catch (err) {
      problems.push(`${e.message.kind} #${e.message.index}: ${(err as Error).message}`);
    }
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
  });
  const wallMs = performance.now() - t0;
  const after = cpu();
  const n = spool.length;
  return {
    target: target.id, concurrency, round, ...(gapMs > 0 ? { paced: true } : {}),
    msgPerS: n / (wallMs / 1000),
    p50: percentile(lat, 50),
    p95: percentile(lat, 95),
    avfilterCpu: (after[0] - before[0]) / n,
    clamdCpu: (after[1] - before[1]) / n,
    problems,
  };
}

export async function filterSection(ctx: BenchContext): Promise<SectionReport> {
  const clamd = await ctx.clamd();
  const mix = generateMix(ctx.messages);
  const dir = mkdtempSync(join(tmpdir(), 'avf-bench-spool-'));
  const problems: string[] = [];
  const runs: FilterRun[] = [];
  const { modes: available, skipped } = availableModes();
  const modes = available.filter((m) => m.engine === 'clamd' && m.rewrites !== true && (ctx.modes === undefined ? m.optional !== true : ctx.modes.includes(m.id)));
  const scrapers: Scraper[] = [];
  const targets: Target[] = [];
  // the data files as a real Courier writes them (--quick: as generated, no Courier started)
  let captured: Buffer[] | undefined;
  let spoolText = 'written as Courier\'s data and control files (a Received: line before each message as generated)';
  if (!ctx.quick) {
    try {
      ctx.log('filter: capturing the mix as Courier writes it');
      captured = await captureCourierData(mix, ctx.courierLock, ctx.log);
      const kib = (n: number): string => fmt(n / mix.length / 1024, 1);
      const generated = mix.reduce((n, m) => n + courierDataFile(m, queueId(m.index)).length, 0);
      spoolText = `each data file as Courier's submit wrote it, captured once through a real Courier (the probe filter, test/helpers/probe-filter.mjs): its Received: line, and its MIME rewrite (a multipart message gets Courier's own boundaries and its MIME notice as the preamble); ` +
        `avg ${kib(captured.reduce((n, b) => n + b.length, 0))} KiB per data file, against ${kib(generated)} KiB as generated. Control files as Courier writes them`;
    } catch (err) {
      // not a run's fault: the figures stand, for the mix as generated, and the report says so
      spoolText += `; capturing the mix through Courier failed (${(err as Error).message.split('\n')[0]})`;
      ctx.log(`filter: ${spoolText}`);
    }
  }
  try {
    for (const m of modes) {
      const metricsSock = join(dir, `${m.id}-metrics.sock`);
      const top = filterDaemonTop(m.metrics ? metricsSock : undefined);
      targets.push({ id: m.id, label: m.label, av: await startAvfilter({ engine: 'clamd', engineTables: m.engines(clamd.socketPath), spoolDirs: [dir], top, ...(m.root !== undefined ? { root: m.root } : {}) }) });
      if (m.metrics) scrapers.push(startScraper(metricsSock));
    }
    targets.push({ id: CLAMD, label: CLAMD_LABEL });
    const spool = writeSpool(dir, mix, captured);
    // each avfilter warmed up before any run counts, as in the courier section: a JIT-compiled
    // filter keeps getting cheaper for thousands of messages after its start
    const warmPasses = Math.ceil(ctx.warm / spool.length);
    for (const target of targets.filter((t) => t.av !== undefined)) {
      for (let i = 0; i < warmPasses; i++) {
        const r = await runOnce(target, spool, HEADLINE_CONCURRENCY, 0, clamd.socketPath, clamd.pid);
        for (const p of r.problems.slice(0, 5)) problems.push(`INVALID RUN filter alone, ${target.label}, warm-up pass ${i + 1}: ${p}`);
      }
      if (warmPasses > 0) ctx.log(`filter: ${target.id} warmed up with ${warmPasses * spool.length} messages`);
    }
    for (let round = 0; round <= ctx.rounds; round++) {
      for (const c of CONCURRENCIES) {
        for (const target of targets) {
          const r = await runOnce(target, spool, c, round, clamd.socketPath, clamd.pid);
          runs.push(r);
          ctx.log(`filter: round ${round}${round === 0 ? ' (warm-up)' : ''} ${target.id} x${c}: ${r.msgPerS.toFixed(1)} msg/s, p50 ${fmt(r.p50)} ms, avfilter ${fmt(r.avfilterCpu, 2)} clamd ${fmt(r.clamdCpu, 2)} ms/msg${r.problems.length ? `, ${r.problems.length} PROBLEMS` : ''}`);
          for (const p of r.problems.slice(0, 5)) problems.push(`INVALID RUN filter alone, ${target.label}, concurrency ${c}, round ${round}: ${p}`);
        }
      }
      // at Courier's pace: the default mode and clamd alone
      for (const target of targets.filter((t) => t.id === CLAMD || t.id === modes.find((m) => m.role === 'default')?.id)) {
        const r = await runOnce(target, spool, 1, round, clamd.socketPath, clamd.pid, PACED_GAP_MS);
        runs.push(r);
        ctx.log(`filter: round ${round}${round === 0 ? ' (warm-up)' : ''} ${target.id} paced: ${r.msgPerS.toFixed(1)} msg/s, avfilter ${fmt(r.avfilterCpu, 2)} clamd ${fmt(r.clamdCpu, 2)} ms/msg${r.problems.length ? `, ${r.problems.length} PROBLEMS` : ''}`);
        for (const p of r.problems.slice(0, 5)) problems.push(`INVALID RUN filter alone, ${target.label}, at Courier's pace, round ${round}: ${p}`);
      }
    }
  } finally {
    for (const sc of scrapers) {
      const r = await sc.stop();
      ctx.log(`filter: metrics endpoint: ${r.ok} scrapes answered, ${r.failed} not`);
    }
    for (const t of targets) await t.av?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return filterReport(ctx, modes, targets, runs, mix.length, describeMix(mix), spoolText, skipped, problems);
}

function filterReport(ctx: BenchContext, modes: readonly AvfilterMode[], targets: readonly Target[], runs: readonly FilterRun[], messages: number, mixText: string, spoolText: string, skipped: readonly string[], problems: string[]): SectionReport {
  const measured = runs.filter((r) => r.round > 0 && r.paced !== true);
  const cell = (t: string, c: number): FilterRun[] => measured.filter((r) => r.target === t && r.concurrency === c);
  const med = (rs: FilterRun[], f: (r: FilterRun) => number): number => median(rs.map(f));
  const isAv = (t: string): boolean => t !== CLAMD;
  const rows: string[][] = [];
  const summary: string[] = ['filter alone (medians):'];
  for (const c of CONCURRENCIES) {
    const base = med(cell(CLAMD, c), (r) => r.msgPerS);
    for (const t of targets) {
      const rs = cell(t.id, c);
      const bad = rs.some((r) => r.problems.length) ? ' **INVALID**' : '';
      const mps = med(rs, (r) => r.msgPerS);
      const avCpu = isAv(t.id) ? fmt(med(rs, (r) => r.avfilterCpu), 2) : '–';
      rows.push([String(c), t.label + bad, fmt(mps), isAv(t.id) ? ratio(mps, base) : '1.00', fmt(med(rs, (r) => r.p50)), fmt(med(rs, (r) => r.p95)), avCpu, fmt(med(rs, (r) => r.clamdCpu), 2)]);
      summary.push(`  x${c} ${t.label.padEnd(40)} ${fmt(mps).padStart(6)} msg/s${isAv(t.id) ? ` (÷clamd alone ${ratio(mps, base)})` : ''}, p50 ${fmt(med(rs, (r) => r.p50))} ms, avfilter ${avCpu} / clamd ${fmt(med(rs, (r) => r.clamdCpu), 2)} ms CPU/msg${bad}`);
    }
  }

  // the routing comparison, per round at the headline's concurrency
  const C = HEADLINE_CONCURRENCY;
  const rounds = [...new Set(measured.map((r) => r.round))];
  const valid = (r: FilterRun | undefined): r is FilterRun => r !== undefined && r.problems.length === 0;
  const at = (t: string, n: number): FilterRun | undefined => measured.find((r) => r.target === t && r.concurrency === C && r.round === n);
  const perRound = (a: string, b: string, f: (x: FilterRun, y: FilterRun) => number): number[] =>
    rounds.flatMap((n) => {
      const x = at(a, n);
      const y = at(b, n);
      return valid(x) && valid(y) ? [f(x, y)] : [];
    });
  const def = modes.find((m) => m.role === 'default');
  const hl: string[][] = [];
  const hs: string[] = [`filter alone (no Courier), concurrency ${C}, ${rounds.length} round(s): clamd routing, CPU ms/msg and per-round ratios, median (min–max):`];
  for (const m of modes) {
    const rs = rounds.map((n) => at(m.id, n)).filter(valid);
    const sp = (f: (r: FilterRun) => number): string => fmtSpread(spread(rs.map(f)), 2);
    const vsDef = def && m.id !== def.id;
    const clamdVsDef = vsDef ? fmtSpread(spread(perRound(m.id, def.id, (x, y) => x.clamdCpu / y.clamdCpu))) : '–';
    const sumVsDef = vsDef ? fmtSpread(spread(perRound(m.id, def.id, (x, y) => (x.avfilterCpu + x.clamdCpu) / (y.avfilterCpu + y.clamdCpu)))) : '–';
    const sumVsClamd = fmtSpread(spread(perRound(m.id, CLAMD, (x, y) => (x.avfilterCpu + x.clamdCpu) / y.clamdCpu)));
    hl.push([m.label, m.routing, sp((r) => r.avfilterCpu), sp((r) => r.clamdCpu), sp((r) => r.avfilterCpu + r.clamdCpu), clamdVsDef, sumVsDef, sumVsClamd]);
    hs.push(`  ${m.label.padEnd(40)} avfilter ${sp((r) => r.avfilterCpu)}, clamd ${sp((r) => r.clamdCpu)}, both ${sp((r) => r.avfilterCpu + r.clamdCpu)}${vsDef ? `; ÷ default: clamd ${clamdVsDef}, both ${sumVsDef}` : ''}; both ÷ clamd alone ${sumVsClamd}`);
  }
  const clamdAlone = rounds.map((n) => at(CLAMD, n)).filter(valid);
  const headline = [
    `### Filter alone: clamd routing (concurrency ${C}, no Courier)`,
    `What the clamd engine sends the raw message as, side by side: CPU ms per message of avfilter (master and workers) and of clamd, median (min–max) over ${rounds.length} round(s), ` +
      `and ratios computed within each round: to the default mode, and to clamd alone scanning each whole message by zINSTREAM (${fmtSpread(spread(clamdAlone.map((r) => r.clamdCpu)))} ms of clamd CPU per message). No target: the targets are judged against the Perl peer, through Courier.`,
    table(['mode', 'raw message', 'avfilter CPU', 'clamd CPU', 'avfilter + clamd', 'clamd ÷ default', 'both ÷ default', 'both ÷ clamd alone'], hl),
  ].join('\n\n');

  // at Courier's pace against back to back (concurrency 1), within each round
  const pacedRuns = runs.filter((r) => r.round > 0 && r.paced === true);
  const paceRows: string[][] = [];
  for (const t of targets.filter((x) => pacedRuns.some((r) => r.target === x.id))) {
    const own = (r: FilterRun): number => (isAv(t.id) ? r.avfilterCpu : r.clamdCpu);
    const pairs = rounds.flatMap((n) => {
      const p = pacedRuns.find((r) => r.target === t.id && r.round === n);
      const b = measured.find((r) => r.target === t.id && r.round === n && r.concurrency === 1);
      return valid(p) && valid(b) ? [{ p, b }] : [];
    });
    const row = [t.label, isAv(t.id) ? 'avfilter' : 'clamd', fmtSpread(spread(pairs.map((x) => own(x.b))), 2), fmtSpread(spread(pairs.map((x) => own(x.p))), 2), fmtSpread(spread(pairs.map((x) => own(x.p) / own(x.b))))];
    if (isAv(t.id)) row.push(fmtSpread(spread(pairs.map((x) => x.b.clamdCpu)), 2), fmtSpread(spread(pairs.map((x) => x.p.clamdCpu)), 2));
    else row.push('–', '–');
    paceRows.push(row);
    summary.push(`  at Courier's pace (one at a time, ${PACED_GAP_MS} ms apart) ${t.label}: ${row[1]} ${row[3]} ms CPU/msg, ÷ back to back ${row[4]}`);
  }

  const raw = runs.map((r) => [r.paced ? `1 (paced)` : String(r.concurrency), targets.find((t) => t.id === r.target)?.label ?? r.target, r.round === 0 ? '0 (warm-up)' : String(r.round), fmt(r.msgPerS), fmt(r.p50), fmt(r.p95), fmt(r.avfilterCpu, 2), fmt(r.clamdCpu, 2), String(r.problems.length)]);
  const md = [
    `Mix: ${mixText}, ${spoolText}. One avfilter --foreground per mode, each with a private config (clamd engine over the unix socket, infected = "reject"); ` +
      `the client sends each request as Courier does (data path, control path, empty line) and reads the reply. clamd alone gets each whole data file by zINSTREAM at the same concurrency. ` +
      `Each avfilter first gets ${Math.ceil(ctx.warm / messages) * messages} messages at concurrency ${HEADLINE_CONCURRENCY} as its warm-up (\`--warm\`; not reported), then one warm-up round, then ${ctx.rounds} measured rounds, interleaved; medians. Latency = first request byte written → reply. ${messages} messages per run.`,
    ...(skipped.length ? [`Modes left out: ${skipped.join('; ')}.`] : []),
    table(['concurrency', 'target', 'msg/s', '÷ clamd alone', 'p50 ms', 'p95 ms', 'avfilter CPU ms/msg', 'clamd CPU ms/msg'], rows),
    "### At Courier's pace",
    `The same messages one at a time with ${PACED_GAP_MS} ms after each reply, as a filter behind Courier sees them (a Courier that takes 10–50 ms of its own CPU per message sends it 20–100 a second), against concurrency 1 back to back, in the same round: ` +
      'CPU ms per message, median (min–max) over the rounds, and the ratio within each round. Between two messages the process sleeps, and the next one runs on cold caches (on a virtual machine, on a virtual CPU woken again): ' +
      'this is why a filter costs more per message through Courier than here, and by how much differs from host to host and between programs (a larger working set loses more), so that a ratio of two filters through Courier holds only for hosts alike. The "own" CPU is avfilter\'s tree for avfilter, clamd\'s for clamd alone.',
    table(['target', 'own', 'own CPU back to back (x1)', 'own CPU at Courier\'s pace', 'paced ÷ back to back', 'its clamd back to back', 'its clamd paced'], paceRows),
    '### Every run (raw)',
    table(['concurrency', 'target', 'round', 'msg/s', 'p50', 'p95', 'avfilter CPU', 'clamd CPU', 'problems'], raw),
  ].join('\n\n');
  return { title: 'Filter alone (no Courier)', headline: { markdown: headline, summary: hs }, markdown: md, summary, problems };
}
