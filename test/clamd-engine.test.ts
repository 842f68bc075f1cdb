/**
 * The clamd engine against a REAL clamd (helpers/clamd.ts: private instance, generated
 * database) over the unix socket, TCP and IPv6 TCP; fake servers (helpers/fake-clamd.ts) only
 * for faults clamd will not produce on demand. Virus names are never hard-coded: they come from
 * what the live clamd reported for the samples.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Engine, EngineResult, ScanItem, ScanSource } from '../src/engines/engine.js';
import { ping, version } from '../src/engines/clamd/client.js';
import { createClamdEngine, parseServer, type ClamdOptions } from '../src/engines/clamd/index.js';
import { MAIL_MAGICS } from '../src/engines/clamd/raw-message.js';
import { bufferSource, fileSource } from '../src/bytes/sources.js';
import { ENGINE_KEYS } from '../src/config/schema.js';
import { startClamd, TESTFILES_DIR, type RunningClamd } from './helpers/clamd.js';
import { eicar } from './helpers/eicar.js';
import { startFakeClamd, startUnacceptingListener, type FakeFault } from './helpers/fake-clamd.js';

const MiB = 1024 * 1024;
let clamd: RunningClamd;
let work: string;

before(async () => {
  clamd = await startClamd();
  work = await mkdtemp(join(tmpdir(), 'avf-clamd-test-'));
});
after(async () => {
  await clamd?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

function engine(servers: string[], over: Partial<ClamdOptions> = {}): Engine {
  return createClamdEngine({
    servers, connectTimeoutMs: 2000, scanTimeoutMs: 20_000, chunkBytes: 64 * 1024, maxStreamBytes: 25 * MiB, ...over,
  });
}
function item(kind: 'raw' | 'part', source: ScanSource | Buffer): ScanItem {
  return { id: kind === 'raw' ? 'raw' : '1', kind, source: Buffer.isBuffer(source) ? bufferSource(source) : source };
}
function scan(e: Engine, it: ScanItem, signal: AbortSignal = new AbortController().signal): Promise<EngineResult> {
  return e.scan(it, signal);
}
function codeOf(r: EngineResult): string {
  assert.equal(r.status, 'error', `expected an error, got ${JSON.stringify(r)}`);
  return r.status === 'error' ? r.code : '';
}
const unix = (): string => `unix:${clamd.socketPath}`;
const tcp = (): string => `tcp:127.0.0.1:${clamd.tcpPort}`;
const tcp6 = (): string | undefined => (clamd.tcp6Port ? `tcp:[::1]:${clamd.tcp6Port}` : undefined);

/** Deterministic clean filler (no signature of ours can match it). */
const PATTERN = Buffer.from(Array.from({ length: 90 }, (_, i) => 0x20 + ((i * 7919) % 90)));
function filler(size: number): Buffer {
  return Buffer.alloc(size, PATTERN);
}

/** A multipart message with EICAR as a base64 attachment, after the given first header lines. */
function mimeWithEicar(firstLines: string): Buffer {
  return Buffer.from(`${firstLines}To: user@test.example\nSubject: invoice\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n`
    + 'Message-ID: <1@test.example>\nContent-Type: multipart/mixed; boundary="XX"\n\n--XX\nContent-Type: text/plain\n\n'
    + 'see attachment\n--XX\nContent-Type: application/octet-stream; name="e.com"\nContent-Transfer-Encoding: base64\n\n'
    + `${eicar().toString('base64')}\n--XX--\n`, 'latin1');
}
const DKIM = 'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=test.example; s=sel;\n'
  + `\th=from:to:subject; bh=${'A'.repeat(44)};\n\tb=${'B'.repeat(300)}\n`;

