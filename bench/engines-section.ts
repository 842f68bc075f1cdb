/**
 * The engines section: the engines alone, in this process, on one set of items (no MIME, no
 * Courier): items per second and CPU per item of each engine type (clamd, yara, ICAP through a
 * c-icap over the same clamd, clamscan as a command-line scanner on a tenth of the items: it
 * loads its database for every item); the clamd pool's throughput at
 * 1, 2, 4, 8 and 16 scans at once against one and against two clamd servers; and what the verdict
 * cache saves on a wave of one attachment (memory, and Redis when redis-server is installed).
 * CPU is this process's (process.cpuUsage) plus the clamd servers' (/proc), per item.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { bufferSource } from '../src/bytes/sources.js';
import type { Engine, ScanItem } from '../src/engines/engine.js';
import { createClamdEngine } from '../src/engines/clamd/index.js';
import { createYaraEngine, DEFAULT_RULES_DIR } from '../src/engines/yara/index.js';
import { createIcapEngine } from '../src/engines/icap/index.js';
import { createCommandEngine } from '../src/engines/command/index.js';
import { startCicap, type RunningCicap } from '../test/helpers/cicap.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedEngine, MemoryStore, type CacheCounters, type VerdictStore } from '../src/scan/verdict-cache.js';
import { redisStore } from '../src/scan/redis-store.js';
import { startClamd, type RunningClamd } from '../test/helpers/clamd.js';
import { eicar } from '../test/helpers/eicar.js';
import { CLK_TCK, readStat } from './proc.js';
import { fmt, median } from './stats.js';
import { table, type BenchContext, type SectionReport } from './report.js';

const MiB = 1024 * 1024;

/** The item set: text, binary, a larger attachment, and EICAR now and then. */
function items(n: number): ScanItem[] {
  const out: ScanItem[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 10;
    const data = kind === 0 ? eicar()
      : kind < 6 ? Buffer.from(`Dear customer,\n${'the quarterly figures are attached. '.repeat(60 + i % 40)}\n`)
        : kind < 9 ? randomBytes(20_000 + (i % 7) * 10_000)
          : randomBytes(300_000);
    out.push({ id: String(i), kind: 'part', source: bufferSource(data) });
  }
  return out;
}

function clamdTicks(servers: readonly RunningClamd[]): number {
  return servers.reduce((t, c) => t + (readStat(c.pid)?.selfTicks ?? 0), 0);
}

interface Run { perS: number; cpuMs: number; errors: number }

/** Scans every item with `concurrency` scans at once; CPU per item of this process + the servers. */
async function run(engine: Engine, set: readonly ScanItem[], concurrency: number, servers: readonly RunningClamd[]): Promise<Run> {
  const cpu0 = process.cpuUsage();
  const t0c = clamdTicks(servers);
  const t0 = performance.now();
  let next = 0;
  let errors = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < set.length) {
      const r = await engine.scan(set[next++]!, AbortSignal.timeout(60_000));
      if (r.status === 'error') errors++;
    }
  }));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const serverMs = ((clamdTicks(servers) - t0c) * 1000) / CLK_TCK;
  return { perS: set.length / (wall / 1000), cpuMs: ((cpu.user + cpu.system) / 1000 + serverMs) / set.length, errors };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function startRedis(): Promise<{ url: string; proc: ChildProcess } | undefined> {
  const bin = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
  if (!bin) return undefined;
  const port = await freePort();
  const proc = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  return { url: `redis://127.0.0.1:${port}`, proc };
}

const clamdOpts = (servers: string[]) => ({
  servers, connectTimeoutMs: 5000, scanTimeoutMs: 60_000, chunkBytes: 65536, maxStreamBytes: 200 * MiB, maxScansPerServer: 16,
});

