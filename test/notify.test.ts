/**
 * Notices ([notify], src/effects/notify.ts) with a real process for sendmail: a small script
 * that writes its argv, environment and stdin to files, so the test sees exactly what a real
 * sendmail would be given. The notice names the virus and never carries it; hostile names and
 * addresses arrive escaped; a notice about a notice is never sent; a sendmail that fails or
 * hangs (with a child of its own) is reported and killed, group and all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import libqp from 'libqp';
import { buildNotice, noticeAddresses, readHeaderSection, sendNotice, type NoticeInput, type NotifyConfig } from '../src/effects/notify.js';
import { BUILT_IN_TEMPLATE, noticeTemplateProblem, parseNoticeTemplate } from '../src/policy/notice-template.js';
import { AvError } from '../src/errors.js';
import { waitGone } from './helpers/gone.js';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { daemonEnv } from './helpers/daemon-env.js';
import { SAMPLE, infectedSample } from './helpers/courier-sample.js';
import { eicar } from './helpers/eicar.js';

const dir = mkdtempSync(join(tmpdir(), 'avf-notify-'));
let n = 0;

/** A script in a directory of its own; `out` is where the fake sendmail writes. */
function script(body: string): { path: string; out: string } {
  const out = join(dir, `run${++n}`);
  const path = `${out}.sh`;
  writeFileSync(path, `#!/bin/sh\nOUT='${out}'\n${body}\n`);
  chmodSync(path, 0o755);
  return { path, out };
}

const RECORD = `mkdir -p "$OUT"; for a in "$@"; do printf '%s\\0' "$a"; done > "$OUT/argv"; env > "$OUT/env"; cat > "$OUT/stdin"; exit 0`;

function cfg(sendmail: string, over: Partial<NotifyConfig> = {}): NotifyConfig {
  return { postmaster: 'postmaster@example.net', recipients: false, sender: false, sendmail: [sendmail, '-f', ''], template: '', ...over };
}

/** A message's header section as Courier's data file has it, with a virus in the body below. */
const HEADERS = 'Received: from client (client [192.0.2.7])\n  by mx.example.net with ESMTP; Mon, 7 Dec 2026 00:00:00 +0000\nFrom: alice@example.com\nSubject: invoice\nMIME-Version: 1.0\n';

function input(over: Partial<NoticeInput> = {}): NoticeInput {
  return {
    values: { names: ['Eicar-Signature'], sender: 'alice@example.com', recipients: ['bob@example.net'], queueId: '00A1.B2', clientIp: '192.0.2.7', files: ['eicar.com'], action: 'drop' },
    headers: HEADERS, sender: 'alice@example.com', recipients: ['bob@example.net', 'carol@example.net'], ...over,
  };
}

const argvOf = (out: string): string[] => readFileSync(join(out, 'argv'), 'latin1').split('\0').slice(0, -1);

/** The notice split into its header lines (unfolded) and its decoded body. */
function parse(raw: Buffer): { head: string[]; body: string } {
  const text = raw.toString('latin1');
  const end = text.indexOf('\n\n');
  assert.ok(end > 0, 'a header section and a body');
  const head = text.slice(0, end).replace(/\n[ \t]+/g, ' ').split('\n');
  return { head, body: libqp.decode(text.slice(end + 2)).toString('utf8') };
}