for (const [label, server] of [['unix socket', unix], ['TCP 127.0.0.1', tcp], ['TCP [::1]', tcp6]] as const) {
  test(`over ${label}: clean -> clean, EICAR -> infected with the name clamd reported`, async (t) => {
    const s = server();
    if (!s) {
      // CI machines have ::1; there a missing IPv6 loopback is a failure, never a skip.
      if (process.env['CI']) assert.fail('no IPv6 loopback on this machine (required under CI)');
      return t.skip('no IPv6 loopback on this machine');
    }
    const e = engine([s]);
    assert.deepEqual(await scan(e, item('part', filler(100_000))), { status: 'clean' });
    assert.deepEqual(await scan(e, item('part', eicar())), { status: 'infected', names: [clamd.names.eicar] });
    // EICAR split over many tiny chunks: clamd reassembles the stream.
    const tiny = engine([s], { chunkBytes: 7 });
    assert.deepEqual(await scan(tiny, item('part', Buffer.concat([filler(1000), eicar(), filler(1000)]))),
      { status: 'infected', names: [clamd.names.eicar] });
    await e.close();
  });
}

test('clam.zip as a part and as raw (rawMessage "mail") -> infected: clamd unpacks it', async () => {
  const e = engine([unix()], { rawMessage: 'mail' });
  const zip = readFileSync(join(TESTFILES_DIR, 'clam.zip'));
  assert.deepEqual(await scan(e, item('part', zip)), { status: 'infected', names: [clamd.names.clamExe] });
  assert.deepEqual(await scan(e, item('raw', zip)), { status: 'infected', names: [clamd.names.clamExe] });
});

test('raw MIME messages with base64 attachments (rawMessage "mail") -> infected: clamd parses MIME', async () => {
  const e = engine([unix()], { rawMessage: 'mail' });
  const msg = mimeWithEicar('Received: from a.test by b.test; Mon, 1 Jan 2024 00:00:00 +0000\nFrom: a@test.example\n');
  assert.deepEqual(await scan(e, item('raw', msg)), { status: 'infected', names: [clamd.names.eicar] });
  const clamMail = readFileSync(join(TESTFILES_DIR, 'clam.mail'));
  assert.deepEqual(await scan(e, item('raw', clamMail)), { status: 'infected', names: [clamd.names.clamExe] });
});

test('raw message starting with DKIM-Signature (rawMessage "mail"): infected only thanks to the mail prefix', async () => {
  const e = engine([unix()], { rawMessage: 'mail' });
  const msg = mimeWithEicar(DKIM);
  // Control: the same bytes without the prefix (parts get none). If this starts failing, clamd
  // learned to type this message as mail by itself; give the test message a new shape.
  assert.deepEqual(await scan(e, item('part', msg)), { status: 'clean' }, 'clamd must not see this as mail unaided');
  assert.deepEqual(await scan(e, item('raw', msg)), { status: 'infected', names: [clamd.names.eicar] });
  // From a file, as Courier hands it over.
  const path = join(work, 'dkim.eml');
  await writeFile(path, msg);
  assert.deepEqual(await scan(e, item('raw', fileSource(path, msg.length))), { status: 'infected', names: [clamd.names.eicar] });
});

test('every start MAIL_MAGICS trusts really makes clamd parse the message as mail', async () => {
  const e = engine([unix()]);
  for (const magic of MAIL_MAGICS) {
    const r = await scan(e, item('part', mimeWithEicar(`${magic}value\n`)));
    assert.deepEqual(r, { status: 'infected', names: [clamd.names.eicar] }, JSON.stringify(magic));
  }
  assert.deepEqual(await scan(e, item('part', mimeWithEicar('X-Foo: value\n'))), { status: 'clean' }, 'control');
});

