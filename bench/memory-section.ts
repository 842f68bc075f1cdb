/**
 * Section "memory": avfilter's resident memory, filter alone (avfilter --foreground, private
 * config), read from /proc for the pid in its pid file and all its descendants.
 *
 * Peak: one message of about 1 MB, 25 MB and 100 MB (a base64 attachment of pseudo-random
 * bytes, written as Courier's data file), each in a fresh avfilter, with the clamd engine (clamd
 * and avfilter limits raised so the whole message is scanned) and with the embedded engine.
 * Reported: RSS after start (idle), the peaks of the summed RSS and PSS sampled every 20 ms, the
 * largest PSS of one worker, and VmHWM. Target: the 100 MB message's peak PSS ≤ 128 MiB, for the
 * tree and for the worker alone.
 *
 * Idle return (memory-idle.ts): bursts of large messages and bombs, then the tree's memory every
 * second; target: back to ≤ 160 MiB RSS (master + workers) within 30 s of the last reply.
 *
 * Growth: the mix through one avfilter (clamd engine, 4 at a time) for N messages; RSS after a
 * warm-up and then every N/10 messages; growth = the last reading minus the one after warm-up.
 *
 * MB in this section's tables = MiB (/proc's kB are KiB), except message sizes (10^6 bytes).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GiB } from '../test/helpers/bombs.js';
import { type AvfilterOptions, startAvfilter } from './avfilter-daemon.js';
import { writeBigMessage, writeZipBombMessage } from './big-message.js';
import { courierfilterRequest } from './filter-client.js';
import { generateMix } from './mix.js';
import { pool } from './pool.js';
import { type IdleResult, type IdleScenario, idleReturn } from './memory-idle.js';
import { memoryHeadline, type PeakRow } from './memory-headline.js';
import { sampleMemory, treeMemory } from './proc.js';
import { type BenchContext, type SectionReport, table } from './report.js';
import { controlFile, queueId, writeSpool } from './spool.js';
import { fmt } from './stats.js';

const MB = 1e6;
const SAMPLE_MS = 20;
// A 100 MB message takes clamd tens of seconds to parse here; every deadline gets room.
const BIG_TIMEOUT_S = 900;
const GROWTH_CONCURRENCY = 4;
const LIMITS = {
  top: [`request_timeout = ${BIG_TIMEOUT_S}`],
  clamd: ['max_stream_size = "200M"', `scan_timeout = ${BIG_TIMEOUT_S}`],
  yara: ['max_scan_size = "200M"', `scan_timeout = ${BIG_TIMEOUT_S}`],
};

async function peakOne(engine: 'clamd' | 'yara', clamdSocket: string, data: string, control: string, size: number): Promise<PeakRow> {
  const opts: AvfilterOptions = { engine, clamdSocket, top: LIMITS.top, engineExtra: engine === 'clamd' ? LIMITS.clamd : LIMITS.yara };
  const av = await startAvfilter(opts);
  try {
    const roots = (): number[] => { const p = av.pid(); return p === undefined ? [] : [p]; };
    // let start-up work settle so "idle" is idle
    await new Promise((r) => setTimeout(r, 1000));
    const idle = treeMemory(roots());
    const sampler = sampleMemory(roots, SAMPLE_MS);
    const t0 = performance.now();
    let reply: string;
    try {
      reply = (await courierfilterRequest(av.socketPath, data, [control], (BIG_TIMEOUT_S + 60) * 1000)).reply.trim();
    } catch (err) {
      reply = `ERROR ${(err as Error).message}`;
    }
    const seconds = (performance.now() - t0) / 1000;
    const m = sampler.stop();
    return {
      engine, sizeMB: size / MB, idleMB: idle.rssKb / 1024, peakMB: m.peakRssKb / 1024, peakPssMB: m.peakPssKb / 1024, workerPeakPssMB: m.peakWorkerPssKb / 1024, hwmSumMB: m.last.hwmSumKb / 1024, hwmMaxMB: m.last.hwmMaxKb / 1024,
      processes: m.last.processes, seconds, reply,
    };
  } finally {
    await av.stop();
  }
}

interface GrowthPoint {
  messages: number;
  rssMB: number;
  pssMB: number;
}

/** Least-squares slope of y over x. */
function slope(points: ReadonlyArray<{ x: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const sxy = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0);
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return sxx === 0 ? NaN : sxy / sxx;
}