test('the postmaster gets a text notice with the null sender: names, files, headers; no virus, no body', async () => {
  const s = script(RECORD);
  const msg = join(dir, 'message');
  writeFileSync(msg, Buffer.concat([Buffer.from(`${HEADERS}Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n`), Buffer.from(eicar().toString('base64')), Buffer.from('\n')]));
  const headers = await readHeaderSection(msg);
  assert.ok(headers.endsWith('Content-Transfer-Encoding: base64\n'), JSON.stringify(headers.slice(-40)));
  const r = await sendNotice(cfg(s.path), input({ headers }));
  assert.deepEqual(r.sent && r.to, ['postmaster@example.net']);
  assert.deepEqual(argvOf(s.out), ['-f', '', '--', 'postmaster@example.net']);
  const raw = readFileSync(join(s.out, 'stdin'));
  assert.ok(!raw.includes(eicar()) && !raw.includes(eicar().toString('base64')), 'the virus is not in the notice, raw or encoded');
  const { head, body } = parse(raw);
  assert.ok(!body.includes(eicar().toString('latin1')));
  for (const h of ['Auto-Submitted: auto-generated', 'X-Avfilter-Notice: yes', 'Content-Type: text/plain; charset=utf-8', 'Subject: Virus found in a message from alice@example.com', 'From: avfilter <postmaster@example.net>', 'To: undisclosed-recipients:;']) {
    assert.ok(head.includes(h), `${h} in ${JSON.stringify(head)}`);
  }
  assert.match(head.find((h) => h.startsWith('Date: ')) ?? '', /^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$/);
  assert.match(body, /^Virus: +Eicar-Signature$/m);
  assert.match(body, /^Files: +eicar\.com$/m);
  assert.match(body, /^Queue id: +00A1\.B2$/m);
  assert.match(body, /^Client IP: +192\.0\.2\.7$/m);
  assert.match(body, /^Action: +drop$/m);
  assert.match(body, /^Subject: invoice$/m, 'the original headers');
  assert.ok(body.includes('Content-Transfer-Encoding: base64'), 'the headers up to the blank line');
  // sendmail gets a clean environment: nothing of the worker's leaks to it
  assert.deepEqual(readFileSync(join(s.out, 'env'), 'utf8').split('\n').filter((l) => /^[A-Z]/.test(l) && !/^(PATH|PWD|SHLVL|_)=/.test(l)), []);
});