export async function enginesSection(ctx: BenchContext): Promise<SectionReport> {
  const problems: string[] = [];
  const summary: string[] = [];
  const md: string[] = [];
  const n = ctx.quick ? 100 : 600;
  const set = items(n);
  const rounds = ctx.quick ? 1 : Math.max(1, ctx.rounds);
  const one = await ctx.clamd();
  const two = await startClamd({ streamMaxLength: '200M', extraConfig: ['DisableCache yes', 'MaxFileSize 200M', 'MaxScanSize 400M'] });
  const engines: Array<[string, Engine, RunningClamd[], number]> = [];
  let cicap: RunningCicap | undefined;
  const work = mkdtempSync(join(tmpdir(), 'avf-bench-engines-'));
  try {
    engines.push(['clamd (one server)', createClamdEngine(clamdOpts([`unix:${one.socketPath}`])), [one], n]);
    engines.push(['yara (shipped rules)', createYaraEngine({ rulesDir: DEFAULT_RULES_DIR, maxScanBytes: 64 * MiB, scanTimeoutMs: 30_000 }), [], n]);
    try {
      cicap = await startCicap(one.socketPath);
      engines.push(['icap (c-icap avscan over the same clamd)', createIcapEngine({ url: cicap.url('avscan'), connectTimeoutMs: 5000, scanTimeoutMs: 60_000, maxBytes: 200 * MiB, maxConnections: 0 }), [one], n]);
    } catch (err) {
      problems.push(`engines: c-icap did not start: ${(err as Error).message.split('\n')[0]}`);
    }
    engines.push(['command (clamscan, a tenth of the items)', createCommandEngine({
      command: ['/usr/bin/clamscan', '--no-summary', '-d', one.dbDir, '{}'], scanTimeoutMs: 120_000, maxProcesses: 2, maxBytes: 200 * MiB,
      cleanExit: [0], infectedExit: [1], namePattern: '^.*?: (.+) FOUND$', tmpdir: work,
    }), [], Math.max(10, Math.floor(n / 10))]);

    // 1. each engine type on the same items, 4 at once
    const rows: string[][] = [];
    for (const [label, e, servers, count] of engines) {
      const mine = set.slice(0, count);
      await run(e, mine.slice(0, Math.min(50, count)), 4, servers); // warm-up
      const rs: Run[] = [];
      for (let r = 0; r < rounds; r++) rs.push(await run(e, mine, 4, servers));
      const errors = rs.reduce((a, r) => a + r.errors, 0);
      if (errors) problems.push(`engines: ${label}: ${errors} scan errors`);
      rows.push([label, fmt(median(rs.map((r) => r.perS))), fmt(median(rs.map((r) => r.cpuMs)), 3)]);
      summary.push(`engines: ${label}: ${fmt(median(rs.map((r) => r.perS)))} items/s, ${fmt(median(rs.map((r) => r.cpuMs)), 3)} ms CPU/item`);
    }
    md.push(`### Engines on the same ${n} items (4 at once; ${rounds} round(s), medians)`,
      'Items: text of 2 to 4 KB, random binaries of 20 to 80 KB, one of 300 KB in ten, EICAR in ten. CPU: this process plus the clamd servers (c-icap and clamscan processes are not counted: their items/s is the figure to compare).',
      table(['engine', 'items/s', 'CPU ms/item'], rows));

    // 2. the pool: one server against two, 1..16 scans at once
    const pool2 = createClamdEngine(clamdOpts([`unix:${one.socketPath}`, `unix:${two.socketPath}`]));
    const pool1 = engines[0]![1];
    const prow: string[][] = [];
    for (const c of [1, 2, 4, 8, 16]) {
      const a = await run(pool1, set, c, [one]);
      const b = await run(pool2, set, c, [one, two]);
      if (a.errors + b.errors) problems.push(`engines: pool x${c}: ${a.errors + b.errors} scan errors`);
      prow.push([String(c), fmt(a.perS), fmt(b.perS), fmt(b.perS / a.perS, 2)]);
      summary.push(`engines: pool x${c}: one server ${fmt(a.perS)} items/s, two ${fmt(b.perS)} items/s`);
    }
    await pool2.close();
    md.push(`### The clamd pool: ${n} items at 1 to 16 scans at once`,
      'On a machine with few cores two clamd servers on the same host share its cores: a gain here shows the pool spreads the load, not what two hosts would give.',
      table(['scans at once', 'one server items/s', 'two servers items/s', 'two ÷ one'], prow));

    // 3. the cache on a wave of one attachment
    const wave = Array.from({ length: ctx.quick ? 50 : 300 }, (_, i): ScanItem => ({ id: String(i), kind: 'part', source: bufferSource(Buffer.from(attachment)) }));
    const redis = await startRedis();
    const crow: string[][] = [];
    try {
      const stores: Array<[string, () => VerdictStore]> = [['memory', () => new MemoryStore(10_000)]];
      if (redis) stores.push(['redis', () => redisStore({ url: redis.url })]);
      else problems.push('engines: redis-server is not installed: the Redis cache was not measured');
      const plain = await run(pool1, wave, 4, [one]);
      crow.push(['none', fmt(plain.perS), fmt(plain.cpuMs, 3), String(wave.length)]);
      for (const [name, make] of stores) {
        const store = make();
        const counters: CacheCounters = { hits: 0, misses: 0, skipped: 0 };
        const versioned: Engine = { ...pool1, signatureVersion: () => 'bench' };
        const cached = cachedEngine(versioned, { store, ttlSeconds: 600, lookupMs: 100, counters });
        await new Promise((r) => setTimeout(r, 300)); // a Redis connection is up
        const r = await run(cached, wave, 4, [one]);
        crow.push([name, fmt(r.perS), fmt(r.cpuMs, 3), String(counters.misses)]);
        summary.push(`engines: cache ${name}: ${fmt(r.perS)} items/s vs ${fmt(plain.perS)} without, ${counters.misses} scans for ${wave.length + 1} items`);
        await store.close();
      }
    } finally {
      redis?.proc.kill('SIGKILL');
    }
    md.push(`### The verdict cache: a wave of one 200 KB attachment, ${wave.length} times (clamd, 4 at once)`,
      'clamd answers without an official database here, so its signature version is unknown and nothing would be cached: the section gives the engine a fixed version for this measurement.',
      table(['cache', 'items/s', 'CPU ms/item', 'scans by clamd'], crow));
  } finally {
    for (const [, e] of engines) await e.close();
    await cicap?.stop();
    rmSync(work, { recursive: true, force: true });
    await two.stop();
  }
  return { title: 'Engines', markdown: md.join('\n\n'), summary, problems };
}

const attachment = randomBytes(200 * 1024);
