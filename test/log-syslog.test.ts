/**
 * log_to = "syslog" and log_format = "json", end to end: a private unix datagram socket (a
 * python3 receiver) stands in for /dev/log, and the daemon's lines — the master's and its
 * workers' — must arrive with facility mail and their own severity.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { daemonEnv, stopDaemon, waitLog, type DaemonEnv } from './helpers/daemon-env.js';
import { waitFor, type Daemon } from './helpers/avfilter-proc.js';
import { formatJson, formatLine } from '../src/ops/log.js';
import { MAX_DATAGRAM_BYTES, priority, syslogDatagram, syslogTime } from '../src/ops/syslog.js';
import { rescueDaemonKeys } from '../src/config/rescue.js';

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Binds `path` (SOCK_DGRAM) and appends every datagram, one per line, to `out`. */
const RECEIVER = `
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print('ready', flush=True)
with open(out, 'ab', buffering=0) as f:
    while True:
        f.write(s.recv(65536) + b'\\n')
`;

interface Receiver {
  readonly proc: ChildProcess;
  lines(): string[];
  stop(): Promise<void>;
}

async function receiver(path: string, out: string): Promise<Receiver> {
  const proc = spawn(PYTHON, ['-c', RECEIVER, path, out], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.once('data', () => resolve());
    proc.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
  });
  return {
    proc,
    lines: () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean) : []),
    stop: async () => {
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}

/** A daemon logging to a receiver on a private socket, with `keys` added to its config. */
async function withSyslogDaemon(prefix: string, keys: string, body: (env: DaemonEnv, rx: Receiver, d: Daemon) => Promise<void>): Promise<void> {
  const env = daemonEnv('', prefix);
  const sockPath = join(env.dir, 'log');
  const rx = await receiver(sockPath, join(env.dir, 'received'));
  env.write(`log_to = "syslog"\nsyslog_socket = "${sockPath}"\n${keys}`);
  const d = await env.up();
  try {
    await body(env, rx, d);
  } finally {
    await stopDaemon(d);
    await rx.stop();
    rmSync(env.dir, { recursive: true, force: true });
  }
}

/** `<PRI>Mmm dd hh:mm:ss avfilter[pid]: body` */
const DATAGRAM = /^<(\d+)>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) avfilter\[(\d+)\]: (.*)$/;

function parse(line: string): { pri: number; pid: number; body: string } {
  const m = DATAGRAM.exec(line);
  assert.ok(m, `not a syslog datagram: ${line}`);
  return { pri: Number(m[1]), pid: Number(m[3]), body: m[4]! };
}

test('syslog datagrams: facility mail with the severity of the line, RFC 3164 time, tag avfilter[pid], cut at 8 KiB', () => {
  assert.equal(priority('error'), 19);
  assert.equal(priority('warning'), 20);
  assert.equal(priority('info'), 22);
  assert.equal(priority('debug'), 23);
  assert.equal(syslogTime(new Date(2026, 0, 5, 7, 8, 9)), 'Jan  5 07:08:09');
  const d = syslogDatagram('error', 'level=error event=degraded\n', 42, new Date(2026, 11, 24, 23, 59, 1)).toString();
  assert.equal(d, '<19>Dec 24 23:59:01 avfilter[42]: level=error event=degraded');
  const long = syslogDatagram('info', `x=${'é'.repeat(10_000)}`, 1);
  assert.ok(long.length <= MAX_DATAGRAM_BYTES);
  assert.ok(long.toString('utf8').endsWith('é [cut]'), 'cut on a character boundary and marked');
});

