/**
 * The verdict cache (src/scan/verdict-cache.ts, redis-store.ts) and engine_mode = "failover"
 * (src/scan/engine-failover.ts): a wave of one attachment scanned once, a new signature version
 * scanned again, errors never kept, a store that fails, hangs or holds garbage never trusted and
 * never holding up a scan; a REAL redis-server started here shared by two "hosts" and killed under
 * them; failover past an engine that cannot scan, through `avfilter -t` with a dead clamd.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@redis/client';
import type { Engine, EngineResult, ScanItem } from '../src/engines/engine.js';
import { createYaraEngine, DEFAULT_RULES_DIR } from '../src/engines/yara/index.js';
import { bufferSource } from '../src/bytes/sources.js';
import { cachedEngine, cacheKey, decodeVerdict, encodeVerdict, MemoryStore, type CacheCounters, type VerdictStore } from '../src/scan/verdict-cache.js';
import { redisStore } from '../src/scan/redis-store.js';
import { failoverEngines } from '../src/scan/engine-failover.js';
import { eicar } from './helpers/eicar.js';
import { runAvfilter } from './helpers/avfilter-proc.js';

const never = new AbortController().signal;
const item = (data: Buffer | string, id = '1'): ScanItem => ({ id, kind: 'part', source: bufferSource(Buffer.from(data)) });

/** A fake engine that counts its scans and answers as told. */
function fake(label: string, answer: (i: ScanItem) => EngineResult, sig: () => string | undefined = () => 'v1', healthy = () => true) {
  const e = {
    calls: 0,
    label,
    scan: async (i: ScanItem): Promise<EngineResult> => { e.calls++; return answer(i); },
    version: async () => `${label} 1.0`,
    close: async () => undefined,
    signatureVersion: sig,
    healthy,
  };
  return e;
}

const counters = (): CacheCounters => ({ hits: 0, misses: 0, skipped: 0 });
const infectedIfEicar = (i: ScanItem): EngineResult => (i.source.bytes!.includes(Buffer.from('EICAR')) ? { status: 'infected', names: ['Eicar-Test'] } : { status: 'clean' });

test('values: only what the cache writes is read back; garbage, control characters and oversize values are refused', () => {
  assert.equal(encodeVerdict({ status: 'clean' }), 'C');
  assert.deepEqual(decodeVerdict(encodeVerdict({ status: 'infected', names: ['A.B', 'C D'] })), { status: 'infected', names: ['A.B', 'C D'] });
  assert.equal(encodeVerdict({ status: 'error', code: 'ECONNECT', message: 'x' }), undefined, 'an error was made storable');
  for (const bad of ['', 'c', 'CLEAN', 'I:', 'I:a\nb', 'I:\x1b[31m', `I:${'x'.repeat(5000)}`, 'OK', 42, null, undefined, 'I:\ta']) {
    assert.equal(decodeVerdict(bad), undefined, JSON.stringify(bad));
  }
  assert.notEqual(cacheKey('clamd', 'v1', 'ab'), cacheKey('clamd', 'v2', 'ab'));
  assert.notEqual(cacheKey('clamd', 'v1', 'ab'), cacheKey('yara', 'v1', 'ab'));
});

test('memory store: least recently used go first, and nothing is used past its TTL', async () => {
  const m = new MemoryStore(100);
  for (let i = 0; i < 150; i++) m.set(`k${i}`, 'C', 60);
  assert.equal(m.size, 100);
  assert.equal(await m.get('k0'), undefined);
  assert.equal(await m.get('k149'), 'C');
  m.set('short', 'C', 0.05);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(await m.get('short'), undefined);
});