test('hostile names, files and sender arrive escaped: headers stay headers, lines stay lines', async () => {
  const s = script(RECORD);
  const evil = 'x\r\nBcc: victim@example.org\r\n\r\nfake body\u202e\u0000\u001b[31m';
  const r = await sendNotice(cfg(s.path, { template: '' }), input({
    values: { names: [evil, 'N'.repeat(10_000)], files: [`inv\u202egpj.exe`], sender: evil, recipients: [evil], queueId: evil, clientIp: evil },
    headers: `Subject: ${evil}\n`,
  }));
  assert.equal(r.sent, true);
  const raw = readFileSync(join(s.out, 'stdin'));
  // 7-bit, no CR, no line over 78 except where a header word cannot be folded (none here: escaped values have spaces)
  assert.ok([...raw].every((b) => b === 0x0a || (b >= 0x20 && b < 0x7f)), 'the notice is printable ASCII with LF');
  const { head, body } = parse(raw);
  assert.ok(!head.some((h) => /^Bcc:/i.test(h)), JSON.stringify(head));
  assert.equal(head.filter((h) => /^Subject:/.test(h)).length, 1);
  assert.match(head.find((h) => h.startsWith('Subject:'))!, /^Subject: Virus found in a message from x Bcc: victim@example\.org fake body\? \[31m$/);
  assert.match(body, /^Virus: +x\\x0d\\x0aBcc: victim@example\.org\\x0d\\x0a\\x0d\\x0afake body\\u202e\\x00\\x1b\[31m, N{500}/m);
  assert.ok(!body.includes('N'.repeat(600)), 'a 10 KB name is cut');
  assert.match(body, /^Files: +inv\\u202egpj\.exe$/m);
  assert.doesNotMatch(body, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/);
});

test('who gets it: postmaster, recipients, sender, each once; automatic mail and unusable addresses get none', async () => {
  const all = cfg('/bin/true', { recipients: true, sender: true });
  assert.deepEqual(noticeAddresses(all, input()), { to: ['postmaster@example.net', 'bob@example.net', 'carol@example.net', 'alice@example.com'] });
  assert.deepEqual(noticeAddresses(all, input({ recipients: ['Postmaster@Example.NET', 'bob@example.net'] })), { to: ['postmaster@example.net', 'bob@example.net', 'alice@example.com'] }, 'once each, whatever the case');
  assert.deepEqual(noticeAddresses(all, input({ sender: '' })), { to: ['postmaster@example.net', 'bob@example.net', 'carol@example.net'] }, 'no notice to the null sender');
  assert.deepEqual(noticeAddresses(all, input({ headers: `${HEADERS}Auto-Submitted: auto-replied\n` })), { to: ['postmaster@example.net', 'bob@example.net', 'carol@example.net'] }, 'RFC 3834: none to automatic mail');
  assert.deepEqual(noticeAddresses(all, input({ headers: `${HEADERS}auto-submitted: no\n` })).valueOf(), { to: ['postmaster@example.net', 'bob@example.net', 'carol@example.net', 'alice@example.com'] });
  assert.deepEqual(noticeAddresses(cfg('/bin/true', { postmaster: '', recipients: true }), input({ recipients: ['a b@x', 'c\n@x', '', '-oQ/tmp@x'] })), { to: ['-oQ/tmp@x'] }, 'spaces and controls never; a leading "-" is after "--"');
  assert.deepEqual(noticeAddresses(cfg('/bin/true', { postmaster: '' }), input()), { none: 'no address to notify' });
  // a notice (the null sender and the marker) gets no notice, whatever it holds
  assert.deepEqual(noticeAddresses(all, input({ sender: '', headers: `${HEADERS}X-Avfilter-Notice: yes\n` })), { none: 'the message is a notice itself' });
  // the marker alone (a forger's) is not enough to spare a message from its notice
  assert.deepEqual(noticeAddresses(cfg('/bin/true'), input({ headers: `${HEADERS}X-Avfilter-Notice: yes\n` })), { to: ['postmaster@example.net'] });
  const s = script(RECORD);
  const r = await sendNotice(cfg(s.path, { recipients: true }), input({ recipients: ['-oQ/tmp@x'] }));
  assert.equal(r.sent, true);
  assert.deepEqual(argvOf(s.out), ['-f', '', '--', 'postmaster@example.net', '-oQ/tmp@x'], 'one run, every address after --');
  const none = await sendNotice(cfg(script(RECORD).path), input({ sender: '', headers: 'X-Avfilter-Notice: yes\n' }));
  assert.deepEqual(none, { sent: false, reason: 'the message is a notice itself' });
});

test('a sendmail that fails, is missing, or hangs with a child: an error naming it; the group is killed', async () => {
  const fails = script('cat >/dev/null; echo "sendmail: no such user" >&2; exit 67');
  await assert.rejects(sendNotice(cfg(fails.path), input()), (e: unknown) => e instanceof AvError && e.code === 'ENOTIFY_SENDMAIL' && /exited 67: sendmail: no such user/.test(e.message));
  await assert.rejects(sendNotice(cfg(join(dir, 'missing')), input()), (e: unknown) => e instanceof AvError && e.code === 'ENOTIFY_SENDMAIL' && /could not be started: ENOENT/.test(e.message));
  const hangs = script('mkdir -p "$OUT"; sleep 300 & echo $! > "$OUT/child"; sleep 300');
  const t0 = Date.now();
  await assert.rejects(sendNotice(cfg(hangs.path), input(), undefined, 500), (e: unknown) => e instanceof AvError && e.code === 'ENOTIFY_TIMEOUT');
  assert.ok(Date.now() - t0 < 5000);
  const child = Number(readFileSync(join(hangs.out, 'child'), 'utf8'));
  assert.ok(child > 1);
  await waitGone(child, 'its sendmail');
  // the request's abort ends it too
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  await assert.rejects(sendNotice(cfg(script('sleep 300').path), input(), ac.signal), (e: unknown) => e instanceof AvError && e.code === 'ENOTIFY_TIMEOUT' && /before the request ended/.test(e.message));
});

test('templates: headers, a blank line, a body; errors name the file and the line', async () => {
  const t = parseNoticeTemplate('Subject: [virus] %v\nX-Note: queue %q\n\t(continued)\n\nHello,\n%v in %f.\n100%%\n', 'T');
  assert.deepEqual(t.headers, [['Subject', '[virus] %v'], ['X-Note', 'queue %q (continued)']]);
  const raw = buildNotice(t, { names: ['W32/Foo'], files: ['a.exe'], queueId: 'Q1' }, 'postmaster');
  const { head, body } = parse(raw);
  assert.ok(head.includes('Subject: [virus] W32/Foo') && head.includes('X-Note: queue Q1 (continued)'), JSON.stringify(head));
  assert.equal(body, 'Hello,\nW32/Foo in a.exe.\n100%\n');
  const err = (text: string): string => {
    try {
      parseNoticeTemplate(text, 'notice.txt');
    } catch (e) {
      assert.ok(e instanceof AvError && e.code === 'ENOTIFY_TEMPLATE');
      return e.message;
    }
    return assert.fail('no error');
  };
  assert.match(err('Subject: x\n\nline 3\nline 4 %z\n'), /^notice\.txt:4: unknown macro %z/);
  assert.match(err('Subject: %h\n\nbody\n'), /^notice\.txt:1: Subject: unknown macro %h \(not allowed here\)/);
  assert.match(err('Hello there\n\nbody'), /^notice\.txt:1: not a header line/);
  assert.match(err('Subject: x\nbody without a blank line'), /^notice\.txt:2: not a header line/);
  assert.match(err('Subject: x'), /no blank line/);
  assert.match(err('Subject: x\nAuto-Submitted: no\n\nbody'), /^notice\.txt:2: Auto-Submitted is written by avfilter/);
  assert.match(err('X-Avfilter-Notice: no\n\nbody'), /written by avfilter/);
  assert.doesNotThrow(() => parseNoticeTemplate(BUILT_IN_TEMPLATE, 'built-in'));
  assert.equal(noticeTemplateProblem(''), undefined, '"" is the built-in notice');
  // a file: checked as the loader does, used by sendNotice, read again when it changes
  const file = join(dir, 'notice.txt');
  writeFileSync(file, 'Subject: one %v\n\nfirst\n');
  assert.equal(noticeTemplateProblem(file), undefined);
  assert.match(noticeTemplateProblem(join(dir, 'none.txt')) ?? '', /none\.txt: cannot read the notice template: ENOENT/);
  const s1 = script(RECORD);
  await sendNotice(cfg(s1.path, { template: file }), input());
  assert.equal(parse(readFileSync(join(s1.out, 'stdin'))).body, 'first\n');
  writeFileSync(file, 'Subject: two %v\n\nsecond, longer\n');
  const s2 = script(RECORD);
  await sendNotice(cfg(s2.path, { template: file }), input());
  const second = parse(readFileSync(join(s2.out, 'stdin')));
  assert.equal(second.body, 'second, longer\n');
  assert.ok(second.head.includes('Subject: two Eicar-Signature'));
  writeFileSync(file, 'Subject: %x\n\nbroken\n');
  assert.match(noticeTemplateProblem(file) ?? '', /notice\.txt:1: Subject: unknown macro %x/);
  await assert.rejects(sendNotice(cfg(script(RECORD).path, { template: file }), input()), /unknown macro %x/);
});

test('a long body line is quoted-printable with lines of at most 76 characters', () => {
  const raw = buildNotice(parseNoticeTemplate('Subject: s\n\n%h\n', 't'), { headers: `X-Long: ${'é'.repeat(2000)}\n` }, 'pm');
  const text = raw.toString('latin1');
  const body = text.slice(text.indexOf('\n\n') + 2);
  assert.ok(body.split('\n').every((l) => l.length <= 76));
  assert.equal(libqp.decode(body).toString('utf8'), `X-Long: ${'é'.repeat(2000)}\n`);
});

// ---- through avfilter --batch-test, on the infected request of a real Courier

test('batch-test: the message is dropped as before, then one notice goes to the postmaster and the recipient', () => {
  const s = script(RECORD);
  const env = daemonEnv(`[notify]\npostmaster = "pm@example.test"\nrecipients = true\nsendmail = ["${s.path}", "-f", ""]`, 'avf-notify-batch-');
  const req = infectedSample(env);
  const r = runAvfilter(['-f', env.cfg, '--batch-test'], { input: req.line });
  assert.match(r.stdout, /^200 /, r.stderr);
  assert.match(readFileSync(req.controlPaths[0]!, 'utf8'), /^S0 /m, 'dropped');
  assert.deepEqual(argvOf(s.out), ['-f', '', '--', 'pm@example.test', SAMPLE.recipient]);
  const raw = readFileSync(join(s.out, 'stdin'));
  assert.ok(!raw.includes(eicar()) && !raw.includes(eicar().toString('base64').slice(0, 40)), 'the virus is not in the notice');
  const { head, body } = parse(raw);
  assert.ok(head.includes('X-Avfilter-Notice: yes'));
  assert.match(body, /^Virus: +\S*EICAR/im);
  assert.match(body, /^Files: +eicar\.com$/m);
  assert.match(body, new RegExp(`^Queue id: +${SAMPLE.queueId.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(body, /^Subject: harness eicar base64 attachment$/m, 'the original headers');
  assert.doesNotMatch(body, /This is a MIME-formatted message/, 'no body of the message');
  assert.match(r.stderr, /event=notice-sent .*to=pm@example\.test,sink@harness\.test|event=notice-sent .*to="?pm@example\.test/);
  assert.match(r.stderr, /verdict=infected .*notified=/);
});

test('batch-test: a failing sendmail is logged and changes nothing; a message that is a notice gets none', () => {
  const fails = script('cat >/dev/null; echo "queue full" >&2; exit 75');
  const env = daemonEnv(`[notify]\npostmaster = "pm@example.test"\nsendmail = ["${fails.path}", "-f", ""]`, 'avf-notify-batch-');
  const req = infectedSample(env);
  const r = runAvfilter(['-f', env.cfg, '--batch-test'], { input: req.line });
  assert.match(r.stdout, /^200 /, r.stderr);
  assert.match(readFileSync(req.controlPaths[0]!, 'utf8'), /^S0 /m);
  assert.match(r.stderr, /level=error event=notice-failed .*code=ENOTIFY_SENDMAIL reason=".*exited 75: queue full"/);
  // the notice of a notice: null sender and the marker; scanned and dropped all the same
  const s = script(RECORD);
  env.write(`[notify]\npostmaster = "pm@example.test"\nsendmail = ["${s.path}", "-f", ""]`);
  const notice = readFileSync(req.dataPath, 'utf8').replace(/^From: /m, 'X-Avfilter-Notice: yes\nFrom: ');
  const ctl = readFileSync(req.controlPaths[0]!, 'utf8').replace(/^ssender@example\.test$/m, 's').replace(/^S0 .*\n|^I0 .*\n/gm, '');
  const again = env.request(notice, [ctl]);
  const r2 = runAvfilter(['-f', env.cfg, '--batch-test'], { input: again.line });
  assert.match(r2.stdout, /^200 /, r2.stderr);
  assert.match(readFileSync(again.controlPaths[0]!, 'utf8'), /^S0 /m, 'the marker is no scan bypass: dropped');
  assert.ok(!existsSync(join(s.out, 'argv')), 'no notice about a notice');
  assert.match(r2.stderr, /notice="the message is a notice itself"/);
});
