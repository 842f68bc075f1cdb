/**
 * The clamd server pool (src/engines/clamd/pool.ts): the choice of server, the per-server limit,
 * a server marked down and probed back, the one retry on another server, and what a size refusal
 * teaches — first on the pool alone with scripted attempts, then with two REAL clamds (one
 * SIGSTOPped under load), then through the daemon with two workers sharing one limit.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EngineResult, ScanItem } from '../src/engines/engine.js';
import { ClamdPool, type PoolEvent } from '../src/engines/clamd/pool.js';
import { createClamdEngine, parseServer, type ClamdAddress, type ClamdEngine } from '../src/engines/clamd/index.js';
import { bufferSource } from '../src/bytes/sources.js';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { startClamdProxy, type ClamdProxy } from './helpers/clamd-proxy.js';
import { eicar } from './helpers/eicar.js';
import { waitFor } from './helpers/avfilter-proc.js';
import { CONTROL, daemonEnv, singlePart, stopDaemon } from './helpers/daemon-env.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scanMessage } from '../src/scan/scan-message.js';
import { DEFAULT_MIME_LIMITS } from '../src/mime/index.js';
import { decide } from '../src/policy/actions.js';
import { policy } from './helpers/policy.js';

const A = parseServer('unix:/a.sock');
const B = parseServer('unix:/b.sock');
const CLEAN: EngineResult = { status: 'clean' };
const NAME = (a: ClamdAddress): string => ('path' in a ? a.path : `${a.host}:${a.port}`);

/** An attempt that each test answers by hand: resolves when `answer(server, result)` is called. */
function scripted() {
  const calls: { server: string; answer: (r: EngineResult) => void }[] = [];
  const attempt = (addr: ClamdAddress): Promise<EngineResult> =>
    new Promise((resolve) => calls.push({ server: NAME(addr), answer: resolve }));
  return { calls, attempt };
}

const never = new AbortController().signal;
const tick = (): Promise<void> => sleep(5);

test('pool: scans go to the server with the fewest in flight, at most maxScans each; the rest wait for a slot', async () => {
  const pool = new ClamdPool({ servers: [A, B], maxScans: 2, probe: async () => true });
  const s = scripted();
  const runs = Array.from({ length: 5 }, () => pool.run(10, never, s.attempt));
  await tick();
  assert.deepEqual(s.calls.map((c) => c.server).sort(), ['/a.sock', '/a.sock', '/b.sock', '/b.sock'], 'two each, the fifth waits');
  s.calls[0]!.answer(CLEAN);
  await tick();
  assert.equal(s.calls.length, 5, 'the freed slot went to the waiting scan');
  assert.equal(s.calls[4]!.server, s.calls[0]!.server);
  for (const c of s.calls.slice(1)) c.answer(CLEAN);
  assert.deepEqual(await Promise.all(runs), Array(5).fill(CLEAN));
  pool.close();
});

test('pool: a scan waiting for a slot gives up at its deadline and holds no slot afterwards', async () => {
  const pool = new ClamdPool({ servers: [A], maxScans: 1, probe: async () => true });
  const s = scripted();
  const first = pool.run(10, never, s.attempt);
  const ctl = new AbortController();
  const waiting = pool.run(10, ctl.signal, s.attempt);
  await tick();
  ctl.abort();
  const r = await waiting;
  assert.equal(r.status === 'error' && r.code, 'EABORTED');
  s.calls[0]!.answer(CLEAN);
  await first;
  const third = pool.run(10, never, s.attempt);
  await tick();
  assert.equal(s.calls.length, 2, 'the slot of the aborted waiter was not leaked');
  s.calls[1]!.answer(CLEAN);
  await third;
  pool.close();
});

test('pool: a failure without a verdict marks the server down (an event), the item goes once to the other, and nothing more goes there until PING answers', async () => {
  const events: PoolEvent[] = [];
  let pong = false;
  let probes = 0;
  const pool = new ClamdPool({ servers: [A, B], maxScans: 4, probe: async () => { probes++; return pong; }, onEvent: (e) => events.push(e) });
  const seen: string[] = [];
  const attempt = async (addr: ClamdAddress): Promise<EngineResult> => {
    seen.push(NAME(addr));
    return NAME(addr) === '/a.sock' ? { status: 'error', code: 'ESCAN_TIMEOUT', message: 'no reply' } : CLEAN;
  };
  assert.deepEqual(await pool.run(10, never, attempt), CLEAN);
  assert.deepEqual(seen, ['/a.sock', '/b.sock']);
  assert.deepEqual(events.map((e) => e.event), ['clamd-down']);
  for (let i = 0; i < 5; i++) assert.deepEqual(await pool.run(10, never, attempt), CLEAN);
  assert.deepEqual(seen.slice(2), Array(5).fill('/b.sock'), 'the down server got items');
  await waitFor(() => probes >= 1, 5000, 'a probe');
  assert.equal(pool.health()[0]!.up, false, 'down while PING fails');
  pong = true;
  await waitFor(() => pool.health()[0]!.up, 10_000, 'back up after PONG');
  assert.deepEqual(events.map((e) => e.event), ['clamd-down', 'clamd-up']);
  pool.close();
});

