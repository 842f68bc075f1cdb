/**
 * The daemon as a process that must never stop the mail: regression tests
 * named for what broke, plus the guarantees of the master/worker design. Real clamd where the
 * daemon talks to one; faults a real server cannot produce on demand (a process stopped or
 * killed) are made with signals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eicar } from './helpers/eicar.js';
import { startClamd } from './helpers/clamd.js';
import { runAvfilter, waitFor, exists } from './helpers/avfilter-proc.js';
import { daemonEnv, singlePart, stopDaemon, waitForWorkers, waitLog, workerPids } from './helpers/daemon-env.js';

const clean = () => singlePart(Buffer.from('hello, a clean message'));
const infected = () => singlePart(eicar());

test('log pipe: a stderr whose reader went away neither stops the daemon nor leaves its socket unanswered', async () => {
  const env = daemonEnv();
  const d = await env.up();
  try {
    await waitFor(() => /event=started/.test(d.stderr()), 10_000, 'started line');
    // courierlogger restarted: the read end of our stderr is gone; every write now fails (EPIPE)
    d.child.stderr!.destroy();
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 5; i++) assert.match(await env.send(env.request(clean()).line), /^200 /, `request ${i}`);
    assert.match(await env.send(env.request(infected()).line), /^200 /);
    assert.equal(d.child.exitCode, null, 'still running');
    assert.ok(exists(env.sock), 'socket still there');
  } finally {
    assert.equal(await stopDaemon(d), 0);
  }
});

test('config typo (server = instead of servers =): the socket is installed anyway and every message gets 451 naming file, line and key; a reload that loads restores the service', async () => {
  const clamd = await startClamd();
  const env = daemonEnv('[[engine]]\ntype = "clamd"\nserver = ["unix:/nowhere"]');
  const d = await env.up();
  try {
    const req = env.request(infected());
    const r = await env.send(req.line);
    // the line where the typo is, wherever the helper's common keys end
    const line = readFileSync(env.cfg, 'utf8').split('\n').findIndex((l) => l.startsWith('server =')) + 1;
    assert.match(r, new RegExp(`^451 4\\.3\\.0 avfilter is not configured: \\S+avfilter\\.toml:${line}: unknown key "engine\\[0\\]\\.server"; did you mean "servers"\\?`));
    assert.doesNotMatch(readFileSync(req.controlPaths[0]!, 'utf8'), /^S0 /m, 'nothing dropped, nothing accepted');
    await waitLog(d, /level=error event=degraded reason=.*unknown key/);
    // --config refuses the same file
    const c = runAvfilter(['-f', env.cfg, '--config']);
    assert.equal(c.code, 2);
    assert.match(c.stderr, new RegExp(`avfilter\\.toml:${line}: unknown key "engine\\[0\\]\\.server"`));

    env.write(`[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]`);
    d.child.kill('SIGHUP');
    await waitFor(() => /event=reloaded .*service=restored/.test(d.stderr()), 30_000, `reload\n${d.stderr()}`);
    const req2 = env.request(infected());
    assert.match(await env.send(req2.line), /^200 /);
    assert.match(readFileSync(req2.controlPaths[0]!, 'utf8'), /^S0 \d+$/m, 'dropped');
  } finally {
    await stopDaemon(d);
    await clamd.stop();
  }
});

test('one validation path: whatever the daemon refuses, --config refuses with the same message; what one accepts the other does', async (t) => {
  const env = daemonEnv();
  const cases: Array<{ name: string; config: string; prepare?: () => void; refused: RegExp | null }> = [
    { name: 'tcp address without a port', config: '[[engine]]\ntype = "clamd"\nservers = ["tcp:127.0.0.1"]', refused: /"engine\[0\]\.servers": invalid clamd server "tcp:127\.0\.0\.1": missing :port/ },
    { name: 'sub-millisecond timeout', config: '[[engine]]\ntype = "clamd"\nservers = ["tcp:127.0.0.1:9"]\nconnect_timeout = 1.005', refused: null },
    { name: 'rules directory missing', config: '[[engine]]\ntype = "yara"\nrules = "/nonexistent/rules"', refused: /engine\[0\] \(type = "yara"\): .*\/nonexistent\/rules/ },
    {
      name: 'tmpdir open to others', config: '',
      prepare: () => { mkdirSync(join(env.dir, 'work'), { recursive: true }); chmodSync(join(env.dir, 'work'), 0o755); },
      refused: /tmpdir \S+\/work: has mode 0755; it must be 0700/,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      env.write(c.config);
      c.prepare?.();
      const r = runAvfilter(['-f', env.cfg, '--config']);
      const d = await env.up();
      try {
        const reply = await env.send(env.request(clean()).line);
        if (c.refused === null) {
          assert.equal(r.code, 0, r.stderr);
          assert.doesNotMatch(reply, /not configured/);
        } else {
          assert.equal(r.code, 2, r.stdout);
          assert.match(r.stderr, c.refused);
          const said = r.stderr.replace(/^avfilter: /, '').trim();
          assert.match(reply, /^451 4\.3\.0 avfilter is not configured: /);
          const replied = reply.replace(/^451 4\.3\.0 avfilter is not configured: /, '').trim();
          assert.ok(said.startsWith(replied.replace(/\.\.\.$/, '')) || replied.startsWith(said.slice(0, 300)), `--config said\n  ${said}\nthe daemon answered\n  ${replied}`);
        }
      } finally {
        await stopDaemon(d);
      }
      if (exists(join(env.dir, 'work'))) chmodSync(join(env.dir, 'work'), 0o700);
    });
  }
});

/** Sockets a process holds (a worker holds one per request it serves, and its clamd connections). */
function socketCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
      } catch {
        return false;
      }
    }).length;
  } catch {
    return 0;
  }
}

