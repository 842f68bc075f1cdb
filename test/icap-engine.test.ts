/**
 * The ICAP engine against a REAL c-icap (virus_scan with clamd_mod, to a real clamd with a
 * database generated at run time), and against tiny fake servers only for the faults a real
 * one will not produce on demand (garbage, a hang, a close in the middle of the answer, a
 * replaced body without a name). Never "clean" on any fault.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bufferSource, fileSource } from '../src/bytes/sources.js';
import type { Engine, EngineResult, ScanItem, ScanSource } from '../src/engines/engine.js';
import { createIcapEngine, type IcapOptions } from '../src/engines/icap/index.js';
import { IcapParser, type IcapEvent } from '../src/engines/icap/protocol.js';
import { GENERIC_NAME } from '../src/engines/icap/verdict.js';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { startCicap, freePort, type RunningCicap } from './helpers/cicap.js';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { eicar } from './helpers/eicar.js';

let clamd: RunningClamd;
let cicap: RunningCicap;
const dir = mkdtempSync(join(tmpdir(), 'avf-icap-'));
chmodSync(dir, 0o755);

before(async () => { clamd = await startClamd(); cicap = await startCicap(clamd.socketPath); });
after(async () => { await cicap?.stop(); await clamd?.stop(); });

const item = (source: ScanSource, id = '1'): ScanItem => ({ id, kind: 'part', source });

function engine(o: Partial<IcapOptions> & { url: string }): Engine {
  return createIcapEngine({ connectTimeoutMs: 2000, scanTimeoutMs: 10_000, maxBytes: 100 * 1024 * 1024, maxConnections: 0, ...o });
}

/** Runs `body` with a fresh engine and a signal that never fires, then closes the engine. */
async function withEngine<T>(o: Partial<IcapOptions> & { url: string }, body: (e: Engine, sig: AbortSignal) => Promise<T>): Promise<T> {
  const e = engine(o);
  try {
    return await body(e, new AbortController().signal);
  } finally {
    await e.close();
  }
}

function scanWith(o: Partial<IcapOptions> & { url: string }, source: ScanSource): Promise<EngineResult> {
  return withEngine(o, (e, sig) => e.scan(item(source), sig));
}

test('c-icap: EICAR is infected with the name c-icap reports (from clamd), a clean item is clean', async () => {
  await withEngine({ url: cicap.url() }, async (e, sig) => {
      assert.deepEqual(await e.scan(item(bufferSource(eicar())), sig), { status: 'infected', names: [clamd.names.eicar] });
      assert.deepEqual(await e.scan(item(bufferSource(Buffer.from('nothing to see here\n'))), sig), { status: 'clean' });
      assert.deepEqual(await e.scan(item(bufferSource(Buffer.alloc(0))), sig), { status: 'clean' }, 'an empty part (a preview of 0 bytes with ieof)');
  });
});

test('c-icap: items larger than the preview (preview, 100 Continue, the rest) from a file: clean is clean, EICAR at the end is found', async () => {
  const clean = randomBytes(3 * 1024 * 1024);
  const infected = Buffer.concat([clean, eicar()]);
  const cleanPath = join(dir, 'big-clean.bin');
  const infPath = join(dir, 'big-infected.bin');
  writeFileSync(cleanPath, clean);
  writeFileSync(infPath, infected);
  await withEngine({ url: cicap.url() }, async (e, sig) => {
      const before = readFileSync(join(cicap.dir, 'access.log'), 'utf8').split('\n').length;
      assert.deepEqual(await e.scan(item(fileSource(cleanPath, clean.length)), sig), { status: 'clean' });
      assert.deepEqual(await e.scan(item(fileSource(infPath, infected.length)), sig), { status: 'infected', names: [clamd.names.eicar] });
      assert.deepEqual(await e.scan(item(bufferSource(infected)), sig), { status: 'infected', names: [clamd.names.eicar] });
      const log = readFileSync(join(cicap.dir, 'access.log'), 'utf8').split('\n').slice(before - 1).join('\n');
      assert.match(log, /RESPMOD avscan\S* 204/, 'the clean item was answered 204');
  });
});