test('pool: a scan timeout on a server that answered other scans meanwhile is slowness: the item is retried, the server stays up; with no answer meanwhile it is hung and marked down', async () => {
  const pool = new ClamdPool({ servers: [A, B], maxScans: 4, probe: async () => false });
  const s = scripted();
  const slow = pool.run(10, never, s.attempt);
  const quick = pool.run(10, never, s.attempt);
  await tick();
  const onA = s.calls.filter((c) => c.server === '/a.sock');
  assert.equal(onA.length, 1);
  // the other scan went to B; give A another one that answers while the first waits
  const third = pool.run(10, never, s.attempt);
  await tick();
  const a2 = s.calls.filter((c) => c.server === '/a.sock')[1]!;
  a2.answer(CLEAN);
  onA[0]!.answer({ status: 'error', code: 'ESCAN_TIMEOUT', message: 'slow' });
  await tick();
  assert.equal(pool.health()[0]!.up, true, 'a slow server was marked down');
  for (const c of s.calls.filter((c) => c.server === '/b.sock')) c.answer(CLEAN);
  await tick();
  for (const c of s.calls.filter((c) => c.server === '/b.sock')) c.answer(CLEAN);
  assert.deepEqual(await Promise.all([slow, quick, third]), [CLEAN, CLEAN, CLEAN]);
  // now a timeout with no answer from A meanwhile: hung
  const hung = pool.run(10, never, s.attempt);
  await tick();
  const last = s.calls.filter((c) => c.server === '/a.sock').at(-1)!;
  last.answer({ status: 'error', code: 'ESCAN_TIMEOUT', message: 'nothing' });
  await tick();
  assert.equal(pool.health()[0]!.up, false, 'a hung server stayed up');
  s.calls.at(-1)!.answer(CLEAN);
  assert.deepEqual(await hung, CLEAN);
  pool.close();
});

test('pool: no retry after a verdict, or after clamd\'s own error reply', async () => {
  const pool = new ClamdPool({ servers: [A, B], maxScans: 4, probe: async () => true });
  for (const answer of [{ status: 'infected', names: ['X'] }, { status: 'error', code: 'ESCANNER', message: 'clamd: Can\'t allocate memory ERROR' }] as EngineResult[]) {
    const seen: string[] = [];
    const r = await pool.run(10, never, async (addr) => { seen.push(NAME(addr)); return answer; });
    assert.deepEqual(r, answer);
    assert.equal(seen.length, 1, `${JSON.stringify(answer)} was sent again`);
  }
  assert.ok(pool.health().every((h) => h.up), 'a verdict marked a server down');
  pool.close();
});

test('pool: every server down: an error at once, without an attempt; both failing: both reasons', async () => {
  const pool = new ClamdPool({ servers: [A, B], maxScans: 4, probe: async () => false });
  const fail = async (addr: ClamdAddress): Promise<EngineResult> => ({ status: 'error', code: 'ECONNECT', message: `${NAME(addr)} refused` });
  const r = await pool.run(10, never, fail);
  assert.equal(r.status === 'error' && r.code, 'ECONNECT');
  assert.match(r.status === 'error' ? r.message : '', /\/a\.sock refused; \/b\.sock refused/);
  let called = 0;
  const t0 = Date.now();
  const again = await pool.run(10, never, async () => { called++; return CLEAN; });
  assert.equal(again.status === 'error' && again.code, 'ECONNECT');
  assert.equal(called, 0);
  assert.ok(Date.now() - t0 < 100);
  pool.close();
});