test('a config that does not parse still gives its log_to, log_format and syslog_socket (its error must reach that syslog)', () => {
  const k = rescueDaemonKeys('log_to = "syslog"\nlog_format = "json"\nsyslog_socket = "/run/log.sock"\nrequest_timeout = = 3\n');
  assert.deepEqual([k.log_to, k.log_format, k.syslog_socket], ['syslog', 'json', '/run/log.sock']);
  const bad = rescueDaemonKeys('log_to = "journal"\nlog_format = 3\nsyslog_socket = "relative"\n[x\n');
  assert.deepEqual([bad.log_to, bad.log_format, bad.syslog_socket], ['stderr', 'text', '/dev/log'], 'values of the wrong kind: the defaults');
});

test('json lines: one object with ts, level and the fields; hostile characters come back exactly, escaped on the line', () => {
  const hostile = 'a\nb\u0085c\u202Ed\u2028e\u{E0041}f"\\';
  const line = formatLine('warning', { event: 'control-busy', data: hostile, n: 3, list: ['x', 'y'], skip: undefined }, { format: 'json', to: 'stderr' });
  assert.ok(line.endsWith('}\n'));
  assert.equal(line.indexOf('\n'), line.length - 1, 'one line');
  assert.doesNotMatch(line.slice(0, -1), /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202e]|\u{E0041}/u, 'no raw control, separator, bidi or tag character');
  const obj = JSON.parse(line) as Record<string, unknown>;
  assert.match(String(obj['ts']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual({ ...obj, ts: 'T' }, { ts: 'T', level: 'warning', event: 'control-busy', data: hostile, n: 3, list: ['x', 'y'] });
  const cut = JSON.parse(formatJson('info', { v: 'z'.repeat(5000) })) as { v: string };
  assert.equal(cut.v, `${'z'.repeat(1000)}...`);
  assert.equal(formatLine('info', { event: 'started' }, { format: 'text', to: 'syslog' }), 'event=started', 'syslog bodies have no prefix: the tag says avfilter');
});

test('log_to = "syslog": a config error at start arrives at LOG_ERR (<19>) and a message line at LOG_INFO (<22>), from the master and the worker', async () => {
  await withSyslogDaemon('avf-syslog-', '[[engine]]\ntype = "yara"\nrules = "/nonexistent/no-such-rules"', async (env, rx, d) => {
    await waitFor(() => rx.lines().some((l) => / event=degraded /.test(l)), 20_000, `degraded line\n${rx.lines().join('\n')}\n${d.stderr()}`);
    const degraded = parse(rx.lines().find((l) => / event=degraded /.test(l))!);
    assert.equal(degraded.pri, 19, 'mail.err');
    assert.equal(degraded.pid, d.child.pid);
    assert.match(degraded.body, /no-such-rules/);
    const reply = await env.send(env.request('Subject: x\n\nhello\n').line);
    assert.match(reply, /^451 /);
    await waitFor(() => rx.lines().some((l) => /verdict=tempfail/.test(l)), 10_000, 'message line');
    const message = parse(rx.lines().find((l) => /verdict=tempfail/.test(l))!);
    assert.equal(message.pri, 22, 'mail.info');
    assert.notEqual(message.pid, d.child.pid, 'written by the worker that answered, with its own pid');
    assert.match(message.body, /code=ENOT_CONFIGURED/);
    assert.doesNotMatch(d.stderr(), /avfilter: /, 'nothing on stderr while syslog takes the lines');
  });
});

test('log_format = "json" with log_to = "syslog": every line is one JSON object with ts, level and the event or message fields', async () => {
  await withSyslogDaemon('avf-syslog-json-', 'log_format = "json"\n[[engine]]\ntype = "yara"', async (env, rx, d) => {
    const reply = await env.send(env.request('Subject: x\n\nhello\n').line);
    assert.match(reply, /^200 /);
    await waitFor(() => rx.lines().some((l) => /"verdict":"clean"/.test(l)), 10_000, `message line\n${rx.lines().join('\n')}`);
    const objs = rx.lines().map((l) => {
      const p = parse(l);
      return { pri: p.pri, obj: JSON.parse(p.body) as Record<string, unknown> };
    });
    for (const { pri, obj } of objs) {
      assert.match(String(obj['ts']), /Z$/);
      assert.equal(pri, priority(obj['level'] as 'info'), `severity of ${JSON.stringify(obj)}`);
    }
    const started = objs.find((o) => o.obj['event'] === 'started')!.obj;
    assert.equal(started['pid'], d.child.pid);
    const msg = objs.find((o) => o.obj['verdict'] === 'clean')!.obj;
    assert.equal(msg['level'], 'info');
    assert.equal(msg['rcpts'], 1, 'numbers stay numbers');
    assert.equal(msg['from'], '<s@example.test>');
    assert.equal(typeof msg['ms'], 'number');
  });
});

test('a syslog socket missing at start is said once on stderr; one that goes away loses lines (counted) and mail is still answered', async () => {
  const env = daemonEnv('', 'avf-syslog-gone-');
  const sockPath = join(env.dir, 'log');
  env.write(`log_to = "syslog"\nsyslog_socket = "${sockPath}"\n[[engine]]\ntype = "yara"`);
  const d = await env.up();
  let rx: Receiver | undefined;
  try {
    await waitLog(d, /log_to = "syslog": .*log: ENOENT: log lines are lost/);
    assert.equal(d.stderr().match(/log lines are lost/g)!.length, 1);
    assert.match(await env.send(env.request('Subject: x\n\nhello\n').line), /^200 /, 'answered with no syslog at all');
    // a syslog daemon starts: lines arrive; it goes away again: lines are lost, mail flows
    rx = await receiver(sockPath, join(env.dir, 'received'));
    assert.match(await env.send(env.request('Subject: x\n\nsecond\n').line), /^200 /);
    await waitFor(() => rx!.lines().some((l) => /verdict=clean/.test(l)), 10_000, 'a message line once syslog is there');
    await rx.stop();
    unlinkSync(sockPath);
    for (let i = 0; i < 3; i++) assert.match(await env.send(env.request(`Subject: x\n\nlost ${i}\n`).line), /^200 /);
    // back once more, to hear how many were lost (workers report theirs in their heartbeat)
    await new Promise((r) => setTimeout(r, 1500));
    rx = await receiver(sockPath, join(env.dir, 'received2'));
    assert.equal(await stopDaemon(d), 0);
    await waitFor(() => rx!.lines().some((l) => /event=stopped/.test(l)), 10_000, `stopped line\n${rx!.lines().join('\n')}`);
    const stopped = rx.lines().find((l) => /event=stopped/.test(l))!;
    const lost = Number(/log_lines_lost=(\d+)/.exec(stopped)?.[1] ?? 0);
    assert.ok(lost >= 4, `the first message's line and three more were lost: ${stopped}`);
  } finally {
    if (d.child.exitCode === null) await stopDaemon(d);
    await rx?.stop();
    rmSync(env.dir, { recursive: true, force: true });
  }
});

test('a reload that changes log_to or log_format says it takes effect after a restart, and lines keep their format', async () => {
  const env = daemonEnv('[[engine]]\ntype = "yara"', 'avf-log-reload-');
  const d = await env.up();
  try {
    await waitLog(d, /event=started/);
    env.write('log_format = "json"\nlog_to = "syslog"\n[[engine]]\ntype = "yara"');
    d.child.kill('SIGHUP');
    await waitLog(d, /event=reloaded/, 30_000);
    assert.match(d.stderr(), /avfilter: level=warning event=reload-warning key=log_to reason="takes effect only after a restart"/);
    assert.match(d.stderr(), /avfilter: level=warning event=reload-warning key=log_format /);
    assert.match(await env.send(env.request('Subject: x\n\nhello\n').line), /^200 /);
    await waitLog(d, /avfilter: data=\S+ .*verdict=clean/);
    assert.doesNotMatch(d.stderr(), /^\{/m, 'no json line');
  } finally {
    await stopDaemon(d);
    rmSync(env.dir, { recursive: true, force: true });
  }
});