test('rawMessage "data": the raw message is scanned as plain bytes — byte signatures match, clamd neither parses it as mail nor finds a mail inside it', async () => {
  const e = engine([unix()], { rawMessage: 'data' });
  const m = engine([unix()], { rawMessage: 'mail' });
  for (const first of ['From: a@test.example\n', 'Received: from x\n', 'X-Foo: value\n', '\0\0']) {
    const msg = mimeWithEicar(first);
    assert.deepEqual(await scan(m, item('raw', msg)), { status: 'infected', names: [clamd.names.eicar] }, `mail: ${JSON.stringify(first)}`);
    assert.deepEqual(await scan(e, item('raw', msg)), { status: 'clean' }, `data: the base64 attachment is not decoded (${JSON.stringify(first)})`);
    // the same message as a mail inside other text: not found as an embedded mail either
    const wrapped = Buffer.concat([Buffer.from('some text first\n\n'), msg]);
    assert.deepEqual(await scan(e, item('raw', wrapped)), { status: 'clean' }, `data: no embedded mail (${JSON.stringify(first)})`);
  }
  const plain = Buffer.concat([Buffer.from('From: a@test.example\nSubject: x\n\n'), eicar(), Buffer.from('\n')]);
  assert.deepEqual(await scan(e, item('raw', plain)), { status: 'infected', names: [clamd.names.eicar] }, 'data: byte signatures run over every byte');
  // a part is a part: rawMessage changes nothing for it
  assert.deepEqual(await scan(e, item('part', mimeWithEicar('From: a@test.example\n'))), { status: 'infected', names: [clamd.names.eicar] });
});

test('rawMessage "parts": the engine declines the raw message of a message read one way only, and still scans one it is given (as "text")', async () => {
  const e = engine([unix()], { rawMessage: 'parts' });
  const plain = Buffer.concat([Buffer.from('From: a@test.example\nX-Note: '), eicar(), Buffer.from('\n\nhello\n')]);
  const once: ScanItem = { ...item('raw', plain), readOnce: true };
  assert.equal(e.declines?.(once), true, 'read one way: declined');
  assert.equal(e.declines?.(item('raw', plain)), false, 'read both ways: taken');
  assert.equal(e.declines?.({ ...item('part', plain), readOnce: true }), false, 'a part is never declined');
  // a composite engine (failover) may pass a declined item on: it is scanned, not waved through
  assert.deepEqual(await scan(e, once), { status: 'infected', names: [clamd.names.eicar] });
  for (const mode of ['text', 'data', 'mail'] as const) assert.equal(engine([unix()], { rawMessage: mode }).declines?.(once) ?? false, false, mode);
});

test('the default is rawMessage "parts", in the engine and in the config schema: a raw message read one way is declined, one read both ways is not', () => {
  const e = engine([unix()]);
  const plain = Buffer.from('From: a@test.example\n\nhello\n');
  assert.equal(e.declines?.({ ...item('raw', plain), readOnce: true }), true);
  assert.equal(e.declines?.(item('raw', plain)), false);
  assert.equal(ENGINE_KEYS.clamd?.find((k) => k.key === 'raw_message')?.default, 'parts');
});

test('file sources stream with backpressure; a source that changes size is EIO', async () => {
  const e = engine([unix()], { chunkBytes: 16 * 1024 });
  const big = filler(20 * MiB);
  const clean = join(work, 'big-clean');
  await writeFile(clean, big);
  assert.deepEqual(await scan(e, item('part', fileSource(clean, big.length))), { status: 'clean' });
  const dirty = join(work, 'big-dirty');
  const dirtyBytes = Buffer.concat([filler(3 * MiB), eicar(), filler(3 * MiB)]);
  await writeFile(dirty, dirtyBytes);
  assert.deepEqual(await scan(e, item('part', fileSource(dirty, dirtyBytes.length))), { status: 'infected', names: [clamd.names.eicar] });
  assert.equal(codeOf(await scan(e, item('part', fileSource(clean, big.length + 10)))), 'EIO', 'shorter than declared');
  assert.equal(codeOf(await scan(e, item('part', fileSource(clean, big.length - 10)))), 'EIO', 'longer than declared');
  assert.equal(codeOf(await scan(e, item('part', fileSource(join(work, 'missing'), 10)))), 'EIO', 'unreadable');
});

