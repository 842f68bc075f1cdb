/**
 * The counters and the metrics endpoint, on a real daemon in private directories: what the
 * Prometheus text at /metrics (over TCP and over a unix socket) and the plain report (logged
 * at stop) say must be exactly what was sent; a worker killed with SIGKILL must not take
 * counts the master already holds; the endpoint must never take the filter down.
 * The embedded engine (it knows EICAR) where no clamd is needed; a real clamd for server health.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eicar } from './helpers/eicar.js';
import { startClamd } from './helpers/clamd.js';
import { runAvfilter, waitFor, type Daemon } from './helpers/avfilter-proc.js';
import { daemonEnv, singlePart, stopDaemon, waitForWorkers, waitLog, workerPids, type DaemonEnv } from './helpers/daemon-env.js';
import { parseProm, scrape, total, type Target } from './helpers/prom.js';
import { METRICS } from '../src/ops/stats-metrics.js';

const clean = (): string => singlePart(Buffer.from('hello, a clean message'));
const infected = (): string => singlePart(eicar());

/** A multipart with `n` text parts: beyond mime.max_parts it is a limit. */
function manyParts(n: number): string {
  const parts = Array.from({ length: n }, (_, i) => `--b\nContent-Type: text/plain\n\npart ${i}\n`).join('');
  return `Subject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n${parts}--b--\n`;
}

/** A message carrying a ZipCrypto archive made by Info-ZIP's zip, as a sender's tools make it. */
function encryptedZipMessage(): string {
  const work = mkdtempSync(join(tmpdir(), 'avf-stats-enc-'));
  writeFileSync(join(work, 'a.txt'), 'nothing to see here\n');
  execFileSync('zip', ['-q', '-j', '-P', 'secret', join(work, 'enc.zip'), join(work, 'a.txt')]);
  const zip = readFileSync(join(work, 'enc.zip')).toString('base64');
  return `Subject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/zip; name="enc.zip"\nContent-Transfer-Encoding: base64\n\n${zip}\n--b--\n`;
}

/** The message log lines (one per request) written so far. */
function messageLines(d: Daemon): string[] {
  return d.stderr().split('\n').filter((l) => / verdict=/.test(l) && !/event=/.test(l));
}

