/**
 * Section "unpack": what the container stage costs. One payload of ~20 MB (text of
 * words drawn from a small vocabulary: compresses about as well as documents do, with EICAR at
 * its very end so a verdict of "infected" proves every byte was unpacked and scanned) is
 * attached to a message as it is, and zipped (deflate), in a 7z, in a tar.gz and bzip2-ed.
 * Each message goes through the same scan path as `avfilter -t`: the runtime built from a
 * config (createRuntime, the embedded YARA engine with the shipped rules), then scanMessage() with
 * scanDepsOf(runtime).
 *
 * Per variant: wall seconds (median of the rounds after a warm-up), CPU ms of this process (the
 * engine's and the unpackers' threads included), payload MB/s, the ratio of its time to the
 * plain attachment's (the figure: what unpacking adds), and "unpack MB/s" = payload MB over the
 * seconds it takes beyond the plain attachment. A wrong verdict is a problem (an invalid run).
 * Beside it, the 7-Zip pool alone (bench/unpack.ts: a 20 MB mixed payload unpacked by a warm
 * one-thread pool, and a thread's start cost), so the table shows how much of the cost is 7-Zip's.
 * AVFILTER_BENCH_UNPACK_MB sets the payload size (default 20).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.js';
import { createRuntime, ms, scanDepsOf, type Runtime } from '../src/app/runtime.js';
import { scanMessage } from '../src/scan/scan-message.js';
import { attachmentMessage, makeArchive } from '../test/helpers/container-corpus.js';
import { eicar } from '../test/helpers/eicar.js';
import { pseudoRandom } from '../test/helpers/mail.js';
import { type BenchContext, type SectionReport, table } from './report.js';
import { threadStartCost, unpackThroughput, type UnpackThroughputRow } from './unpack.js';
import { fmt, median } from './stats.js';

const MB = 1e6;
const PAYLOAD_MB = Number(process.env.AVFILTER_BENCH_UNPACK_MB ?? 20);
/**
 * Below this fraction of the plain attachment's time, the time an archive adds is within the
 * run-to-run noise of a shared machine: "unpack MB/s" would be a huge, meaningless number.
 */
const NOISE = 0.15;
/** Generous: a 20 MB bzip2 in WebAssembly on a loaded 2-core machine still takes seconds. */
const REQUEST_TIMEOUT_S = 600;

interface Variant {
  readonly name: string;
  readonly filename: string;
  /** The archive kind (container-corpus.ts), or undefined for the payload as it is. */
  readonly kind: string | undefined;
}

const VARIANTS: readonly Variant[] = [
  { name: 'plain attachment (baseline)', filename: 'payload.txt', kind: undefined },
  { name: 'zip (deflate)', filename: 'payload.zip', kind: 'zip-deflate' },
  { name: '7z (LZMA2)', filename: 'payload.7z', kind: '7z' },
  { name: 'tar.gz', filename: 'payload.tar.gz', kind: 'tar-gz' },
  { name: 'bzip2', filename: 'payload.txt.bz2', kind: 'bz2' },
];

/** ~`size` bytes of words from a 256-word vocabulary (one random byte per word), EICAR last. */
function payload(size: number): Buffer {
  const words = Array.from({ length: 256 }, (_, i) => Buffer.from(Array.from(pseudoRandom(3 + (i % 7), 1000 + i), (b) => 97 + (b % 26))));
  const picks = pseudoRandom(Math.ceil(size / 4), 20261201);
  const E = eicar();
  const out = Buffer.alloc(size);
  let n = 0;
  for (let i = 0; n + 16 < size - E.length - 2; i++) {
    n += words[picks[i]!]!.copy(out, n);
    out[n++] = i % 12 === 11 ? 0x0a : 0x20;
  }
  out[n++] = 0x0a;
  n += E.copy(out, n);
  out[n++] = 0x0a;
  return out.subarray(0, n);
}

interface Row {
  variant: Variant;
  messageMB: number;
  attachedMB: number;
  seconds: number;
  cpuMs: number;
  verdict: string;
}

async function scanOnce(rt: Runtime, path: string): Promise<{ seconds: number; cpuMs: number; verdict: string }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  // as src/app/test-mode.ts scans one file
  const { verdict } = await scanMessage(path, scanDepsOf(rt), AbortSignal.timeout(ms(rt.config.request_timeout)));
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const what = verdict.kind === 'infected' ? `infected (${verdict.names.join(', ')})` : verdict.kind === 'clean' ? 'clean' : `${verdict.kind}: ${'reason' in verdict ? verdict.reason : ''}`;
  return { seconds, cpuMs: (c.user + c.system) / 1000, verdict: what };
}

