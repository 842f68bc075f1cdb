/**
 * The effects that rewrite Courier's data file, through `avfilter --batch-test` on copies of
 * real Courier requests (test/fixtures/courier: data and control files as Courier's submit
 * left them for a filter; the infected one's EICAR lines are put in at run time): [headers] on clean mail (LF and CRLF files, a
 * forged X-Virus-Status renamed, inode/owner/mode kept, a file that cannot be written answers
 * 451 and stays as it was) and strip (the EICAR attachment cut, the rest byte for byte; a
 * message that is the virus, or an irregular one, dropped instead, untouched).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { eicar } from './helpers/eicar.js';
import { unwritable } from './helpers/unwritable.js';
import { standardParts } from './helpers/parts.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/courier/', import.meta.url));

function setup(extra: string) {
  const dir = mkdtempSync(join(tmpdir(), 'avf-rewrite-'));
  for (const d of ['allfilters', 'filters', 'spool']) mkdirSync(join(dir, d));
  const cfg = join(dir, 'avfilter.toml');
  writeFileSync(cfg, [
    `socket_dir_all = "${dir}/allfilters"`, `socket_dir_optional = "${dir}/filters"`, `pid_file = "${dir}/avfilter.pid"`,
    `tmpdir = "${dir}/work"`, `spool_dirs = ["${dir}/spool"]`, '', '[[engine]]', 'type = "yara"', '', extra, '',
  ].join('\n'));
  let n = 0;
  /** A copy of a sample request (its data bytes replaced when `data` is given). */
  const request = (sample: string, data?: Buffer) => {
    n++;
    const d = join(dir, 'spool', `D${n}`);
    const c = join(dir, 'spool', `C${n}`);
    writeFileSync(d, data ?? sampleData(sample));
    copyFileSync(join(FIXTURES, `${sample}-control1`), c);
    return { line: `${d}\n${c}\n\n`, data: d, control: c };
  };
  const run = (...lines: string[]) => {
    const r = runAvfilter(['-f', cfg, '--batch-test'], { input: lines.join('') });
    assert.equal(r.code, 0, r.stderr);
    return { replies: r.stdout.trim().split('\n'), log: r.stderr };
  };
  return { dir, request, run };
}

/** A sample's data file; the infected one gets its EICAR base64 lines here (the repository never holds them). */
function sampleData(name: string): Buffer {
  if (name !== '02-eicar-b64-multipart') return readFileSync(join(FIXTURES, `${name}-data`));
  const lines = (eicar().toString('base64').match(/.{1,76}/g) ?? []).join('\n');
  return Buffer.from(readFileSync(join(FIXTURES, `${name}-data.in`), 'latin1').replace('@EICAR_BASE64_LINES@', lines), 'latin1');
}
const sample = sampleData;

/** The message with `fields` inserted after its first (folded) field. */
function withAfterReceived(orig: Buffer, fields: string): string {
  const text = orig.toString('latin1');
  const m = /^Received:[^\n]*\n(?:[ \t][^\n]*\n)*/.exec(text)!;
  return text.slice(0, m[0].length) + fields + text.slice(m[0].length);
}

test('[headers] on a real clean request: X-Virus-Scanned and X-Virus-Status after Received:, everything else byte for byte; inode, owner, mode kept', () => {
  const s = setup('[headers]\nscanned = true\nstatus = true');
  const clean = s.request('01-clean');
  chmodSync(clean.data, 0o640);
  if (process.getuid?.() === 0) chownSync(clean.data, 4321, 4322);
  const before = statSync(clean.data);
  const { replies, log } = s.run(clean.line);
  assert.match(replies[0]!, /^200 /);
  const out = readFileSync(clean.data, 'latin1');
  const m = /\nX-Virus-Scanned: (avfilter [^\n]+)\nX-Virus-Status: Clean\n/.exec(out);
  assert.ok(m, out);
  assert.match(m[1]!, /^avfilter \d+\.\d+\.\d+\S* \(yara [0-9a-f]+\) on \S+$/);
  assert.equal(out, withAfterReceived(sample('01-clean'), `X-Virus-Scanned: ${m[1]}\nX-Virus-Status: Clean\n`));
  const after = statSync(clean.data);
  assert.deepEqual([after.ino, after.mode, after.uid, after.gid], [before.ino, before.mode, before.uid, before.gid]);
  assert.equal(readFileSync(clean.control, 'utf8'), readFileSync(join(FIXTURES, '01-clean-control1'), 'utf8'), 'control file untouched');
  assert.match(log, /verdict=clean .*action=accept/);
});