test('pool: a size refusal by clamd is remembered: larger items are the size-limit outcome without being sent, smaller ones are sent', async () => {
  const pool = new ClamdPool({ servers: [A], maxScans: 4, probe: async () => true });
  const sizes: number[] = [];
  const attempt = (size: number) => async (): Promise<EngineResult> => {
    sizes.push(size);
    return size >= 1000 ? { status: 'error', code: 'ESIZE_LIMIT', message: 'clamd: INSTREAM size limit exceeded. ERROR (StreamMaxLength)' } : CLEAN;
  };
  for (const size of [1500, 2000, 1500, 500]) {
    const r = await pool.run(size, never, attempt(size));
    assert.equal(r.status === 'clean' ? 'clean' : r.status === 'error' && r.code, size >= 1000 ? 'ESIZE_LIMIT' : 'clean', `${size}`);
  }
  assert.deepEqual(sizes, [1500, 500], 'an item over the refused size was sent again');
  assert.ok(pool.health()[0]!.up, 'a size refusal is not a server failure');
  pool.close();
});

// ---- two real clamds

let one: RunningClamd;
let two: RunningClamd;
let proxy: ClamdProxy;

before(async () => {
  [one, two] = await Promise.all([startClamd(), startClamd()]);
  proxy = await startClamdProxy(one.socketPath);
});

after(async () => {
  for (const c of [one, two]) {
    try {
      process.kill(c.pid, 'SIGCONT');
    } catch { /* gone */ }
  }
  await proxy?.stop();
  await Promise.all([one?.stop(), two?.stop()]);
});

const item = (id: string, data: Buffer): ScanItem => ({ id, kind: 'part', source: bufferSource(data) });
const clean = (n: number): Buffer => Buffer.from(`clean text ${n}\n`.repeat(20));

test('real clamds: the first SIGSTOPped under load costs one timeout per scan it held; every item gets its verdict from the other; back after SIGCONT', async () => {
  const events: PoolEvent[] = [];
  const e = createClamdEngine({
    servers: [proxy.server, `unix:${two.socketPath}`], connectTimeoutMs: 1000, scanTimeoutMs: 1500, chunkBytes: 65536,
    maxStreamBytes: 25 * 1024 * 1024, maxScansPerServer: 4, onEvent: (ev) => events.push(ev),
  }) as ClamdEngine;
  try {
    assert.deepEqual(await e.scan(item('0', eicar()), never), { status: 'infected', names: [one.names.eicar] });
    process.kill(one.pid, 'SIGSTOP');
    const before = proxy.counts.pass;
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) =>
      e.scan(item(String(i), i % 2 ? eicar() : clean(i)), AbortSignal.timeout(20_000)).then((r) => ({ i, r }))));
    for (const { i, r } of results) {
      assert.deepEqual(r, i % 2 ? { status: 'infected', names: [two.names.eicar] } : { status: 'clean' }, `item ${i}`);
    }
    assert.ok(Date.now() - t0 < 10_000, `40 items took ${Date.now() - t0} ms: the hung server cost more than one timeout`);
    // at most its 4 slots' worth of scans, plus the background PINGs (1 s, 2 s, 4 s apart)
    assert.ok(proxy.counts.pass - before <= 8, `the stopped clamd got ${proxy.counts.pass - before} new connections`);
    assert.deepEqual(events.map((x) => x.event), ['clamd-down']);
    assert.equal(e.health()[0]!.up, false);
    // Still stopped: more items go to the other one only.
    const t1 = Date.now();
    for (let i = 0; i < 10; i++) assert.deepEqual(await e.scan(item(`m${i}`, clean(100 + i)), never), { status: 'clean' });
    assert.ok(Date.now() - t1 < 1400, `10 items took ${Date.now() - t1} ms: one waited on the stopped clamd`);
    process.kill(one.pid, 'SIGCONT');
    await waitFor(() => e.health()[0]!.up, 40_000, 'the first clamd back after its PONG');
    assert.equal(events.at(-1)!.event, 'clamd-up');
    const back = proxy.counts.pass;
    for (let i = 0; i < 4; i++) assert.deepEqual(await e.scan(item(`b${i}`, eicar()), never), { status: 'infected', names: [one.names.eicar] });
    assert.ok(proxy.counts.pass > back, 'the first clamd is used again');
  } finally {
    try {
      process.kill(one.pid, 'SIGCONT');
    } catch { /* gone */ }
    await e.close();
  }
});

