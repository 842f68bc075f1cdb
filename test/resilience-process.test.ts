/**
 * The daemon as a process that must never stop the mail (issue "Resilience"): regression tests
 * named for what broke, plus the guarantees of the master/worker design. Real clamd where the
 * daemon talks to one; faults a real server cannot produce on demand (a process stopped or
 * killed) are made with signals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
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
    assert.match(r, /^451 4\.3\.0 avfilter is not configured: \S+avfilter\.toml:8: unknown key "engine\[0\]\.server"; did you mean "servers"\?/);
    assert.doesNotMatch(readFileSync(req.controlPaths[0]!, 'utf8'), /^S0 /m, 'nothing dropped, nothing accepted');
    await waitLog(d, /level=error event=degraded reason=.*unknown key/);
    // --config refuses the same file
    const c = runAvfilter(['-f', env.cfg, '--config']);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /avfilter\.toml:8: unknown key "engine\[0\]\.server"/);

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

test('worker killed: its requests get 451 at once, the other worker keeps serving, and a new worker takes its place', async () => {
  const clamd = await startClamd();
  const env = daemonEnv(`workers = 2\nrequest_timeout = 60\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]`);
  const d = await env.up();
  try {
    const [a, b] = await waitForWorkers(d.child.pid!, 2, 10_000);
    process.kill(clamd.pid, 'SIGSTOP');
    // one request on each worker (least busy first), both held by the stopped clamd
    const first = env.send(env.request(clean()).line);
    const second = env.send(env.request(clean()).line);
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    process.kill(a!, 'SIGKILL');
    const killedReply = await Promise.race([first, second]);
    assert.match(killedReply, /^451 4\.3\.0 Virus filter worker failed/);
    assert.ok(Date.now() - t0 < 3000, `answered ${Date.now() - t0} ms after the kill`);
    process.kill(clamd.pid, 'SIGCONT');
    // the survivor's request is scanned; new mail is served at once
    assert.match((await Promise.all([first, second])).find((r) => !/worker failed/.test(r))!, /^200 /);
    const t1 = Date.now();
    assert.match(await env.send(env.request(clean()).line), /^200 /);
    assert.ok(Date.now() - t1 < 1500, `service continued after ${Date.now() - t1} ms`);
    const now = await waitForWorkers(d.child.pid!, 2, 10_000);
    assert.ok(!now.includes(a!) && now.includes(b!), `workers now ${now}, were ${a} ${b}`);
    await waitLog(d, /level=error event=worker-exit .*signal=SIGKILL unanswered=1/);
  } finally {
    try { process.kill(clamd.pid, 'SIGCONT'); } catch { /* gone */ }
    await stopDaemon(d);
    await clamd.stop();
  }
});

test('worker wedged (SIGSTOP): the master answers 451 shortly after the deadline, kills it and serves with a new one', async () => {
  const env = daemonEnv('workers = 1\nrequest_timeout = 2');
  const d = await env.up();
  try {
    const [w] = await waitForWorkers(d.child.pid!, 1, 10_000);
    process.kill(w!, 'SIGSTOP');
    const t0 = Date.now();
    assert.match(await env.send(env.request(clean()).line), /^451 4\.3\.0 Virus scan timed out/);
    const took = Date.now() - t0;
    assert.ok(took >= 1900 && took < 8000, `answered after ${took} ms`);
    await waitForWorkers(d.child.pid!, 1, 15_000, [w!]);
    // the new worker loads its engines (the YARA rules compile), then serves
    let reply = '';
    for (const until = Date.now() + 15_000; Date.now() < until && !/^200 /.test(reply);) reply = await env.send(env.request(clean()).line);
    assert.match(reply, /^200 /);
    await waitLog(d, /level=error event=worker-overdue /);
  } finally {
    await stopDaemon(d);
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