test('parallel scans each get their own answer', async () => {
  const e = engine([unix(), tcp()]);
  const items = Array.from({ length: 16 }, (_, i) => (i % 3 === 0 ? eicar() : filler(50_000 + i)));
  const results = await Promise.all(items.map((b) => scan(e, item('part', b))));
  results.forEach((r, i) => assert.deepEqual(r, i % 3 === 0 ? { status: 'infected', names: [clamd.names.eicar] } : { status: 'clean' }));
});

test('over maxStreamBytes: ESIZE_LIMIT at once, nothing sent; the mail prefix counts', async () => {
  const fake = await startFakeClamd('hang');
  try {
    const e = engine([fake.server], { maxStreamBytes: 1000 });
    assert.equal(codeOf(await scan(e, item('part', filler(1001)))), 'ESIZE_LIMIT');
    assert.equal(fake.connections, 0, 'an oversize item must not be sent');
  } finally {
    await fake.stop();
  }
  const limit = 4096;
  const e = engine([unix()], { maxStreamBytes: limit, rawMessage: 'mail' });
  const notMail = Buffer.concat([Buffer.from('DKIM-Signature: x\n\n'), filler(limit - 19)]);
  const mail = Buffer.concat([Buffer.from('Received: x\n\n'), filler(limit - 13)]);
  assert.equal(notMail.length, limit);
  assert.equal(mail.length, limit);
  assert.deepEqual(await scan(e, item('raw', mail)), { status: 'clean' });
  assert.deepEqual(await scan(e, item('part', notMail)), { status: 'clean' }, 'parts get no prefix');
  assert.equal(codeOf(await scan(e, item('raw', notMail))), 'ESIZE_LIMIT', 'prefix + limit bytes is over the limit');
  const asData = engine([unix()], { maxStreamBytes: limit, rawMessage: 'data' });
  assert.equal(codeOf(await scan(asData, item('raw', mail))), 'ESIZE_LIMIT', 'the data framing counts too');
  assert.deepEqual(await scan(asData, item('part', mail)), { status: 'clean' });
});

test("clamd's own StreamMaxLength: the refusal is read even though it arrives while we write", async () => {
  const small = await startClamd({ streamMaxLength: '1M' });
  try {
    const servers = [`unix:${small.socketPath}`, `tcp:127.0.0.1:${small.tcpPort}`];
    if (small.tcp6Port) servers.push(`tcp:[::1]:${small.tcp6Port}`);
    for (const s of servers) {
      const e = engine([s]); // believes the limit is 25 MiB: misconfigured on purpose
      for (let i = 0; i < 5; i++) {
        const r = await scan(e, item('part', filler(8 * MiB)));
        assert.equal(codeOf(r), 'ESIZE_LIMIT', `${s}: ${JSON.stringify(r)}`);
      }
      assert.deepEqual(await scan(e, item('part', eicar())), { status: 'infected', names: [small.names.eicar] });
    }
  } finally {
    await small.stop();
  }
  // A stopped clamd: nothing listens any more.
  for (const s of [`unix:${small.socketPath}`, `tcp:127.0.0.1:${small.tcpPort}`]) {
    assert.equal(codeOf(await scan(engine([s]), item('part', eicar()))), 'ECONNECT', s);
  }
});

test('no server: ECONNECT; a server that fails without a verdict is left for the next one, and not asked again until it answers PING', async () => {
  const missing = `unix:${join(work, 'nothing-here.sock')}`;
  assert.equal(codeOf(await scan(engine([missing]), item('part', eicar()))), 'ECONNECT');

  const refused = `tcp:127.0.0.1:${await closedPort()}`;
  const both = await scan(engine([missing, refused]), item('part', eicar()));
  assert.equal(codeOf(both), 'ECONNECT');
  assert.match(both.status === 'error' ? both.message : '', /nothing-here\.sock.*; .*127\.0\.0\.1/);

  assert.deepEqual(await scan(engine([missing, unix()]), item('part', eicar())), { status: 'infected', names: [clamd.names.eicar] });
  assert.deepEqual(await scan(engine([refused, tcp()]), item('part', eicar())), { status: 'infected', names: [clamd.names.eicar] });

  // A scan that timed out has no verdict: it is sent once more to the other server, and the
  // hung one gets nothing more (it never answers PING): one timeout, not one per item.
  const hang = await startFakeClamd('hang');
  const e = engine([hang.server, unix()], { scanTimeoutMs: 300 });
  try {
    assert.deepEqual(await scan(e, item('part', eicar())), { status: 'infected', names: [clamd.names.eicar] });
    assert.equal(hang.connections, 1);
    for (let i = 0; i < 5; i++) assert.deepEqual(await scan(e, item('part', eicar())), { status: 'infected', names: [clamd.names.eicar] });
    assert.equal(hang.instreams, 1, 'the hung server got another item');
  } finally {
    await e.close();
    await hang.stop();
  }
});