export async function unpackSection(ctx: BenchContext): Promise<SectionReport> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-bench-unpack-'));
  const problems: string[] = [];
  const rows: Row[] = [];
  let rt: Runtime | undefined;
  try {
    const work = join(dir, 'work');
    await mkdir(work, { mode: 0o700 });
    const cfgFile = join(dir, 'avfilter.toml');
    const cfgText = `tmpdir = "${work}"\nrequest_timeout = ${REQUEST_TIMEOUT_S}\n\n[[engine]]\ntype = "yara"\nmax_scan_size = "256M"\nscan_timeout = ${REQUEST_TIMEOUT_S}\n`;
    await writeFile(cfgFile, cfgText);
    rt = createRuntime(parseConfig(cfgText, cfgFile), { makeTmpdir: true });
    const data = payload(PAYLOAD_MB * MB);
    ctx.log(`unpack: payload ${fmt(data.length / MB)} MB; building the archives`);
    const rounds = ctx.quick ? 1 : Math.min(ctx.rounds, 3);
    for (const v of VARIANTS) {
      const attached = v.kind === undefined ? data : makeArchive(v.kind, [{ name: 'payload.txt', data }]);
      const path = join(dir, `${v.filename}.eml`);
      const msg = attachmentMessage(v.filename, attached, 'application/octet-stream', 'bench unpack');
      await writeFile(path, msg);
      await scanOnce(rt, path); // warm-up: threads started, rules compiled, caches filled
      const runs: Array<{ seconds: number; cpuMs: number; verdict: string }> = [];
      for (let r = 0; r < rounds; r++) runs.push(await scanOnce(rt, path));
      const verdict = runs[runs.length - 1]!.verdict;
      if (!verdict.startsWith('infected')) problems.push(`unpack: ${v.name}: the payload's EICAR (at its end) was not found: ${verdict.slice(0, 200)}`);
      rows.push({ variant: v, messageMB: msg.length / MB, attachedMB: attached.length / MB, seconds: median(runs.map((x) => x.seconds)), cpuMs: median(runs.map((x) => x.cpuMs)), verdict });
      ctx.log(`unpack: ${v.name}: ${fmt(rows[rows.length - 1]!.seconds, 2)} s, ${verdict.slice(0, 60)}`);
      await rm(path, { force: true });
    }
  } finally {
    await rt?.close();
    await rm(dir, { recursive: true, force: true });
  }
  let pool: UnpackThroughputRow[] = [];
  let start: { coldMs: number; warmMs: number } | undefined;
  try {
    pool = await unpackThroughput();
    start = await threadStartCost();
  } catch (err) {
    problems.push(`unpack: the 7-Zip pool alone: ${(err as Error).message}`);
  }
  const payloadMB = PAYLOAD_MB;
  const base = rows[0]?.seconds ?? NaN;
  const body = rows.map((r) => {
    const extra = r.seconds - base;
    return [
      r.variant.name, fmt(r.attachedMB, 1), fmt(r.messageMB, 1), fmt(r.seconds, 2), fmt(r.cpuMs, 0), fmt(payloadMB / r.seconds, 1),
      r.variant.kind === undefined ? '1.0' : fmt(r.seconds / base, 1), r.variant.kind === undefined ? '-' : extra > NOISE * base ? fmt(payloadMB / extra, 1) : 'within noise', r.verdict,
    ];
  });
  const archived = rows.filter((r) => r.variant.kind !== undefined);
  const worst = archived.reduce<Row | undefined>((a, r) => (a === undefined || r.seconds > a.seconds ? r : a), undefined);
  return {
    title: 'Container stage: unpack cost',
    markdown: [
      `A ${payloadMB} MB text payload (EICAR at its end) attached as it is and in four containers, each message through the scan path of \`avfilter -t\` (createRuntime + scanMessage(scanDepsOf), embedded YARA engine, shipped rules) in this process; median of ${ctx.quick ? 1 : Math.min(ctx.rounds, 3)} round(s) after a warm-up. ` +
        `MB/s = payload MB / wall s; x plain = wall s / the plain attachment's; unpack MB/s = payload MB / (wall s - the plain attachment's wall s), shown when that difference is more than ${NOISE * 100}% of the plain attachment's time. CPU ms: this process, every thread.`,
      table(['variant', 'attached MB', 'message MB', 'wall s', 'CPU ms', 'MB/s', 'x plain', 'unpack MB/s', 'verdict'], body),
      'The 7-Zip pool alone (bench/unpack.ts: a 20 MB mixed payload, one third incompressible, unpacked by a warm one-thread pool; MB/s of output, median of its rounds):',
      table(['format', 'input MB', 'output MB', 'MB/s'], pool.map((r) => [r.format, fmt(r.inputBytes / MB, 1), fmt(r.outputBytes / MB, 1), fmt(r.mbPerS, 1)])),
      start ? `A 7-Zip thread answers ${start.coldMs} ms after a new pool starts (WebAssembly compiled), ${start.warmMs} ms for a replacement thread.` : '',
    ].join('\n\n'),
    summary: [`unpack: ${payloadMB} MB payload: plain ${fmt(base, 2)} s; ${archived.map((r) => `${r.variant.name} ${fmt(r.seconds / base, 1)}x`).join(', ')}${worst ? ` (slowest ${worst.variant.name}, ${fmt(payloadMB / worst.seconds, 1)} MB/s)` : ''}`],
    problems,
  };
}