test('a wave of one attachment is scanned once; another signature version scans again; errors and unknown versions are never kept', async () => {
  let sig: string | undefined = 'v1';
  const e = fake('clamd', infectedIfEicar, () => sig);
  const c = counters();
  const cached = cachedEngine(e, { store: new MemoryStore(1000), ttlSeconds: 60, lookupMs: 100, counters: c });
  for (let i = 0; i < 20; i++) assert.deepEqual(await cached.scan(item(eicar(), String(i)), never), { status: 'infected', names: ['Eicar-Test'] });
  assert.equal(e.calls, 1);
  assert.deepEqual(c, { hits: 19, misses: 1, skipped: 0 });
  sig = 'v2';
  await cached.scan(item(eicar()), never);
  assert.equal(e.calls, 2, 'a new signature version used an old verdict');
  sig = undefined;
  await cached.scan(item(eicar()), never);
  await cached.scan(item(eicar()), never);
  assert.equal(e.calls, 4, 'an engine that cannot tell its signature version was cached');

  const failing = fake('clamd', () => ({ status: 'error', code: 'ECONNECT', message: 'down' }));
  const c2 = cachedEngine(failing, { store: new MemoryStore(10), ttlSeconds: 60, lookupMs: 100 });
  await c2.scan(item('x'), never);
  await c2.scan(item('x'), never);
  assert.equal(failing.calls, 2, 'an error was cached');
});

test('the raw message is never cached: its verdict depends on how the engine presents it (raw_message), and the same bytes as a part are not the same item', async () => {
  const e = fake('clamd', infectedIfEicar);
  const c = counters();
  const cached = cachedEngine(e, { store: new MemoryStore(1000), ttlSeconds: 60, lookupMs: 100, counters: c });
  const raw = (): ScanItem => ({ id: 'raw', kind: 'raw', source: bufferSource(Buffer.from(`Subject: x\n\n${eicar()}`)) });
  for (let i = 0; i < 3; i++) await cached.scan(raw(), never);
  assert.equal(e.calls, 3, 'a raw message was answered from the cache');
  await cached.scan({ ...raw(), kind: 'part', id: '1' }, never);
  await cached.scan({ ...raw(), kind: 'part', id: '2' }, never);
  assert.equal(e.calls, 4, 'the same bytes as a part: cached after the first');
  assert.deepEqual(c, { hits: 1, misses: 1, skipped: 0 });
});

test('a wave arriving at once: the same bytes scanned at the same moment are scanned once; an error is not shared', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const e = fake('clamd', infectedIfEicar);
  const slow = { ...e, scan: async (i: ScanItem) => { await gate; return e.scan(i); } };
  const cached = cachedEngine(slow, { store: new MemoryStore(100), ttlSeconds: 60, lookupMs: 100 });
  const all = Array.from({ length: 8 }, (_, i) => cached.scan(item(eicar(), String(i)), never));
  await new Promise((r) => setTimeout(r, 20));
  release();
  for (const r of await Promise.all(all)) assert.equal(r.status, 'infected');
  assert.equal(e.calls, 1);

  let n = 0;
  const flaky = fake('clamd', () => (++n === 1 ? { status: 'error', code: 'ESCAN_TIMEOUT', message: 'slow' } : { status: 'clean' }));
  const c2 = cachedEngine(flaky, { store: new MemoryStore(100), ttlSeconds: 60, lookupMs: 100 });
  const rs = await Promise.all([c2.scan(item('same'), never), c2.scan(item('same'), never)]);
  assert.deepEqual(rs.map((r) => r.status).sort(), ['clean', 'error'], 'the first scan\'s error was handed to the second');
});

test('a store that rejects, hangs or holds garbage is a miss: the item is scanned, never taken from it', async () => {
  const stores: Record<string, VerdictStore> = {
    rejects: { get: () => Promise.reject(new Error('boom')), set: () => { throw new Error('boom'); }, close: async () => undefined },
    hangs: { get: () => new Promise(() => undefined), set: () => undefined, close: async () => undefined },
    garbage: { get: async () => 'C\r\nI:evil', set: () => undefined, close: async () => undefined },
    lies: { get: async () => 'OK', set: () => undefined, close: async () => undefined },
  };
  for (const [name, store] of Object.entries(stores)) {
    const e = fake('yara', infectedIfEicar);
    const c = counters();
    const cached = cachedEngine(e, { store, ttlSeconds: 60, lookupMs: 50, counters: c });
    const t0 = Date.now();
    let r: EngineResult | undefined;
    try {
      r = await cached.scan(item(eicar()), never);
    } catch (err) {
      assert.fail(`${name}: the scan threw ${String(err)}`);
    }
    assert.deepEqual(r, { status: 'infected', names: ['Eicar-Test'] }, name);
    assert.equal(e.calls, 1, name);
    assert.ok(Date.now() - t0 < 1000, `${name}: ${Date.now() - t0} ms`);
  }
});