export async function memorySection(ctx: BenchContext): Promise<SectionReport> {
  const clamd = await ctx.clamd();
  const dir = mkdtempSync(join(tmpdir(), 'avf-bench-mem-'));
  const problems: string[] = [];
  const peaks: PeakRow[] = [];
  // 100 MB even in a quick run: its peak is a headline target
  const sizes = ctx.quick ? [1, 100] : [1, 25, 100];
  const idle: IdleResult[] = [];
  const idleWindowS = ctx.quick ? 35 : 60;
  // Measured: 10,000 messages (1,000 quick) after a warm-up of 5,000 (500): the heaps of the
  // master (and of its log thread) and of the worker size themselves over the first few
  // thousand messages (measured: flat after ~5,000, e.g. 30,000 messages at 113-114 MB for
  // the worker); a leak shows as a slope after that
  const measured = ctx.quick ? 1000 : 10_000;
  const warmUp = measured / 2;
  const growthTotal = warmUp + measured;
  const growth: GrowthPoint[] = [];
  let growthErrors = 0;
  try {
    const control = join(dir, 'C-big');
    writeFileSync(control, controlFile(generateMix(1)[0]!, queueId(999999), 'avtest@avfilter.test'));
    for (const mb of sizes) {
      const data = join(dir, `D-big-${mb}`);
      const size = await writeBigMessage(data, mb * MB);
      for (const engine of ['clamd', 'yara'] as const) {
        const row = await peakOne(engine, clamd.socketPath, data, control, size);
        peaks.push(row);
        ctx.log(`memory: ${engine} ${fmt(row.sizeMB)} MB: peak RSS ${fmt(row.peakMB)} MB (idle ${fmt(row.idleMB)}), ${fmt(row.seconds)} s, reply ${row.reply.slice(0, 60)}`);
        if (!row.reply.startsWith('2')) problems.push(`memory: the ${fmt(row.sizeMB)} MB clean message through avfilter (${engine}) got ${JSON.stringify(row.reply.slice(0, 200))}, not 2xx`);
      }
      rmSync(data, { force: true });
    }

    for (const sc of await idleScenarios(dir, ctx.quick)) {
      const r = await idleReturn(sc, idleWindowS, ctx.log);
      idle.push(r);
      problems.push(...r.problems);
      ctx.log(`memory: idle after ${sc.name}: RSS ${fmt(r.readings[0]?.rssMiB)} MiB at the last reply, ${fmt(r.atTarget?.rssMiB)} MiB at ${r.atTarget?.t ?? '–'} s, ${fmt(r.readings.at(-1)?.rssMiB)} MiB at ${r.readings.at(-1)?.t ?? '–'} s`);
    }

    const mix = generateMix(ctx.messages);
    const spool = writeSpool(join(dir, 'spool'), mix);
    const av = await startAvfilter({ engine: 'clamd', clamdSocket: clamd.socketPath });
    try {
      const roots = (): number[] => { const p = av.pid(); return p === undefined ? [] : [p]; };
      // 20 readings: a heap grows and shrinks in steps, one reading at the end says little
      const step = measured / 20;
      const reading = (messages: number): GrowthPoint => {
        const m = treeMemory(roots());
        return { messages, rssMB: m.rssKb / 1024, pssMB: m.pssKb / 1024 };
      };
      growth.push(reading(0));
      for (let done = 0; done < growthTotal; done += step) {
        const batch = Array.from({ length: step }, (_, i) => spool[(done + i) % spool.length]!);
        await pool(batch, GROWTH_CONCURRENCY, async (e) => {
          try {
            const r = await courierfilterRequest(av.socketPath, e.dataPath, [e.controlPath], 60_000);
            if (r.reply[0] !== (e.message.infected ? '5' : '2')) growthErrors++;
          } catch {
            growthErrors++;
          }
        });
        growth.push(reading(done + step));
        ctx.log(`memory: growth ${done + step}/${growthTotal} messages, RSS ${fmt(growth.at(-1)!.rssMB)} MB`);
      }
    } finally {
      await av.stop();
    }
    if (growthErrors) problems.push(`memory: ${growthErrors} of ${growthTotal} messages in the growth run got a wrong verdict or an error`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // growth is measured from the reading after the warm-up, and as the trend of the readings
  // after it (a leak is a slope; a heap that sizes itself is a plateau)
  const afterWarm = growth.filter((g) => g.messages >= warmUp);
  const warm = afterWarm[0];
  const last = growth.at(-1);
  const growthMB = warm && last ? last.rssMB - warm.rssMB : NaN;
  const trendMB = slope(afterWarm.map((g) => ({ x: g.messages, y: g.rssMB }))) * 10_000;
  const trendPssMB = slope(afterWarm.map((g) => ({ x: g.messages, y: g.pssMB }))) * 10_000;
  const md = [
    'Peak: a fresh avfilter --foreground per message (clamd: max_stream_size 200M, clamd StreamMaxLength/MaxFileSize 200M; embedded: max_scan_size 200M), the message a base64 attachment of pseudo-random bytes. ' +
      `RSS is summed over the pid in avfilter's pid file and all its descendants (the master and its workers), sampled every ${SAMPLE_MS} ms; PSS likewise, but pages the processes share (node itself) counted once; VmHWM is each process's own peak (sum and largest).`,
    table(['engine', 'message MB', 'idle RSS MB', 'peak RSS MB (sampled)', 'peak PSS MB (sampled)', 'worker peak PSS MB', 'VmHWM sum MB', 'VmHWM max MB', 'processes', 'seconds', 'reply'],
      peaks.map((p) => [p.engine, fmt(p.sizeMB), fmt(p.idleMB), fmt(p.peakMB), fmt(p.peakPssMB), fmt(p.workerPeakPssMB), fmt(p.hwmSumMB), fmt(p.hwmMaxMB), String(p.processes), fmt(p.seconds), p.reply.slice(0, 60)])),
    '### Idle return after bursts',
    `A fresh avfilter --foreground (embedded engine, default limits but request_timeout) per burst; every message of a burst sent at once; from the last reply on, RSS and PSS of the tree read every second for ${idleWindowS} s. ` +
      '"master" is the pid in the pid file, "workers" all its descendants.',
    table(['burst', 'before RSS MB', 'burst s', 'burst peak RSS / PSS MB', 'RSS at last reply MB', 'at 10 s', 'at 30 s (master + workers), PSS', `at ${idleWindowS} s`, 'processes', 'replies'],
      idle.map((r) => {
        const at = (t: number): string => fmt(r.readings.find((x) => x.t >= t)?.rssMiB);
        const a = r.atTarget;
        return [r.name, fmt(r.before.rssMiB), fmt(r.burstSeconds), `${fmt(r.burstPeakRssMiB)} / ${fmt(r.burstPeakPssMiB)}`, at(0), at(10),
          a ? `${fmt(a.rssMiB)} (${fmt(a.masterRssMiB)} + ${fmt(a.workersRssMiB)}), ${fmt(a.pssMiB)}` : '–', at(idleWindowS), String(r.readings.at(-1)?.processes ?? '–'),
          [...new Set(r.replies.map((x) => x.slice(0, 40)))].join('; ')];
      })),
    ...idle.map((r) => `Every reading after ${r.name} (s: RSS / PSS MB): ${r.readings.map((x) => `${x.t}: ${x.rssMiB.toFixed(0)}/${x.pssMiB.toFixed(0)}`).join(', ')}`),
    `### RSS over ${measured} messages`,
    `The mix (${ctx.messages} messages, cycled) through one avfilter (clamd engine), ${GROWTH_CONCURRENCY} at a time; the first ${warmUp} messages are the warm-up (the heaps size themselves), then ${measured} are measured. ` +
      `Growth after warm-up: **${fmt(growthMB)} MB** (last reading − first after warm-up); trend (least-squares slope of the readings after warm-up): **${fmt(trendMB)} MB RSS, ${fmt(trendPssMB)} MB PSS per 10,000 messages** (${growthErrors} wrong verdicts or errors).`,
    table(['messages', 'RSS MB', 'PSS MB'], growth.map((g) => [String(g.messages), fmt(g.rssMB), fmt(g.pssMB)])),
  ].join('\n\n');
  const summary = ['memory:', ...peaks.map((p) => `  ${p.engine.padEnd(5)} ${fmt(p.sizeMB).padStart(6)} MB message: peak RSS ${fmt(p.peakMB)} MB, PSS ${fmt(p.peakPssMB)} MB (VmHWM max ${fmt(p.hwmMaxMB)} MB), ${fmt(p.seconds)} s`),
    `  growth over ${measured} messages after a warm-up of ${warmUp}: ${fmt(growthMB)} MB; trend ${fmt(trendMB)} MB RSS / ${fmt(trendPssMB)} MB PSS per 10,000`];
  return { title: 'Memory (filter alone)', headline: memoryHeadline(peaks, idle, idleWindowS), markdown: md, summary, problems };
}

/** The bursts of the idle-return measure (8 x 30 MB only in a quick run). */
async function idleScenarios(dir: string, quick: boolean): Promise<IdleScenario[]> {
  const big = join(dir, 'D-idle-30');
  await writeBigMessage(big, 30 * MB);
  const bomb = join(dir, 'D-idle-bomb');
  writeZipBombMessage(bomb, GiB);
  const mix = generateMix(1)[0]!;
  const controls = Array.from({ length: 16 }, (_, i) => {
    const c = join(dir, `C-idle-${i}`);
    writeFileSync(c, controlFile(mix, queueId(990000 + i), 'avtest@avfilter.test'));
    return c;
  });
  const burst = (file: string, count: number): Pick<IdleScenario, 'files' | 'controls'> => ({ files: Array.from({ length: count }, () => file), controls: controls.slice(0, count) });
  const all: IdleScenario[] = [
    { name: '8 messages of 30 MB at once', ...burst(big, 8), expect: 'accepted' },
    { name: '16 messages of 30 MB at once', ...burst(big, 16), expect: 'accepted' },
    { name: '2 zip bombs of 1 GiB (zeros) at once', ...burst(bomb, 2), expect: 'not accepted' },
  ];
  return quick ? all.slice(0, 1) : all;
}
