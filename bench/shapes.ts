/**
 * MIME extraction cost by message shape: CPU ms per MB of input for extractParts() on an
 * ordinary message (the baseline) and on shapes built to make a parser work hard, each at a
 * fixed input size, with the ratio to the baseline and the ratio of 2x the input to 1x (~2
 * when the cost is linear). Also the abort latency per shape: the time from the moment the
 * request's signal should fire to the moment extractParts() rejects (a loop that does not
 * yield delays the timer itself, so that counts too), the worst of deadlines spread over the
 * run so that each phase is hit.
 *
 * What it measures is the library alone (all readings: mailsplit, the lenient walker, the
 * embedded post-pass; parts hashed and spilled to disk), the message read in place as the
 * scan pipeline reads it. CPU time is process.cpuUsage() (user + system, every thread: the
 * thread pool's reads and writes count). AVFILTER_BENCH_SHAPES_MB sets the size (default 4),
 * AVFILTER_BENCH_SHAPES filters the shapes by name (a substring).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput } from '../src/mime/index.js';
import { SHAPES } from '../test/helpers/shapes.js';
import { table, type BenchContext, type SectionReport } from './report.js';

export interface ShapeRow {
  name: string;
  sizeMB: number;
  /** CPU ms per MB of input (median of the rounds). */
  msPerMB: number;
  /** msPerMB / the baseline's. */
  ratio: number;
  /** CPU of the 2x input / CPU of the 1x input. */
  growth: number;
  /** "ok", or the limit code the extraction ended with. */
  outcome: string;
  /** Worst ms from a deadline to the rejection; undefined when every run finished first. */
  abortMs: number | undefined;
}

const ROUNDS = Number(process.env.AVFILTER_BENCH_SHAPES_ROUNDS ?? 3);
const SIZE_MB = Number(process.env.AVFILTER_BENCH_SHAPES_MB ?? 4);
/** Deadlines for the abort latency, as fractions of the shape's own run time. */
const ABORT_AT = [0.1, 0.3, 0.5, 0.7, 0.9];

async function cpuMs(fn: () => Promise<void>): Promise<number> {
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function extractOnce(path: string, work: string, signal?: AbortSignal): Promise<string> {
  const x = await extractParts(MessageInput.fromFile(path), { limits: DEFAULT_MIME_LIMITS, tmpdir: work, ...(signal ? { signal } : {}) });
  await x.dispose();
  return x.limit?.code ?? 'ok';
}

/**
 * The worst abort latency over deadlines at ABORT_AT of the shape's own run time (so it fires
 * in each phase: the standard reading, the lenient one, the post-pass): ms from the moment the
 * signal should fire to the rejection. Undefined when every run finished first.
 */
async function abortLatency(path: string, work: string, runMs: number): Promise<number | undefined> {
  let worst: number | undefined;
  for (const f of ABORT_AT) {
    const after = Math.max(1, Math.round(runMs * f));
    const ac = new AbortController();
    const t0 = performance.now();
    const timer = setTimeout(() => ac.abort(new Error('deadline')), after);
    try {
      await extractOnce(path, work, ac.signal);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EABORTED') throw err;
      const late = performance.now() - (t0 + after);
      worst = Math.max(worst ?? 0, late);
    } finally {
      clearTimeout(timer);
    }
  }
  return worst;
}

async function wallMs(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function benchShapes(): Promise<ShapeRow[]> {
  const filter = process.env.AVFILTER_BENCH_SHAPES;
  const dir = await mkdtemp(join(tmpdir(), 'avf-bench-shapes-'));
  try {
    const work = join(dir, 'work');
    await mkdir(work);
    const rows: ShapeRow[] = [];
    let base: number | undefined;
    for (const [i, shape] of SHAPES.entries()) {
      if (i > 0 && filter !== undefined && !shape.name.includes(filter)) continue;
      const size = SIZE_MB * 1e6;
      const one = join(dir, 'one.eml');
      const two = join(dir, 'two.eml');
      const m1 = shape.make(size);
      await writeFile(one, m1);
      await writeFile(two, shape.make(2 * size));
      let outcome = await extractOnce(one, work); // warm-up
      const t1: number[] = [];
      const t2: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        t1.push(await cpuMs(async () => void (outcome = await extractOnce(one, work))));
        t2.push(await cpuMs(async () => void (await extractOnce(two, work))));
      }
      const abortMs = await abortLatency(two, work, await wallMs(async () => void (await extractOnce(two, work))));
      const mb = m1.length / 1e6;
      const msPerMB = median(t1) / mb;
      base ??= msPerMB;
      rows.push({ name: shape.name, sizeMB: mb, msPerMB, ratio: msPerMB / base, growth: median(t2) / median(t1), outcome, abortMs });
    }
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}


/** The "shapes" section of npm run bench. */
export async function shapesSection(_ctx: BenchContext): Promise<SectionReport> {
  const rows = await benchShapes();
  const worst = rows.reduce((a, r) => (r.ratio > a.ratio ? r : a), rows[0]!);
  return {
    title: 'MIME extraction cost by message shape',
    markdown: [
      `CPU ms per MB of input for extractParts() (every reading), median of ${ROUNDS} rounds; ratio to the ordinary message (the first row); growth = CPU at 2x the input / CPU at 1x (about 2 when linear); abort = worst ms from a deadline to the rejection. Outcome: ok, or the limit that ends it (a 451, never "clean").`,
      table(['shape', 'MB', 'CPU ms/MB', 'x baseline', 'growth 2x', 'outcome', 'abort ms'], rows.map((r) => [
        r.name, r.sizeMB.toFixed(1), r.msPerMB.toFixed(1), r.ratio.toFixed(1), r.growth.toFixed(2), r.outcome, r.abortMs === undefined ? 'done first' : r.abortMs.toFixed(0),
      ])),
    ].join('\n\n'),
    summary: [`MIME shapes: ${rows.length} shapes, worst ${worst.name} at ${worst.ratio.toFixed(1)}x the ordinary message per MB; worst growth at 2x ${Math.max(...rows.map((r) => r.growth)).toFixed(2)}`],
    problems: [],
  };
}
