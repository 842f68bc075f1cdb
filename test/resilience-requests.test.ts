/**
 * Requests that once stopped the daemon, let a virus through or damaged a control file,
 * each a regression test named for what broke; and hostile requests: every one a
 * 4xx (or its right verdict) and a log line, never a crash, a hang or a doubled record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { eicar } from './helpers/eicar.js';
import { startClamd } from './helpers/clamd.js';
import { runAvfilter, waitFor } from './helpers/avfilter-proc.js';
import { CONTROL, daemonEnv, singlePart, stopDaemon, waitLog } from './helpers/daemon-env.js';

const clean = () => singlePart(Buffer.from('hello, a clean message'));
const infected = () => singlePart(eicar());

test('wedge: requests that time out waiting for a slot take none, so once clamd recovers every message is scanned again', async () => {
  const clamd = await startClamd();
  const env = daemonEnv(`workers = 1\nmax_connections = 1\nrequest_timeout = 2\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]`);
  const d = await env.up();
  try {
    process.kill(clamd.pid, 'SIGSTOP');
    const stuck = await Promise.all(Array.from({ length: 6 }, () => env.send(env.request(clean()).line)));
    for (const r of stuck) assert.match(r, /^451 /);
    process.kill(clamd.pid, 'SIGCONT');
    for (let i = 0; i < 4; i++) {
      const t0 = Date.now();
      assert.match(await env.send(env.request(i % 2 ? infected() : clean()).line), /^200 /, `message ${i} after recovery`);
      assert.ok(Date.now() - t0 < 1900, `message ${i} waited ${Date.now() - t0} ms: a slot was lost`);
    }
    // the ones that waited in the queue were logged with their envelope
    await waitLog(d, /id=00AB\.CD\.EF from=<s@example\.test> .*reply=451 code=ETIMEOUT/);
  } finally {
    try { process.kill(clamd.pid, 'SIGCONT'); } catch { /* gone */ }
    await stopDaemon(d);
    await clamd.stop();
  }
});

