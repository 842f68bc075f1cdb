/**
 * The clamd engine's kept IDSESSION connections (src/engines/clamd/session.ts), against a real
 * clamd (helpers/clamd.ts), through the fault proxy (helpers/clamd-proxy.ts) where a fault is
 * needed: many scans share few connections; a session that breaks before clamd answered sends
 * the item again on a connection of its own (never after a verdict, never "clean" without one);
 * clamd's refusal past StreamMaxLength inside a session; a stuck clamd; idle sessions end.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine, EngineResult, ScanItem } from '../src/engines/engine.js';
import { createClamdEngine, parseServer, type ClamdEngine, type ClamdOptions } from '../src/engines/clamd/index.js';
import { SessionPool } from '../src/engines/clamd/session.js';
import { fileSource } from '../src/bytes/sources.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bufferSource } from '../src/bytes/sources.js';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { startClamdProxy, type ClamdProxy } from './helpers/clamd-proxy.js';
import { eicar } from './helpers/eicar.js';
import { waitFor } from './helpers/avfilter-proc.js';

let clamd: RunningClamd;
let proxy: ClamdProxy;

before(async () => {
  clamd = await startClamd();
  proxy = await startClamdProxy(clamd.socketPath);
});
after(async () => {
  await proxy?.stop();
  await clamd?.stop();
});

function engine(server: string, over: Partial<ClamdOptions> = {}): Engine {
  return createClamdEngine({ servers: [server], connectTimeoutMs: 2000, scanTimeoutMs: 10_000, chunkBytes: 64 * 1024, maxStreamBytes: 25 << 20, ...over });
}
const part = (b: Buffer, id = '1'): ScanItem => ({ id, kind: 'part', source: bufferSource(b) });
const scan = (e: Engine, it: ScanItem): Promise<EngineResult> => e.scan(it, new AbortController().signal);
const clean = (i: number): Buffer => Buffer.from(`a clean text part number ${i}\n`.repeat(50));

test('many scans share a few kept connections, each with its own verdict', async () => {
  proxy.mode = 'pass';
  const before = proxy.counts.pass;
  const e = engine(proxy.server);
  try {
    const items = Array.from({ length: 120 }, (_, i) => (i % 10 === 3 ? eicar() : clean(i)));
    const results: EngineResult[] = [];
    for (let i = 0; i < items.length; i += 12) results.push(...(await Promise.all(items.slice(i, i + 12).map((b, j) => scan(e, part(b, String(i + j)))))));
    results.forEach((r, i) => {
      if (i % 10 === 3) assert.deepEqual(r, { status: 'infected', names: [clamd.names.eicar] }, `item ${i}`);
      else assert.deepEqual(r, { status: 'clean' }, `item ${i}`);
    });
    const connections = proxy.counts.pass - before;
    assert.ok(connections <= 4, `${connections} connections for 120 items`);
  } finally {
    await e.close();
  }
});

test('a session broken before clamd answered (garbage, a close mid-stream): the item goes out again on a connection of its own and gets its verdict', async () => {
  for (const fault of ['garbage', 'close-mid-stream'] as const) {
    const e = engine(proxy.server);
    try {
      proxy.mode = 'pass';
      proxy.next.push(fault);
      const before = proxy.counts[fault];
      assert.deepEqual(await scan(e, part(eicar())), { status: 'infected', names: [clamd.names.eicar] }, fault);
      assert.equal(proxy.counts[fault], before + 1, 'the session met the fault');
    } finally {
      proxy.next.length = 0;
      await e.close();
    }
  }
});

test('the fault goes on: a broken session and a broken own connection are an error, never clean', async () => {
  const e = engine(proxy.server);
  try {
    proxy.mode = 'garbage';
    const r = await scan(e, part(clean(1)));
    assert.equal(r.status, 'error');
  } finally {
    proxy.mode = 'pass';
    await e.close();
  }
});

test('past clamd\'s StreamMaxLength inside a session: ESIZE_LIMIT for that item, the scans beside it still get theirs', async () => {
  const small = await startClamd({ streamMaxLength: '100K' });
  const e = engine(`unix:${small.socketPath}`); // believes the limit is 25 MiB: misconfigured on purpose
  try {
    const [big, virus, plain] = await Promise.all([
      scan(e, part(Buffer.alloc(600 * 1024, 0x41))),
      scan(e, part(eicar())),
      scan(e, part(clean(2))),
    ]);
    assert.equal(big.status === 'error' && big.code, 'ESIZE_LIMIT', JSON.stringify(big));
    assert.deepEqual(virus, { status: 'infected', names: [small.names.eicar] });
    assert.deepEqual(plain, { status: 'clean' });
    assert.deepEqual(await scan(e, part(eicar())), { status: 'infected', names: [small.names.eicar] }, 'the engine goes on');
  } finally {
    await e.close();
    await small.stop();
  }
});

test('a stuck clamd: ESCAN_TIMEOUT at scan_timeout, it is left alone until it answers PING again, then the next scan works', async () => {
  const e = engine(`unix:${clamd.socketPath}`, { scanTimeoutMs: 1500 });
  try {
    assert.deepEqual(await scan(e, part(clean(3))), { status: 'clean' }, 'a session is open');
    process.kill(clamd.pid, 'SIGSTOP');
    const t0 = Date.now();
    let r: EngineResult;
    try {
      r = await scan(e, part(clean(4)));
    } finally {
      process.kill(clamd.pid, 'SIGCONT');
    }
    assert.equal(r.status === 'error' && r.code, 'ESCAN_TIMEOUT', JSON.stringify(r));
    assert.ok(Date.now() - t0 < 6000, `${Date.now() - t0} ms`);
    await waitFor(() => (e as ClamdEngine).health()[0]!.up, 10_000, 'the server back up after its PONG');
    assert.deepEqual(await scan(e, part(eicar())), { status: 'infected', names: [clamd.names.eicar] });
  } finally {
    process.kill(clamd.pid, 'SIGCONT');
    await e.close();
  }
});

test('an idle session is ended after a few seconds', async () => {
  proxy.mode = 'pass';
  const e = engine(proxy.server);
  try {
    assert.deepEqual(await scan(e, part(clean(5))), { status: 'clean' });
    assert.ok(proxy.open > 0, 'the session stays open after the scan');
    await waitFor(() => proxy.open === 0, 12_000, 'the idle session closed');
  } finally {
    await e.close();
  }
});

test('an item in pieces (a prefix, then the message) is one stream to clamd: EICAR cut across the pieces is found', async () => {
  const pool = new SessionPool(parseServer(`unix:${clamd.socketPath}`));
  try {
    const e = eicar();
    const opts = { connectTimeoutMs: 2000, scanTimeoutMs: 5000, chunkBytes: 16, signal: AbortSignal.timeout(10_000) };
    const found = await pool.scan([e.subarray(0, 21), e.subarray(21)], opts);
    assert.equal(found?.status, 'infected');
    const clean = await pool.scan([e.subarray(0, 21), Buffer.from('x'), e.subarray(21)], opts);
    assert.equal(clean?.status, 'clean', 'the pieces are joined in order, nothing else');
  } finally {
    pool.close();
  }
});

test('regression: a session closed while a scan waits for it to connect (it hung, and -t exited 0 with files unreported): the scan goes on a connection of its own', async () => {
  const pool = new SessionPool(parseServer(`unix:${clamd.socketPath}`));
  try {
    const waiting = pool.scan([eicar()], { connectTimeoutMs: 2000, scanTimeoutMs: 5000, chunkBytes: 65536, signal: AbortSignal.timeout(10_000) });
    pool.close(); // before the connection is up
    const r = await Promise.race([waiting, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 5000).unref())]);
    assert.notEqual(r, 'hung', 'the scan waiting for the closed session never settled');
    assert.equal(r, undefined, 'no verdict from a closed session: the caller sends the item itself');
  } finally {
    pool.close();
  }
  // through the engine: small items on sessions while a large file-backed one closes idle ones
  const dir = mkdtempSync(join(tmpdir(), 'avf-sess-'));
  const e = engine(`unix:${clamd.socketPath}`);
  try {
    const big = join(dir, 'big');
    writeFileSync(big, Buffer.alloc(3 * 1024 * 1024, 'x'));
    const all = await Promise.race([
      Promise.all([
        e.scan(part(clean(71)), AbortSignal.timeout(30_000)),
        e.scan({ id: 'big', kind: 'part', source: fileSource(big, 3 * 1024 * 1024) }, AbortSignal.timeout(30_000)),
        e.scan(part(eicar()), AbortSignal.timeout(30_000)),
        e.scan(part(clean(72)), AbortSignal.timeout(30_000)),
      ]),
      new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 20_000).unref()),
    ]);
    assert.notEqual(all, 'hung');
    assert.deepEqual((all as EngineResult[]).map((r) => r.status), ['clean', 'clean', 'infected', 'clean']);
  } finally {
    await e.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
