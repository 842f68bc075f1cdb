/**
 * Releasing from the quarantine, through a fake sendmail (a shell script that writes its
 * arguments and standard input to files, and exits with the status it is told): the message goes
 * out once, with the marker first and any marker it carried removed; a second release is refused
 * (exit 1) and sendmail not run again; two releases at once send once; a sendmail that fails
 * leaves the entry releasable with the reason recorded. The marker verifies for the released
 * bytes (also under headers Courier adds) and not for an altered body, another key, another id,
 * two markers; the filter's check accepts it only while the entry is being released.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { writeEntry, readEntry, replaceRecord } from '../src/quarantine/store.js';
import { forgetReleaseKeys, releasedMarker, releaseEntry, sendmailArgv, verifyReleaseMarker } from '../src/quarantine/release.js';
import { findMarker, readKey } from '../src/quarantine/marker.js';
import { runAvfilter, AVFILTER } from './helpers/avfilter-proc.js';
import { eicar } from './helpers/eicar.js';

const MESSAGE = [
  'Received: from client ([192.0.2.7]) by mx', 'X-Avfilter-Released: 20200101-000000-aaaaaaaaaaaa 0000000000000000000000000000000000000000000000000000000000000000',
  'From: a@example.test', 'Subject: kept', 'x-avfilter-released:', ' folded-forgery', '', 'body line 1', '', 'X-Avfilter-Released: in the body stays', 'end', '',
].join('\n');

function setup(sendmailExit = 0, delaySeconds = 0) {
  const dir = mkdtempSync(join(tmpdir(), 'avf-qrel-'));
  const qdir = join(dir, 'quarantine');
  const sm = join(dir, 'sendmail');
  // the fake sendmail: one argv file and one stdin file per run, numbered
  writeFileSync(sm, [
    '#!/bin/sh', `d=${JSON.stringify(dir)}`, 'n=$(ls "$d" | grep -c "^run-.*\\.args$")', 'n=$((n + 1))',
    'for a in "$@"; do printf "%s\\n" "$a"; done > "$d/run-$n.args"', 'cat > "$d/run-$n.stdin"',
    delaySeconds > 0 ? `sleep ${delaySeconds}` : ':', `[ -f "$d/exit" ] && { echo "sendmail: told to fail" >&2; exit $(cat "$d/exit"); }`, 'exit 0', '',
  ].join('\n'), { mode: 0o755 });
  if (sendmailExit !== 0) writeFileSync(join(dir, 'exit'), String(sendmailExit));
  const cfg = join(dir, 'avfilter.toml');
  writeFileSync(cfg, `quarantine_dir = ${JSON.stringify(qdir)}\nquarantine_sendmail = [${JSON.stringify(sm)}, "-oi", "-f", "{sender}"]\n`);
  const runs = (): { args: string[]; stdin: Buffer }[] => readdirSync(dir).filter((f) => /^run-\d+\.args$/.test(f)).sort().map((f) => ({
    args: readFileSync(join(dir, f), 'utf8').split('\n').slice(0, -1), stdin: readFileSync(join(dir, f.replace('.args', '.stdin'))),
  }));
  return { dir, qdir, sm, cfg, runs };
}

async function kept(s: ReturnType<typeof setup>, message = MESSAGE) {
  const data = join(s.dir, 'D');
  writeFileSync(data, message);
  return writeEntry(s.qdir, {
    dataPath: data, controlPaths: [],
    record: { queue_id: 'Q1', sender: 'sender@example.test', recipients: ['alice@example.test', 'bob@example.test'], names: ['Eicar-Test-Signature'], findings: [], action: 'drop' },
  });
}

const bodyOf = (b: Buffer): string => b.toString('latin1').split('\n\n').slice(1).join('\n\n');

test('release: sent once to the recipients with the marker first and the old markers removed; a second release is refused', async () => {
  const s = setup();
  const e = await kept(s);
  const r1 = runAvfilter(['-f', s.cfg, '--quarantine', 'release', e.id]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r1.stdout, `released ${e.id} to alice@example.test, bob@example.test\n`);
  assert.match(r1.stderr, new RegExp(`event=quarantine-release quarantine=${e.id} id=Q1 from=<sender@example\\.test> to=alice@example\\.test,bob@example\\.test`));
  const runs = s.runs();
  assert.equal(runs.length, 1);
  assert.deepEqual(runs[0]!.args, ['-oi', '-f', 'sender@example.test', 'alice@example.test', 'bob@example.test']);
  const sent = runs[0]!.stdin.toString('latin1');
  const lines = sent.split('\n');
  assert.match(lines[0]!, new RegExp(`^X-Avfilter-Released: ${e.id} [0-9a-f]{64}$`));
  assert.equal(lines.slice(1, 4).join('\n'), 'Received: from client ([192.0.2.7]) by mx\nFrom: a@example.test\nSubject: kept');
  assert.equal((sent.split('\n\n')[0]!.match(/x-avfilter-released/gi) ?? []).length, 1, 'only our marker in the header block');
  assert.equal(bodyOf(runs[0]!.stdin), bodyOf(Buffer.from(MESSAGE)), 'the body is sent as it was kept');

  const key = await readKey(s.qdir);
  assert.ok(key && key.length === 32);
  assert.equal(statSync(join(s.qdir, '.release-key')).mode & 0o777, 0o600);
  assert.deepEqual(verifyReleaseMarker(runs[0]!.stdin, key), { id: e.id });

  const rec = (await readEntry(s.qdir, e.id)).record;
  assert.equal(rec.state, 'released');
  assert.deepEqual(rec.released?.to, ['alice@example.test', 'bob@example.test']);
  assert.ok(Math.abs(Date.parse(rec.released!.time) - Date.now()) < 60_000);

  const r2 = runAvfilter(['-f', s.cfg, '--quarantine', 'release', e.id]);
  assert.equal(r2.code, 1, r2.stderr);
  assert.match(r2.stderr, new RegExp(`${e.id} was released at .* to alice@example\\.test, bob@example\\.test; it is not sent again`));
  const r3 = runAvfilter(['-f', s.cfg, '--quarantine', 'release', e.id, '--to', 'carol@example.test']);
  assert.equal(r3.code, 1, r3.stderr);
  assert.equal(s.runs().length, 1, 'sendmail ran once');
  assert.match(runAvfilter(['-f', s.cfg, '--quarantine', 'list']).stdout, new RegExp(`${e.id} .* released `));
});

test('--to sends to the addresses given instead; an address sendmail would read as an option is refused', async () => {
  const s = setup();
  const e = await kept(s);
  let r = runAvfilter(['-f', s.cfg, '--quarantine', 'release', e.id, '--to', '-oQ/tmp']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /not an address to release to/);
  assert.equal(s.runs().length, 0);
  assert.equal((await readEntry(s.qdir, e.id)).record.state, 'held');
  r = runAvfilter(['-f', s.cfg, '--quarantine', 'release', e.id, '--to', 'admin@example.test', '--to', 'carol@example.test']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(s.runs()[0]!.args.slice(3), ['admin@example.test', 'carol@example.test']);
  assert.throws(() => sendmailArgv(['sm'], 's', ['a b@example.test']), { code: 'EQUARANTINE_ADDRESS' });
  assert.deepEqual(sendmailArgv(['sm', '-f{sender}', '-f', '{sender}'], '', ['x@y']), ['sm', '-f', '-f', '', 'x@y']);
});

test('a sendmail that fails leaves the entry releasable, with the reason in the record; the next release sends it', async () => {
  const s = setup(75);
  const e = await kept(s);
  let r = runAvfilter(['-f', s.cfg, '--quarantine', 'release', e.id]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /exit status 75.*sendmail: told to fail/);
  assert.match(r.stderr, new RegExp(`level=error event=quarantine-release quarantine=${e.id} code=EQUARANTINE_SEND`));
  let rec = (await readEntry(s.qdir, e.id)).record;
  assert.equal(rec.state, 'held');
  assert.match(rec.release_error?.reason ?? '', /exit status 75/);
  assert.equal(existsSync(join(e.dir, 'release.lock')), false);
  assert.match(runAvfilter(['-f', s.cfg, '--quarantine', 'show', e.id]).stdout, /last release failed: .*exit status 75/);

  writeFileSync(join(s.dir, 'exit'), '0');
  r = runAvfilter(['-f', s.cfg, '--quarantine', 'release', e.id]);
  assert.equal(r.code, 0, r.stderr);
  rec = (await readEntry(s.qdir, e.id)).record;
  assert.equal(rec.state, 'released');
  assert.equal(s.runs().length, 2);

  const missing = setup();
  const e2 = await kept(missing);
  const res = await releaseEntry(missing.qdir, e2.id, { to: [], sendmail: [join(missing.dir, 'no-such-sendmail')] }).catch((err: unknown) => err);
  assert.equal((res as { code?: string }).code, 'EQUARANTINE_SEND');
  assert.equal((await readEntry(missing.qdir, e2.id)).record.state, 'held');
});

test('two releases of one entry at the same moment: sendmail runs once, the other is refused (exit 1)', async () => {
  const s = setup(0, 1);
  const e = await kept(s);
  const run = () => new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const c = spawn(process.execPath, [AVFILTER, '-f', s.cfg, '--quarantine', 'release', e.id], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code, stderr }));
  });
  const results = await Promise.all([run(), run(), run()]);
  assert.deepEqual(results.map((r) => r.code).sort(), [0, 1, 1], JSON.stringify(results));
  for (const r of results.filter((x) => x.code === 1)) assert.match(r.stderr, /has not ended|was released at/);
  assert.equal(s.runs().length, 1);
});

test('the marker verifies for the released body only: not for an altered body, another key or id, or two markers; Courier\'s headers above do not matter', async () => {
  const s = setup();
  const e = await kept(s);
  await releaseEntry(s.qdir, e.id, { to: [], sendmail: [s.sm] });
  const sent = s.runs()[0]!.stdin;
  const key = (await readKey(s.qdir))!;
  const asCourierHasIt = Buffer.concat([Buffer.from('Received: from localhost by mx with local\n  id 2; today\n'), sent]);
  assert.deepEqual(verifyReleaseMarker(asCourierHasIt, key), { id: e.id });
  const crlf = Buffer.from(sent.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
  assert.deepEqual(verifyReleaseMarker(crlf, key), { id: e.id }, 'CRLF counts as LF');
  assert.equal(verifyReleaseMarker(Buffer.from(sent.toString('latin1').replace('body line 1', 'body line 2'), 'latin1'), key), undefined);
  assert.equal(verifyReleaseMarker(Buffer.concat([sent, Buffer.from('more\n')]), key), undefined);
  assert.equal(verifyReleaseMarker(sent, randomBytes(32)), undefined);
  const marker = findMarker(sent.subarray(0, sent.indexOf('\n\n')))!;
  assert.equal(marker.id, e.id);
  const otherId = Buffer.from(sent.toString('latin1').replace(e.id, '20261207-000000-000000000000'), 'latin1');
  assert.equal(verifyReleaseMarker(otherId, key), undefined);
  const twice = Buffer.concat([Buffer.from(sent.toString('latin1').split('\n')[0]! + '\n'), sent]);
  assert.equal(verifyReleaseMarker(twice, key), undefined);
  // a copied header on another message
  const copied = Buffer.from(`${sent.toString('latin1').split('\n')[0]}\nSubject: other\n\nanother body\n`, 'latin1');
  assert.equal(verifyReleaseMarker(copied, key), undefined);
});

test('Courier gives every multipart a new boundary on the way in: the marker still verifies; any other change to the body does not', async () => {
  const s = setup();
  const multipart = [
    'Received: x', 'Content-Type: multipart/mixed; boundary="=_vm-1-1-0001-2"', '', 'This is a MIME-formatted message.', '',
    '--=_vm-1-1-0001-2', 'Content-Type: multipart/alternative;', ' boundary="=_vm-1-1-0001-3"', '', '--=_vm-1-1-0001-3', 'Content-Type: text/plain', '',
    'hello', '--=_vm-1-1-0001-3--', '', '--=_vm-1-1-0001-2', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '',
    'AAAA', '--=_vm-1-1-0001-2--', '',
  ].join('\n');
  const e = await kept(s, multipart);
  await releaseEntry(s.qdir, e.id, { to: [], sendmail: [s.sm] });
  const sent = s.runs()[0]!.stdin.toString('latin1');
  const key = (await readKey(s.qdir))!;
  const rewritten = sent.replace(/=_vm-1-1-0001-/g, '=_vm-25818-1796608271-0001-');
  assert.notEqual(rewritten, sent);
  assert.deepEqual(verifyReleaseMarker(Buffer.from(`Received: from localhost\n${rewritten}`, 'latin1'), key), { id: e.id });
  for (const [from, to] of [['hello', 'hellO'], ['AAAA', 'AAAB'], ['This is a MIME', 'This is not a MIME'], ['Content-Type: text/plain', 'Content-Type: text/html']]) {
    assert.equal(verifyReleaseMarker(Buffer.from(rewritten.replace(from!, to!), 'latin1'), key), undefined, `${from} -> ${to}`);
  }
});

test('the filter\'s check: accepted only while the entry is being released, for its body, from a file or from memory', async () => {
  forgetReleaseKeys();
  const s = setup();
  const e = await kept(s);
  const msgFile = join(s.dir, 'incoming');
  // before any release there is no key: nothing verifies
  writeFileSync(msgFile, MESSAGE);
  assert.equal(await releasedMarker({ path: msgFile }, s.qdir), undefined);
  await releaseEntry(s.qdir, e.id, { to: [], sendmail: [s.sm] });
  const sent = Buffer.concat([Buffer.from('Received: from localhost\n'), s.runs()[0]!.stdin]);
  writeFileSync(msgFile, sent);
  const rec = (await readEntry(s.qdir, e.id)).record;
  // released: the release is over, a copy coming in now is scanned
  assert.equal(await releasedMarker({ path: msgFile }, s.qdir), undefined);
  await replaceRecord(s.qdir, { ...rec, state: 'releasing', released: undefined, releasing: { time: new Date().toISOString(), to: [] } });
  assert.deepEqual(await releasedMarker({ path: msgFile }, s.qdir), { id: e.id });
  assert.deepEqual(await releasedMarker({ path: '/nonexistent', bytes: sent }, s.qdir), { id: e.id });
  writeFileSync(msgFile, Buffer.concat([sent, Buffer.from('appended\n')]));
  assert.equal(await releasedMarker({ path: msgFile }, s.qdir), undefined);
  assert.equal(await releasedMarker({ path: join(s.dir, 'missing') }, s.qdir), undefined, 'an unreadable file is scanned, not accepted');
  assert.equal(await releasedMarker({ path: msgFile }, join(s.dir, 'elsewhere')), undefined);
});

test('--batch-test: a released message is accepted unscanned while its release runs, and scanned (dropped) when it comes again later', async () => {
  forgetReleaseKeys();
  const s = setup();
  const spool = join(s.dir, 'spool');
  mkdirSync(spool);
  const infected = [
    'Received: from client by mx', 'From: a@example.test', 'Subject: eicar', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '',
    '--b', 'Content-Type: application/octet-stream; name="e.com"', 'Content-Transfer-Encoding: base64', '', eicar().toString('base64'), '--b--', '',
  ].join('\n');
  const e = await kept(s, infected);
  await releaseEntry(s.qdir, e.id, { to: [], sendmail: [s.sm] });
  const sent = Buffer.concat([Buffer.from('Received: from localhost by mx with local\n'), s.runs()[0]!.stdin]);
  const cfg = join(s.dir, 'batch.toml');
  writeFileSync(cfg, [`tmpdir = "${s.dir}/work"`, `spool_dirs = ["${spool}"]`, `quarantine_dir = "${s.qdir}"`, '[action]', 'infected = "drop"', ''].join('\n'));
  let n = 0;
  const submit = () => {
    n++;
    const d = join(spool, `D${n}`);
    const c = join(spool, `C${n}`);
    writeFileSync(d, sent);
    writeFileSync(c, ['ssender@example.test', `M${'0'.repeat(16)}.${'1'.repeat(16)}.0000000${n}`, 'ralice@example.test', 'R', 'N', ''].join('\n'));
    const r = runAvfilter(['-f', cfg, '--batch-test'], { input: `${d}\n${c}\n\n` });
    return { r, control: readFileSync(c, 'utf8') };
  };
  const rec = (await readEntry(s.qdir, e.id)).record;
  await replaceRecord(s.qdir, { ...rec, state: 'releasing', released: undefined, releasing: { time: new Date().toISOString(), to: rec.recipients } });
  let got = submit();
  assert.equal(got.r.code, 0, got.r.stderr);
  assert.match(got.r.stdout, /^200 /);
  assert.match(got.r.stderr, new RegExp(`verdict=skipped .*released=${e.id}|released=${e.id}.*verdict=skipped`));
  assert.doesNotMatch(got.control, /\nS0 /, 'not dropped');
  await replaceRecord(s.qdir, rec);
  got = submit();
  assert.match(got.r.stdout, /^200 /);
  assert.match(got.r.stderr, /verdict=infected/);
  assert.match(got.control, /\nS0 \d+/, 'dropped: the release is over');
});