test('engine_mode failover: the first healthy engine answers; one that cannot scan passes the item on; a size refusal is final; findings name the engine', async () => {
  const down = fake('clamd', () => ({ status: 'error', code: 'ECONNECT', message: 'refused' }));
  const yara = fake('yara', infectedIfEicar);
  const f = failoverEngines([down, yara]);
  assert.deepEqual(await f.scan(item(eicar()), never), { status: 'infected', names: ['Eicar-Test'], engine: 'yara' });
  assert.deepEqual(await f.scan(item('clean'), never), { status: 'clean' });
  assert.equal(down.calls, 2);

  const unhealthy = fake('clamd', infectedIfEicar, () => 'v1', () => false);
  const y2 = fake('yara', infectedIfEicar);
  await failoverEngines([unhealthy, y2]).scan(item('x'), never);
  assert.equal(unhealthy.calls, 0, 'an unhealthy engine was asked first');
  assert.equal(y2.calls, 1);

  const big = fake('clamd', () => ({ status: 'error', code: 'ESIZE_LIMIT', message: 'too big' }));
  const y3 = fake('yara', infectedIfEicar);
  const r = await failoverEngines([big, y3]).scan(item('x'), never);
  assert.equal(r.status === 'error' && r.code, 'ESIZE_LIMIT');
  assert.equal(y3.calls, 0, 'a size refusal was passed to another engine');

  const both = failoverEngines([fake('a', () => ({ status: 'error', code: 'ECONNECT', message: 'one' })), fake('b', () => ({ status: 'error', code: 'ESCAN_TIMEOUT', message: 'two' }))]);
  const e = await both.scan(item('x'), never);
  assert.equal(e.status === 'error' && e.code, 'ECONNECT');
});