test('real clamds: both stopped: every item an error within about one scan timeout, then at once', async () => {
  const e = createClamdEngine({
    servers: [`unix:${one.socketPath}`, `unix:${two.socketPath}`], connectTimeoutMs: 1000, scanTimeoutMs: 1000, chunkBytes: 65536,
    maxStreamBytes: 25 * 1024 * 1024, maxScansPerServer: 4,
  }) as ClamdEngine;
  try {
    assert.deepEqual(await e.scan(item('w', clean(1)), never), { status: 'clean' });
    process.kill(one.pid, 'SIGSTOP');
    process.kill(two.pid, 'SIGSTOP');
    const t0 = Date.now();
    const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => e.scan(item(String(i), clean(i)), AbortSignal.timeout(20_000))));
    for (const r of rs) assert.equal(r.status, 'error', JSON.stringify(r));
    assert.ok(Date.now() - t0 < 6000, `${Date.now() - t0} ms`);
    const t1 = Date.now();
    const r = await e.scan(item('late', clean(99)), never);
    assert.equal(r.status === 'error' && r.code, 'ECONNECT', JSON.stringify(r));
    assert.ok(Date.now() - t1 < 200, 'a scan with every server down waited');
  } finally {
    process.kill(one.pid, 'SIGCONT');
    process.kill(two.pid, 'SIGCONT');
    await e.close();
  }
});

test('daemon: max_scans_per_server holds over all workers: 2 workers, limit 2, 12 slow requests at once never have a third scan (or connection) at the server', { timeout: 120_000 }, async () => {
  proxy.upstream = one.socketPath;
  proxy.mode = 'delay';
  proxy.delayMs = 400;
  const env = daemonEnv(`workers = 2\nmax_connections = 16\n[[engine]]\ntype = "clamd"\nservers = ["${proxy.server}"]\nmax_scans_per_server = 2\n[action]\ninfected = "reject"\n`);
  const d = await env.up();
  try {
    await waitFor(() => proxy.open === 0, 15_000, 'idle sessions from the start closed');
    // Workers take connections as the kernel hands them out: a burst may all go to one. Bursts
    // are sent until both workers scanned at once (the case a per-worker limit would get wrong).
    let both = false;
    for (let burst = 0; burst < 4 && !both; burst++) {
      proxy.resetPeak();
      const replies = await Promise.all(Array.from({ length: 12 }, (_, i) =>
        env.send(env.request(singlePart(i % 3 === 0 ? eicar() : clean(i + 20 * burst)), [CONTROL]).line, 60_000)));
      for (const [i, r] of replies.entries()) assert.match(r, i % 3 === 0 ? /^550/m : /^2\d\d/m, `request ${i}: ${r}`);
      assert.ok(proxy.peakScans <= 2, `${proxy.peakScans} scans in flight at one server at once, limit 2`);
      assert.ok(proxy.peakClients <= 2, `${proxy.peakClients} connections to one server at once, limit 2`);
      both = proxy.peakScans === 2;
    }
    assert.ok(both, 'the two workers never scanned at once: the test proved nothing');
  } finally {
    proxy.mode = 'pass';
    await stopDaemon(d);
  }
});

test('an item clamd refuses as over its StreamMaxLength is a limit: action.limit answers (451, or 554 with reject), never accepted unscanned by action.error = "accept"', async () => {
  proxy.upstream = one.socketPath;
  proxy.mode = 'size-limit';
  proxy.sizeLimit = 2048;
  const dir = mkdtempSync(join(tmpdir(), 'avf-sizelimit-'));
  const e = createClamdEngine({
    servers: [proxy.server], connectTimeoutMs: 1000, scanTimeoutMs: 5000, chunkBytes: 1024, maxStreamBytes: 25 * 1024 * 1024,
  });
  try {
    const big = Buffer.alloc(8192, 'a');
    const path = join(dir, 'm.eml');
    writeFileSync(path, `From: a@example.test\nSubject: big\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${big.toString('base64')}\n`);
    const { verdict } = await scanMessage(path, { engines: [e], mimeLimits: DEFAULT_MIME_LIMITS, tmpdir: dir }, AbortSignal.timeout(30_000));
    assert.equal(verdict.kind, 'limit', JSON.stringify(verdict));
    assert.equal(verdict.kind === 'limit' && verdict.code, 'ESIZE_LIMIT');
    const open = decide(verdict, policy({ infected: 'drop', error: 'accept', limit: 'tempfail' }));
    assert.equal(open.code, 451, `fail-open for scanner errors accepted an item that was not scanned: ${JSON.stringify(open)}`);
    assert.equal(decide(verdict, policy({ infected: 'drop', error: 'tempfail', limit: 'reject' })).code, 554);
    assert.ok((e as ClamdEngine).health()[0]!.up, 'a size refusal marked the server down');
  } finally {
    proxy.mode = 'pass';
    await e.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