test('a server that does not accept: ECONNECT_TIMEOUT, and failover past it', async () => {
  const stuck = await startUnacceptingListener();
  try {
    const t0 = Date.now();
    const r = await scan(engine([stuck.server], { connectTimeoutMs: 300 }), item('part', eicar()));
    assert.equal(codeOf(r), 'ECONNECT_TIMEOUT');
    assert.ok(Date.now() - t0 < 5000);
    assert.deepEqual(await scan(engine([stuck.server, unix()], { connectTimeoutMs: 300 }), item('part', eicar())),
      { status: 'infected', names: [clamd.names.eicar] });
  } finally {
    await stuck.stop();
  }
});

/** Runs one scan against a fake with the given fault. */
async function againstFake(fault: FakeFault, body: Buffer, over: Partial<ClamdOptions> = {}, transport: 'tcp' | 'unix' = 'tcp') {
  const fake = await startFakeClamd(fault, { transport });
  try {
    const t0 = Date.now();
    const result = await scan(engine([fake.server], over), item('part', body));
    return { result, ms: Date.now() - t0, fake };
  } finally {
    await fake.stop();
  }
}

test('fake: a server that never answers -> ESCAN_TIMEOUT after scanTimeoutMs', async () => {
  const { result, ms } = await againstFake('hang', eicar(), { scanTimeoutMs: 300 });
  assert.equal(codeOf(result), 'ESCAN_TIMEOUT');
  assert.ok(ms >= 250 && ms < 5000, `${ms} ms`);
});

test('fake: garbage, a truncated "stream: OK" and an OK before the end are errors, never clean', async () => {
  assert.equal(codeOf((await againstFake('garbage', filler(1000))).result), 'EPROTOCOL');
  assert.equal(codeOf((await againstFake('no-nul-then-close', filler(1000))).result), 'EPROTOCOL');
  assert.equal(codeOf((await againstFake('ok-before-end', filler(20 * MiB))).result), 'EPROTOCOL');
  assert.equal(codeOf((await againstFake('no-nul-then-close', filler(1000), {}, 'unix')).result), 'EPROTOCOL');
});

test('fail-open: "stream: OK" followed by an unterminated line and a close is EPROTOCOL, never clean', async () => {
  for (const transport of ['tcp', 'unix'] as const) {
    const { result } = await againstFake('ok-then-partial', filler(1000), {}, transport);
    assert.equal(codeOf(result), 'EPROTOCOL', transport);
  }
});

test('fake: closed mid-stream without a reply -> EPROTOCOL', async () => {
  for (const transport of ['tcp', 'unix'] as const) {
    const { result } = await againstFake('close-mid-stream', filler(4 * MiB), {}, transport);
    assert.equal(codeOf(result), 'EPROTOCOL', transport);
  }
});

test('fake: size limit refused at the first chunk while a large body is still being written -> ESIZE_LIMIT', async () => {
  for (const transport of ['tcp', 'unix'] as const) {
    for (let i = 0; i < 5; i++) {
      const { result, fake } = await againstFake('size-limit-early', filler(16 * MiB), {}, transport);
      assert.equal(codeOf(result), 'ESIZE_LIMIT', `${transport}: ${JSON.stringify(result)}`);
      assert.equal(fake.payloadBytes, 0, 'the fake refused before reading any payload');
    }
  }
});

