/**
 * Hostile requests not covered by resilience-requests.test.ts:
 * NUL bytes in request lines, endless lines, thousands of control files, control files of many
 * MB, non-UTF-8 addresses, a data file that changes while it is scanned, a control file deleted
 * while the message is scanned. Each must give a 4xx (or its right verdict) and a log line,
 * never a crash, a hang, or a half-written or doubled control-file record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, readdirSync, readlinkSync, renameSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { eicar } from './helpers/eicar.js';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { waitFor } from './helpers/avfilter-proc.js';
import { CONTROL, daemonEnv, singlePart, stopDaemon, waitForWorkers, waitLog, workerPids, type DaemonEnv } from './helpers/daemon-env.js';
import { exchange, readReply } from './helpers/exchange.js';
import { rssBytes } from './helpers/proc-stats.js';
import { controlState, controlText } from './helpers/soak-mix.js';
import type { Daemon } from './helpers/avfilter-proc.js';

const clean = (): string => singlePart(Buffer.from('hello, a clean message'));
const infected = (): string => singlePart(eicar());
const BAD_REQUEST = /^451 4\.3\.0 Virus filter could not read the request\n$/;

/** Sends a request; it must be answered with exactly one reply within `ms`. */
async function ask(env: DaemonEnv, request: string | Buffer, ms = 20_000): Promise<{ code: number; text: string; raw: string }> {
  const ex = await exchange(env.sock, request, ms);
  assert.equal(ex.end, 'closed', `no reply within ${ms} ms`);
  const r = readReply(ex.bytes);
  assert.equal(r.kind, 'reply', `not one reply: ${JSON.stringify(ex.bytes.toString('latin1'))}`);
  if (r.kind !== 'reply') throw new Error('unreachable');
  return { code: r.code, text: r.text, raw: ex.bytes.toString('latin1') };
}

/** How many lines of the daemon's log match. */
const count = (d: Daemon, re: RegExp): number => d.stderr().split('\n').filter((l) => re.test(l)).length;

test('NUL bytes in request lines: 451 EBAD_PATH and a log line each; no file read, nothing marked', async () => {
  const env = daemonEnv();
  const d = await env.up();
  try {
    const req = env.request(infected());
    const ctl = req.controlPaths[0]!;
    const cases = [
      `${req.dataPath}\0/../../../etc/passwd\n${ctl}\n\n`,
      `${req.dataPath}\n${ctl}\0\n\n`,
      `${req.dataPath}\n\0\n${ctl}\n\n`,
      `\0${req.dataPath}\n${ctl}\n\n`,
      `${req.dataPath}\n${ctl}\n\0\n\n`,
    ];
    for (const c of cases) assert.match((await ask(env, c)).raw, BAD_REQUEST, JSON.stringify(c));
    await waitFor(() => count(d, /level=warning event=bad-request .*code=EBAD_PATH reason="path on line \d contains a control character"/) === cases.length, 5000, `a log line each\n${d.stderr()}`);
    assert.equal(readFileSync(ctl, 'utf8'), CONTROL, 'nothing marked');
    assert.equal((await ask(env, req.line)).code, 200, 'the real request is served');
    assert.match(readFileSync(ctl, 'utf8'), /^S0 \d+$/m);
    assert.equal(count(d, /event=(worker|master)-fault/), 0);
  } finally {
    assert.equal(await stopDaemon(d), 0);
  }
});

/** Writes `chunk` until the server closes; resolves with what it answered and how much was sent. */
function flood(sock: string, first: string, chunk: Buffer, maxBytes: number, timeoutMs: number): Promise<{ reply: string; sent: number; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ path: sock });
    let reply = '';
    let sent = 0;
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ reply, sent, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on('data', (b: Buffer) => { reply += b.toString('latin1'); });
    s.on('error', () => undefined);
    s.on('close', () => finish(true));
    const pump = (): void => {
      while (!done && !s.destroyed && sent < maxBytes) {
        sent += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
    };
    s.on('connect', () => {
      s.write(first);
      pump();
    });
  });
}