test('regression: items just over the preview are not held back by Nagle\'s algorithm (40 ms each for the delayed ACK)', async () => {
  await withEngine({ url: cicap.url() }, async (e, sig) => {
      await e.scan(item(bufferSource(randomBytes(4096))), sig); // OPTIONS, first connection
      const n = 20;
      const t0 = Date.now();
      for (let i = 0; i < n; i++) assert.deepEqual(await e.scan(item(bufferSource(randomBytes(4096))), sig), { status: 'clean' });
      const ms = Date.now() - t0;
      // about 4 ms an item here; with Nagle each took 45 ms (900 ms for 20)
      assert.ok(ms < n * 30, `${n} items one after the other took ${ms} ms`);
  });
});

test('c-icap srv_clamav (streams the item back while it scans): clean echo is clean, a late virus is an error, never clean', async () => {
  const clean = randomBytes(3 * 1024 * 1024);
  assert.deepEqual(await scanWith({ url: cicap.url('srv_clamav') }, bufferSource(clean)), { status: 'clean' });
  const r = await scanWith({ url: cicap.url('srv_clamav') }, bufferSource(Buffer.concat([clean, eicar()])));
  assert.ok(r.status === 'infected' || (r.status === 'error' && r.code === 'EPROTOCOL'), JSON.stringify(r));
});

test('c-icap: version() is the server\'s Service and ISTag from OPTIONS', async () => {
  const e = engine({ url: cicap.url() });
  try {
    assert.match(await e.version(AbortSignal.timeout(5000)), /^C-ICAP\/[\d.]+ server - Antivirus service; ISTag "[^"]+"$/);
  } finally {
    await e.close();
  }
});

test('max_size: a larger item is ESIZE_LIMIT and is not sent', async () => {
  const r = await scanWith({ url: cicap.url(), maxBytes: 1024 }, bufferSource(Buffer.alloc(1025)));
  assert.equal(r.status, 'error');
  assert.equal((r as { code: string }).code, 'ESIZE_LIMIT');
});

test('c-icap down (nothing listening): ECONNECT; an unknown service: ESCANNER with the status', async () => {
  const port = await freePort();
  const r = await scanWith({ url: `icap://127.0.0.1:${port}/avscan` }, bufferSource(eicar()));
  assert.equal(r.status, 'error');
  assert.equal((r as { code: string }).code, 'ECONNECT');
  const r2 = await scanWith({ url: cicap.url('no_such_service') }, bufferSource(Buffer.from('x')));
  assert.equal(r2.status, 'error', JSON.stringify(r2));
  assert.match((r2 as { message: string }).message, /ICAP 404/);
});

// ---- fake servers: faults on demand ----

const OPTIONS_OK = 'ICAP/1.0 200 OK\r\nMethods: RESPMOD\r\nService: Fake ICAP\r\nISTag: "fake-1"\r\nPreview: 4\r\nAllow: 204\r\nEncapsulated: null-body=0\r\n\r\n';

/**
 * A server that answers OPTIONS with `options()` (default OPTIONS_OK) and, once a RESPMOD's
 * preview or body has ended, calls `respmod(socket, request)`.
 */