function listening(d: Daemon): Target {
  const m = /event=metrics-listening address=tcp:([0-9.]+):(\d+)/.exec(d.stderr());
  assert.ok(m, `metrics-listening line\n${d.stderr()}`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** Scrapes until the messages counted reach `n` (the workers report once a second). */
async function scrapeUntil(t: Target, n: number): Promise<Map<string, number>> {
  let last = new Map<string, number>();
  const until = Date.now() + 15_000;
  for (;;) {
    const s = await scrape(t);
    assert.equal(s.status, 200);
    last = parseProm(s.body);
    if (total(last, 'avfilter_messages_total') >= n) return last;
    if (Date.now() > until) throw new Error(`messages counted ${total(last, 'avfilter_messages_total')}, want ${n}:\n${s.body}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const msgKey = (verdict: string, action: string, reply: number): string => `avfilter_messages_total{verdict="${verdict}",action="${action}",reply="${reply}"}`;

/** A daemon with `extra` config (which sets metrics on TCP port 0) and where its endpoint listens. */
async function upWithMetrics(extra: string): Promise<{ env: DaemonEnv; d: Daemon; tcp: Target }> {
  const env = daemonEnv(extra);
  const d = await env.up();
  try {
    await waitLog(d, /event=metrics-listening/);
  } catch (err) {
    await stopDaemon(d);
    throw err;
  }
  return { env, d, tcp: listening(d) };
}

async function sendAll(env: DaemonEnv, bodies: string[]): Promise<string[]> {
  return Promise.all(bodies.map((b) => env.send(env.request(b).line)));
}

test('counters: /metrics over TCP and the report at stop count exactly the clean, infected (by name), limit, encrypted and tempfailed messages sent; a SIGKILLed worker loses nothing the master counted; a reload rebinds the endpoint to a unix socket', async () => {
  const { env, d, tcp } = await upWithMetrics('workers = 2\nmetrics = "tcp:127.0.0.1:0"\n[action]\ninfected = "reject"\n[mime]\nmax_parts = 3');
  try {
    // N clean, M infected, L over the part limit, E encrypted
    const N = 5, M = 3, L = 2, E = 1;
    const replies = await sendAll(env, [
      ...Array.from({ length: N }, clean), ...Array.from({ length: M }, infected),
      ...Array.from({ length: L }, () => manyParts(6)), ...Array.from({ length: E }, encryptedZipMessage),
    ]);
    assert.equal(replies.filter((r) => /^200 /.test(r)).length, N, replies.join(''));
    assert.equal(replies.filter((r) => /^550 /.test(r)).length, M, replies.join(''));
    assert.equal(replies.filter((r) => /^451 /.test(r)).length, L, replies.join(''));
    assert.equal(replies.filter((r) => /^554 /.test(r)).length, E, replies.join(''));
    let s = await scrapeUntil(tcp, N + M + L + E);
    assert.equal(s.get(msgKey('clean', 'accept', 200)), N);
    assert.equal(s.get(msgKey('infected', 'reject', 550)), M);
    assert.equal(s.get(msgKey('tempfail', 'tempfail', 451)), L);
    assert.equal(s.get(msgKey('encrypted', 'reject', 554)), E);
    assert.equal(total(s, 'avfilter_messages_total'), N + M + L + E);
    // names as the message lines give them, counted once per message
    await waitFor(() => messageLines(d).length >= N + M + L + E, 5000, 'message lines');
    const names = messageLines(d).filter((l) => /verdict=infected/.test(l)).map((l) => /names=(\S+)/.exec(l)![1]!);
    assert.equal(names.length, M);
    for (const name of new Set(names)) assert.equal(s.get(`avfilter_infected_total{name="${name}"}`), names.filter((n) => n === name).length);
    assert.equal(total(s, 'avfilter_infected_total'), M);
    assert.equal(s.get('avfilter_limits_total{kind="EMIME_PART_LIMIT"}'), L);
    assert.equal(s.get('avfilter_tempfails_total{code="EMIME_PART_LIMIT"}'), L);
    assert.equal(total(s, 'avfilter_tempfails_total'), L);
    assert.equal(s.get('avfilter_encrypted_total{format="zip"}'), E);
    assert.equal(s.get('avfilter_message_duration_seconds_count'), N + M + L + E);
    assert.equal(s.get('avfilter_message_duration_seconds_bucket{le="+Inf"}'), N + M + L + E);
    assert.equal(s.get('avfilter_engine_errors_total{engine="yara",code="ECONNECT"}'), undefined);
    assert.equal(s.get('avfilter_workers'), 2);
    assert.equal(s.get('avfilter_degraded'), 0);
    assert.equal(s.get('avfilter_worker_restarts_total'), 0);
    const scansBefore = s.get('avfilter_engine_scans_total{engine="yara"}')!;
    assert.ok(scansBefore > 0);

    // SIGKILL a worker once the master holds the counts: nothing counted is lost
    const workers = workerPids(d.child.pid!);
    assert.equal(workers.length, 2);
    process.kill(workers[0]!, 'SIGKILL');
    await waitLog(d, /level=error event=worker-exit .*signal=SIGKILL/);
    await waitForWorkers(d.child.pid!, 2, 30_000, [workers[0]!]);
    s = await scrapeUntil(tcp, N + M + L + E);
    assert.equal(total(s, 'avfilter_messages_total'), N + M + L + E, 'the killed worker\'s counts stay');
    assert.equal(s.get(msgKey('clean', 'accept', 200)), N);
    assert.equal(s.get('avfilter_worker_restarts_total'), 1);

    // K more clean messages: every item of each is scanned once by the one engine
    const K = 4;
    const before = messageLines(d).length;
    await sendAll(env, Array.from({ length: K }, clean));
    s = await scrapeUntil(tcp, N + M + L + E + K);
    await waitFor(() => messageLines(d).length >= before + K, 5000, 'message lines');
    const items = messageLines(d).slice(before).reduce((a, l) => a + Number(/ items=(\d+)/.exec(l)![1]), 0);
    assert.equal(s.get('avfilter_engine_scans_total{engine="yara"}'), scansBefore + items);
    assert.equal(s.get(msgKey('clean', 'accept', 200)), N + K);

    // a reload that moves the endpoint to a unix socket: the TCP port closes, the counts go on
    const sock = join(env.dir, 'metrics.sock');
    env.write(`workers = 2\nmetrics = "unix:${sock}"\n[action]\ninfected = "reject"\n[mime]\nmax_parts = 3`);
    d.child.kill('SIGHUP');
    await waitLog(d, /event=reloaded/, 30_000);
    await waitLog(d, new RegExp(`event=metrics-listening address=unix:${sock}`));
    await assert.rejects(scrape(tcp), /ECONNREFUSED/);
    await sendAll(env, [clean()]);
    const unix = await scrapeUntil({ socketPath: sock }, N + M + L + E + K + 1);
    assert.equal(unix.get(msgKey('clean', 'accept', 200)), N + K + 1);
    assert.equal(unix.get('avfilter_reloads_total{result="ok"}'), 1);
    assert.equal(unix.get('avfilter_reloads_total{result="failed"}'), 0);
    assert.ok(unix.get('avfilter_last_reload_time_seconds')! > unix.get('avfilter_start_time_seconds')!);
  } finally {
    assert.equal(await stopDaemon(d), 0);
  }
  // the plain report, logged once at stop: since start (since the reload)
  const report = d.stderr().split('\n').filter((l) => /event=stats /.test(l)).map((l) => /text="?(.*?)"?$/.exec(l)![1]!);
  assert.ok(report.includes('messages: 16 (1)'), report.join('\n'));
  assert.ok(report.includes('messages verdict=clean action=accept reply=200: 10 (1)'), report.join('\n'));
  assert.ok(report.includes('messages verdict=infected action=reject reply=550: 3 (0)'), report.join('\n'));
  assert.ok(report.includes('messages verdict=tempfail action=tempfail reply=451: 2 (0)'), report.join('\n'));
  assert.ok(report.includes('messages verdict=encrypted action=reject reply=554: 1 (0)'), report.join('\n'));
  assert.ok(report.some((l) => /^infected name=\S+: 3 \(0\)$/.test(l)), report.join('\n'));
  assert.ok(report.includes('limits kind=EMIME_PART_LIMIT: 2 (0)'), report.join('\n'));
  assert.ok(report.includes('tempfails code=EMIME_PART_LIMIT: 2 (0)'), report.join('\n'));
  assert.ok(report.includes('encrypted format=zip: 1 (0)'), report.join('\n'));
  assert.ok(report.includes('worker restarts: 1 (0)'), report.join('\n'));
  assert.ok(report.includes('reloads ok: 1 (1)'), report.join('\n'));
  assert.ok(report.includes('reloads failed: 0 (0)'), report.join('\n'));
});

test('clamd server health: a server that cannot be connected to is up 0 with its failure counted, the one that answers is up 1; clamd down: up 0, and the tempfails and engine errors are counted by code', async () => {
  const clamd = await startClamd();
  const dead = join(mkdtempSync(join(tmpdir(), 'avf-stats-dead-')), 'clamd.sock');
  const { env, d, tcp } = await upWithMetrics(`workers = 1\nmetrics = "tcp:127.0.0.1:0"\n[[engine]]\ntype = "clamd"\nservers = ["unix:${dead}", "unix:${clamd.socketPath}"]`);
  try {
    const replies = await sendAll(env, [clean(), clean(), infected()]);
    assert.deepEqual(replies.map((r) => r.slice(0, 4)), ['200 ', '200 ', '200 ']);
    const s = await scrapeUntil(tcp, 3);
    assert.equal(s.get(`avfilter_clamd_server_up{server="unix:${dead}"}`), 0);
    assert.equal(s.get(`avfilter_clamd_server_up{server="unix:${clamd.socketPath}"}`), 1);
    assert.ok(s.get(`avfilter_clamd_server_failures_total{server="unix:${dead}"}`)! >= 1, 'its failed connect, which marked it down');
    assert.equal(s.get(`avfilter_clamd_server_failures_total{server="unix:${clamd.socketPath}"}`), 0);
    assert.equal(s.get(msgKey('infected', 'drop', 200)), 1);
    assert.equal(s.get(`avfilter_infected_total{name="${clamd.names.eicar}"}`), 1);
    // each message is one clamd item at least (its one part; raw_message = "parts" leaves the raw message to it)
    assert.ok(s.get('avfilter_engine_scans_total{engine="clamd"}')! >= 3);
    assert.equal(s.get('avfilter_engine_detections_total{engine="clamd"}'), 1);
    // every clamd down: scanner errors, 451, counted by code
    await clamd.stop();
    const down = await sendAll(env, [clean(), clean()]);
    assert.deepEqual(down.map((r) => r.slice(0, 4)), ['451 ', '451 ']);
    const s2 = await scrapeUntil(tcp, 5);
    assert.equal(s2.get(`avfilter_clamd_server_up{server="unix:${clamd.socketPath}"}`), 0);
    assert.equal(s2.get('avfilter_tempfails_total{code="ECONNECT"}'), 2);
    assert.ok(s2.get('avfilter_engine_errors_total{engine="clamd",code="ECONNECT"}')! >= 2);
  } finally {
    await stopDaemon(d);
    await clamd.stop();
  }
  assert.match(d.stderr(), new RegExp(`event=stats text="clamd server unix:${dead.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: DOWN, failures \\d+ \\(\\d+\\), last error seen \\S+: `));
});

test('metrics port already in use: logged at error, the daemon serves mail anyway', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen({ host: '127.0.0.1', port: 0 }, r));
  const port = (taken.address() as AddressInfo).port;
  const env = daemonEnv(`metrics = "tcp:127.0.0.1:${port}"`);
  const d = await env.up();
  try {
    await waitLog(d, new RegExp(`level=error event=metrics-error address=tcp:127.0.0.1:${port} reason="cannot listen: .*EADDRINUSE`));
    assert.match(await env.send(env.request(clean()).line), /^200 /);
    assert.match(await env.send(env.request(infected()).line), /^200 /);
    assert.equal(d.child.exitCode, null);
  } finally {
    assert.equal(await stopDaemon(d), 0);
    taken.close();
  }
});

test('metrics on a non-loopback address: served, with a warning naming the exposure; a host name is a config error naming the key', async () => {
  const env = daemonEnv('metrics = "tcp:0.0.0.0:0"');
  const d = await env.up();
  try {
    await waitLog(d, /level=warning event=metrics-exposed address=tcp:0\.0\.0\.0:\d+ reason="not a loopback address/);
    const port = Number(/event=metrics-listening address=tcp:0\.0\.0\.0:(\d+)/.exec(d.stderr())![1]);
    const s = await scrape({ host: '127.0.0.1', port });
    assert.equal(s.status, 200);
  } finally {
    assert.equal(await stopDaemon(d), 0);
  }
  const bad = daemonEnv('metrics = "tcp:metrics.example.test:9187"');
  const r = runAvfilter(['-f', bad.cfg, '--config']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /avfilter\.toml:\d+: "metrics": invalid metrics address "tcp:metrics\.example\.test:9187": .*host names other than localhost are refused/);
});

test('metrics endpoint: only GET/HEAD /metrics answer (text format 0.0.4, every metric with HELP and TYPE); other paths 404, other methods 405', async () => {
  const { d, tcp } = await upWithMetrics('metrics = "tcp:localhost:0"');
  try {
    const s = await scrape(tcp);
    assert.equal(s.status, 200);
    assert.equal(s.type, 'text/plain; version=0.0.4; charset=utf-8');
    parseProm(s.body);
    for (const m of METRICS) {
      assert.ok(s.body.includes(`# HELP ${m.name} `), `HELP of ${m.name}`);
      assert.ok(s.body.includes(`# TYPE ${m.name} ${m.type}\n`), `TYPE of ${m.name}`);
    }
    assert.equal((await scrape(tcp, '/')).status, 404);
    assert.equal((await scrape(tcp, '/metrics/x')).status, 404);
    assert.equal((await scrape(tcp, '/metrics', 'POST')).status, 405);
    const head = await scrape(tcp, '/metrics', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  } finally {
    assert.equal(await stopDaemon(d), 0);
  }
  assert.match(d.stderr(), /event=metrics-closed address=tcp:127\.0\.0\.1:\d+/);
});

test('verdict cache: the same message twice counts its items as misses, then as hits', async () => {
  const { env, d, tcp } = await upWithMetrics('workers = 1\ncache = "memory"\nmetrics = "tcp:127.0.0.1:0"');
  try {
    const body = singlePart(Buffer.from('the same clean message, twice'));
    assert.match(await env.send(env.request(body).line), /^200 /);
    assert.match(await env.send(env.request(body).line), /^200 /);
    const s = await scrapeUntil(tcp, 2);
    await waitFor(() => messageLines(d).length >= 2, 5000, 'message lines');
    const items = Number(/ items=(\d+)/.exec(messageLines(d)[0]!)![1]);
    assert.ok(items >= 2);
    // every item but the raw message, which is never looked up (it is never the same twice)
    assert.equal(s.get('avfilter_cache_lookups_total{result="miss"}'), items - 1);
    assert.equal(s.get('avfilter_cache_lookups_total{result="hit"}'), items - 1);
    assert.equal(s.get('avfilter_cache_lookups_total{result="skipped"}'), 0);
  } finally {
    assert.equal(await stopDaemon(d), 0);
  }
  assert.match(d.stderr(), /event=stats text="cache hits: \d+ \(\d+\)"/);
});