test('endless lines: a line that never ends is answered 451 at max_request_line without buffering it, endless path lines at max_request_lines, a request that never ends is closed at request_read_timeout', async () => {
  const env = daemonEnv('request_read_timeout = 2');
  const d = await env.up();
  try {
    const rss0 = rssBytes(d.child.pid!)!;
    // a line that fits the socket buffers: the client has stopped writing when the reply comes
    assert.match((await ask(env, `/${'a'.repeat(100_000)}`)).raw, BAD_REQUEST);
    // a line that never ends: the server answers and closes as soon as the line is too long.
    // The reply may not reach this client: it is still writing, gets EPIPE, and Node destroys
    // the socket before reading what arrived (submit never writes more than its request).
    const t0 = Date.now();
    const line = await flood(env.sock, '/', Buffer.alloc(64 * 1024, 0x61), 256 * 1024 * 1024, 20_000);
    assert.ok(line.closed, 'the server closed the connection');
    assert.match(line.reply, /^$|^451 4\.3\.0 Virus filter could not read the request\n$/);
    assert.ok(line.sent < 64 * 1024 * 1024, `the server read on: ${line.sent} bytes sent before it closed`);
    assert.ok(Date.now() - t0 < 10_000);
    await waitFor(() => count(d, /event=bad-request .*code=ELINE_TOO_LONG/) === 2, 5000, `a log line each\n${d.stderr()}`);

    const req = env.request(clean());
    const lines = await flood(env.sock, `${req.dataPath}\n`, Buffer.from(`${req.controlPaths[0]}\n`.repeat(1000)), 256 * 1024 * 1024, 20_000);
    assert.ok(lines.closed);
    assert.match(lines.reply, /^$|^451 4\.3\.0 Virus filter could not read the request\n$/);
    assert.ok(lines.sent < 64 * 1024 * 1024, `the server read on: ${lines.sent} bytes sent before it closed`);
    await waitLog(d, /event=bad-request .*code=ETOO_MANY_LINES/);
    assert.equal(readFileSync(req.controlPaths[0]!, 'utf8'), CONTROL);

    // a request that never ends: the data path, then one byte of a control path every 100 ms
    const drip = connect({ path: env.sock });
    const dripped: string[] = [];
    const t1 = Date.now();
    drip.on('data', (b: Buffer) => dripped.push(b.toString()));
    drip.on('error', () => undefined);
    const closed = new Promise<void>((r) => drip.on('close', () => r()));
    drip.write(`${req.dataPath}\n`);
    const ticker = setInterval(() => { if (!drip.destroyed) drip.write('a'); }, 100);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 15_000))]);
    clearInterval(ticker);
    assert.ok(drip.destroyed || drip.readableEnded, 'closed by the server');
    assert.deepEqual(dripped, [], 'no reply to a request that never ends');
    const took = Date.now() - t1;
    assert.ok(took >= 1500 && took < 8000, `closed after ${took} ms (request_read_timeout = 2)`);
    await waitLog(d, /event=request-read-timeout /);

    assert.equal((await ask(env, req.line)).code, 200, 'still serving');
    const grown = rssBytes(d.child.pid!)! - rss0;
    assert.ok(grown < 32 * 1024 * 1024, `master RSS grew by ${(grown / 1048576).toFixed(1)} MiB`);
    assert.equal(count(d, /event=(worker|master)-fault/), 0);
  } finally {
    assert.equal(await stopDaemon(d), 0);
  }
});