test('worker killed: the connections it held are closed at once (Courier answers them 4xx, nothing is lost), the other worker keeps serving, and a new worker takes its place', async () => {
  const clamd = await startClamd();
  const env = daemonEnv(`workers = 2\nrequest_timeout = 60\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]`);
  const d = await env.up();
  try {
    const workers = await waitForWorkers(d.child.pid!, 2, 10_000);
    const idle = new Map(workers.map((p) => [p, socketCount(p)]));
    process.kill(clamd.pid, 'SIGSTOP');
    // requests held by the stopped clamd; the workers accept them as they come
    const pending = Array.from({ length: 4 }, () => env.send(env.request(clean()).line));
    await new Promise((r) => setTimeout(r, 800));
    // the victim: the worker holding the most
    const [a, b] = [...workers].sort((x, y) => (socketCount(y) - idle.get(y)!) - (socketCount(x) - idle.get(x)!));
    assert.ok(socketCount(a!) > idle.get(a!)!, 'the victim holds requests');
    const t0 = Date.now();
    process.kill(a!, 'SIGKILL');
    const closed = await Promise.race(pending);
    assert.equal(closed, '', 'a request of the killed worker: closed without a reply');
    assert.ok(Date.now() - t0 < 3000, `closed ${Date.now() - t0} ms after the kill`);
    process.kill(clamd.pid, 'SIGCONT');
    // every request is either closed unanswered (the killed worker's) or scanned: none is lost or
    // answered wrongly
    const replies = await Promise.all(pending);
    for (const r of replies) assert.ok(r === '' || /^200 /.test(r), JSON.stringify(r));
    const t1 = Date.now();
    assert.match(await env.send(env.request(clean()).line), /^200 /);
    assert.ok(Date.now() - t1 < 1500, `service continued after ${Date.now() - t1} ms`);
    const now = await waitForWorkers(d.child.pid!, 2, 10_000);
    assert.ok(!now.includes(a!) && now.includes(b!), `workers now ${now}, were ${a} ${b}`);
    await waitLog(d, /level=error event=worker-exit .*signal=SIGKILL/);
  } finally {
    try { process.kill(clamd.pid, 'SIGCONT'); } catch { /* gone */ }
    await stopDaemon(d);
    await clamd.stop();
  }
});

test('no message passes through the master: with the master stopped (SIGSTOP) the workers still accept and answer, and their log lines arrive once it runs again', async () => {
  const env = daemonEnv('workers = 1');
  const d = await env.up();
  try {
    await waitForWorkers(d.child.pid!, 1, 10_000);
    assert.match(await env.send(env.request(clean()).line), /^200 /, 'serving');
    process.kill(d.child.pid!, 'SIGSTOP');
    try {
      for (let i = 0; i < 5; i++) assert.match(await env.send(env.request(clean()).line, 10_000), /^200 /, `request ${i} with the master stopped`);
      assert.match(await env.send(env.request(infected()).line, 10_000), /^200 /, 'an infected one is dropped');
    } finally {
      process.kill(d.child.pid!, 'SIGCONT');
    }
    await waitFor(() => (d.stderr().match(/ verdict=/g) ?? []).length >= 7, 10_000, `7 message lines\n${d.stderr()}`);
  } finally {
    await stopDaemon(d);
  }
});

test('worker wedged (SIGSTOP) while idle: it is killed once its heartbeat is missed, and the mail that waited is served by its replacement', async () => {
  const env = daemonEnv('workers = 1\nrequest_timeout = 2');
  const d = await env.up();
  try {
    const [w] = await waitForWorkers(d.child.pid!, 1, 10_000);
    process.kill(w!, 'SIGSTOP');
    const t0 = Date.now();
    // the stopped worker cannot accept: the connection waits in the backlog for the next one
    const reply = await env.send(env.request(clean()).line, 30_000);
    assert.match(reply, /^(200 |451 4\.3\.0 Virus filter worker failed)/);
    assert.ok(Date.now() - t0 < 20_000, `answered after ${Date.now() - t0} ms`);
    await waitLog(d, /level=error event=worker-overdue .*no heartbeat/);
    await waitForWorkers(d.child.pid!, 1, 15_000, [w!]);
    let next = '';
    for (const until = Date.now() + 15_000; Date.now() < until && !/^200 /.test(next);) next = await env.send(env.request(clean()).line);
    assert.match(next, /^200 /);
  } finally {
    await stopDaemon(d);
  }
});

