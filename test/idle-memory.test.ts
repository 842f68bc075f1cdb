/**
 * Memory that comes back, on the real daemon: workers start with malloc settings that give
 * memory back and with garbage collection at hand, and a worker that stays big while idle
 * (worker_idle_memory_limit) is replaced while the daemon keeps answering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { attachment, message, multipart, pseudoRandom, textPart } from './helpers/mail.js';
import { daemonEnv, stopDaemon, waitForWorkers, waitLog } from './helpers/daemon-env.js';
import { talk, waitFor } from './helpers/avfilter-proc.js';
import { execFileSync } from 'node:child_process';
import { WORKER_V8_FLAGS } from '../src/master/pool.js';
import { IDLE_GC_AFTER_MS, IDLE_GC_ROUNDS } from '../src/worker/idle-gc.js';

const MiB = 1024 * 1024;

function rssOf(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

function environOf(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')) {
    const at = kv.indexOf('=');
    if (at > 0) out.set(kv.slice(0, at), kv.slice(at + 1));
  }
  return out;
}

test('workers start with the malloc settings that give memory back (the admin\'s own win) and with the V8 flags that make a message cheaper', async () => {
  const env = daemonEnv('workers = 1');
  const d = await env.up([], { env: { MALLOC_ARENA_MAX: '3' } });
  try {
    const [w] = await waitForWorkers(d.child.pid!, 1, 20_000);
    const e = environOf(w!);
    assert.equal(e.get('MALLOC_ARENA_MAX'), '3', 'set by the admin: kept');
    assert.equal(e.get('MALLOC_MMAP_THRESHOLD_'), '131072');
    assert.equal(e.get('MALLOC_TRIM_THRESHOLD_'), '131072');
    const argv = readFileSync(`/proc/${w!}/cmdline`, 'latin1').split('\0');
    assert.ok(argv.includes('--expose-gc'), 'worker runs with --expose-gc');
    assert.ok(argv.includes('--single-threaded-gc'), 'worker collects garbage on its own thread (cheaper per message than helper threads)');
    assert.ok(argv.includes('--initial-old-space-size=64'), 'worker starts with an old generation that makes full collections rare');
    assert.ok(argv.includes('--max-semi-space-size=8'), 'worker keeps its young generation small (it stays committed once idle)');
    assert.equal(environOf(d.child.pid!).get('MALLOC_TRIM_THRESHOLD_'), undefined, 'the master\'s own environment is left as it was');
  } finally {
    await stopDaemon(d);
  }
});

test('idle recycle: a worker that stays big once idle is replaced (logged worker-recycle reason=idle), and the daemon keeps answering', async () => {
  // Parts kept in memory (under memory_part_size) and scanned by the YARA threads; malloc told
  // (as an admin could) to keep what is freed, so the worker stays big once idle.
  const env = daemonEnv('workers = 1\nworker_idle_memory_limit = "1M"\nrequest_timeout = 120\n[mime]\nmemory_part_size = "2M"\n[[engine]]\ntype = "yara"\nmax_scan_size = "100M"');
  const parts = Array.from({ length: 40 }, (_, i) => attachment(pseudoRandom(1536 * 1024, 100 + i), { cte: 'base64', filename: `p${i}.bin`, contentType: 'application/octet-stream' }));
  const big = message(multipart([textPart('hi'), ...parts]));
  const d = await env.up([], { env: { MALLOC_MMAP_THRESHOLD_: String(1024 * MiB), MALLOC_TRIM_THRESHOLD_: String(4096 * MiB), MALLOC_ARENA_MAX: '8' } });
  try {
    const [first] = await waitForWorkers(d.child.pid!, 1, 20_000);
    await new Promise((r) => setTimeout(r, 500));
    const atStart = rssOf(first!);
    const replies = await Promise.all([1, 2, 3].map(() => talk(env.sock, env.request(big).line, { timeoutMs: 120_000 })));
    for (const r of replies) assert.match(r.reply, /^200 /);
    const after = rssOf(first!);
    console.log(`worker RSS ${Math.round(atStart / MiB)} MiB at start, ${Math.round(after / MiB)} MiB after the messages`);
    await waitLog(d, new RegExp(`event=worker-recycle .*pid=${first} .*reason=idle`), 40_000);
    // the old worker ends once its replacement accepts; mail is answered throughout
    assert.match((await talk(env.sock, env.request(message(textPart('hello'))).line, { timeoutMs: 30_000 })).reply, /^200 /);
    await waitFor(() => rssOf(first!) === 0, 20_000, `worker ${first} ends`);
    const [next] = await waitForWorkers(d.child.pid!, 1, 20_000, [first!]);
    assert.notEqual(next, first);
    assert.match((await talk(env.sock, env.request(message(textPart('hello again'))).line, { timeoutMs: 30_000 })).reply, /^200 /);
    assert.doesNotMatch(d.stderr(), new RegExp(`event=worker-exit .*pid=${first}`), 'the old worker left without a fault');
  } finally {
    await stopDaemon(d);
  }
});

test('idle collection shrinks the young generation a burst grew (a collection 3 s after a burst kept it grown: idle workers stayed ~15 MiB bigger)', () => {
  // a node with the workers' V8 flags allocates hard for 1.5 s, as a burst of messages does,
  // then collects as an idle worker does, IDLE_GC_AFTER_MS later
  const script = `
    const v8 = require('v8');
    const young = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    const t0 = Date.now(); let keep = [];
    while (Date.now() - t0 < 1500) { keep.push({ a: 'x'.repeat(50) + Math.random(), b: [1, 2, 3] }); if (keep.length > 20000) keep = []; }
    keep = null;
    const grown = young();
    setTimeout(() => { for (let i = 0; i < ${IDLE_GC_ROUNDS}; i++) gc(); console.log(JSON.stringify({ grown, after: young() })); }, ${IDLE_GC_AFTER_MS});
  `;
  const out = JSON.parse(execFileSync(process.execPath, [...WORKER_V8_FLAGS, '-e', script], { encoding: 'utf8', timeout: 60_000 })) as { grown: number; after: number };
  assert.ok(out.grown >= 4 * MiB, `the burst grew the young generation (${out.grown} bytes)`);
  assert.ok(out.after <= 2 * MiB, `the idle collection shrank it: ${out.grown} -> ${out.after} bytes`);
});