async function fakeServer(respmod: (s: Socket, req: Buffer) => void, options: () => string = () => OPTIONS_OK): Promise<{ url: string; server: Server; requests: Buffer[] }> {
  const requests: Buffer[] = [];
  const server = createServer((s) => {
    let req = Buffer.alloc(0);
    let answered = false;
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      req = Buffer.concat([req, d]);
      if (answered || !req.includes('\r\n\r\n')) return;
      if (req.toString('latin1').startsWith('OPTIONS')) {
        answered = true;
        s.end(options());
        return;
      }
      // RESPMOD: wait for the end of the preview (or of the whole body)
      if (!/\r\n0(; ieof)?\r\n\r\n$/.test(req.toString('latin1'))) return;
      answered = true;
      requests.push(req);
      respmod(s, req);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `icap://127.0.0.1:${(server.address() as { port: number }).port}/av`, server, requests };
}

const fake = (respmod: (s: Socket, req: Buffer) => void) => fakeServer(respmod);

const faults: Array<[string, (s: Socket) => void, string]> = [
  ['garbage instead of an answer', (s) => s.end('HTTP/1.1 200 OK\r\n\r\nhello'), 'EPROTOCOL'],
  ['a close in the middle of the answer head', (s) => s.end('ICAP/1.0 204 No Con'), 'EPROTOCOL'],
  ['a close in the middle of the body', (s) => s.end('ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, res-body=19\r\n\r\nHTTP/1.1 200 OK\r\n\r\n5\r\nab'), 'EPROTOCOL'],
  ['a 500', (s) => s.end('ICAP/1.0 500 Server error\r\nEncapsulated: null-body=0\r\n\r\n'), 'ESCANNER'],
  ['a replaced body (HTTP 403) without a threat name', (s) => s.end('ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, res-body=26\r\n\r\nHTTP/1.1 403 Forbidden\r\n\r\n4\r\nno!!\r\n0\r\n\r\n'), 'EPROTOCOL'],
  ['an unknown status', (s) => s.end('ICAP/1.0 302 Elsewhere\r\n\r\n'), 'EPROTOCOL'],
];

for (const [what, answer, code] of faults) {
  test(`fake ICAP server: ${what} is an error ${code}, never clean`, async () => {
    const f = await fake((s) => answer(s));
    try {
      const r = await scanWith({ url: f.url }, bufferSource(Buffer.from('abc')));
      assert.equal(r.status, 'error', JSON.stringify(r));
      assert.equal((r as { code: string }).code, code, JSON.stringify(r));
    } finally {
      f.server.close();
    }
  });
}

test('fake ICAP server: a hang after the request is ESCAN_TIMEOUT within scan_timeout', async () => {
  const f = await fake(() => undefined);
  try {
    const t0 = Date.now();
    const r = await scanWith({ url: f.url, scanTimeoutMs: 300 }, bufferSource(Buffer.from('abc')));
    assert.equal((r as { code: string }).code, 'ESCAN_TIMEOUT', JSON.stringify(r));
    assert.ok(Date.now() - t0 < 3000);
  } finally {
    f.server.close();
  }
});

test('fake ICAP server: the preview carries the first Preview bytes, ieof when they are the whole item; vendor headers give the name', async () => {
  const f = await fake((s) => s.end('ICAP/1.0 200 OK\r\nX-Virus-ID: Vendor.Test\r\nEncapsulated: null-body=0\r\n\r\n'));
  try {
    assert.deepEqual(await scanWith({ url: f.url }, bufferSource(Buffer.from('abc'))), { status: 'infected', names: ['Vendor.Test'] });
    assert.match(f.requests[0]!.toString('latin1'), /Preview: 3\r\n[\s\S]*\r\n3\r\nabc\r\n0; ieof\r\n\r\n$/);
    assert.match(f.requests[0]!.toString('latin1'), /^RESPMOD icap:\/\/127\.0\.0\.1:\d+\/av ICAP\/1\.0\r\n[\s\S]*Allow: 204\r\n/);
  } finally {
    f.server.close();
  }
  const g = await fake((s) => s.end('ICAP/1.0 200 OK\r\nX-Violations-Found: 1\r\nEncapsulated: null-body=0\r\n\r\n'));
  try {
    assert.deepEqual(await scanWith({ url: g.url }, bufferSource(Buffer.from('abcdefgh'))), { status: 'infected', names: [GENERIC_NAME] });
    assert.match(g.requests[0]!.toString('latin1'), /Preview: 4\r\n[\s\S]*\r\n4\r\nabcd\r\n0\r\n\r\n$/, 'a preview of 4 bytes without ieof');
  } finally {
    g.server.close();
  }
});

test('fake ICAP server: 204 before the whole item (no preview asked) is not clean', async () => {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', (d: Buffer) => {
      if (d.toString('latin1').startsWith('OPTIONS')) s.end('ICAP/1.0 200 OK\r\nMethods: RESPMOD\r\nEncapsulated: null-body=0\r\n\r\n');
      else s.end('ICAP/1.0 204 No Content\r\n\r\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const big = Buffer.alloc(8 * 1024 * 1024, 1);
    const r = await scanWith({ url: `icap://127.0.0.1:${(server.address() as { port: number }).port}/av` }, bufferSource(big));
    assert.equal(r.status, 'error', JSON.stringify(r));
  } finally {
    server.close();
  }
});

/** Most RESPMOD connections open at once at a server announcing `maxConnections` (or none). */
async function mostConnections(o: { serverMax?: number; maxConnections: number; processes?: number }): Promise<number> {
  let open = 0;
  let most = 0;
  const max = o.serverMax !== undefined ? `Max-Connections: ${o.serverMax}\r\n` : '';
  const { url, server } = await fakeServer((s) => {
    most = Math.max(most, ++open);
    setTimeout(() => { open--; s.end('ICAP/1.0 204 No Content\r\n\r\n'); }, 300);
  }, () => `ICAP/1.0 200 OK\r\nMethods: RESPMOD\r\n${max}Encapsulated: null-body=0\r\n\r\n`);
  try {
    await withEngine({ url, maxConnections: o.maxConnections, processes: o.processes }, async (e, sig) => {
      const rs = await Promise.all(Array.from({ length: 12 }, () => e.scan(item(bufferSource(Buffer.from('abc'))), sig)));
      assert.ok(rs.every((r) => r.status === 'clean'), JSON.stringify(rs));
    });
  } finally {
    server.close();
  }
  return most;
}

test('connections at once: the server\'s Max-Connections shared among the processes, else 8, or max_connections', async () => {
  assert.equal(await mostConnections({ serverMax: 6, maxConnections: 0, processes: 2 }), 3);
  assert.equal(await mostConnections({ maxConnections: 0 }), 8);
  assert.equal(await mostConnections({ serverMax: 6, maxConnections: 2 }), 2);
});

test('OPTIONS is asked when the engine is built and again once its Options-TTL has passed, not for every item', async () => {
  let options = 0;
  const { url, server } = await fakeServer((s) => s.end('ICAP/1.0 204 No Content\r\n\r\n'), () => {
    options++;
    return `ICAP/1.0 200 OK\r\nMethods: RESPMOD\r\nISTag: "t${options}"\r\nOptions-TTL: 1\r\nEncapsulated: null-body=0\r\n\r\n`;
  });
  try {
    await withEngine({ url }, async (e, sig) => {
      for (let i = 0; i < 5; i++) assert.deepEqual(await e.scan(item(bufferSource(Buffer.from('abc'))), sig), { status: 'clean' });
      assert.equal(options, 1);
      await new Promise((r) => setTimeout(r, 1100));
      assert.deepEqual(await e.scan(item(bufferSource(Buffer.from('abc'))), sig), { status: 'clean' });
      assert.equal(options, 2);
    });
  } finally {
    server.close();
  }
});

test('parser: a c-icap answer split at every offset gives the same events', () => {
  const answer = Buffer.from(
    'ICAP/1.0 100 Continue\r\n\r\nICAP/1.0 200 OK\r\nISTag: "x"\r\nX-Infection-Found: Type=0; Resolution=2; Threat=Eicar;\r\nX-Violations-Found: 1\r\n\t-\r\n\tEicar\r\n\t0\r\n\t0\r\n' +
    'Encapsulated: res-hdr=0, res-body=26\r\n\r\nHTTP/1.0 403 Forbidden\r\n\r\n5\r\nhello\r\n3;x=y\r\n!!!\r\n0\r\n\r\n', 'latin1');
  const norm = (evs: IcapEvent[]) => {
    const out: unknown[] = [];
    let body = '';
    for (const e of evs) {
      if (e.kind === 'body') body += e.data.toString('latin1');
      else out.push(e.kind === 'head' ? { status: e.head.status, headers: [...e.head.headers] } : e);
    }
    return { out, body };
  };
  const whole = new IcapParser();
  const ref = norm(whole.push(answer));
  assert.equal(whole.error, undefined);
  assert.equal(ref.body, 'hello!!!');
  assert.deepEqual((ref.out[1] as { headers: [string, string[]][] }).headers.find(([k]) => k === 'x-violations-found')![1], ['1\n-\nEicar\n0\n0']);
  for (let i = 1; i < answer.length; i++) {
    const p = new IcapParser();
    const got = norm([...p.push(answer.subarray(0, i)), ...p.push(answer.subarray(i))]);
    assert.equal(p.error, undefined, `split at ${i}`);
    assert.deepEqual(got, ref, `split at ${i}`);
  }
});

// ---- through the command line ----

function config(url: string, extra = ''): string {
  const d = mkdtempSync(join(dir, 'cfg-'));
  chmodSync(d, 0o755);
  for (const s of ['allfilters', 'filters', 'spool']) mkdirSync(join(d, s));
  const cfg = join(d, 'avfilter.toml');
  writeFileSync(cfg, [
    `socket_dir_all = "${d}/allfilters"`, `socket_dir_optional = "${d}/filters"`, `pid_file = "${d}/avfilter.pid"`,
    `tmpdir = "${d}/work"`, `spool_dirs = ["${d}/spool"]`, '[[engine]]', 'type = "icap"', `url = "${url}"`, extra, '',
  ].join('\n'));
  return cfg;
}

const mail = (body: Buffer) => `From: a@example.test\nSubject: t\nMIME-Version: 1.0\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${body.toString('base64')}\n`;

test('avfilter -t with an ICAP engine: FOUND with c-icap\'s name, OK, and ERROR (exit 2) when c-icap is down', async () => {
  const virus = join(dir, 'virus.eml');
  const clean = join(dir, 'clean.eml');
  writeFileSync(virus, mail(eicar()));
  writeFileSync(clean, mail(Buffer.from('hello')));
  const r = runAvfilter(['-f', config(cicap.url()), '-t', virus, clean]);
  assert.equal(r.stdout, `${virus}: ${clamd.names.eicar} FOUND\n${clean}: OK\n`, r.stderr);
  assert.equal(r.code, 1);
  const down = runAvfilter(['-f', config(`icap://127.0.0.1:${await freePort()}/avscan`), '-t', clean]);
  assert.match(down.stdout, new RegExp(`^${clean}: .*ECONNREFUSED.* ERROR\\n$`));
  assert.equal(down.code, 2);
});

test('avfilter --batch-test with an ICAP engine: a virus is dropped (2xx, recipients delivered), c-icap down answers 451', async () => {
  const control = 'ssender@example.test\nMq1\nralice@example.test\nR\nN\n';
  const request = (cfg: string, body: Buffer, n: string) => {
    const spool = join(cfg, '..', 'spool');
    writeFileSync(join(spool, `D${n}`), mail(body));
    writeFileSync(join(spool, `C${n}`), control);
    return { line: `${join(spool, `D${n}`)}\n${join(spool, `C${n}`)}\n\n`, control: join(spool, `C${n}`) };
  };
  const cfg = config(cicap.url());
  const inf = request(cfg, eicar(), '1');
  const ok = request(cfg, Buffer.from('hello'), '2');
  const r = runAvfilter(['-f', cfg, '--batch-test'], { input: inf.line + ok.line });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0]!, /^2\d\d /);
  assert.match(readFileSync(inf.control, 'utf8'), /\nS0 \d+\n/, 'the infected message was dropped');
  assert.match(r.stderr, new RegExp(`verdict=infected names=${clamd.names.eicar.replace(/\./g, '\\.')}`));
  assert.match(lines[1]!, /^2\d\d /);
  const downCfg = config(`icap://127.0.0.1:${await freePort()}/avscan`);
  const again = request(downCfg, Buffer.from('hello'), '3');
  const d = runAvfilter(['-f', downCfg, '--batch-test'], { input: again.line });
  assert.match(d.stdout, /^451 /);
});

