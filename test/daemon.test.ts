/**
 * The filter daemon as Courier sees it: started with fd 3 = a FIFO and stdin = a pipe, socket
 * life cycle, one reply per request, bad input, drop records, shutdown. Uses the embedded
 * engine (no daemon needed) so it runs anywhere; the Courier and clamd suites cover the rest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eicar } from './helpers/eicar.js';
import { execFileSync } from 'node:child_process';
import { buildZip } from './helpers/zip.js';
import { waitLog } from './helpers/daemon-env.js';
import { runAvfilter, startDaemon, talk, waitFor, exists } from './helpers/avfilter-proc.js';

const CONTROL = [
  'ssender@example.test', 'fdns; client.example.test ([::ffff:192.0.2.7])', 'e', 't',
  'M000000000016A031.000000006B019110.00002AB4',
  'ralice@example.test', 'R', 'N',
  'rbob@example.test', 'Rrfc822;bob@example.test', 'NF',
  'I1 R 250 Ok - delivered to alias.', 'S1 1795279184 r',
  'rcarol@example.test', 'R', 'N',
  'ORELAYCLIENT=', 'OTCPREMOTEIP=::ffff:192.0.2.7', 'uauthsmtp', 'E1795869584', '',
].join('\n');

function message(attachment: Buffer, name = 'file.bin'): string {
  return [
    'Received: from client.example.test ([::ffff:192.0.2.7])', '  by mx with ESMTP', '  id 1; Sat, 21 Nov 2026 12:39:44 +0000',
    'From: a@example.test', 'To: b@example.test', 'Subject: test', 'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'hello', '--b',
    `Content-Type: application/octet-stream; name="${name}"`, 'Content-Transfer-Encoding: base64', '',
    attachment.toString('base64'), '--b--', '',
  ].join('\n');
}

function setup(extra = '') {
  const dir = mkdtempSync(join(tmpdir(), 'avf-daemon-'));
  for (const d of ['allfilters', 'filters', 'spool']) mkdirSync(join(dir, d));
  const cfg = join(dir, 'avfilter.toml');
  writeFileSync(cfg, [
    `socket_dir_all = "${dir}/allfilters"`, `socket_dir_optional = "${dir}/filters"`,
    `pid_file = "${dir}/avfilter.pid"`, `tmpdir = "${dir}/work"`, `spool_dirs = ["${dir}/spool"]`, 'request_read_timeout = 1', extra, '',
  ].join('\n'));
  let n = 0;
  const request = (data: string | null, controls: string[] = [CONTROL]) => {
    n++;
    const d = join(dir, 'spool', `D${n}`);
    if (data !== null) writeFileSync(d, data);
    const cs = controls.map((c, i) => {
      const p = join(dir, 'spool', `C${n}.${i + 1}`);
      writeFileSync(p, c);
      return p;
    });
    return { line: `${d}\n${cs.join('\n')}\n\n`, dataPath: d, controlPaths: cs };
  };
  return { dir, cfg, sock: join(dir, 'allfilters', 'avfilter'), request };
}

test('refuses to install itself when fd 3 is not courierfilter\'s pipe', () => {
  const { cfg, sock } = setup();
  const r = runAvfilter(['-f', cfg]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /not started by courierfilter/);
  assert.equal(exists(sock), false);
});

test('as courierfilter starts it: socket life cycle, replies, drop, bad input, shutdown on stdin EOF', async () => {
  const s = setup();
  writeFileSync(join(s.dir, 'filters', 'avfilter'), 'stale socket from optional mode');
  const d = startDaemon(['-f', s.cfg], { fifo: true, name: 'avfilter' });
  try {
    await waitFor(() => exists(s.sock), 15_000, `socket ${s.sock}\n${d.stderr()}`);
    await d.fd3Closed; // courierfilter start can return
    assert.equal(exists(join(s.dir, 'allfilters', '.avfilter')), false);
    assert.equal(statSync(s.sock).mode & 0o777, 0o660);
    assert.equal(exists(join(s.dir, 'filters', 'avfilter')), false, 'the other directory\'s socket is removed');
    assert.equal(readFileSync(join(s.dir, 'avfilter.pid'), 'utf8').trim(), String(d.child.pid));

    // Clean message: 2xx, control file untouched.
    const clean = s.request(message(Buffer.from('just some bytes')));
    const r1 = await talk(s.sock, clean.line);
    assert.match(r1.reply, /^200 /);
    assert.equal(readFileSync(clean.controlPaths[0]!, 'utf8'), CONTROL);

    // Infected, default action drop: 2xx and I/S records for each pending recipient (0 and 2;
    // 1 was already delivered), in every control file of the request.
    const inf = s.request(message(eicar(), 'x.com'), [CONTROL, CONTROL]);
    const before = Math.floor(Date.now() / 1000);
    const r2 = await talk(s.sock, inf.line);
    assert.match(r2.reply, /^200 /);
    for (const p of inf.controlPaths) {
      const added = readFileSync(p, 'utf8').slice(CONTROL.length).split('\n').filter(Boolean);
      assert.equal(added.length, 4, added.join('|'));
      assert.match(added[0]!, /^I0 R /);
      assert.match(added[1]!, /^S0 \d+$/);
      assert.match(added[2]!, /^I2 R /);
      assert.match(added[3]!, /^S2 \d+$/);
      assert.ok(Number(added[1]!.split(' ')[1]) >= before);
    }

    // Bad input: every case answered 4xx, daemon keeps serving.
    const missing = s.request(null);
    assert.match((await talk(s.sock, missing.line)).reply, /^451 /);
    assert.match((await talk(s.sock, `relative/D1\n${clean.controlPaths[0]}\n\n`)).reply, /^451 /);
    assert.match((await talk(s.sock, `${clean.dataPath}\n${join(s.dir, 'nope')}\n\n`)).reply, /^451 /);
    const unreadable = join(s.dir, 'spool', 'notafile');
    mkdirSync(unreadable);
    assert.match((await talk(s.sock, `${clean.dataPath}\n${unreadable}\n\n`)).reply, /^451 /);
    const big = s.request(message(Buffer.from('x')), ['r'.repeat(10 * 1024 * 1024)]);
    assert.match((await talk(s.sock, big.line)).reply, /^451 /);
    assert.match((await talk(s.sock, 'x'.repeat(100_000))).reply, /^451 /, 'endless line');
    const stalled = await talk(s.sock, `${clean.dataPath}\n`, { timeoutMs: 10_000 });
    assert.equal(stalled.reply, '', 'no reply to a request that never ends');
    assert.equal(stalled.closedBy, 'server');

    // Many at once: all answered.
    const many = await Promise.all(Array.from({ length: 20 }, () => talk(s.sock, s.request(message(Buffer.from('y'))).line)));
    for (const m of many) assert.match(m.reply, /^200 /);
    await waitLog(d, /verdict=infected names=Eicar-Test-Signature .*action=drop dropped=4/);
    const log = d.stderr();
    assert.match(log, /id=000000000016A031\.000000006B019110\.00002AB4 .*verdict=clean/);
    assert.match(log, /verdict=infected names=Eicar-Test-Signature .*action=drop dropped=4/);
    assert.match(log, /event=request-read-timeout/);
  } finally {
    d.closeStdin();
  }
  assert.equal(await d.exited, 0);
  assert.equal(exists(s.sock), false, 'socket removed on exit');
  assert.equal(exists(join(s.dir, 'avfilter.pid')), false, `pid file removed on exit\n${d.stderr()}`);
  assert.match(d.stderr(), /event=stopped reason=stdin-eof/);
});

test('reject action answers 550 with the virus name; SIGTERM stops it', async () => {
  const s = setup('[action]\ninfected = "reject"');
  const d = startDaemon(['-f', s.cfg, '--foreground']);
  try {
    await waitFor(() => exists(s.sock), 15_000, `socket\n${d.stderr()}`);
    const inf = s.request(message(eicar()));
    const r = await talk(s.sock, inf.line);
    assert.match(r.reply, /^550 .*Eicar-Test-Signature/);
    assert.equal(readFileSync(inf.controlPaths[0]!, 'utf8'), CONTROL, 'reject leaves control files alone');
  } finally {
    d.child.kill('SIGTERM');
  }
  assert.equal(await d.exited, 0);
  assert.equal(exists(s.sock), false);
});

test('--foreground with /dev/null stdin keeps running; waitfile tempfails everything', async () => {
  const wait = join(mkdtempSync(join(tmpdir(), 'avf-wait-')), 'scanner-update');
  const s = setup(`waitfile = "${wait}"`);
  const d = startDaemon(['-f', s.cfg, '--foreground'], { stdin: 'ignore' });
  try {
    await waitFor(() => exists(s.sock), 15_000, `socket\n${d.stderr()}`);
    assert.match((await talk(s.sock, s.request(message(Buffer.from('z'))).line)).reply, /^200 /);
    writeFileSync(wait, '');
    assert.match((await talk(s.sock, s.request(message(Buffer.from('z'))).line)).reply, /^451 /);
    await waitLog(d, /reason="waitfile present"/);
  } finally {
    d.child.kill('SIGTERM');
  }
  assert.equal(await d.exited, 0);
});

test('--batch-test answers each request on stdout and applies the drop', () => {
  const s = setup();
  const clean = s.request(message(Buffer.from('ok')));
  const inf = s.request(message(eicar()));
  const r = runAvfilter(['-f', s.cfg, '--batch-test'], { input: clean.line + inf.line + 'relative\nx\n\n' });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 3, r.stdout);
  assert.match(lines[0]!, /^200 /);
  assert.match(lines[1]!, /^200 /);
  assert.match(lines[2]!, /^451 /);
  assert.match(readFileSync(inf.controlPaths[0]!, 'utf8'), /\nS0 \d+\n/);
});

test('pass adds X-Virus-Found after Received; quarantine keeps a copy before the drop', () => {
  const q = mkdtempSync(join(tmpdir(), 'avf-q-'));
  const s = setup(`quarantine_dir = "${q}/quarantine"\n[action]\ninfected = "pass"\nquarantine = true`);
  const inf = s.request(message(eicar()));
  const r = runAvfilter(['-f', s.cfg, '--batch-test'], { input: inf.line });
  assert.match(r.stdout, /^200 /);
  const data = readFileSync(inf.dataPath, 'utf8');
  assert.match(data, /^Received: from client.example.test \(\[::ffff:192\.0\.2\.7\]\)\n  by mx with ESMTP\n  id 1; [^\n]*\nX-Virus-Found: Eicar-Test-Signature \(avfilter\)\nFrom: /);
  assert.equal(readFileSync(inf.controlPaths[0]!, 'utf8'), CONTROL, 'pass marks nobody delivered');
  const kept = readdirSync(join(q, 'quarantine'));
  assert.equal(kept.length, 1);
  assert.match(readFileSync(join(q, 'quarantine', kept[0]!, 'message.eml'), 'utf8'), /Content-Transfer-Encoding: base64/);
});

test('containers: a virus in a zip is dropped and logged with its path and format; an encrypted zip is refused 554, or passed by name', () => {
  const s = setup();
  const inf = s.request(message(buildZip([{ name: 'docs/readme.txt', data: Buffer.from('hello') }, { name: 'docs/a.com', data: eicar() }]), 'invoice.zip'));
  // an encrypted zip made by Info-ZIP's zip (ZipCrypto), as a sender's tools make it
  const work = mkdtempSync(join(tmpdir(), 'avf-enc-'));
  writeFileSync(join(work, 'a.txt'), 'nothing to see here\n');
  execFileSync('zip', ['-q', '-j', '-P', 'secret', join(work, 'enc.zip'), join(work, 'a.txt')]);
  const encZip = readFileSync(join(work, 'enc.zip'));
  const enc = s.request(message(encZip, 'enc.zip'));
  const r = runAvfilter(['-f', s.cfg, '--batch-test'], { input: inf.line + enc.line });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0]!, /^200 /);
  assert.match(readFileSync(inf.controlPaths[0]!, 'utf8'), /\nS0 \d+\n/, 'the infected message was dropped');
  const logs = r.stderr.split('\n');
  assert.match(logs.find((l) => l.includes('/D1 '))!, /verdict=infected names=\S+ where=yara:2\/invoice\.zip\/docs\/a\.com action=drop .* containers=zip /);
  assert.match(lines[1]!, /^554 5\.7\.1 .*encrypted.*\(Encrypted\.Zip\)$/);
  assert.match(logs.find((l) => l.includes('/D2 '))!, /verdict=encrypted names=Encrypted\.Zip where=unpack:2\/enc\.zip\/a\.txt action=reject reply=554 .*containers=zip /);
  assert.equal(readFileSync(enc.controlPaths[0]!, 'utf8'), CONTROL, 'a rejected message marks nobody delivered');

  const p = setup('[action]\nencrypted = "pass"');
  const again = p.request(message(encZip, 'enc.zip'));
  const r2 = runAvfilter(['-f', p.cfg, '--batch-test'], { input: again.line });
  assert.match(r2.stdout, /^200 /);
  assert.match(r2.stderr, /verdict=encrypted .*action=pass reply=200/);
});