test('abort: EABORTED at once, before or during a scan; engine.close() aborts scans in flight', async () => {
  const fake = await startFakeClamd('hang');
  try {
    const e = engine([fake.server]);
    const pre = new AbortController();
    pre.abort();
    assert.equal(codeOf(await scan(e, item('part', eicar()), pre.signal)), 'EABORTED');
    assert.equal(fake.connections, 0);

    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 100);
    assert.equal(codeOf(await scan(e, item('part', eicar()), ac.signal)), 'EABORTED');
    assert.ok(Date.now() - t0 < 5000);

    const inFlight = scan(e, item('part', eicar()));
    setTimeout(() => void e.close(), 100);
    assert.equal(codeOf(await inFlight), 'EABORTED');
    assert.equal(codeOf(await scan(e, item('part', eicar()))), 'EABORTED', 'a closed engine scans nothing');
  } finally {
    await fake.stop();
  }
});

test("version() is clamd's VERSION line; ping() gets PONG; both fail cleanly without clamd", async () => {
  const signal = new AbortController().signal;
  const v = await engine([unix()]).version(signal);
  assert.match(v, /^ClamAV \d+\.\d+/);
  const opts = { connectTimeoutMs: 2000, replyTimeoutMs: 5000, signal };
  assert.deepEqual(await ping(parseServer(tcp()), opts), { ok: true, reply: 'PONG' });
  const direct = await version(parseServer(unix()), opts);
  assert.equal(direct.ok && direct.reply, v);
  const missing = `unix:${join(work, 'nothing-here.sock')}`;
  assert.match(await engine([missing]).version(signal), /^clamd version unknown \(ECONNECT: /);
  const garbage = await startFakeClamd('garbage');
  try {
    const p = await ping(parseServer(garbage.server), opts);
    assert.equal(p.ok, false);
    assert.equal(!p.ok && p.code, 'EPROTOCOL');
  } finally {
    await garbage.stop();
  }
});

test('createClamdEngine validates its options up front', () => {
  const base: ClamdOptions = { servers: [unix()], connectTimeoutMs: 1, scanTimeoutMs: 1, chunkBytes: 1, maxStreamBytes: 1 };
  assert.equal(createClamdEngine(base).label, 'clamd');
  const code = (o: Partial<ClamdOptions>): string | undefined => {
    try {
      createClamdEngine({ ...base, ...o });
      return undefined;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code;
    }
  };
  assert.equal(code({ servers: [] }), 'EBADOPTION');
  assert.equal(code({ servers: ['clamd.ctl'] }), 'EBADSERVER');
  assert.equal(code({ chunkBytes: 0 }), 'EBADOPTION');
  assert.equal(code({ chunkBytes: 2 ** 32 }), 'EBADOPTION');
  assert.equal(code({ scanTimeoutMs: 1.5 }), 'EBADOPTION');
  assert.equal(code({ connectTimeoutMs: -1 }), 'EBADOPTION');
  assert.equal(code({ maxStreamBytes: Number.NaN }), 'EBADOPTION');
});

/** A loopback port with nothing listening (listen on 0, close). */
async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

test('harness reload(): a signature added to dbDir is in effect afterwards', async () => {
  const e = engine([unix()]);
  const marker = Buffer.from(`avfilter reload marker ${process.pid} ${Date.now()}`);
  assert.deepEqual(await scan(e, item('part', marker)), { status: 'clean' });
  const sigName = `Avfilter.Test.Reload${process.pid}`;
  await writeFile(join(clamd.dbDir, 'reload-test.ndb'), `${sigName}:0:*:${marker.toString('hex')}\n`);
  await clamd.reload();
  const r = await scan(e, item('part', marker));
  assert.equal(r.status, 'infected');
  assert.ok(r.status === 'infected' && r.names[0]!.startsWith(sigName), JSON.stringify(r));
  assert.deepEqual(await scan(e, item('part', eicar())), { status: 'infected', names: [clamd.names.eicar] });
});