test('thousands of control files in one request: every recipient of every file marked exactly once, a clean message touches none, over max_request_lines a 451', async (t) => {
  const env = daemonEnv('max_request_lines = 10000');
  const d = await env.up();
  try {
    const files = 2000;
    const controls = Array.from({ length: files }, (_, i) => controlText(`many.${i}`, 1 + (i % 3)));
    const inf = env.request(infected(), controls);
    const t0 = Date.now();
    assert.equal((await ask(env, inf.line, 60_000)).code, 200);
    const took = Date.now() - t0;
    inf.controlPaths.forEach((p, i) => assert.equal(controlState(controls[i]!, readFileSync(p, 'latin1')), 'dropped', p));
    const recipients = controls.reduce((n, c) => n + (c.match(/^r/gm) ?? []).length, 0);
    await waitLog(d, new RegExp(`verdict=infected .*action=drop dropped=${recipients} `));

    const ok = env.request(clean(), controls);
    assert.equal((await ask(env, ok.line, 60_000)).code, 200);
    ok.controlPaths.forEach((p, i) => assert.equal(readFileSync(p, 'latin1'), controls[i]));

    env.write('');
    d.child.kill('SIGHUP');
    await waitLog(d, /event=reloaded/, 30_000);
    const over = env.request(infected(), controls.slice(0, 1500));
    assert.match((await ask(env, over.line)).raw, BAD_REQUEST);
    await waitLog(d, /event=bad-request .*code=ETOO_MANY_LINES/);
    over.controlPaths.forEach((p, i) => assert.equal(readFileSync(p, 'latin1'), controls[i]));
    assert.equal(count(d, /event=(worker|master)-fault/), 0);
    t.diagnostic(`${files} control files, ${recipients} recipients dropped in ${took} ms`);
  } finally {
    assert.equal(await stopDaemon(d), 0);
  }
});

test('thousands of control files under a limit of 1,024 descriptors: read a few at a time (999 files were opened at once: EMFILE, 451)', async () => {
  const env = daemonEnv('workers = 1');
  const d = await env.up();
  try {
    const [w] = await waitForWorkers(d.child.pid!, 1, 10_000);
    const lim = spawnSync('prlimit', ['--nofile=1024:1024', '--pid', String(w)], { encoding: 'utf8' });
    assert.equal(lim.status, 0, `prlimit: ${lim.stderr}`);
    const controls = Array.from({ length: 999 }, (_, i) => controlText(`limit.${i}`, 1));
    const req = env.request(infected(), controls);
    const others = Array.from({ length: 8 }, () => ask(env, env.request(clean()).line, 60_000));
    const r = await ask(env, req.line, 60_000);
    assert.equal(r.code, 200, r.raw);
    req.controlPaths.forEach((p, i) => assert.equal(controlState(controls[i]!, readFileSync(p, 'latin1')), 'dropped', p));
    for (const o of await Promise.all(others)) assert.equal(o.code, 200, o.raw);
    await waitLog(d, /action=drop dropped=999 /);
  } finally {
    assert.equal(await stopDaemon(d), 0);
  }
});

test('control files of many MB: over max_control_size a 451 at once without reading it; raised, 300,000 recipients dropped exactly once each', async () => {
  const env = daemonEnv();
  const d = await env.up();
  try {
    const req = env.request(infected());
    const big = join(env.spool, 'C-big');
    writeFileSync(big, CONTROL);
    truncateSync(big, 512 * 1024 * 1024); // sparse: 512 MB that cost nothing to write
    const t0 = Date.now();
    const r = await ask(env, `${req.dataPath}\n${big}\n\n`);
    assert.match(r.raw, /^451 .*\(ETOO_LARGE\)/);
    assert.ok(Date.now() - t0 < 5000, `answered after ${Date.now() - t0} ms`);
    await waitLog(d, /reply=451 code=ETOO_LARGE reason=/);

    env.write('max_control_size = "32M"');
    d.child.kill('SIGHUP');
    await waitLog(d, /event=reloaded/, 30_000);
    const text = controlText('huge', 300_000);
    assert.ok(text.length > 8 * 1024 * 1024, `${text.length} bytes`);
    const huge = env.request(infected(), [text]);
    assert.equal((await ask(env, huge.line, 120_000)).code, 200);
    assert.equal(controlState(text, readFileSync(huge.controlPaths[0]!, 'latin1')), 'dropped');
    await waitLog(d, /action=drop dropped=300000 to=rcpt0@example\.test,.*,\+299980 /);
    assert.equal(count(d, /event=(worker|master)-fault/), 0);
  } finally {
    assert.equal(await stopDaemon(d), 0);
  }
});