test('avfilter -t with engine_mode = "failover": clamd at a dead socket, the embedded engine finds EICAR; with "all" the same config is an error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-failover-'));
  try {
    const msg = join(dir, 'eicar.eml');
    writeFileSync(msg, `From: a@example.test\nSubject: t\nContent-Transfer-Encoding: base64\n\n${eicar().toString('base64')}\n`);
    const engines = `[[engine]]\ntype = "clamd"\nservers = ["unix:${join(dir, 'none.sock')}"]\nconnect_timeout = 1\n[[engine]]\ntype = "yara"\n`;
    writeFileSync(join(dir, 'failover.toml'), `tmpdir = "${join(dir, 'tmp')}"\nengine_mode = "failover"\ncache = "memory"\n${engines}`);
    writeFileSync(join(dir, 'all.toml'), `tmpdir = "${join(dir, 'tmp')}"\n${engines}`);
    const f = runAvfilter(['-f', join(dir, 'failover.toml'), '-t', msg]);
    assert.equal(f.code, 1, f.stdout + f.stderr);
    assert.match(f.stdout, /FOUND/);
    const a = runAvfilter(['-f', join(dir, 'all.toml'), '-t', msg]);
    // "all": the embedded engine finds it too, and a find wins over the other engine's error
    assert.equal(a.code, 1, a.stdout + a.stderr);
    const clean = join(dir, 'clean.eml');
    writeFileSync(clean, 'From: a@example.test\nSubject: t\n\nhello\n');
    assert.equal(runAvfilter(['-f', join(dir, 'failover.toml'), '-t', clean]).code, 0, 'failover: clean by the embedded engine');
    assert.equal(runAvfilter(['-f', join(dir, 'all.toml'), '-t', clean]).code, 2, '"all": clamd could not scan, so not clean');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('config: cache must be "", "memory" or a redis URL; engine_mode must be all or failover', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-cachecfg-'));
  chmodSync(dir, 0o755); // as root, --config checks that Courier's user can read the file
  try {
    for (const [line, ok] of [['cache = "memory"', true], ['cache = "redis://127.0.0.1:6379"', true], ['cache = "redis://:pw@10.0.0.5:6380/2"', true],
      ['cache = "memcached://x"', false], ['cache = "redis://"', false], ['cache = "yes"', false], ['engine_mode = "failover"', true], ['engine_mode = "first"', false]] as const) {
      writeFileSync(join(dir, 'c.toml'), `${line}\n`);
      const r = runAvfilter(['-f', join(dir, 'c.toml'), '--config']);
      assert.equal(r.code === 0, ok, `${line}: ${r.stderr}`);
      if (!ok) assert.match(r.stderr, /c\.toml:1: /);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- a real redis-server, shared by two "hosts"

let redis: ChildProcess | undefined;
let port = 0;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function startRedis(): Promise<void> {
  const bin = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
  if (!bin) throw new Error('redis-server is missing: apt-get install redis-server');
  port = await freePort();
  redis = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' });
  const c = createClient({ url: `redis://127.0.0.1:${port}` });
  c.on('error', () => undefined);
  const t0 = Date.now();
  for (;;) {
    try {
      await c.connect();
      await c.ping();
      c.destroy();
      return;
    } catch {
      if (Date.now() - t0 > 10_000) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

before(startRedis);
after(() => {
  redis?.kill('SIGKILL');
});

test('redis: two hosts share verdicts (the second scans nothing); values in Redis that we did not write are skipped; a killed Redis is a miss at once, never a hold-up', async () => {
  const yaraA = createYaraEngine({ rulesDir: DEFAULT_RULES_DIR, maxScanBytes: 1 << 20, scanTimeoutMs: 10_000 });
  const yaraB = createYaraEngine({ rulesDir: DEFAULT_RULES_DIR, maxScanBytes: 1 << 20, scanTimeoutMs: 10_000 });
  let scansB = 0;
  const countingB: Engine = { ...yaraB, scan: (i, s) => { scansB++; return yaraB.scan(i, s); } };
  const url = `redis://127.0.0.1:${port}`;
  const errors: string[] = [];
  const storeA = redisStore({ url, onError: (r) => errors.push(r) });
  const storeB = redisStore({ url, onError: (r) => errors.push(r) });
  const hostA = cachedEngine(yaraA, { store: storeA, ttlSeconds: 60, lookupMs: 200 });
  const cB = counters();
  const hostB = cachedEngine(countingB, { store: storeB, ttlSeconds: 60, lookupMs: 200, counters: cB });
  const admin = createClient({ url });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    await new Promise((r) => setTimeout(r, 300)); // both clients connected
    assert.equal((await hostA.scan(item(eicar()), never)).status, 'infected');
    assert.deepEqual(await hostA.scan(item('a clean attachment'), never), { status: 'clean' });
    const keys = await admin.keys('avfilter:v1:yara:*');
    assert.equal(keys.length, 2, `keys: ${keys.join(' ')}`);
    await new Promise((r) => setTimeout(r, 100));
    const onB = await hostB.scan(item(eicar()), never);
    assert.equal(onB.status, 'infected');
    assert.deepEqual(await hostB.scan(item('a clean attachment'), never), { status: 'clean' });
    assert.equal(scansB, 0, 'host B scanned what host A had scanned');
    assert.deepEqual(cB, { hits: 2, misses: 0, skipped: 0 });
    const ttl = await admin.ttl(keys[0]!);
    assert.ok(ttl > 0 && ttl <= 60, `TTL ${ttl}`);

    // Garbage under a key we use: skipped, the item scanned.
    for (const k of keys) await admin.set(k, 'C\nforged');
    assert.equal((await hostB.scan(item(eicar()), never)).status, 'infected');
    assert.equal(scansB, 1);
    assert.ok(cB.skipped >= 1);

    // Redis killed: every lookup a miss, quickly; scans go on.
    redis!.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    for (let i = 0; i < 10; i++) assert.equal((await hostB.scan(item(`fresh ${i}`), never)).status, 'clean');
    assert.ok(Date.now() - t0 < 3000, `10 scans with Redis gone took ${Date.now() - t0} ms`);
    assert.equal(scansB, 11);
  } finally {
    admin.destroy();
    await Promise.all([storeA.close(), storeB.close(), yaraA.close(), yaraB.close()]);
    await startRedis(); // for any later test
  }
});
