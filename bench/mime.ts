/**
 * MIME extraction throughput: extractParts() (all readings: mailsplit, the lenient walker, the
 * embedded post-pass; parts hashed and spilled to disk) against a plain mailsplit pass that
 * only splits the same bytes (no decoding, no storing). Runs are interleaved and the medians
 * reported, in MB/s of input (1 MB = 10^6 bytes), with the ratio extractParts / mailsplit.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import mailsplit from '@zone-eu/mailsplit';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput } from '../src/mime/index.js';
import * as mail from '../test/helpers/mail.js';
import { type BenchContext, type SectionReport, table } from './report.js';

export interface BenchRow {
  name: string;
  sizeMB: number;
  extractMBs: number;
  mailsplitMBs: number;
  ratio: number;
}

const ROUNDS = Number(process.env.AVFILTER_BENCH_ROUNDS ?? 5);

async function plainMailsplit(path: string): Promise<void> {
  const splitter = new mailsplit.Splitter({ ignoreEmbedded: true, maxChildNodes: Number.MAX_SAFE_INTEGER });
  await pipeline(createReadStream(path), splitter, async (source: AsyncIterable<unknown>) => {
    for await (const _ of source) void _;
  });
}

async function extraction(path: string, work: string): Promise<void> {
  const x = await extractParts(MessageInput.fromFile(path), { limits: DEFAULT_MIME_LIMITS, tmpdir: work });
  if (x.limit !== undefined) throw new Error(`bench message hit a limit: ${x.limit.code}`);
  await x.dispose();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeMs(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function manySmallParts(path: string): Promise<void> {
  const parts: mail.MailNode[] = [];
  for (let i = 0; i < 900; i++) {
    parts.push(i % 3 === 0 ? mail.textPart(`part ${i} `.repeat(400), { cte: 'quoted-printable' }) : mail.attachment(mail.pseudoRandom(12_000, i + 1), { cte: 'base64', filename: `f${i}.bin` }));
  }
  await writeFile(path, mail.message(mail.multipart(parts)));
}

export async function benchMime(rounds = ROUNDS): Promise<BenchRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-bench-mime-'));
  try {
    const work = join(dir, 'work');
    await (await import('node:fs/promises')).mkdir(work);
    const cases: Array<[string, string]> = [];
    const big = join(dir, 'big.eml');
    await mail.writeLargeBase64Message(big, 50 * 1024 * 1024);
    cases.push(['50 MiB base64 attachment', big]);
    const small = join(dir, 'small.eml');
    await manySmallParts(small);
    cases.push(['900 small parts (base64 + QP)', small]);
    const rows: BenchRow[] = [];
    for (const [name, path] of cases) {
      const size = (await stat(path)).size;
      const ext: number[] = [];
      const ms: number[] = [];
      await extraction(path, work); // warm-up
      await plainMailsplit(path);
      for (let r = 0; r < rounds; r++) {
        ms.push(await timeMs(() => plainMailsplit(path)));
        ext.push(await timeMs(() => extraction(path, work)));
      }
      const mb = size / 1e6;
      const extractMBs = mb / (median(ext) / 1000);
      const mailsplitMBs = mb / (median(ms) / 1000);
      rows.push({ name, sizeMB: mb, extractMBs, mailsplitMBs, ratio: extractMBs / mailsplitMBs });
    }
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The section for run.ts: the table, and the medians on stdout. */
export async function mimeSection(ctx: BenchContext): Promise<SectionReport> {
  const rows = await benchMime(ctx.quick ? 1 : ROUNDS);
  const fmt = (x: number): string => x.toFixed(1);
  return {
    title: 'MIME extraction',
    markdown: [
      'extractParts() (every reading, parts hashed and spilled) against a plain mailsplit pass over the same bytes; medians of interleaved runs, MB/s of input.',
      table(['message', 'size MB', 'extractParts MB/s', 'plain mailsplit MB/s', 'ratio'], rows.map((r) => [r.name, fmt(r.sizeMB), fmt(r.extractMBs), fmt(r.mailsplitMBs), r.ratio.toFixed(2)])),
    ].join('\n\n'),
    summary: ['MIME extraction:', ...rows.map((r) => `  ${r.name}: ${fmt(r.extractMBs)} MB/s (plain mailsplit ${fmt(r.mailsplitMBs)}, ratio ${r.ratio.toFixed(2)})`)],
    problems: [],
  };
}