test('avfilter --config -v names the ICAP service and its ISTag', () => {
  const r = runAvfilter(['-f', config(cicap.url()), '--config', '-v']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\ntype = "icap"\n/);
  assert.match(r.stdout, /# version: C-ICAP\/[\d.]+ server - Antivirus service; ISTag "/);
  assert.match(r.stdout, /# signatures: icap icap:\/\/127\.0\.0\.1:\d+\/avscan: C-ICAP/);
});

test('signatureVersion is the URL and the ISTag of the last OPTIONS; healthy() turns false when the server cannot be reached', async () => {
  await withEngine({ url: cicap.url() }, async (e, sig) => {
    assert.deepEqual(await e.scan(item(bufferSource(Buffer.from('abc'))), sig), { status: 'clean' });
    assert.match(e.signatureVersion?.() ?? '', new RegExp(`^${cicap.url().replace(/[.?/]/g, '\\$&')} "[^"]+"$`));
    assert.equal(e.healthy?.(), true);
  });
  await withEngine({ url: `icap://127.0.0.1:${await freePort()}/avscan` }, async (e, sig) => {
    assert.equal((await e.scan(item(bufferSource(Buffer.from('abc'))), sig)).status, 'error');
    assert.equal(e.healthy?.(), false);
    assert.equal(e.signatureVersion?.(), undefined, 'nothing cached without a server');
  });
});

test('engine_mode = "failover": c-icap down, the next engine (clamscan through the command engine) finds the virus', async () => {
  const virus = join(dir, 'failover-virus.eml');
  writeFileSync(virus, mail(eicar()));
  const cfg = config(`icap://127.0.0.1:${await freePort()}/avscan`,
    `\n[[engine]]\ntype = "command"\ncommand = ["/usr/bin/clamscan", "--no-summary", "-d", "${clamd.dbDir}", "{}"]`);
  writeFileSync(cfg, `engine_mode = "failover"\n${readFileSync(cfg, 'utf8')}`);
  const r = runAvfilter(['-f', cfg, '-t', virus]);
  assert.equal(r.stdout, `${virus}: ${clamd.names.eicar} FOUND\n`, r.stderr);
  assert.equal(r.code, 1);
});