test('data file race: a FIFO at the data path, or a path flipping between file and FIFO, never blocks a thread', async () => {
  const env = daemonEnv('request_timeout = 5');
  const d = await env.up();
  try {
    const fifo = join(env.spool, 'fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const t0 = Date.now();
    assert.match(await env.send(`${fifo}\n${env.request(null).controlPaths[0]}\n\n`), /^451 .*EDATA_NOT_FILE/);
    assert.ok(Date.now() - t0 < 2000);
    // flip one path between a regular file and a FIFO while requests name it
    const flip = join(env.spool, 'flip');
    const control = env.request(null).controlPaths[0]!;
    let flipping = true;
    const flipper = (async () => {
      let n = 0;
      while (flipping) {
        try { unlinkSync(flip); } catch { /* first round */ }
        if (n++ % 2) spawnSync('mkfifo', [flip]);
        else writeFileSync(flip, clean());
        await new Promise((r) => setImmediate(r));
      }
    })();
    const replies = await Promise.all(Array.from({ length: 40 }, () => env.send(`${flip}\n${control}\n\n`, 10_000)));
    flipping = false;
    await flipper;
    for (const r of replies) assert.match(r, /^(200|451) /);
    // no libuv thread is stuck on a FIFO: a burst of normal requests is served at once
    const t1 = Date.now();
    const after = await Promise.all(Array.from({ length: 8 }, () => env.send(env.request(clean()).line)));
    for (const r of after) assert.match(r, /^200 /);
    assert.ok(Date.now() - t1 < 4000, `normal requests took ${Date.now() - t1} ms`);
  } finally {
    await stopDaemon(d);
  }
});

test('hostile paths: outside spool_dirs, "..", symlinks, a directory, a device: each 451 with its code and a log line', async () => {
  const env = daemonEnv();
  const d = await env.up();
  try {
    const ctl = env.request(null).controlPaths[0]!;
    const data = env.request(clean()).dataPath;
    mkdirSync(join(env.spool, 'dir'));
    symlinkSync('/etc/hostname', join(env.spool, 'link'));
    symlinkSync('/etc', join(env.spool, 'etc'));
    symlinkSync(ctl, join(env.spool, 'ctl-link'));
    const cases: Array<[string, string, RegExp]> = [
      ['outside', `/etc/hostname\n${ctl}\n\n`, /EPATH_OUTSIDE/],
      ['dot-dot', `${env.spool}/../avfilter.toml\n${ctl}\n\n`, /EPATH_FORM/],
      ['double slash', `${env.spool}//D2\n${ctl}\n\n`, /EPATH_FORM/],
      ['symlink data file', `${env.spool}/link\n${ctl}\n\n`, /EDATA_SYMLINK/],
      ['symlinked directory', `${env.spool}/etc/hostname\n${ctl}\n\n`, /EPATH_OUTSIDE/],
      ['directory as data file', `${env.spool}/dir\n${ctl}\n\n`, /EDATA_NOT_FILE/],
      ['device', `/dev/zero\n${ctl}\n\n`, /EPATH_OUTSIDE/],
      ['control file outside', `${data}\n/etc/hostname\n\n`, /EPATH_OUTSIDE/],
      ['control file symlink', `${data}\n${env.spool}/ctl-link\n\n`, /ESYMLINK/],
      ['data file named as control file', `${data}\n${data}\n\n`, /EPATH_SAME/],
    ];
    for (const [name, line, code] of cases) {
      const r = await env.send(line, 10_000);
      assert.match(r, /^451 /, name);
      assert.match(r, code, name);
    }
    assert.equal(readFileSync('/etc/hostname', 'utf8').includes('S0 '), false);
    await waitFor(() => d.stderr().split('\n').filter((l) => /reply=451/.test(l)).length >= cases.length, 5000, `one log line each:\n${d.stderr()}`);
    // with spool_dirs = [] a device is still refused, by what it is
    env.write('spool_dirs = []');
    d.child.kill('SIGHUP');
    await waitLog(d, /event=reloaded/, 20_000);
    assert.match(await env.send(`/dev/zero\n${ctl}\n\n`), /^451 .*EDATA_NOT_FILE/);
    assert.match(await env.send(env.request(clean()).line), /^200 /, 'still serving');
  } finally {
    await stopDaemon(d);
  }
});

test('same control file twice in one request: its recipients are marked once', () => {
  const env = daemonEnv();
  const req = env.request(infected());
  const c = req.controlPaths[0]!;
  const r = runAvfilter(['-f', env.cfg, '--batch-test'], { input: `${req.dataPath}\n${c}\n${c}\n\n` });
  assert.match(r.stdout, /^200 /);
  const text = readFileSync(c, 'utf8');
  assert.equal(text.match(/^S0 /gm)?.length, 1, text);
  assert.equal(text.match(/^I0 /gm)?.length, 1, text);
  assert.match(r.stderr, /repeated_controls=1/);
});

test('two requests naming one control file at once: the records are never doubled', async () => {
  const clamd = await startClamd();
  const env = daemonEnv(`workers = 2\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]`);
  const d = await env.up();
  try {
    const a = env.request(infected());
    const b = env.request(infected());
    process.kill(clamd.pid, 'SIGSTOP');
    const first = env.send(a.line);
    await new Promise((r) => setTimeout(r, 200));
    const second = env.send(`${b.dataPath}\n${a.controlPaths[0]}\n\n`);
    await new Promise((r) => setTimeout(r, 200));
    process.kill(clamd.pid, 'SIGCONT');
    // each is dropped (200) or, meeting the other's lock, held back (451): never marked twice
    const replies = await Promise.all([first, second]);
    for (const r of replies) assert.match(r, /^(200 |451 .*already processing)/);
    assert.ok(replies.some((r) => /^200 /.test(r)), replies.join(' | '));
    // and once both are done, naming it again marks nothing more
    assert.match(await env.send(`${b.dataPath}\n${a.controlPaths[0]}\n\n`), /^200 /);
    const text = readFileSync(a.controlPaths[0]!, 'utf8');
    assert.equal(text.match(/^S0 /gm)?.length, 1, text);
  } finally {
    try { process.kill(clamd.pid, 'SIGCONT'); } catch { /* gone */ }
    await stopDaemon(d);
    await clamd.stop();
  }
});

test('a control file locked by another live process: its drop is held back 451 (already processing), nothing is written; a dead holder\'s lock is taken over', async () => {
  const env = daemonEnv('workers = 1');
  const d = await env.up();
  try {
    const req = env.request(infected());
    const control = req.controlPaths[0]!;
    const link = join(env.dir, 'work', `lock-${createHash('sha1').update(control).digest('hex')}`);
    symlinkSync(String(process.pid), link); // this test process: alive
    assert.match(await env.send(req.line), /^451 .*already processing/);
    assert.doesNotMatch(readFileSync(control, 'utf8'), /^S0 /m, 'nothing marked');
    await waitLog(d, /level=warning event=control-busy /);
    unlinkSync(link);
    symlinkSync(String(spawnSync('true').pid), link); // a process that is gone
    assert.match(await env.send(req.line), /^200 /);
    assert.equal(readFileSync(control, 'utf8').match(/^S0 /gm)?.length, 1);
  } finally {
    await stopDaemon(d);
  }
});

test('log injection: C1 controls, U+2028 and U+202E from the envelope are escaped in the log line', () => {
  const env = daemonEnv();
  const evil = `s\u0085evil\u2028avfilter: verdict=clean\u202Etxt.exe@example.test`;
  const req = env.request(clean(), [CONTROL.replace('ss@example.test', `s${evil}`)]);
  const r = runAvfilter(['-f', env.cfg, '--batch-test'], { input: req.line });
  assert.match(r.stdout, /^200 /);
  const line = r.stderr.split('\n').find((l) => l.includes('from='))!;
  assert.ok(line, r.stderr);
  assert.ok(!/[\u0080-\u009f\u2028\u2029\u202a-\u202e]/.test(line), JSON.stringify(line));
  assert.match(line, /from="<s\\x85evil\\u2028avfilter: verdict=clean\\u202etxt\.exe@example\.test>"/);
  assert.equal(r.stderr.trim().split('\n').length, 1, 'one line, not two');
});

test('connect storm: empty connections write no log line each', async () => {
  const env = daemonEnv();
  const d = await env.up();
  try {
    await Promise.all(Array.from({ length: 300 }, () => new Promise<void>((resolve) => {
      const s = connect(env.sock, () => s.end());
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    })));
    assert.match(await env.send(env.request(clean()).line), /^200 /);
    await waitLog(d, /verdict=clean/);
    await new Promise((r) => setTimeout(r, 300));
    const lines = d.stderr().trim().split('\n');
    assert.ok(lines.length <= 3, `log lines:\n${d.stderr()}`);
  } finally {
    await stopDaemon(d);
  }
});

test('many concurrent clamd scans: every stderr line is a key=value line (no MaxListenersExceededWarning)', async () => {
  const clamd = await startClamd();
  const env = daemonEnv(`workers = 1\nmax_connections = 32\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]`);
  const d = await env.up();
  try {
    const replies = await Promise.all(Array.from({ length: 40 }, () => env.send(env.request(clean()).line)));
    for (const r of replies) assert.match(r, /^200 /);
    await stopDaemon(d);
    for (const l of d.stderr().trim().split('\n')) assert.match(l, /^avfilter: (level=\w+ )?[a-z_]+=/, l);
    assert.doesNotMatch(d.stderr(), /MaxListeners/);
  } finally {
    await stopDaemon(d);
    await clamd.stop();
  }
});

test('-t leaves nothing behind in tmpdir', () => {
  const env = daemonEnv();
  const work = join(env.dir, 'work');
  mkdirSync(work, { mode: 0o700 });
  const msg = join(env.dir, 'm.eml');
  writeFileSync(msg, infected());
  const r = runAvfilter(['-f', env.cfg, '-t', msg, '-']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const left = spawnSync('find', [work, '-mindepth', '1'], { encoding: 'utf8' }).stdout.trim();
  assert.equal(left, '', `left in tmpdir:\n${left}`);
  rmSync(env.dir, { recursive: true, force: true });
});
