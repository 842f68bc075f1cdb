/**
 * [skip], [banned] and action.block_ip_seconds through `avfilter --batch-test`, on copies of
 * control files a real Courier wrote (test/fixtures/courier: a client at ::ffff:127.0.0.1,
 * RELAYCLIENT, u=authsmtp, no SMTP AUTH; 100 recipients) and on the same with another client
 * IP; messages made at test time (EICAR generated, archives built with Info-ZIP's zip).
 * The embedded engine scans, so nothing here needs clamd.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eicar } from './helpers/eicar.js';
import { runAvfilter } from './helpers/avfilter-proc.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/courier/', import.meta.url));
/** A real Courier control file: one recipient, client ::ffff:127.0.0.1 (local submission). */
const LOCAL = readFileSync(join(FIXTURES, '01-clean-control1'), 'utf8');
/** The same from a client on the network. */
const REMOTE = LOCAL.replaceAll('::ffff:127.0.0.1', '::ffff:192.0.2.7');
const OTHER = LOCAL.replaceAll('::ffff:127.0.0.1', '198.51.100.1');
/** A real Courier control file with 100 recipients sink-000@harness.test ... sink-099@. */
const HUNDRED = readFileSync(join(FIXTURES, '04-100-recipients-control1'), 'utf8');

function message(attachment: Buffer, name: string, type = 'application/octet-stream'): string {
  return [
    'Received: from client.example.test ([::ffff:192.0.2.7])', '  by mx with ESMTP', '  id 1; Sat, 21 Nov 2026 12:39:44 +0000',
    'From: a@example.test', 'To: sink@harness.test', 'Subject: test', 'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'hello', '--b',
    `Content-Type: ${type}; name="${name}"`, 'Content-Transfer-Encoding: base64', '',
    attachment.toString('base64'), '--b--', '',
  ].join('\n');
}

function setup(extra: string) {
  const dir = mkdtempSync(join(tmpdir(), 'avf-gates-'));
  mkdirSync(join(dir, 'spool'));
  const cfg = join(dir, 'avfilter.toml');
  writeFileSync(cfg, [`tmpdir = "${dir}/work"`, `spool_dirs = ["${dir}/spool"]`, `quarantine_dir = "${dir}/q"`, '[[engine]]', 'type = "yara"', extra, ''].join('\n'));
  let n = 0;
  const request = (data: string, control: string) => {
    n++;
    const d = join(dir, 'spool', `D${n}`);
    const c = join(dir, 'spool', `C${n}`);
    writeFileSync(d, data);
    writeFileSync(c, control);
    return { line: `${d}\n${c}\n\n`, control: c, original: control };
  };
  const run = (...reqs: Array<{ line: string }>) => {
    const r = runAvfilter(['-f', cfg, '--batch-test'], { input: reqs.map((q) => q.line).join('') });
    assert.equal(r.code, 0, r.stderr);
    const replies = r.stdout.trim().split('\n');
    assert.equal(replies.length, reqs.length, r.stdout);
    const logs = r.stderr.split('\n').filter((l) => / data=\S+\/D\d+ /.test(l));
    return { replies, logs, stderr: r.stderr };
  };
  return { dir, request, run };
}

const dropped = (q: { control: string }): boolean => /\nS0 \d+/.test(readFileSync(q.control, 'utf8'));
const untouched = (q: { control: string; original: string }): boolean => readFileSync(q.control, 'utf8') === q.original;

test('[skip] networks: mail from a listed network is not scanned (IPv4 and IPv4-mapped forms), logged with the rule', () => {
  for (const net of ['127.0.0.0/8', '::ffff:127.0.0.0/104']) {
    const s = setup(`[skip]\nnetworks = ["192.0.2.128/25", "${net}"]`);
    const virus = s.request(message(eicar(), 'e.com'), LOCAL);
    const remote = s.request(message(eicar(), 'e.com'), REMOTE);
    const r = s.run(virus, remote);
    assert.equal(r.replies[0], '200 Ok', net);
    assert.ok(untouched(virus), 'skipped: nobody marked delivered');
    assert.match(r.logs[0]!, /verdict=skipped action=skip reply=200 reason="client 127\.0\.0\.1 in skip\.networks"/);
    assert.match(r.replies[1]!, /^200 /);
    assert.ok(dropped(remote), 'a client outside the networks is scanned and the virus dropped');
    assert.match(r.logs[1]!, /verdict=infected/);
  }
});

test('[skip] recipients: skipped only when every pending recipient matches (100 real recipients)', () => {
  const all = setup('[skip]\nrecipients = ["sink-0??@HARNESS.test"]');
  const a = all.request(message(eicar(), 'e.com'), HUNDRED);
  const r1 = all.run(a);
  assert.equal(r1.replies[0], '200 Ok');
  assert.ok(untouched(a));
  assert.match(r1.logs[0]!, /verdict=skipped .*reason="every recipient in skip\.recipients \(100\)"/);

  const some = setup('[skip]\nrecipients = ["sink-00?@harness.test"]');
  const b = some.request(message(eicar(), 'e.com'), HUNDRED);
  const r2 = some.run(b);
  assert.match(r2.replies[0]!, /^200 /);
  assert.match(r2.logs[0]!, /verdict=infected .*dropped=100/);
});

