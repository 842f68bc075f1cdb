/**
 * Section "filter": the mix without Courier. The messages are written to a spool directory as
 * Courier would leave them (spool.ts) and sent through avfilter's socket by a client speaking
 * the courierfilter protocol (avfilter --foreground, private config, clamd engine, infected mail
 * rejected), against clamd alone (zINSTREAM of each whole data file), at concurrency 1 and 4.
 * Interleaved: one warm-up round, then rounds of (avfilter x1, clamd x1, avfilter x4, clamd x4).
 *
 * Per run: msg/s, request→reply latency, CPU ms per message of avfilter's process tree and of
 * clamd, verdicts checked (clean → 2xx / "OK", EICAR → 5xx / "FOUND"); a run with a wrong
 * verdict or an error is invalid and reported as a problem.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAvfilter } from './avfilter-daemon.js';
import { clamdInstream, courierfilterRequest } from './filter-client.js';
import { describeMix, generateMix } from './mix.js';
import { treeCpuMs } from './proc.js';
import { type BenchContext, type SectionReport, table } from './report.js';
import { pool } from './pool.js';
import { type SpoolEntry, writeSpool } from './spool.js';
import { fmt, median, percentile, ratio } from './stats.js';

const CONCURRENCIES = [1, 4] as const;
const REQUEST_TIMEOUT_MS = 60_000;
type Target = 'avfilter' | 'clamd';
const LABEL: Record<Target, string> = { avfilter: 'avfilter (clamd engine)', clamd: 'clamd alone (zINSTREAM)' };

interface FilterRun {
  target: Target;
  concurrency: number;
  round: number;
  msgPerS: number;
  p50: number;
  p95: number;
  avfilterCpu: number;
  clamdCpu: number;
  problems: string[];
}

async function runOnce(target: Target, spool: readonly SpoolEntry[], concurrency: number, round: number, sockets: { avfilter: string; clamd: string }, pids: { avfilter: () => number[]; clamd: number }): Promise<FilterRun> {
  const lat: number[] = [];
  const problems: string[] = [];
  const cpu = (): [number, number] => [treeCpuMs(pids.avfilter()), treeCpuMs([pids.clamd])];
  const before = cpu();
  const t0 = performance.now();
  await pool(spool, concurrency, async (e) => {
    try {
      if (target === 'avfilter') {
        const r = await courierfilterRequest(sockets.avfilter, e.dataPath, [e.controlPath], REQUEST_TIMEOUT_MS);
        lat.push(r.latencyMs);
        const want = e.message.infected ? '5' : '2';
        if (r.reply[0] !== want) problems.push(`${e.message.kind} #${e.message.index}: expected ${want}xx, got ${JSON.stringify(r.reply.trim().slice(0, 120))}`);
      } else {
        const r = await clamdInstream(sockets.clamd, e.dataPath, REQUEST_TIMEOUT_MS);
        lat.push(r.latencyMs);
        const ok = e.message.infected ? / FOUND\0$/.test(r.reply) : /: OK\0$/.test(r.reply);
        if (!ok) problems.push(`${e.message.kind} #${e.message.index}: clamd answered ${JSON.stringify(r.reply)}`);
      }
    } catch (err) {
      problems.push(`${e.message.kind} #${e.message.index}: ${(err as Error).message}`);
    }
  });
  const wallMs = performance.now() - t0;
  const after = cpu();
  const n = spool.length;
  return {
    target, concurrency, round,
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
  const av = await startAvfilter({ engine: 'clamd', clamdSocket: clamd.socketPath, spoolDirs: [dir] });
  try {
    const spool = writeSpool(dir, mix);
    const pids = { avfilter: () => { const p = av.pid(); return p === undefined ? [] : [p]; }, clamd: clamd.pid };
    for (let round = 0; round <= ctx.rounds; round++) {
      for (const c of CONCURRENCIES) {
        for (const target of ['avfilter', 'clamd'] as const) {
          const r = await runOnce(target, spool, c, round, { avfilter: av.socketPath, clamd: clamd.socketPath }, pids);
          runs.push(r);
          ctx.log(`filter: round ${round}${round === 0 ? ' (warm-up)' : ''} ${target} x${c}: ${r.msgPerS.toFixed(1)} msg/s, p50 ${fmt(r.p50)} ms, avfilter ${fmt(r.avfilterCpu, 2)} clamd ${fmt(r.clamdCpu, 2)} ms/msg${r.problems.length ? `, ${r.problems.length} PROBLEMS` : ''}`);
          for (const p of r.problems.slice(0, 5)) problems.push(`INVALID RUN filter alone, ${LABEL[target]}, concurrency ${c}, round ${round}: ${p}`);
        }
      }
    }
  } finally {
    await av.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const measured = runs.filter((r) => r.round > 0);
  const cell = (t: Target, c: number): FilterRun[] => measured.filter((r) => r.target === t && r.concurrency === c);
  const med = (rs: FilterRun[], f: (r: FilterRun) => number): number => median(rs.map(f));
  const rows: string[][] = [];
  const summary: string[] = ['filter alone:'];
  for (const c of CONCURRENCIES) {
    const base = med(cell('clamd', c), (r) => r.msgPerS);
    for (const t of ['avfilter', 'clamd'] as const) {
      const rs = cell(t, c);
      const bad = rs.some((r) => r.problems.length) ? ' **INVALID**' : '';
      const mps = med(rs, (r) => r.msgPerS);
      rows.push([String(c), LABEL[t] + bad, fmt(mps), t === 'avfilter' ? ratio(mps, base) : '1.00', fmt(med(rs, (r) => r.p50)), fmt(med(rs, (r) => r.p95)),
        t === 'avfilter' ? fmt(med(rs, (r) => r.avfilterCpu), 2) : '–', fmt(med(rs, (r) => r.clamdCpu), 2)]);
      summary.push(`  x${c} ${LABEL[t].padEnd(26)} ${fmt(mps).padStart(6)} msg/s${t === 'avfilter' ? ` (÷clamd alone ${ratio(mps, base)})` : ''}, p50 ${fmt(med(rs, (r) => r.p50))} ms, avfilter ${t === 'avfilter' ? fmt(med(rs, (r) => r.avfilterCpu), 2) : '–'} / clamd ${fmt(med(rs, (r) => r.clamdCpu), 2)} ms CPU/msg${bad}`);
    }
  }
  const raw = runs.map((r) => [String(r.concurrency), LABEL[r.target], r.round === 0 ? '0 (warm-up)' : String(r.round), fmt(r.msgPerS), fmt(r.p50), fmt(r.p95), fmt(r.avfilterCpu, 2), fmt(r.clamdCpu, 2), String(r.problems.length)]);
  const md = [
    `Mix: ${describeMix(mix)}, written as Courier's data and control files. avfilter runs with --foreground and a private config (clamd engine over the unix socket, infected = "reject"); ` +
      `the client sends each request as Courier does (data path, control path, empty line) and reads the reply. clamd alone gets each whole data file by zINSTREAM at the same concurrency. ` +
      `One warm-up round, then ${ctx.rounds} measured rounds, interleaved; medians. Latency = first request byte written → reply.`,
    table(['concurrency', 'target', 'msg/s', '÷ clamd alone', 'p50 ms', 'p95 ms', 'avfilter CPU ms/msg', 'clamd CPU ms/msg'], rows),
    '### Every run (raw)',
    table(['concurrency', 'target', 'round', 'msg/s', 'p50', 'p95', 'avfilter CPU', 'clamd CPU', 'problems'], raw),
  ].join('\n\n');
  return { title: 'Filter alone (no Courier)', markdown: md, summary, problems };
}