test('worker wedged (SIGSTOP) holding a request: killed shortly after the deadline (the connection closes unanswered), replaced, and mail is served again', async () => {
  const clamd = await startClamd();
  const env = daemonEnv(`workers = 1\nrequest_timeout = 2\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]`);
  const d = await env.up();
  try {
    const [w] = await waitForWorkers(d.child.pid!, 1, 10_000);
    const idle = socketCount(w!);
    process.kill(clamd.pid, 'SIGSTOP');
    const t0 = Date.now();
    const pending = env.send(env.request(clean()).line, 30_000);
    await waitFor(() => socketCount(w!) > idle, 5000, 'the request accepted');
    process.kill(w!, 'SIGSTOP');
    process.kill(clamd.pid, 'SIGCONT');
    assert.equal(await pending, '');
    const took = Date.now() - t0;
    assert.ok(took >= 3900 && took < 9000, `closed after ${took} ms`);
    // past its deadline (when a heartbeat told the deadline) or its heartbeat missed: either way killed
    await waitLog(d, /level=error event=worker-overdue /);
    await waitForWorkers(d.child.pid!, 1, 15_000, [w!]);
    let next = '';
    for (const until = Date.now() + 15_000; Date.now() < until && !/^200 /.test(next);) next = await env.send(env.request(clean()).line);
    assert.match(next, /^200 /);
  } finally {
    try { process.kill(clamd.pid, 'SIGCONT'); } catch { /* gone */ }
    await stopDaemon(d);
    await clamd.stop();
  }
});

test('reload storm: with action.error = "accept" no infected message is ever accepted, and no scan in flight is aborted', async () => {
  const clamd = await startClamd();
  const env = daemonEnv(`workers = 2\nmax_connections = 8\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]\n[action]\ninfected = "reject"\nerror = "accept"`);
  const d = await env.up();
  let storming = true;
  const storm = (async () => {
    while (storming) {
      d.child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 40));
    }
  })();
  try {
    // waves of messages until the storm has swapped the workers a few times under them
    let sent = 0;
    const until = Date.now() + 60_000;
    while ((d.stderr().match(/event=reloaded/g)?.length ?? 0) < 3 || sent < 120) {
      assert.ok(Date.now() < until, `reloads seen: ${d.stderr().match(/event=reloaded/g)?.length ?? 0}`);
      const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => env.send(env.request(i % 2 ? infected() : clean()).line)));
      replies.forEach((r, i) => assert.match(r, i % 2 ? /^550 5\.7\.1 Message rejected: virus found/ : /^200 Ok$/m, `request ${sent + i}: ${r}`));
      sent += replies.length;
    }
    storming = false;
    await storm;
    assert.doesNotMatch(d.stderr(), /accepted-unscanned/);
  } finally {
    storming = false;
    await stopDaemon(d);
    await clamd.stop();
  }
});

test('reload keeps work in flight: a scan started before SIGHUP ends with its own verdict', async () => {
  const clamd = await startClamd();
  const env = daemonEnv(`workers = 1\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]\n[action]\ninfected = "reject"`);
  const d = await env.up();
  try {
    process.kill(clamd.pid, 'SIGSTOP');
    const pending = env.send(env.request(infected()).line);
    await new Promise((r) => setTimeout(r, 300));
    const old = workerPids(d.child.pid!);
    d.child.kill('SIGHUP');
    await waitFor(() => /event=reloaded/.test(d.stderr()), 20_000, 'reload');
    process.kill(clamd.pid, 'SIGCONT');
    assert.match(await pending, /^550 /, 'the old worker finished the scan');
    await waitFor(() => old.every((p) => !workerPids(d.child.pid!).includes(p)), 10_000, 'old worker gone');
    assert.match(await env.send(env.request(clean()).line), /^200 /);
  } finally {
    try { process.kill(clamd.pid, 'SIGCONT'); } catch { /* gone */ }
    await stopDaemon(d);
    await clamd.stop();
  }
});

test('root: the daemon refuses to run as root unless told (--allow-root)', { skip: process.getuid?.() !== 0 ? 'needs root (CI runs as root)' : false }, () => {
  const env = daemonEnv();
  const r = runAvfilter(['-f', env.cfg, '--foreground']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /refusing to run as root/);
  assert.equal(exists(env.sock), false);
});

test('pid file: a symlink planted at its path is replaced, never followed', async () => {
  const env = daemonEnv();
  const victim = join(env.dir, 'victim');
  writeFileSync(victim, 'precious\n');
  symlinkSync(victim, env.pidFile);
  const d = await env.up();
  try {
    await waitFor(() => !lstatSync(env.pidFile).isSymbolicLink(), 5000, 'pid file');
    assert.equal(readFileSync(env.pidFile, 'utf8').trim(), String(d.child.pid));
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
  } finally {
    await stopDaemon(d);
  }
});