test('non-UTF-8 addresses in control files: the right verdict, every recipient marked by its own index, one log line of valid text', async () => {
  const env = daemonEnv();
  const d = await env.up();
  try {
    const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
    const odd = Buffer.concat([
      bytes('s\xe9l\xe8ve\xff@exemple.test\nfdns; x ([127.0.0.1])\nM00AB.NON.UTF8\n'),
      bytes('r\xc3\x28@x.test\nR\nN\n'), // invalid sequence
      bytes('r\xed\xa0\x80@x.test\nR\nN\n'), // an encoded surrogate
      bytes('r\xc0\xaf\xc0\xae@x.test\nR\nN\n'), // overlong "/" and "."
      bytes('r\x80\x80\x80\xbf\xfe@x.test\nRrfc822;\xff\nN\n'), // lone continuation bytes
      bytes('rplain@x.test\nR\nN\n'),
    ]);
    const ok = env.request(clean(), [odd.toString('latin1')]);
    writeFileSync(ok.controlPaths[0]!, odd);
    assert.equal((await ask(env, ok.line)).code, 200);
    assert.deepEqual(readFileSync(ok.controlPaths[0]!), odd);

    const inf = env.request(infected(), [odd.toString('latin1')]);
    writeFileSync(inf.controlPaths[0]!, odd);
    assert.equal((await ask(env, inf.line)).code, 200);
    const after = readFileSync(inf.controlPaths[0]!);
    assert.deepEqual(after.subarray(0, odd.length), odd, 'the original bytes are kept');
    assert.equal(controlState(odd.toString('latin1'), after.toString('latin1')), 'dropped');
    assert.match(after.subarray(odd.length).toString('latin1'), /^I0 R .*\nS0 \d+\nI1 R .*\nS1 \d+\nI2 R .*\nS2 \d+\nI3 R .*\nS3 \d+\nI4 R .*\nS4 \d+\n$/);

    await waitFor(() => count(d, /id=00AB\.NON\.UTF8 /) === 2, 5000, `a log line each\n${d.stderr()}`);
    for (const l of d.stderr().split('\n').filter((x) => x.includes('id=00AB.NON.UTF8'))) {
      assert.doesNotMatch(l, /[\u0000-\u001f\u007f-\u009f]/, 'no control characters');
      assert.match(l, /rcpts=5 /);
    }
    assert.match(d.stderr(), /id=00AB\.NON\.UTF8 .*verdict=infected .*dropped=5 to=/);
    assert.equal(count(d, /event=(worker|master)-fault/), 0);
  } finally {
    assert.equal(await stopDaemon(d), 0);
  }
});