test('[skip] authenticated: the i record (SMTP AUTH) skips, a relaying client (u=authsmtp) alone does not', () => {
  const s = setup('[skip]\nauthenticated = true');
  const relayed = s.request(message(eicar(), 'e.com'), LOCAL);
  const authed = s.request(message(eicar(), 'e.com'), LOCAL.replace('uauthsmtp\n', 'uauthsmtp\nialice@harness.test\n'));
  const r = s.run(relayed, authed);
  assert.ok(dropped(relayed), 'u=authsmtp with RELAYCLIENT is scanned');
  assert.match(r.logs[0]!, /verdict=infected/);
  assert.equal(r.replies[1], '200 Ok');
  assert.ok(untouched(authed));
  assert.match(r.logs[1]!, /verdict=skipped .*reason="authenticated as alice@harness\.test \(skip\.authenticated\)"/);
});

test('[banned] names: a member of a zip (built with zip) refused 554 naming the file; types: an .exe renamed .txt found by its bytes', () => {
  const work = mkdtempSync(join(tmpdir(), 'avf-banned-zip-'));
  mkdirSync(join(work, 'docs'));
  const mz = Buffer.alloc(1024);
  mz.write('MZ');
  writeFileSync(join(work, 'docs', 'readme.txt'), 'hello\n');
  writeFileSync(join(work, 'docs', 'Setup.EXE'), mz);
  execFileSync('zip', ['-q', '-r', join(work, 'invoice.zip'), 'docs'], { cwd: work });
  const zip = readFileSync(join(work, 'invoice.zip'));

  const names = setup('[banned]\nnames = ["*.exe", "*.scr"]');
  const inZip = names.request(message(zip, 'invoice.zip'), REMOTE);
  const renamed = names.request(message(mz, 'notes.txt', 'text/plain'), REMOTE);
  const r = names.run(inZip, renamed);
  assert.equal(r.replies[0], '554 5.7.1 Message rejected: banned attachment: Setup.EXE');
  assert.ok(untouched(inZip), 'rejected: nobody marked delivered');
  assert.match(r.logs[0]!, /verdict=banned .*where=unpack:2\/invoice\.zip\/docs\/Setup\.EXE action=reject reply=554 .*files=Setup\.EXE rule="name \\"\*\.exe\\""/);
  assert.equal(r.replies[1], '200 Ok', 'by name, notes.txt is not banned');

  const types = setup('[banned]\ntypes = ["application/x-msdownload"]\naction = "tempfail"');
  const again = types.request(message(mz, 'notes.txt', 'text/plain'), REMOTE);
  const clean = types.request(message(Buffer.from('just text\n'), 'notes.txt', 'text/plain'), REMOTE);
  const member = types.request(message(zip, 'invoice.zip'), REMOTE);
  const t = types.run(again, clean, member);
  assert.equal(t.replies[0], '451 4.7.1 Message held: banned attachment: notes.txt');
  assert.match(t.logs[0]!, /verdict=banned .*rule="type application\/x-msdownload \(detected/);
  assert.equal(t.replies[1], '200 Ok');
  assert.match(t.replies[2]!, /^451 .*banned attachment: Setup\.EXE$/, 'a member is typed by its bytes too');

  // the default bans nothing
  const none = setup('');
  const n = none.request(message(zip, 'invoice.zip'), REMOTE);
  assert.equal(none.run(n).replies[0], '200 Ok');
});

test('[banned] names: a long name keeps its extension where names are cut (a member of 244 characters, an attachment of 300)', () => {
  // Names were cut to their first 200 (members) or 255 (attachments) characters for reports:
  // "aaaa...aaa.exe" became "aaaa..." and "*.exe" no longer saw it.
  const work = mkdtempSync(join(tmpdir(), 'avf-banned-long-'));
  const long = `${'a'.repeat(240)}.exe`;
  writeFileSync(join(work, long), 'MZ');
  execFileSync('zip', ['-q', join(work, 'l.zip'), long], { cwd: work });
  const s = setup('[banned]\nnames = ["*.exe"]');
  const member = s.request(message(readFileSync(join(work, 'l.zip')), 'l.zip'), REMOTE);
  const attachment = s.request(message(Buffer.from('x'), `${'b'.repeat(296)}.exe`), REMOTE);
  const r = s.run(member, attachment);
  assert.match(r.replies[0]!, /^554 .*banned attachment: a+/);
  assert.match(r.logs[0]!, /verdict=banned .*files=a+\.\.\.a+\.exe rule="name \\"\*\.exe\\""/);
  assert.match(r.replies[1]!, /^554 .*banned attachment: b+/);
  assert.match(r.logs[1]!, /verdict=banned .*files=b+\.\.\.b+\.exe /);
});

test('[banned] names: every name the bytes go by (the same bytes attached twice, a Content-Type name that differs from the filename)', () => {
  const s = setup('[banned]\nnames = ["*.exe"]');
  const body = Buffer.from('the same bytes twice\n').toString('base64');
  const head = 'From: a@example.test\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n';
  // the store keeps one copy of identical content: the second attachment's name was lost
  const twice = s.request(`${head}--b\nContent-Type: text/plain; name="notes.txt"\nContent-Transfer-Encoding: base64\n\n${body}\n--b\nContent-Type: application/octet-stream; name="notes.exe"\nContent-Transfer-Encoding: base64\n\n${body}\n--b--\n`, REMOTE);
  // clients differ on which of the two names they show and save
  const differ = s.request(`${head}--b\nContent-Type: application/octet-stream; name="invoice.exe"\nContent-Disposition: attachment; filename="invoice.pdf"\nContent-Transfer-Encoding: base64\n\n${body}\n--b--\n`, REMOTE);
  const same = s.request(`${head}--b\nContent-Type: application/pdf; name="invoice.pdf"\nContent-Disposition: attachment; filename="invoice.pdf"\nContent-Transfer-Encoding: base64\n\n${body}\n--b--\n`, REMOTE);
  const r = s.run(twice, differ, same);
  assert.equal(r.replies[0], '554 5.7.1 Message rejected: banned attachment: notes.exe');
  assert.equal(r.replies[1], '554 5.7.1 Message rejected: banned attachment: invoice.exe');
  assert.equal(r.replies[2], '200 Ok');
});

test('[banned] in avfilter -t: Banned.Attachment FOUND, with -v where and by which rule; exit 1', () => {
  const s = setup('[banned]\nnames = ["*.scr"]');
  const path = join(s.dir, 'm.eml');
  writeFileSync(path, message(Buffer.from('not really a screensaver'), 'Holiday.SCR'));
  const r = runAvfilter(['-f', join(s.dir, 'avfilter.toml'), '-t', '-v', path]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, `${path}: Banned.Attachment FOUND (2, name "*.scr")\n`);
});

test('[banned]: a virus in the same message is the verdict (its action), not the banned name', () => {
  const s = setup('[banned]\nnames = ["*.com"]');
  const q = s.request(message(eicar(), 'e.com'), REMOTE);
  const r = s.run(q);
  assert.match(r.replies[0]!, /^200 /);
  assert.ok(dropped(q));
  assert.match(r.logs[0]!, /verdict=infected/);
});

test('block_ip_seconds: after a virus from an IP its next mail is 451 saying why; other IPs and local mail are not blocked', () => {
  const s = setup('[action]\nblock_ip_seconds = 600');
  const virus = s.request(message(eicar(), 'e.com'), REMOTE);
  const next = s.request(message(Buffer.from('fine'), 'a.txt'), REMOTE);
  const mapped = s.request(message(Buffer.from('fine'), 'a.txt'), REMOTE.replaceAll('::ffff:192.0.2.7', '192.0.2.7'));
  const other = s.request(message(Buffer.from('fine'), 'a.txt'), OTHER);
  const localVirus = s.request(message(eicar(), 'e.com'), LOCAL);
  const localNext = s.request(message(Buffer.from('fine'), 'a.txt'), LOCAL);
  const r = s.run(virus, next, mapped, other, localVirus, localNext);
  assert.match(r.replies[0]!, /^200 /);
  assert.match(r.logs[0]!, /verdict=infected .*blocked=192\.0\.2\.7 blocked_until=\S+/);
  assert.equal(r.replies[1], '451 4.7.1 Mail from 192.0.2.7 is deferred for a while: it sent a virus');
  assert.ok(untouched(next));
  assert.match(r.logs[1]!, /verdict=blocked action=tempfail reply=451/);
  assert.match(r.replies[2]!, /^451 /, 'the same client written without the mapped prefix');
  assert.equal(r.replies[3], '200 Ok');
  assert.match(r.replies[4]!, /^200 /);
  assert.doesNotMatch(r.logs[4]!, /blocked=/, 'local submission is never blocked');
  assert.equal(r.replies[5], '200 Ok');
});

test('banned: a name only another reading gives the part (a second Content-Disposition) is banned, also for a message read into memory', () => {
  // The lenient reading takes the bytes the standard reading already decoded by their range in
  // the message; the name it gives them ("setup.exe") was lost on that path, so the .exe went
  // through as "readme.txt".
  const dir = mkdtempSync(join(tmpdir(), 'avf-dupname-'));
  const body = Buffer.from('MZ just some bytes '.repeat(10)).toString('base64');
  const msg = 'Received: x\nSubject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\nhi\n'
    + '--B\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename="readme.txt"\n'
    + `Content-Disposition: attachment; filename="setup.exe"\nContent-Transfer-Encoding: base64\n\n${body}\n--B--\n`;
  writeFileSync(join(dir, 'm.eml'), msg);
  writeFileSync(join(dir, 'c.toml'), `tmpdir = "${dir}/work"\n[[engine]]\ntype = "yara"\n[banned]\nnames = ["*.exe"]\n`);
  const r = runAvfilter(['-f', join(dir, 'c.toml'), '-t', join(dir, 'm.eml')]);
  assert.match(r.stdout, /m\.eml: Banned\.Attachment FOUND/, r.stdout + r.stderr);
});