test('[headers] on a CRLF data file with forged fields: CRLF kept, forged ones renamed X-Old-, only status when only status is on', () => {
  const s = setup('[headers]\nstatus = true');
  const crlf = Buffer.from(withAfterReceived(sample('01-clean'), 'X-Virus-Status: Clean (forged)\nX-Virus-Scanned: by nobody\n').replace(/\n/g, '\r\n'), 'latin1');
  const r = s.request('01-clean', crlf);
  const { replies, log } = s.run(r.line);
  assert.match(replies[0]!, /^200 /);
  const out = readFileSync(r.data, 'latin1');
  const want = crlf.toString('latin1').replace('\r\nX-Virus-Status: Clean (forged)\r\n', '\r\nX-Virus-Status: Clean\r\nX-Old-X-Virus-Status: Clean (forged)\r\n');
  assert.equal(out, want);
  assert.equal(out.replace(/\r\n/g, '').includes('\n'), false, 'no bare LF');
  assert.match(log, /headers_renamed=1/);
});

test('[headers]: a data file that cannot be written answers 451 and stays as it was', () => {
  const s = setup('[headers]\nscanned = true\nstatus = true');
  const r = s.request('01-clean');
  const unlock = unwritable(r.data);
  try {
    const { replies, log } = s.run(r.line);
    assert.match(replies[0]!, /^451 /);
    assert.match(log, /headers_error=EDATA_WRITE/);
  } finally {
    unlock();
  }
  assert.ok(readFileSync(r.data).equals(sample('01-clean')));
});

test('strip on a real infected request: the EICAR attachment becomes a note, the rest byte for byte, delivered (no drop records); X-Virus-Status says stripped', async () => {
  const s = setup('[action]\ninfected = "strip"\n[headers]\nstatus = true');
  const r = s.request('02-eicar-b64-multipart');
  const orig = sample('02-eicar-b64-multipart');
  const { replies, log } = s.run(r.line);
  assert.match(replies[0]!, /^200 /);
  assert.match(log, /verdict=infected names=Eicar-Test-Signature .*action=strip/);
  assert.match(log, /stripped=2/);
  assert.equal(readFileSync(r.control, 'utf8'), readFileSync(join(FIXTURES, '02-eicar-b64-multipart-control1'), 'utf8'), 'nobody marked delivered');
  const out = readFileSync(r.data);
  const text = out.toString('latin1');
  assert.match(text, /\nX-Virus-Status: Clean \(stripped: Eicar-Test-Signature\)\nFrom: /);
  // everything up to the cut part's header is the original's (but for the one field), and the close delimiter after it
  const cutAt = orig.indexOf('Content-Type: application/octet-stream');
  const head = withAfterReceived(orig, 'X-Virus-Status: Clean (stripped: Eicar-Test-Signature)\n');
  const added = head.length - orig.length;
  assert.equal(text.slice(0, cutAt + added), head.slice(0, cutAt + added));
  assert.ok(text.endsWith('\n\n--=_vm-10938-1795264784-0001-2--\n'));
  const parts = await standardParts(out, join(s.dir, 'parts'));
  const was = await standardParts(orig, join(s.dir, 'parts'));
  assert.ok(parts.get('1')!.equals(was.get('1')!));
  assert.match(parts.get('2')!.toString(), /File: eicar\.com\nVirus: Eicar-Test-Signature/);
  assert.equal(text.includes('WDVPIVAlQEFQWzRcUFpYNTQo'), false, 'the virus is gone');
});

test('strip: a message that is the virus, or an irregular one, is dropped instead, its data file untouched', () => {
  const s = setup('[action]\ninfected = "strip"\n[headers]\nstatus = true\nscanned = true');
  const received = sample('01-clean').toString('latin1').split('From:')[0]!;
  const whole = Buffer.from(`${received}From: a@example.test\nSubject: all virus\n\n${eicar().toString('latin1')}\n`, 'latin1');
  const b64 = eicar().toString('base64');
  // junk inside the base64 (a reader that stops at it and one that skips it disagree): irregular
  const irregular = Buffer.from(`${received}From: a@example.test\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${b64.slice(0, 20)}\n!!!!\n${b64.slice(20)}\n--b--\n`, 'latin1');
  const a = s.request('01-clean', whole);
  const b = s.request('01-clean', irregular);
  const { replies, log } = s.run(a.line, b.line);
  assert.match(replies[0]!, /^200 /);
  assert.match(replies[1]!, /^200 /);
  for (const [r, bytes] of [[a, whole], [b, irregular]] as const) {
    assert.ok(readFileSync(r.data).equals(bytes), 'the data file is as it was (no headers on mail nobody gets)');
    assert.match(readFileSync(r.control, 'utf8'), /\nI0 R [^\n]+\nS0 \d+\n/, 'dropped');
  }
  const lines = log.split('\n');
  assert.match(lines.find((l) => l.includes('/D1 '))!, /action=drop .*strip_failed="[^"]*whole message/);
  const d2 = lines.find((l) => l.includes('/D2 '))!;
  assert.match(d2, /action=drop /);
  assert.match(d2, /strip_failed="the message is irregular \(irregular base64 at 2\)"/);
});