/** Waits until a worker of `master` has `path` open (the request reached its scan). */
async function openedByWorker(master: number, path: string): Promise<void> {
  const opened = (w: number): boolean => {
    try {
      return readdirSync(`/proc/${w}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${w}/fd/${fd}`) === path;
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  };
  await waitFor(() => workerPids(master).some(opened), 10_000, `a worker opened ${path}`);
}

/** A daemon whose only engine is a real clamd, stopped while a request is in its scan. */
async function withStoppedScan(
  clamd: RunningClamd, env: DaemonEnv, d: Daemon, data: string | Buffer, controls: string[] | undefined,
  meanwhile: (req: ReturnType<DaemonEnv['request']>) => void,
): Promise<{ code: number; text: string; raw: string; req: ReturnType<DaemonEnv['request']> }> {
  const req = env.request(data, controls);
  process.kill(clamd.pid, 'SIGSTOP');
  try {
    const pending = ask(env, req.line, 30_000);
    await openedByWorker(d.child.pid!, req.dataPath);
    await new Promise((r) => setTimeout(r, 300)); // MIME done, the raw message sent to clamd
    meanwhile(req);
    process.kill(clamd.pid, 'SIGCONT');
    return { ...(await pending), req };
  } finally {
    process.kill(clamd.pid, 'SIGCONT');
  }
}

test('data file changed under the scan (grown, shrunk, truncated, rewritten, replaced): 451 EDATA_CHANGED; EICAR written into a clean message while it was scanned was answered 200', async () => {
  const clamd = await startClamd();
  const env = daemonEnv(`workers = 1\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]\n[action]\ninfected = "reject"`);
  const d = await env.up();
  try {
    const padded = (body: Buffer): string => singlePart(Buffer.concat([body, Buffer.alloc(200_000, 0x20)]));
    const cases: Array<[string, string, (p: string) => void]> = [
      ['grows: EICAR appended to a clean message', padded(Buffer.from('clean')), (p) => appendFileSync(p, `\n${infected()}`)],
      ['shrinks to half', padded(eicar()), (p) => truncateSync(p, 100_000)],
      ['truncated to nothing', padded(eicar()), (p) => truncateSync(p, 0)],
      ['rewritten in place with another message of the same size', padded(Buffer.from('clean')), (p) => {
        const now = readFileSync(p);
        const evil = Buffer.from(infected());
        writeFileSync(p, Buffer.concat([evil, now.subarray(evil.length)]));
      }],
      ['replaced: a clean message renamed over an infected one', padded(eicar()), (p) => {
        writeFileSync(`${p}.new`, clean());
        renameSync(`${p}.new`, p);
      }],
      ['replaced: an infected message renamed over a clean one', padded(Buffer.from('clean')), (p) => {
        writeFileSync(`${p}.new`, infected());
        renameSync(`${p}.new`, p);
      }],
    ];
    for (const [name, data, change] of cases) {
      const r = await withStoppedScan(clamd, env, d, data, undefined, (req) => change(req.dataPath));
      assert.match(r.raw, /^451 4\.3\.0 .*\(EDATA_CHANGED\)/, name);
      assert.equal(readFileSync(r.req.controlPaths[0]!, 'utf8'), CONTROL, `${name}: nothing marked`);
    }
    await waitFor(() => count(d, /reply=451 code=EDATA_CHANGED /) === cases.length, 5000, `a log line each\n${d.stderr()}`);
    // unchanged files keep their verdicts
    assert.equal((await ask(env, env.request(padded(eicar())).line)).code, 550);
    assert.equal((await ask(env, env.request(padded(Buffer.from('ok'))).line)).code, 200);
    assert.equal(count(d, /event=(worker|master)-fault/), 0);
  } finally {
    await stopDaemon(d);
    await clamd.stop();
  }
});

test('a control file deleted while the message is scanned: the drop answers 451 with a log line and never recreates it; what is not dropped keeps its verdict', async () => {
  const clamd = await startClamd();
  const env = daemonEnv(`workers = 1\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]`);
  const d = await env.up();
  try {
    const gone = await withStoppedScan(clamd, env, d, infected(), undefined, (req) => unlinkSync(req.controlPaths[0]!));
    assert.match(gone.raw, /^451 4\.3\.0 Virus found but the message could not be dropped/);
    assert.throws(() => readFileSync(gone.req.controlPaths[0]!), /ENOENT/, 'not recreated');
    await waitLog(d, /verdict=infected .*reply=451 .*drop_error=ENOENT/);

    // two control files, the second deleted: 451 (submit then unlinks the message and all its
    // control files, so the first may keep its records; they are whole and never doubled)
    const two = await withStoppedScan(clamd, env, d, infected(), [CONTROL, CONTROL], (req) => unlinkSync(req.controlPaths[1]!));
    assert.match(two.raw, /^451 4\.3\.0 Virus found but the message could not be dropped/);
    assert.match(String(controlState(CONTROL, readFileSync(two.req.controlPaths[0]!, 'latin1'))), /^(untouched|dropped)$/);
    assert.throws(() => readFileSync(two.req.controlPaths[1]!), /ENOENT/, 'not recreated');
    await waitFor(() => count(d, /reply=451 .*drop_error=ENOENT/) === 2, 5000, `a log line each\n${d.stderr()}`);

    const cleanGone = await withStoppedScan(clamd, env, d, clean(), undefined, (req) => unlinkSync(req.controlPaths[0]!));
    assert.equal(cleanGone.code, 200, 'a clean message needs its control file no more once read');
    assert.equal(count(d, /event=(worker|master)-fault/), 0);
    assert.equal((await ask(env, env.request(clean()).line)).code, 200, 'still serving');
  } finally {
    await stopDaemon(d);
    await clamd.stop();
  }
});
